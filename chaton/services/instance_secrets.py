"""An instance's secrets: generated once, stored encrypted on the instance, read in clear.

Reading them may write: a secret the manifest asks for and the instance lacks
(a new instance, or a new version of the manifest that asks for one more) is
generated and saved. The reconcile does this as a step of its own, before it
plans (:func:`ensure_all`), so planning and rendering stay free of writes.
"""

from __future__ import annotations

import logging
import secrets as random
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from chaton.core import secrets
from chaton.services import accounts
from chaton.services.catalog import Manifest
from chaton.services.models import Instance

logger = logging.getLogger("chaton.services")


def secret_lengths(manifest: Manifest) -> dict[str, int]:
    """Given a manifest, return the secrets an instance of it holds: the manifest's, the
    directory service account's password, and the companion database's passwords."""
    lengths = {secret.name: secret.length for secret in manifest.secrets}
    if manifest.ldap.supported:
        lengths.setdefault(accounts.PASSWORD_SECRET, accounts.PASSWORD_LENGTH)
    if manifest.database is not None:
        lengths.setdefault("database_password", 32)
        if manifest.database.kind == "mariadb":
            lengths.setdefault("database_root_password", 32)
    return lengths


def ensure(instance: Instance) -> dict[str, str]:
    """Return an instance's secrets in clear, generating (and saving) any that is missing.

    A secret is generated once, at creation; one appears later only when a new
    version of the manifest asks for a new one. Raise KeyError when the
    application left the catalogue, SecretError when the stored ones do not
    decrypt with this installation's key.
    """
    lengths = secret_lengths(instance.manifest)
    missing = [name for name in lengths if name not in instance.secrets]
    if missing:
        for name in missing:
            instance.secrets[name] = secrets.encrypt(random.token_urlsafe(lengths[name])
                                                     [:lengths[name]])
        instance.save(update_fields=["secrets"])
        logger.info("services: generated the secrets %s of %s", ", ".join(missing),
                    instance.slug)
    return {name: secrets.decrypt(ciphertext) for name, ciphertext in instance.secrets.items()}


@dataclass
class SecretValues:
    """The secrets in clear of the instances a plan renders, by slug, and why some could
    not be read."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def of(self, slug: str) -> dict[str, str]:
        """Return one instance's secrets. Raise SecretError when they could not be read (or
        were not asked for)."""
        if slug in self.values:
            return self.values[slug]
        raise secrets.SecretError(self.errors.get(slug)
                                  or _("the secrets of %(slug)s were not read") % {"slug": slug})


def ensure_all(instances: Iterable[Instance]) -> SecretValues:
    """Given instances, return their secrets in clear, generating and saving missing ones.

    An instance whose application left the catalogue has none; one whose
    secrets do not decrypt is in ``errors`` (never raised: the plan reports it
    and leaves the instance alone).
    """
    found = SecretValues()
    for instance in instances:
        try:
            found.values[instance.slug] = ensure(instance)
        except KeyError:
            continue
        except secrets.SecretError as error:
            found.errors[instance.slug] = str(error)
    return found
