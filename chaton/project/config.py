"""Chaton's configuration: a ``chaton.toml`` file, then ``CHATON_*`` environment variables.

This module imports nothing from Django, so that small programs such as the
``AuthorizedKeysCommand`` (``chaton ssh-keys``) can read the configuration
without paying for Django's start-up.

Every key has an embedded default, so Chaton runs with no file at all. The
file has one table per section::

    data_dir = "/var/lib/chaton"
    database_url = "postgres://chaton@127.0.0.1/chaton"

    [ldap]
    url = "ldap://127.0.0.1:3890"
    base_dn = "dc=example,dc=org"

An environment variable overrides a key: ``CHATON_DATA_DIR``,
``CHATON_DATABASE_URL``, ``CHATON_LDAP_URL``, ``CHATON_DIRECTORY_VOTING_DELAY_DAYS`` …
(``CHATON_`` + section + ``_`` + key, upper case).
"""

from __future__ import annotations

import os
import tomllib
from datetime import tzinfo
from pathlib import Path
from typing import Any, ClassVar


class ConfigError(ValueError):
    """The configuration file or an environment variable holds an invalid value."""


class Section:
    """A table of the configuration: class attributes are the keys and their defaults.

    Not a dataclass on purpose: ``dataclasses`` imports ``inspect``, a tenth of
    the start-up of ``chaton ssh-keys``, which sshd runs at every login. Each
    instance gets its own copy of list defaults and of nested sections.
    """

    #: The keys, in order; filled in for each subclass.
    keys: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls) -> None:
        # Not inspect.get_annotations: importing inspect is the cost this class avoids.
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        cls.keys = tuple(name for name in own if not name.startswith("_") and name != "keys")

    def __init__(self) -> None:
        for name in self.keys:
            default = getattr(type(self), name)
            if isinstance(default, Section):
                default = type(default)()
            elif isinstance(default, list):
                default = list(default)
            setattr(self, name, default)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={self._shown(k)}' for k in self.keys)})"

    def _shown(self, key: str) -> str:
        """Return the value of ``key`` as a repr shows it: a password or a webhook URL masked."""
        value = getattr(self, key)
        if value and (key.endswith("password") or key in ("webhook_url", "metrics_token")):
            return "'••••'"
        return repr(value)


class LdapConfig(Section):
    #: When true, Chaton starts and stops its own slapd in ``data_dir/slapd``.
    managed: bool = True
    url: str = "ldap://127.0.0.1:3890"
    base_dn: str = "dc=chaton,dc=test"
    #: Empty for a managed slapd: Chaton generates the admin password itself.
    bind_dn: str = ""
    bind_password: str = ""
    #: A file holding the bind password (read at each use, so it can be rotated and kept
    #: out of chaton.toml); it wins over ``bind_password``.
    bind_password_file: str = ""
    #: Seconds before a call to the directory gives up.
    timeout: float = 5.0

    def resolved_bind_password(self) -> str:
        """Return the bind password: the first line of ``bind_password_file`` if set, else
        ``bind_password``. Raise ConfigError when the file cannot be read."""
        if not self.bind_password_file:
            return self.bind_password
        try:
            text = Path(self.bind_password_file).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"ldap.bind_password_file: {error}") from None
        lines = text.splitlines()
        return lines[0] if lines else ""


class DirectoryConfig(Section):
    #: A natural person votes once their membership is this many days old.
    voting_delay_days: int = 10
    #: Membership kinds whose members vote.
    voting_kinds: list[str] = ["regular"]  # copied per instance by Section
    #: An expiry notice goes by mail this many days before an account or access expires.
    expiry_notice_days: int = 14
    #: The worker reconciles the whole directory at this period, in seconds.
    reconcile_interval_seconds: int = 300
    #: Members of this group may log in over SSH with their keys (``chaton ssh-keys``).
    ssh_group: str = "tech"
    #: uidNumber given to the first account; the next ones follow.
    first_uid_number: int = 10000
    #: gidNumber of every account's primary group.
    users_gid_number: int = 10000


class MailConfig(Section):
    from_address: str = "chaton@localhost"
    #: The mail server; empty: mails land as files in ``data_dir/outbox``.
    smtp_host: str = ""
    smtp_port: int = 25
    #: "none", "starttls" (upgrade after connecting, port 587) or "tls" (implicit, port 465).
    smtp_security: str = "none"
    #: A login, when the server asks for one.
    smtp_username: str = ""
    smtp_password: str = ""
    #: Seconds before the mail server is given up on (the notification is retried later).
    timeout_seconds: int = 10

    def resolved_security(self) -> str:
        """Return ``smtp_security``. Raise ConfigError unless it is none, starttls or tls."""
        if self.smtp_security not in ("none", "starttls", "tls"):
            raise ConfigError(f"mail.smtp_security: expected none, starttls or tls, "
                              f"got {self.smtp_security!r}")
        return self.smtp_security


class GovernanceConfig(Section):
    """Where decisions are announced; the voting rules themselves are a policy in the database."""

    #: A Mattermost-compatible incoming webhook for the team channel; empty: none.
    webhook_url: str = ""
    #: Announcements go to this address (a members' list); empty: to each voter.
    announce_address: str = ""


class BackupsConfig(Section):
    #: The restic program.
    restic: str = "restic"
    #: The embedded default repository; empty: ``data_dir/backups/repository``.
    default_repository: str = ""
    #: The host name recorded in snapshots (retention groups by it); empty: this machine's.
    host: str = ""
    #: Where drills and restores unpack; empty: the system's temporary directory. The
    #: postgres and openldap users must reach it (every parent directory searchable).
    scratch_dir: str = ""
    #: A restic command running longer than this many seconds is killed.
    timeout_seconds: int = 24 * 60 * 60
    #: A backup that prints nothing, not even its progress, for this many seconds is
    #: stopped and fails (restic 0.14 can deadlock on a full disk instead of exiting).
    stall_seconds: int = 600
    #: A run waits this many seconds for another one holding its repository exclusively
    #: (a prune, a check) before it gives up.
    lock_wait_seconds: int = 300
    #: The worker retries a failed backup after this many minutes (or the plan's interval
    #: when shorter).
    retry_minutes: int = 60


class MailIdentityConfig(Section):
    """DKIM rotation and the signer (``[mail_identity]``); the domains are in the database."""

    #: A new key signs no sooner than this many hours after it was first advertised.
    min_advertise_hours: float = 4.0
    #: A key stays advertised this many hours after it stops signing (mail in transit).
    transit_hours: float = 88.0
    #: A new domain's keys rotate every this many days.
    rotation_days: int = 30
    #: Selectors: a fixed cycle ("a,b,c"), or one date template ("k%Y%m%d": strftime on the
    #: day the key is made). Letters, digits and hyphens once expanded.
    selectors: list[str] = ["k%Y%m%d"]  # copied per instance by Section
    #: Also make an Ed25519 key beside each RSA one (dual signing).
    ed25519: bool = False
    #: OpenDKIM's configuration folder (KeyTable, SigningTable, keys); empty: no signer.
    signer_config_dir: str = ""
    #: The command that makes the signer reload its tables; empty: none.
    signer_reload_command: str = ""
    #: Seconds before a DNS server is given up on.
    dns_timeout_seconds: float = 5.0


class ServicesConfig(Section):
    #: The embedded default host's Docker endpoint.
    docker_url: str = "unix:///var/run/docker.sock"
    #: Whether ``chaton serve`` runs a dockerd of its own on ``docker_url``'s socket:
    #: "auto" when no engine answers there and no systemd runs (which would run Docker's
    #: own service), "yes" always, "no" never.
    docker_managed: str = "auto"
    #: A managed dockerd's images, containers and volumes; empty: ``data_dir/docker/data``
    #: ("/var/lib/docker" shares the system's).
    docker_data_root: str = ""
    #: A managed dockerd's runtime state (short: sockets go under it); empty:
    #: ``data_dir/docker/exec`` ("/var/run/docker" is the system's).
    docker_exec_root: str = ""
    #: More arguments for a managed dockerd (``--iptables=false`` where the machine's
    #: firewall is not Docker's to change …).
    docker_arguments: list[str] = []  # copied per instance by Section
    #: The worker reconciles every instance at this period, in seconds.
    reconcile_interval_seconds: int = 300
    #: Closing an instance opened less than this many days ago (it holds no one's data yet)
    #: is an ordinary action, unless a partner organization owns it; 0: always a decision.
    new_instance_days: int = 7
    #: Seconds an upgrade's new version must stay healthy (Docker's own health check when
    #: its image declares one, and the manifest's HTTP check) before it takes the traffic
    #: and the old version is removed.
    upgrade_stability_seconds: float = 30.0


class ProxyConfig(Section):
    #: When true, Chaton starts and stops its own Caddy in ``data_dir/caddy``.
    managed: bool = True
    #: Caddy's admin API.
    admin_url: str = "http://127.0.0.1:2019"
    #: The address Caddy listens on for HTTP and HTTPS; empty: every interface.
    listen_host: str = "127.0.0.1"
    http_port: int = 80
    https_port: int = 443
    #: The ACME directory certificates come from (Let's Encrypt by default).
    acme_ca: str = "https://acme-v02.api.letsencrypt.org/directory"
    #: A PEM file of the root that signs the ACME server's own HTTPS (a test CA such as pebble).
    acme_ca_root: str = ""
    acme_email: str = ""
    #: Where certificates come from: "acme" (the ACME server above) or "internal" (Caddy's
    #: own certificate authority, for a LAN or an intranet; its root is offered on
    #: /services/ for people to install).
    tls: str = "acme"
    #: Caddy's log (JSON lines), read for the reason a certificate failed; empty: the
    #: managed Caddy's ``data_dir/caddy/caddy.log``.
    log_file: str = ""
    #: ``chaton service instance add`` waits this many seconds for a new domain's
    #: certificate before it says whether https:// works.
    certificate_wait_seconds: int = 30


class MonitoringConfig(Section):
    """What monitoring keeps, when it opens and resolves incidents, whom it alerts."""

    #: Hours raw probe results are kept before only the roll-ups remain.
    raw_hours: int = 48
    #: Consecutive failures that open an incident.
    failures_to_open: int = 3
    #: Consecutive successes that resolve it.
    successes_to_resolve: int = 2
    #: The directory group whose members get alert mails (the tech team); empty: no mail.
    alert_group: str = "tech"
    #: Hours between reminders of an open incident nobody acknowledged; 0: none.
    reminder_hours: int = 4
    #: The configuration section whose ``webhook_url`` gets alert posts (the team channel);
    #: empty: no post.
    webhook_channel: str = "governance"
    #: A bearer token that lets a scraper read /metrics; empty: none.
    metrics_token: str = ""
    #: Addresses (or networks) allowed to read /metrics without the token.
    metrics_allow: list[str] = []  # copied per instance by Section
    #: A certificate expiring within this many days puts its probe in "warning".
    cert_warning_days: int = 14
    #: A CA bundle (PEM) the probes of Chaton's own domains trust; empty: the system's.
    ca_file: str = ""
    #: Probes run at once, at most.
    concurrency: int = 200


class Config(Section):
    data_dir: Path = Path("var")
    database_url: str = ""
    listen: str = "127.0.0.1:8000"
    #: The address people reach Chaton at, for links in mails; empty: ``http://`` + listen.
    public_url: str = ""
    debug: bool = False
    collective_name: str = "Chaton"
    language: str = "fr"
    #: The collective's time zone (IANA name): its days start at midnight there, accounts and
    #: accesses end at such a midnight, and ``shadowExpire`` counts such days.
    time_zone: str = "Europe/Paris"
    #: Reverse proxies (e.g. Caddy on 127.0.0.1) whose X-Forwarded-For names the real client.
    trusted_proxies: list[str] = []  # copied per instance by Section
    ldap: LdapConfig = LdapConfig()
    directory: DirectoryConfig = DirectoryConfig()
    mail: MailConfig = MailConfig()
    governance: GovernanceConfig = GovernanceConfig()
    backups: BackupsConfig = BackupsConfig()
    services: ServicesConfig = ServicesConfig()
    mail_identity: MailIdentityConfig = MailIdentityConfig()
    proxy: ProxyConfig = ProxyConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    # Not keys (a leading underscore): set by load().
    _file: Path | None = None
    _data_dir_from_working_directory: bool = False

    @property
    def file(self) -> Path | None:
        """The configuration file that was read (absolute), or None when there was none."""
        return self._file

    @property
    def data_dir_from_working_directory(self) -> bool:
        """Whether ``data_dir`` was resolved against the working directory of this process
        (no file, or a relative ``CHATON_DATA_DIR``) rather than given absolute or read
        relative to the configuration file. A process started by sshd runs in ``/``: there,
        such a data directory is ``/var``, the wrong one."""
        return self._data_dir_from_working_directory

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.listen}").rstrip("/")

    def resolved_time_zone(self) -> tzinfo:
        """Return ``time_zone`` as a tzinfo. Raise ConfigError for a zone the system lacks."""
        import zoneinfo

        try:
            return zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"time_zone: unknown time zone {self.time_zone!r}") from None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'chaton.sqlite3').resolve()}"


def _coerce(value: str, example: Any, name: str) -> Any:
    """Given an environment string and the field's default, return it in the field's type."""
    if isinstance(example, bool):
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if isinstance(example, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if isinstance(example, float):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(example, list):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(example, Path):
        return Path(value)
    return value


def _checked(raw: Any, example: Any, name: str) -> Any:
    """Given a TOML value and the key's default, return it, or raise ConfigError on a wrong type."""
    if isinstance(example, Path):
        example = ""
    expected = float if isinstance(example, float) else type(example)
    accepted = (int, float) if expected is float else (expected,)
    if isinstance(raw, bool) != isinstance(example, bool) or not isinstance(raw, accepted):
        raise ConfigError(f"{name}: expected {expected.__name__}, got {raw!r}")
    if isinstance(raw, list) and not all(isinstance(item, str) for item in raw):
        raise ConfigError(f"{name}: expected a list of strings, got {raw!r}")
    return raw


def _fill(target: Section, values: dict[str, Any], prefix: str) -> None:
    """Set ``target``'s keys from a TOML table, then from ``CHATON_*`` variables."""
    for name in target.keys:
        current = getattr(target, name)
        env_name = f"{prefix}{name}".upper()
        if isinstance(current, Section):
            table = values.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"[{name}] must be a table")
            _fill(current, table, f"{env_name}_")
            continue
        if name in values:
            raw = _checked(values[name], current, f"{prefix.lower()[7:].replace('_', '.')}{name}")
            setattr(target, name, Path(raw) if isinstance(current, Path) else raw)
        if env_name in os.environ:
            setattr(target, name, _coerce(os.environ[env_name], current, env_name))
    unknown = set(values) - set(target.keys)
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Given an optional file path, return the configuration.

    The file is ``path``, else ``$CHATON_CONFIG``, else ``./chaton.toml`` when it
    exists. A relative ``data_dir`` or ``ldap.bind_password_file`` written in the
    file, and the default ``data_dir`` (``var``) when there is a file, are read
    from the file's folder. Raise ConfigError for an unreadable file or an
    invalid value.
    """
    chosen = path or os.environ.get("CHATON_CONFIG") or "chaton.toml"
    values: dict[str, Any] = {}
    file = Path(chosen)
    if file.exists():
        try:
            values = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{file}: {error}") from None
    elif path or os.environ.get("CHATON_CONFIG"):
        raise ConfigError(f"{file}: no such configuration file")
    config = Config()
    _fill(config, values, "CHATON_")
    # Relative paths in the file are read from the file's folder, not from wherever the
    # process happens to run (sshd starts ``chaton ssh-keys`` in /); the embedded default
    # ``var`` too, when there is a file. Only a relative CHATON_DATA_DIR, or no file at all,
    # leaves the working directory in charge.
    config._file = file.resolve() if file.is_file() else None
    base = config._file.parent if config._file is not None else None
    from_environment = "CHATON_DATA_DIR" in os.environ
    if not config.data_dir.is_absolute():
        if base is None or from_environment:
            config._data_dir_from_working_directory = True
        else:
            config.data_dir = base / config.data_dir
    config.data_dir = config.data_dir.resolve()
    password_file = config.ldap.bind_password_file
    if (password_file and not Path(password_file).is_absolute() and base is not None
            and "CHATON_LDAP_BIND_PASSWORD_FILE" not in os.environ):
        config.ldap.bind_password_file = str(base / password_file)
    return config
