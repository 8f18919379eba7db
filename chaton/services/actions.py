"""Every write to hosts and instances.

Each ``do_*`` checks its input first — against the database, the catalogue's
manifest and the host's engine (reachable? image present? port free?) — so
that a refusal leaves nothing behind. It then writes in one transaction, with
an audit row, and reconciles the instance after the commit. The first
deployment of a new instance is part of its creation: if the engine refuses it
(a port taken meanwhile …), what was made is removed again, the row too, and
the error is raised.

Secrets are generated once, at creation, stored encrypted
(:mod:`chaton.core.secrets`), and never written to the audit log.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets as random
import socket
from types import EllipsisType
from typing import TYPE_CHECKING, Any, BinaryIO

import pydantic
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from chaton.adapters.docker import (
    IMAGE_ID,
    DockerError,
    Engine,
    EngineUnreachable,
    ImageNotFound,
    PortInUse,
)
from chaton.core import audit, clock, gate, secrets
from chaton.core.errors import ChatonError, Conflict, InvalidInput
from chaton.directory.models import Account, Group
from chaton.members.models import Organization, Person
from chaton.services import catalog, reconcile
from chaton.services.apply import Result
from chaton.services.catalog import Manifest
from chaton.services.engine import engine_for
from chaton.services.gated import CloseServiceParams, OpenServiceParams
from chaton.services.instance_secrets import secret_lengths
from chaton.services.models import (
    Deployment,
    DeploymentKind,
    DesiredState,
    Host,
    HostImage,
    HostRole,
    Instance,
    Outcome,
)
from chaton.services.plan import Action, Plan

if TYPE_CHECKING:
    from chaton.core.gate import Authorisation

logger = logging.getLogger("chaton.services")

HOST_FIELDS = ["name", "docker_url", "tls_ca", "tls_certificate", "tls_key", "roles", "swarm",
               "is_default", "address", "ldap_url", "first_port", "last_port"]
INSTANCE_FIELDS = ["slug", "application", "domain", "host", "person", "organization",
                   "settings", "login_group", "image_override", "port", "state"]

_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DOCKER_URL = re.compile(r"^(unix:///\S+|tcp://[^\s/]+:\d{1,5}|ssh://[^\s/]+)$")


class EngineUnavailable(ChatonError, ConnectionError):
    """A host's Docker engine does not answer: nothing was changed."""

    code = "engine_unreachable"
    status = 503


class EngineRefused(ChatonError):
    """A host's Docker engine refused a request: nothing was left half made."""

    code = "engine_error"
    status = 502


def _engine_error(error: DockerError, host: Host) -> ChatonError:
    """Given an engine's error, return the error to show people."""
    if isinstance(error, EngineUnreachable):
        return EngineUnavailable(_("The Docker engine of the host %(host)s does not answer: "
                                   "%(error)s. Nothing was changed.")
                                 % {"host": host.name, "error": error}, field="host")
    if isinstance(error, ImageNotFound):
        return InvalidInput(_("The image does not exist on the host %(host)s: %(error)s.")
                            % {"host": host.name, "error": error}, field="image")
    if isinstance(error, PortInUse):
        return Conflict(_("The port is already in use on the host %(host)s: %(error)s.")
                        % {"host": host.name, "error": error}, field="port")
    return EngineRefused(_("The Docker engine of the host %(host)s refused: %(error)s.")
                         % {"host": host.name, "error": error})


# -- checks --------------------------------------------------------------------------------------


def clean_domain(value: str) -> str:
    """Given a domain as typed, return it in lower-case ASCII (IDNA), without a final dot.

    Raise InvalidInput when it is not a domain name of at least two labels.
    """
    domain = value.strip().lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if (not domain or len(domain) > 253 or len(labels) < 2
            or not all(_DOMAIN_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise InvalidInput(_("“%(domain)s” is not a domain name (such as pad.example.org).")
                           % {"domain": value.strip()[:300]}, field="domain")
    return domain


def clean_slug(value: str) -> str:
    """Return an instance's short name, checked. Raise InvalidInput."""
    slug = value.strip().lower()
    if not _SLUG.match(slug):
        raise InvalidInput(_("The short name must be 2 to 31 lower-case letters, digits or "
                             "dashes, starting with a letter."), field="slug")
    return slug


def _derived_slug(domain: str, taken: set[str]) -> str:
    """Return a short name made from the domain's first label (pad, pad-2 …) that no
    instance has, nor the kept data of an earlier one (``taken``)."""
    base = slugify(domain.split(".")[0])[:26].strip("-") or "instance"
    if not base[0].isalpha():
        base = f"app-{base}"[:26]
    if len(base) < 2:
        base = f"{base}-app"
    candidate, number = base, 2
    while candidate in taken or Instance.objects.filter(slug=candidate).exists():
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _manifest(application: str) -> Manifest:
    try:
        return catalog.get(application)
    except KeyError:
        raise InvalidInput(_("There is no application %(name)s in the catalogue.")
                           % {"name": application}, field="application") from None


def clean_settings(manifest: Manifest, values: dict[str, Any]) -> dict[str, Any]:
    """Given some settings of an application, return all of them, validated, with defaults.

    Raise InvalidInput naming the first bad setting.
    """
    try:
        return manifest.validate_settings(dict(values))
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        location = problem.get("loc") or ("?",)
        name = str(location[0])
        if name == "settings":  # the application's own check of the whole (its app.py)
            raise InvalidInput(_("These settings do not go together: %(problem)s.")
                               % {"problem": problem.get("msg", "")}, field="settings") from None
        raise InvalidInput(_("Invalid setting %(name)s: %(problem)s.")
                           % {"name": name, "problem": problem.get("msg", "")},
                           field=f"settings.{name}") from None


def clean_image(manifest: Manifest, image: str) -> str:
    """Return an image an instance of ``manifest`` may run. Raise InvalidInput.

    A catalogue application's image is pinned by digest; a local test
    application's may be ``repository:tag``.
    """
    image = image.strip()
    if (catalog.is_pinned(image) or (manifest.local and catalog.is_tagged(image))
            or (manifest.build is not None and image == manifest.image)):
        return image
    raise InvalidInput(_("The image must be pinned by digest: repository:tag@sha256:<digest>."),
                       field="image")


def _may_pull(image: str) -> bool:
    """Only an image pinned by digest is pulled: a local test image, or one loaded from an
    archive (pinned by its id), never is."""
    return catalog.is_pinned(image)


def resolve_image(host: Host, manifest: Manifest, image: str) -> str:
    """Return the pin an instance of ``manifest`` on ``host`` runs for ``image`` as typed.

    A registry pin (``repository:tag@sha256:<digest>``) stays as it is; an
    image loaded onto the host from an archive — named by its id
    (``sha256:<64 hex>``) or by the ``repository:tag`` it was loaded as (the
    last one loaded) — becomes its id. Raise InvalidInput for anything else.
    """
    image = image.strip()
    if IMAGE_ID.match(image):
        if not HostImage.objects.filter(host=host, image_id=image).exists():
            raise InvalidInput(_("No image with the id %(image)s was loaded onto the host "
                                 "%(host)s (chaton service image import).")
                               % {"image": image, "host": host.name}, field="image")
        return image
    loaded = (HostImage.objects.filter(host=host, reference=image).order_by("-loaded_at")
              .first() if image else None)
    if loaded is not None:
        return loaded.image_id
    try:
        return clean_image(manifest, image)
    except InvalidInput:
        raise InvalidInput(_("The image must be pinned by digest (repository:tag@sha256:"
                             "<digest>), or loaded onto the host %(host)s from an archive "
                             "(chaton service image import).") % {"host": host.name},
                           field="image") from None


def image_label(instance: Instance) -> str:
    """Return the image an instance runs, for people: a loaded image's name and id."""
    try:
        image = instance.image
    except KeyError:
        image = instance.image_override
    if IMAGE_ID.match(image):
        loaded = (HostImage.objects.filter(host_id=instance.host_id, image_id=image)
                  .exclude(reference="").order_by("-loaded_at").first())
        if loaded is not None:
            return f"{loaded.reference} ({image[:19]}…)"
    return image


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _bindable(address: str, port: int) -> bool:
    """Return whether ``address:port`` can be listened on right now on this machine."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address if address != "localhost" else "127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports_taken_in_database(host: Host) -> set[int]:
    taken = set(Instance.objects.filter(host=host).values_list("port", flat=True))
    taken |= {port for port in Deployment.objects.filter(
        instance__host=host, outcome=Outcome.PENDING).values_list("to_port", flat=True) if port}
    return taken


def _check_port_in_database(host: Host, port: int) -> None:
    """Raise InvalidInput for a port out of range, Conflict for one an instance of ``host``
    (or an upgrade under way there) already has."""
    if not 1 <= port <= 65535:
        raise InvalidInput(_("A port is a number from 1 to 65535."), field="port")
    holder = Instance.objects.filter(host=host, port=port).first()
    if holder is None:
        pending = Deployment.objects.filter(instance__host=host, outcome=Outcome.PENDING,
                                            to_port=port).select_related("instance").first()
        holder = pending.instance if pending is not None else None
    if holder is not None:
        raise Conflict(_("The port %(port)d of %(host)s is already used by the instance "
                         "%(slug)s.") % {"port": port, "host": host.name, "slug": holder.slug},
                       field="port")


def _choose_port(host: Host, engine: Engine | None, port: int | None) -> int:
    """Return the port to publish on: ``port`` checked, or the first free one of the host's
    range. Raise InvalidInput, Conflict, DockerError. Without an engine (one that does
    not answer yet), only the database and this machine are asked.

    A port is taken when an instance (or an upgrade under way) has it, when the
    engine publishes it, and — on a host whose address is loopback, hence this
    machine — when something else listens on it.
    """
    in_database = _ports_taken_in_database(host)
    published = engine.published_ports() if engine is not None else set()
    local = _is_loopback(host.address)

    def free(candidate: int) -> bool:
        return (candidate not in in_database and candidate not in published
                and (not local or _bindable(host.address, candidate)))

    if port is not None:
        _check_port_in_database(host, port)
        if not free(port):
            raise Conflict(_("The port %(port)d is already in use on the host %(host)s.")
                           % {"port": port, "host": host.name}, field="port")
        return port
    for candidate in range(host.first_port, host.last_port + 1):
        if free(candidate):
            return candidate
    raise Conflict(_("No port is free from %(first)d to %(last)d on the host %(host)s.")
                   % {"first": host.first_port, "last": host.last_port, "host": host.name},
                   field="port")


def _check_engine(host: Host, images: list[str], *, manifest: Manifest | None = None,
                  acting_user: Account | None = None) -> Engine:
    """Return the host's engine once it answered and holds ``images`` (pulled if pinned;
    the image Chaton builds for ``manifest``, if any, built and loaded as ``acting_user``).

    Raise EngineUnavailable, InvalidInput for a missing image or a host that is
    no longer a Swarm manager, EngineRefused.
    """
    from chaton.services.images import do_build_image

    engine = engine_for(host)
    try:
        info = engine.info()
        if host.swarm and not info.swarm_manager:
            raise InvalidInput(_("The host %(host)s is not a Swarm manager.")
                               % {"host": host.name}, field="host")
        for image in images:
            if manifest is not None and manifest.build is not None and image == manifest.image:
                try:
                    do_build_image(host, engine, manifest, acting_user=acting_user)
                except (OSError, ImportError, ValueError) as error:
                    raise EngineRefused(_("The image of %(application)s could not be built: "
                                          "%(error)s.") % {"application": manifest.label,
                                                           "error": error}) from None
            engine.ensure_image(image, pull=_may_pull(image))
    except DockerError as error:
        raise _engine_error(error, host) from None
    return engine


# -- hosts ---------------------------------------------------------------------------------------


def _clean_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [role for role in roles if role not in HostRole.values]
    if unknown:
        raise InvalidInput(_("Unknown host role: %(roles)s.") % {"roles": ", ".join(unknown)},
                           field="roles")
    return sorted(set(roles))


def _clean_address(address: str) -> str:
    address = address.strip()
    if not address or any(character.isspace() for character in address) or "/" in address:
        raise InvalidInput(_("The address is a host name or an IP address."), field="address")
    return address


def do_create_host(
    name: str,
    docker_url: str,
    *,
    acting_user: Account | None,
    address: str = "127.0.0.1",
    roles: list[str] | tuple[str, ...] = (HostRole.APPS,),
    swarm: bool | None = None,
    is_default: bool = False,
    tls_ca: str = "",
    tls_certificate: str = "",
    tls_key: str = "",
    ldap_url: str = "",
    first_port: int = 20000,
    last_port: int = 29999,
    check: bool = True,
) -> Host:
    """Register a host. With ``check``, its engine must answer; ``swarm`` None takes what
    the engine says (a Swarm manager or not).

    Raise InvalidInput for a bad value (a Swarm flag the engine contradicts),
    Conflict for a name in use, EngineUnavailable when the engine does not answer.
    """
    name = slugify(name.strip())[:64]
    if not name or not name[0].isalpha():
        raise InvalidInput(_("The host's name must start with a letter."), field="name")
    docker_url = docker_url.strip()
    if not _DOCKER_URL.match(docker_url):
        raise InvalidInput(_("The Docker endpoint is unix:///path, tcp://host:port or "
                             "ssh://user@host."), field="docker_url")
    tls_files = [tls_ca.strip(), tls_certificate.strip(), tls_key.strip()]
    if any(tls_files) and not all(tls_files):
        raise InvalidInput(_("TLS needs the CA, the certificate and the key."), field="tls_ca")
    if any(tls_files) and not docker_url.startswith("tcp://"):
        raise InvalidInput(_("TLS files are for a tcp:// endpoint."), field="tls_ca")
    if not 1 <= first_port <= last_port <= 65535:
        raise InvalidInput(_("The port range must go up, within 1 to 65535."),
                           field="first_port")
    host = Host(name=name, docker_url=docker_url, tls_ca=tls_files[0],
                tls_certificate=tls_files[1], tls_key=tls_files[2],
                roles=_clean_roles(roles), address=_clean_address(address),
                ldap_url=ldap_url.strip(), first_port=first_port, last_port=last_port,
                is_default=is_default, swarm=bool(swarm))
    if check:
        try:
            info = engine_for(host).info()
        except DockerError as error:
            raise _engine_error(error, host) from None
        if swarm is None:
            host.swarm = info.swarm_manager
        elif swarm and not info.swarm_manager:
            raise InvalidInput(_("The engine at %(url)s is not a Swarm manager.")
                               % {"url": docker_url}, field="swarm")
    with transaction.atomic():
        if Host.objects.filter(name=name).exists():
            raise Conflict(_("The host %(name)s already exists.") % {"name": name},
                           field="name")
        if is_default:
            Host.objects.filter(is_default=True).update(is_default=False)
        host.save()
        audit.record("host.create", host, acting_user=acting_user,
                     after=audit.snapshot(host, HOST_FIELDS))
    return host


def do_update_host(host: Host, *, acting_user: Account | None, address: str | None = None,
                   roles: list[str] | None = None, is_default: bool | None = None,
                   ldap_url: str | None = None) -> Host:
    """Change where the proxy reaches a host, its roles, whether it is the default, or how
    its containers reach the directory. The instances follow at the next reconcile."""
    before = audit.snapshot(host, HOST_FIELDS)
    fields = []
    if address is not None:
        host.address = _clean_address(address)
        fields.append("address")
    if roles is not None:
        host.roles = _clean_roles(roles)
        fields.append("roles")
    if is_default is not None:
        host.is_default = is_default
        fields.append("is_default")
    if ldap_url is not None:
        host.ldap_url = ldap_url.strip()
        fields.append("ldap_url")
    if not fields:
        return host
    with transaction.atomic():
        if is_default:
            Host.objects.filter(is_default=True).exclude(pk=host.pk).update(is_default=False)
        host.save(update_fields=fields)
        audit.record("host.update", host, acting_user=acting_user, before=before,
                     after=audit.snapshot(host, HOST_FIELDS))
        _reconcile_after_commit(Instance.objects.filter(host=host))
    return host


def do_remove_host(host: Host, *, acting_user: Account | None) -> None:
    """Forget a host. Raise Conflict while instances are on it."""
    with transaction.atomic():
        if host.instances.exists():
            raise Conflict(_("The host %(name)s still has instances: remove them first.")
                           % {"name": host.name}, field="host")
        audit.record("host.remove", host, acting_user=acting_user,
                     before=audit.snapshot(host, HOST_FIELDS))
        host.delete()


def do_ensure_default_host(*, acting_user: Account | None) -> Host:
    """Return the default host, registering the embedded one (``services.docker_url``, this
    machine) when there is none. Its engine is not contacted."""
    from django.conf import settings

    default = Host.objects.filter(is_default=True).first()
    if default is not None:
        return default
    name = "local"
    if Host.objects.filter(name=name).exists():
        name = f"local-{random.token_hex(2)}"
    return do_create_host(name, settings.CHATON.services.docker_url, acting_user=acting_user,
                          roles=[HostRole.APPS, HostRole.PROXY], is_default=True, check=False,
                          swarm=False)


def do_import_image(host: Host, archive: BinaryIO, *,
                    acting_user: Account | None) -> list[HostImage]:
    """Load the images of an archive in ``docker save`` format onto a host, without a
    registry, and record each pinned by its id; return the records.

    Instances then name them by ``repository:tag`` or by id
    (:func:`resolve_image`). Loading the same image again changes nothing.
    Raise EngineUnavailable, EngineRefused (not an image archive …).
    """
    engine = engine_for(host)
    try:
        loaded = engine.load_images(archive)
    except DockerError as error:
        raise _engine_error(error, host) from None
    label = acting_user.get_username() if acting_user else "system"
    records = []
    with transaction.atomic():
        for image in loaded:
            record, created = HostImage.objects.get_or_create(
                host=host, reference=image.reference, image_id=image.image_id,
                defaults={"size": image.size, "loaded_at": clock.now(), "loaded_by": label})
            if not created:
                record.loaded_at, record.loaded_by = clock.now(), label
                record.save(update_fields=["loaded_at", "loaded_by"])
            records.append(record)
            audit.record("host.image_import", host, acting_user=acting_user,
                         after={"reference": image.reference, "image_id": image.image_id,
                                "size": image.size})
    return records


# -- instances -----------------------------------------------------------------------------------


def _reconcile_after_commit(instances: Any, *, acting_user: Account | None = None,
                            in_long_lane: bool = False) -> None:
    """Once the transaction commits, reconcile these instances; never raise (the worker
    retries what could not be done).

    With ``in_long_lane`` (the effect of a decision's operation, run by the
    worker's quick lane), record a ``services.apply`` job instead, which the
    long lane runs once the transaction commits.
    """
    primary_keys = [instance.pk for instance in instances]
    if primary_keys and in_long_lane:
        from chaton.core import jobs
        from chaton.services.jobs import JOB

        jobs.do_start_job("services.apply", params={"instances": primary_keys},
                          target=", ".join(instance.slug for instance in instances),
                          lock_key=JOB, acting_user=acting_user)
        return

    def run() -> None:
        try:
            reconcile.reconcile(instances=Instance.objects.filter(pk__in=primary_keys))
        except Exception:  # a change is committed: the worker's next pass carries it out
            logger.exception("services: reconcile after a change failed")

    if primary_keys:
        transaction.on_commit(run)


def _owner_fields(owner: Person | Organization | None) -> dict[str, Any]:
    if owner is None:
        return {"person": None, "organization": None}
    if isinstance(owner, Person):
        return {"person": owner, "organization": None}
    if isinstance(owner, Organization):
        return {"person": None, "organization": owner}
    raise InvalidInput(_("The owner is the collective, a person or an organization."),
                       field="owner")


def _check_login_group(manifest: Manifest, group: Group | None) -> None:
    if group is not None and not manifest.ldap.supported:
        raise InvalidInput(_("%(label)s cannot use the directory's accounts: %(reason)s")
                           % {"label": manifest.label, "reason": manifest.ldap.reason},
                           field="login_group")


def _images(manifest: Manifest, image: str) -> list[str]:
    return [image] + ([manifest.database.image] if manifest.database is not None else [])


class ValidInstance(pydantic.BaseModel):
    """What :func:`validate_create_instance` returns: the values an instance will be kept
    with."""

    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True, frozen=True)

    manifest: Manifest
    domain: str
    settings: dict[str, Any]
    image: str
    slug: str


def validate_create_instance(
    application: str,
    domain: str,
    host: Host,
    *,
    owner: Person | Organization | None = None,
    settings: dict[str, Any] | None = None,
    login_group: Group | None = None,
    slug: str = "",
    port: int | None = None,
    image: str = "",
) -> ValidInstance:
    """The rules of a new instance that the database and the catalogue decide (the engine is
    not asked), shared by :func:`do_create_instance` and the ``service.open`` operation.

    Return the values the instance will be kept with. Raise InvalidInput (a
    bad value), Conflict (a domain, short name or port taken).
    """
    manifest = _manifest(application)
    domain = clean_domain(domain)
    values = clean_settings(manifest, settings or {})
    _check_login_group(manifest, login_group)
    _owner_fields(owner)
    chosen_image = resolve_image(host, manifest, image) if image.strip() else manifest.image
    if HostRole.APPS not in host.roles:
        raise InvalidInput(_("The host %(host)s does not run instances.") % {"host": host.name},
                           field="host")
    if Instance.objects.filter(domain=domain).exists():
        raise Conflict(_("The domain %(domain)s is already taken.") % {"domain": domain},
                       field="domain")
    if slug.strip():
        slug = clean_slug(slug)
        if Instance.objects.filter(slug=slug).exists():
            raise Conflict(_("The short name %(slug)s is already taken.") % {"slug": slug},
                           field="slug")
    if port is not None:
        _check_port_in_database(host, port)
    return ValidInstance(manifest=manifest, domain=domain, settings=values,
                         image=chosen_image, slug=slug.strip())


def do_create_instance(
    application: str,
    domain: str,
    host: Host,
    *,
    acting_user: Account | None,
    owner: Person | Organization | None = None,
    settings: dict[str, Any] | None = None,
    login_group: Group | None = None,
    slug: str = "",
    port: int | None = None,
    image: str = "",
    authorised_by: Authorisation | None = None,
    deploy: bool = True,
    when_engine_answers: bool = False,
) -> Instance:
    """Create an instance of a catalogue application at ``domain`` on ``host``, and deploy it.

    With ``deploy`` false, the deployment is left to the caller (a job that
    calls :func:`deploy_created`) or to the worker's next reconcile. With
    ``when_engine_answers``, a host whose engine does not answer (one ``chaton
    serve`` starts later) does not refuse the instance: it is recorded, its
    port chosen from the database and this machine, and the worker's reconcile
    deploys it once the engine answers (building its image, for an application
    whose image Chaton builds).

    ``settings`` are checked against the manifest's schema and completed with
    defaults; ``slug`` (the short name in container names) is made from the
    domain when not given; ``port`` (published on the host) is chosen from the
    host's range when not given; ``image`` replaces the catalogue's pin.
    Called outside any transaction (a page, the API, the CLI), it returns the
    instance deployed, or raises InvalidInput (a bad value, an image that does
    not exist), Conflict (a domain, short name or port taken),
    EngineUnavailable, EngineRefused; then nothing is left, on the engine or
    in the database. Called inside one (a decision's operation), it records a
    ``services.deploy`` job that the long lane runs once the transaction
    commits (the worker's quick lane never waits for a deployment); if it
    fails, nothing is left either, and the operation ``authorised_by`` is
    marked failed with the reason (never an exception from after the commit).
    Raise DecisionRequired when the operation ``service.open`` is
    extraordinary (by default: for a partner organization) and
    ``authorised_by`` is not the operation of an adopted decision; the engine
    is not contacted then.
    """
    valid = validate_create_instance(application, domain, host, owner=owner, settings=settings,
                                     login_group=login_group, slug=slug, port=port,
                                     image=image)
    manifest, domain, values, chosen_image, slug = (valid.manifest, valid.domain,
                                                    valid.settings, valid.image, valid.slug)
    owner_fields = _owner_fields(owner)
    # After the checks of the database (a proposal for a taken domain would fail anyway),
    # before the engine is asked anything.
    gate.require(OpenServiceParams.of(valid, host, owner=owner, login_group=login_group),
                 authorised_by)
    engine: Engine | None
    try:
        engine = _check_engine(host, _images(manifest, chosen_image), manifest=manifest,
                               acting_user=acting_user)
    except EngineUnavailable:
        if not when_engine_answers:
            raise
        engine = None
    try:
        chosen_port = _choose_port(host, engine, port)
        kept = engine.snapshot().volumes if engine is not None else {}
    except DockerError as error:
        raise _engine_error(error, host) from None
    # The volumes of a removed instance whose data was kept carry its short name: a new
    # instance must not take them over (and would delete them if its deployment failed).
    slug = slug or _derived_slug(domain, set(kept.values()))
    leftovers = sorted(name for name, owner_slug in kept.items() if owner_slug == slug)
    if leftovers:
        raise Conflict(_("The host %(host)s keeps the data of an earlier instance named "
                         "%(slug)s (%(volumes)s): choose another short name, or delete that "
                         "data first.") % {"host": host.name, "slug": slug,
                                           "volumes": ", ".join(leftovers)}, field="slug")
    lengths = secret_lengths(manifest)
    encrypted = {name: secrets.encrypt(random.token_urlsafe(length)[:length])
                 for name, length in lengths.items()}
    instance = Instance(slug=slug, application=manifest.name, domain=domain, host=host,
                        settings=values, login_group=login_group, secrets=encrypted,
                        image_override="" if chosen_image == manifest.image else chosen_image,
                        port=chosen_port, **owner_fields)
    deploy = deploy and engine is not None
    deploy_now = deploy and not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        try:
            with transaction.atomic():
                instance.save()
        except IntegrityError:
            raise Conflict(_("The domain, short name or port was taken meanwhile; try "
                             "again."), field="domain") from None
        audit.record("instance.create", instance, acting_user=acting_user,
                     after=audit.snapshot(instance, INSTANCE_FIELDS))
        primary_key = instance.pk
        if deploy and not deploy_now:
            _deploy_in_long_lane(instance, acting_user=acting_user, authorised_by=authorised_by)
    if deploy_now:
        failure = _deploy_created(primary_key, acting_user)
        if failure is not None:
            raise failure
    instance.refresh_from_db()
    return instance


def _deploy_in_long_lane(instance: Instance, *, acting_user: Account | None,
                         authorised_by: Authorisation | None) -> None:
    """Inside a transaction: record the job that deploys the new ``instance`` in the long
    lane once it commits; its failure fails the operation ``authorised_by``."""
    from chaton.core import jobs
    from chaton.services.jobs import JOB

    jobs.do_start_job("services.deploy",
                      params={"instance": instance.pk,
                              "operation": authorised_by.pk if authorised_by else None},
                      target=instance.slug, lock_key=JOB, acting_user=acting_user)


def _first_error(instance: Instance, plan: Plan,
                 result: Result) -> ChatonError | None:
    """Return the error that kept a new instance from being deployed, if any."""
    host = instance.host
    if host.name in plan.errors:
        return EngineUnavailable(_("The Docker engine of the host %(host)s does not answer: "
                                   "%(error)s.") % {"host": host.name,
                                                    "error": plan.errors[host.name]},
                                 field="host")
    key = f"{host.name}/{instance.slug}"
    if key in plan.errors:
        return InvalidInput(plan.errors[key], field="application")
    for failure in result.failures:
        # Setup commands wait for the application to answer: the worker runs them again.
        if (failure.step.instance == instance.slug and failure.step.action != Action.SETUP
                and isinstance(failure.error, DockerError)):
            return _engine_error(failure.error, host)
    return None


def deploy_created(primary_key: int, *, acting_user: Account | None,
                   operation_id: int | None = None) -> None:
    """Deploy the instance created with ``deploy=False``; on failure remove it, then raise
    the error that kept it from being deployed (see :func:`do_create_instance`).

    With ``operation_id`` (the operation whose effect this deployment is), a
    failure, expected or not, first marks that operation failed with the reason.
    """
    try:
        failure = _deploy_created(primary_key, acting_user)
    except Exception as unexpected:
        logger.exception("services: deploying instance %s failed", primary_key)
        gate.effect_failed(operation_id, str(unexpected) or unexpected.__class__.__name__)
        raise
    if failure is not None:
        gate.effect_failed(operation_id, str(failure))
        raise failure


def _deploy_created(primary_key: int, acting_user: Account | None) -> ChatonError | None:
    """Deploy a new instance; if that fails, remove what was made, and the row, and return
    the error (None: deployed)."""
    instance = Instance.objects.select_related("host").get(pk=primary_key)
    plan, result = reconcile.reconcile(instances=[instance])
    error = _first_error(instance, plan, result)
    if error is None:
        Deployment.objects.create(
            instance=instance, kind=DeploymentKind.CREATE, outcome=Outcome.DONE,
            to_image=instance.image, to_port=instance.port, actor=acting_user,
            actor_label=acting_user.get_username() if acting_user else "system",
            message=_("Deployed on %(host)s, port %(port)d.") % {"host": instance.host.name,
                                                                 "port": instance.port},
            created_at=clock.now(), finished_at=clock.now())
        return None
    logger.warning("services: %s could not be deployed, undoing: %s", instance.slug, error)
    with transaction.atomic():
        audit.record("instance.create_failed", instance, acting_user=acting_user,
                     after={"error": str(error)[:500]})
        instance.state = DesiredState.REMOVED
        instance.remove_data = True
        instance.save(update_fields=["state", "remove_data"])
    reconcile.reconcile(instances=[instance])
    # An engine that went away keeps what it made: the next reconcile removes it as
    # belonging to no instance (its empty volumes are kept and reported).
    Instance.objects.filter(pk=primary_key).delete()
    return error


def do_update_instance_settings(
    instance: Instance,
    settings: dict[str, Any] | None = None,
    *,
    acting_user: Account | None,
    login_group: Group | EllipsisType | None = ...,
) -> Instance:
    """Change some settings of an instance (the others keep their values), or who may log in
    (``login_group``; None: every account). The containers are replaced after the commit.

    Raise InvalidInput for an unknown setting or a bad value, or a login group
    for an application that cannot use the directory.
    """
    manifest = _manifest(instance.application)
    values = (clean_settings(manifest, {**instance.settings, **settings})
              if settings is not None else instance.settings)
    if not isinstance(login_group, EllipsisType):
        _check_login_group(manifest, login_group)
    fields = []
    before = audit.snapshot(instance, INSTANCE_FIELDS)
    if values != instance.settings:
        changed = sorted(name for name in values if values[name] != instance.settings.get(name))
        instance.settings = values
        fields.append("settings")
    else:
        changed = []
    if not isinstance(login_group, EllipsisType) and login_group != instance.login_group:
        instance.login_group = login_group
        fields.append("login_group")
        changed.append("login_group")
    if not fields:
        return instance
    with transaction.atomic():
        instance.save(update_fields=fields)
        audit.record("instance.update", instance, acting_user=acting_user, before=before,
                     after=audit.snapshot(instance, INSTANCE_FIELDS))
        Deployment.objects.create(
            instance=instance, kind=DeploymentKind.SETTINGS, outcome=Outcome.DONE,
            to_image=instance.image, actor=acting_user,
            actor_label=acting_user.get_username() if acting_user else "system",
            message=_("Changed: %(names)s.") % {"names": ", ".join(changed)},
            created_at=clock.now(), finished_at=clock.now())
        _reconcile_after_commit([instance])
    return instance


def do_upgrade_instance(instance: Instance, image: str, *, acting_user: Account | None,
                        port: int | None = None, wait: bool = True) -> Deployment:
    """Move an instance to another image pin, blue/green, and return the attempt.

    The new version starts next to the old one on ``port`` (or a free port of
    the host); it takes the traffic only once it passes the manifest's health
    check, else it is removed and the pin goes back (the attempt's outcome says
    "rolled back"). With ``wait`` this happens before returning; otherwise the
    worker does it. Raise InvalidInput (a bad or missing image, the same
    image), Conflict (an upgrade already under way, a port taken, an instance
    not running), EngineUnavailable.
    """
    manifest = _manifest(instance.application)
    image = resolve_image(instance.host, manifest, image)
    if instance.state != DesiredState.RUNNING:
        raise Conflict(_("Only a running instance can be upgraded."), field="state")
    previous = instance.image
    if image == previous:
        raise InvalidInput(_("The instance already runs %(image)s.") % {"image": image},
                           field="image")
    if instance.deployments.filter(outcome=Outcome.PENDING).exists():
        raise Conflict(_("An upgrade of %(slug)s is already under way.")
                       % {"slug": instance.slug}, field="image")
    host = instance.host
    engine = _check_engine(host, [image], manifest=manifest, acting_user=acting_user)
    try:
        to_port = _choose_port(host, engine, port)
    except DockerError as error:
        raise _engine_error(error, host) from None
    with transaction.atomic():
        try:
            with transaction.atomic():
                deployment = Deployment.objects.create(
                    instance=instance, kind=DeploymentKind.UPGRADE, from_image=previous,
                    to_image=image, from_port=instance.port, to_port=to_port,
                    actor=acting_user,
                    actor_label=acting_user.get_username() if acting_user else "system",
                    created_at=clock.now())
        except IntegrityError:
            raise Conflict(_("An upgrade of %(slug)s is already under way.")
                           % {"slug": instance.slug}, field="image") from None
        instance.image_override = "" if image == manifest.image else image
        instance.save(update_fields=["image_override"])
        audit.record("instance.upgrade", instance, acting_user=acting_user,
                     before={"image": previous, "port": instance.port},
                     after={"image": image, "port": to_port})
        if wait:
            _reconcile_after_commit([instance])
    deployment.refresh_from_db()
    instance.refresh_from_db()
    return deployment


def do_remove_instance(instance: Instance, *, confirm: str, acting_user: Account | None,
                       delete_data: bool = False,
                       authorised_by: Authorisation | None = None) -> None:
    """Remove an instance: its containers and network, and with ``delete_data`` its volumes
    (otherwise kept on the host, and reported). ``confirm`` must repeat its short name.

    The removal runs after the commit (for a decision's operation, as a
    ``services.apply`` job in the long lane); an engine that does not answer leaves
    the instance "being removed" until the worker finishes. Raise InvalidInput
    when ``confirm`` differs, DecisionRequired when the operation
    ``service.close`` is extraordinary (by default it is, once the instance is
    ``services.new_instance_days`` old) and ``authorised_by`` is not the
    operation of an adopted decision.
    """
    if confirm.strip() != instance.slug:
        raise InvalidInput(_("Type the instance's short name, %(slug)s, to confirm.")
                           % {"slug": instance.slug}, field="confirm")
    gate.require(CloseServiceParams(instance=instance.slug, delete_data=delete_data), authorised_by)
    before = audit.snapshot(instance, INSTANCE_FIELDS)
    with transaction.atomic():
        instance.deployments.filter(outcome=Outcome.PENDING).update(
            outcome=Outcome.FAILED, message=_("The instance was removed."),
            finished_at=clock.now())
        instance.state = DesiredState.REMOVED
        instance.remove_data = delete_data
        instance.save(update_fields=["state", "remove_data"])
        audit.record("instance.remove", instance, acting_user=acting_user, before=before,
                     after={**audit.snapshot(instance, INSTANCE_FIELDS),
                            "delete_data": delete_data})
        # A decision's closing is run by the worker's quick lane: its containers are
        # stopped in the long one.
        _reconcile_after_commit([instance], acting_user=acting_user,
                                in_long_lane=authorised_by is not None)


def do_set_instance_state(instance: Instance, state: str, *,
                          acting_user: Account | None) -> Instance:
    """Stop an instance (its containers go, its data stays) or run it again.

    Raise InvalidInput for another state, Conflict for an instance being removed.
    """
    if state not in (DesiredState.RUNNING, DesiredState.STOPPED):
        raise InvalidInput(_("An instance is either running or stopped."), field="state")
    if instance.state == DesiredState.REMOVED:
        raise Conflict(_("The instance is being removed."), field="state")
    if instance.state == state:
        return instance
    before = audit.snapshot(instance, ["state"])
    with transaction.atomic():
        instance.state = state
        instance.save(update_fields=["state"])
        audit.record("instance.state", instance, acting_user=acting_user, before=before,
                     after=audit.snapshot(instance, ["state"]))
        _reconcile_after_commit([instance])
    return instance

