"""An LDAP directory, as LDIF: ``slapcat`` of the server's database, or a paged LDAP read.

Parameters, one of three ways:

- ``chaton_directory: true``: Chaton's own directory, as ``chaton.toml`` says
  (slapcat of the managed slapd, else an LDAP read with Chaton's bind);
- ``config`` (a ``slapd.conf`` path) and ``base_dn``: ``slapcat -f config -b
  base_dn``, which reads the mdb database even while slapd serves it;
- ``url``, ``bind_dn``, ``password`` (stored encrypted) and ``base_dn``: a
  paged search of the subtree as LDIF, for a server whose files are out of reach.

A directory is small (10,000 accounts make a few megabytes of LDIF): the LDIF
is held in memory, fingerprinted there and handed to ``restic backup --stdin``;
it never lands on disk. The fingerprint: the number of entries, a SHA-256 of
their sorted DNs and one of their content (user attributes, values sorted).

A drill loads the LDIF with ``slapadd`` into a throwaway slapd
(:class:`ManagedSlapd`, the same class that runs Chaton's directory), starts
it, reads every entry back over LDAP and compares. An in-place restore is
refused: Chaton's directory is a projection of its database (``chaton
directory sync`` rebuilds it), and loading another server's files needs it
stopped, which is that server's operator's call.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from pydantic import model_validator

from chaton.adapters.ldap import Attributes, normalize_dn
from chaton.adapters.ldap.client import LdapDirectory
from chaton.adapters.slapd import SLAPADD, SLAPCAT, ManagedSlapd
from chaton.backups.sources.base import (
    BackupContext,
    BackupResult,
    DataSource,
    Param,
    ParamError,
    ResticClient,
    RestoreRefused,
    SourceParams,
    Text,
    Verification,
)
from chaton.core import runner
from chaton.core.errors import InvalidInput
from chaton.core.servers import free_port

#: Attributes the server maintains itself: slapcat shows them, a search for ``*`` does not.
OPERATIONAL_ATTRIBUTES = frozenset({
    "entryuuid", "entrycsn", "creatorsname", "createtimestamp", "modifiersname",
    "modifytimestamp", "structuralobjectclass", "contextcsn", "hassubordinates",
    "subschemasubentry", "entrydn", "pwdchangedtime", "pwdfailuretime", "pwdaccountlockedtime",
    "pwdhistory", "pwdgraceusetime", "pwdreset", "pwdpolicysubentry",
    # Kept by the memberof overlay from the groups (slapcat shows it, a search for "*" not).
    "memberof",
})
SLAPCAT_TIMEOUT = 600


def parse_ldif(data: bytes) -> list[tuple[str, Attributes]]:
    """Given LDIF bytes, return its entries in order: (DN as written, attributes by lower name).

    Raise InvalidInput when the data is not LDIF.
    """
    import ldif

    parser = ldif.LDIFRecordList(io.BytesIO(data))
    try:
        parser.parse()
    except ValueError as error:
        raise InvalidInput(_("The data is not LDIF: %(error)s") % {"error": error}) from None
    entries = []
    for dn, attributes in parser.all_records:
        lowered: Attributes = {}
        for name, values in attributes.items():
            lowered.setdefault(name.lower(), []).extend(values)
        entries.append((dn, lowered))
    return entries


def write_ldif(entries: Iterable[tuple[str, Mapping[str, list[bytes]]]]) -> bytes:
    """Given (DN, attributes) pairs, parents first, return them as LDIF bytes."""
    import ldif

    output = io.StringIO()
    writer = ldif.LDIFWriter(output, cols=10_000)
    for dn, attributes in entries:
        writer.unparse(dn, {name: list(values) for name, values in attributes.items()})
    return output.getvalue().encode("utf-8")


def fingerprint_entries(entries: Iterable[tuple[str, Mapping[str, list[bytes]]]]
                        ) -> dict[str, Any]:
    """Return the fingerprint of a directory's entries: count, DN digest, content digest.

    DNs are compared normalised (case and spacing do not count); content is
    the user attributes with their values sorted, so that neither attribute
    order nor operational attributes matter.
    """
    canonical: dict[str, bytes] = {}
    for dn, attributes in entries:
        key = normalize_dn(dn)
        digest = hashlib.sha256(key.encode())
        for name in sorted(attributes):
            if name in OPERATIONAL_ATTRIBUTES:
                continue
            for value in sorted(attributes[name]):
                digest.update(b"\0" + name.encode() + b"\0" + value)
        canonical[key] = digest.digest()
    dns = sorted(canonical)
    return {
        "entries": len(dns),
        "dns_sha256": hashlib.sha256("\n".join(dns).encode()).hexdigest(),
        "content_sha256": hashlib.sha256(b"".join(canonical[dn] for dn in dns)).hexdigest(),
        # A few DNs, so that a person reading a failed drill sees what kind of entries.
        "first_dns": dns[:5],
    }


def _chaton_directory_params() -> dict[str, Any]:
    """Return the parameters that read Chaton's own directory, as its configuration says."""
    from django.conf import settings

    from chaton.directory.backend import managed_slapd_dir

    config = settings.CHATON.ldap
    if config.managed:
        return {"config": str(managed_slapd_dir() / "slapd.conf"), "base_dn": config.base_dn}
    return {"url": config.url, "bind_dn": config.bind_dn,
            "password": config.resolved_bind_password(), "base_dn": config.base_dn}


class LdapParams(SourceParams):
    """One of three ways: Chaton's own directory; ``config`` and ``base_dn``; ``url``,
    ``bind_dn``, ``password`` and ``base_dn``. What the chosen way does not use is None."""

    chaton_directory: Annotated[bool | None, Param(
        gettext_lazy("Chaton's own directory"),
        gettext_lazy("As chaton.toml says; no other parameter."))] = None
    base_dn: Annotated[Text | None, Param(gettext_lazy("Base DN"))] = None
    config: Annotated[Text | None, Param(
        gettext_lazy("slapd configuration"),
        gettext_lazy("A slapd.conf path: read with slapcat."))] = None
    url: Annotated[Text | None, Param(
        gettext_lazy("Directory URL"),
        gettext_lazy("ldap://, ldaps:// or ldapi://, when the server's files are out of "
                     "reach."))] = None
    bind_dn: Annotated[Text | None, Param(gettext_lazy("Bind DN"))] = None
    password: Annotated[Text | None, Param(gettext_lazy("Bind password"),
                                           gettext_lazy("Stored encrypted."), secret=True)
                        ] = None

    @model_validator(mode="after")
    def _one_way(self) -> LdapParams:
        """Keep the parameters of the way chosen. Raise ParamError naming the faulty one."""
        if self.chaton_directory:
            if self.model_fields_set - {"chaton_directory"}:
                raise ParamError(_("Chaton's own directory takes no other parameter."),
                                 field="chaton_directory")
            return self
        self.chaton_directory = None
        if not self.base_dn:
            raise ParamError(_("The parameter “%(name)s” is required.") % {"name": "base_dn"},
                             field="base_dn")
        if self.config:
            if not self.config.startswith("/"):
                raise ParamError(_("The slapd configuration must be an absolute path."),
                                 field="config")
            self.url = self.bind_dn = self.password = None
            return self
        self.config = None
        if not self.url:
            raise ParamError(_("The parameter “%(name)s” is required.") % {"name": "url"},
                             field="url")
        if not self.url.startswith(("ldap://", "ldaps://", "ldapi://")):
            raise ParamError(_("The directory URL must start with ldap://, ldaps:// or "
                               "ldapi://."), field="url")
        self.bind_dn = self.bind_dn or ""
        self.password = self.password or ""
        return self


class LdapSource(DataSource):
    kind = "ldap"
    label = gettext_lazy("LDAP directory")
    Params = LdapParams
    extension = "ldif"

    def _resolved(self) -> dict[str, Any]:
        return _chaton_directory_params() if self.params.get("chaton_directory") else self.params

    def secrets(self) -> list[str]:
        password = self._resolved().get("password")
        return [str(password)] if password else []

    def read_ldif(self) -> bytes:
        """Return the whole directory as LDIF. Raise SourceFailed (via the runner: CommandError)
        for slapcat, LdapError for a read over LDAP."""
        params = self._resolved()
        if params.get("config"):
            completed = runner.run_binary([SLAPCAT, "-f", params["config"], "-b",
                                           params["base_dn"]], timeout=SLAPCAT_TIMEOUT)
            return completed.stdout
        directory = LdapDirectory(params["url"], params.get("bind_dn", ""),
                                  params.get("password", ""), timeout=30)
        try:
            base = directory.read([params["base_dn"]], ["*"])
            below = directory.read_subtree(params["base_dn"], ["*"])
        finally:
            directory.close()
        entries = sorted([*base.items(), *below.items()], key=lambda item: item[0].count(","))
        return write_ldif(entries)

    def backup(self, context: BackupContext) -> BackupResult:
        """Read the directory as LDIF, fingerprint it, and stream it into restic.

        Raise CommandError when slapcat fails, LdapError when the server
        cannot be read, ResticError.
        """
        data = self.read_ldif()
        fingerprint = fingerprint_entries(parse_ldif(data))
        fingerprint["base_dn"] = self._resolved()["base_dn"]
        summary = context.restic.backup_stream(
            data, filename=self.filename, tags=context.tags, host=context.host,
            time=context.time, progress=context.progress, timeout=context.timeout)
        return BackupResult.of(summary, fingerprint)

    def in_place_refusal(self) -> str | None:
        if self.params.get("chaton_directory"):
            return _("Chaton's directory is rebuilt from Chaton's database by “chaton directory "
                     "sync”: restore that database instead.")
        return _("Restoring a directory in place needs its server stopped: restore the LDIF to "
                 "a scratch place and load it with slapadd while slapd is stopped.")

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        raise RestoreRefused(self.in_place_refusal())

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Mapping[str, Any],
              scratch: Path) -> Verification:
        data = restic.dump(snapshot_id, f"/{self.filename}")
        base_dn = str(fingerprint.get("base_dn") or self._resolved()["base_dn"])
        server = ManagedSlapd(scratch / "slapd", port=free_port(), base_dn=base_dn,
                              admin_password=secrets.token_urlsafe(24))
        server.write_config()
        runner.run([SLAPADD, "-q", "-f", str(server.config_path), "-b", base_dn],
                   input=data, timeout=SLAPCAT_TIMEOUT)
        server.start()
        try:
            directory = LdapDirectory(server.url, server.admin_dn, server.admin_password,
                                      timeout=30)
            try:
                entries = {**directory.read([base_dn], ["*"]),
                           **directory.read_subtree(base_dn, ["*"])}
            finally:
                directory.close()
        finally:
            server.stop()
        found = fingerprint_entries(entries.items())
        verification = Verification()
        verification.compare("entries", fingerprint.get("entries"), found["entries"])
        verification.compare("dns", fingerprint.get("dns_sha256"), found["dns_sha256"])
        verification.compare("entries_content", fingerprint.get("content_sha256"),
                             found["content_sha256"])
        verification.expected = dict(fingerprint)
        verification.found = found
        return verification
