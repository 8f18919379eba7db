"""A private OpenLDAP slapd that Chaton runs in a directory it owns.

On one machine Chaton needs no system-wide directory server: :class:`ManagedSlapd`
writes a static ``slapd.conf`` into its directory, creates the base entry on the
first start, runs ``slapd`` on loopback (plus an ``ldapi://`` socket for local
root), and stops it by its own pid. The integration tests start the very same
class, so what they test is what production runs.

Layout of the directory::

    slapd.conf            the configuration (mode 0600: it holds the admin's argon2 hash)
    openssh-lpk.schema    a copy of chaton/adapters/ldap/openssh-lpk.schema
    data/                 the mdb database
    ldapi                 the local socket
    slapd.pid, .args      written by slapd; slapd.pid lets a later process stop it
    slapd.log             slapd's output

Nothing here imports Django.
"""

from __future__ import annotations

import grp
import io
import os
import pwd
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

from chaton.core import runner
from chaton.core.servers import PidFileServer

# slapd and its tools live in /usr/sbin, which is not on every user's PATH.
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SLAPCAT = "/usr/sbin/slapcat"
SLAPTEST = "/usr/sbin/slaptest"
MODULE_DIRECTORY = "/usr/lib/ldap"
SYSTEM_SCHEMA_DIRECTORY = Path("/etc/ldap/schema")
SYSTEM_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
OPENSSH_LPK_SCHEMA = Path(__file__).resolve().parent / "ldap" / "openssh-lpk.schema"
#: Debian's slapd package creates this user; as root we drop to it.
SERVICE_USER = "openldap"
#: The identity slapd gives to uid 0 connecting over ldapi:// (SASL EXTERNAL).
LOCAL_ROOT_DN = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
#: sun_path holds 108 bytes; the URL-decoded socket path has to fit with room to spare.
MAXIMUM_SOCKET_PATH = 100
#: mdb's default map size is 10 MiB, too small for a real directory. The file is
#: sparse: this is a ceiling, not disk space used.
MDB_MAXIMUM_SIZE = 1024 * 1024 * 1024

#: The organizational units under the base DN (Chaton creates them).
ORGANIZATIONAL_UNITS = ("people", "groups", "organizations", "services")
#: Attributes of their own entry that a person may write: Chaton does not manage them.
SELF_WRITABLE_ATTRIBUTES = ("jpegPhoto", "preferredLanguage", "telephoneNumber", "mobile",
                            "labeledURI")
#: What a service may read of a person: enough to log them in and show them, never their SSH
#: keys nor their password.
SERVICE_READABLE_ATTRIBUTES = (
    "entry", "objectClass", "uid", "cn", "sn", "givenName", "displayName", "mail", "o",
    "uidNumber", "gidNumber", "homeDirectory", "loginShell", "shadowExpire", "memberOf",
)


class SlapdError(RuntimeError):
    """slapd could not be configured, started or stopped."""


class ManagedSlapd(PidFileServer):
    """An OpenLDAP slapd that runs from, and keeps all its state in, one directory.

    As root, slapd drops to the ``openldap`` user and the directory is given to
    that user; otherwise it runs as the invoking user.
    """

    program = "slapd"
    error = SlapdError

    def __init__(self, directory: Path, *, port: int, base_dn: str, admin_password: str) -> None:
        """Given a directory, a loopback port, the base DN and the admin's password, prepare.

        Nothing is written or started yet. Raise SlapdError when the base DN or
        the directory cannot be used (a quote in the DN, a socket path too long).
        """
        # Absolute, because slapd.conf's path on slapd's command line is how
        # stop_stale() recognises a slapd started from this directory.
        self.directory = Path(directory).absolute()
        self.port = port
        self.base_dn = base_dn
        self.admin_password = admin_password
        runner.register_secret(admin_password)
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        if any(character in base_dn for character in '"\n\r') or not base_dn.strip():
            raise SlapdError(f"base DN {base_dn!r} cannot be written into slapd.conf")
        if any(character in str(self.directory) for character in '"\n\r'):
            raise SlapdError(f"{self.directory}: a quote or newline in the path breaks slapd.conf")
        if len(os.fsencode(self.socket_path)) >= MAXIMUM_SOCKET_PATH:
            raise SlapdError(
                f"{self.socket_path}: longer than {MAXIMUM_SOCKET_PATH} bytes, too long for a "
                "unix socket; choose a shorter directory"
            )

    # -- paths and addresses -------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "slapd.conf"

    @property
    def schema_path(self) -> Path:
        return self.directory / "openssh-lpk.schema"

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def socket_path(self) -> Path:
        return self.directory / "ldapi"

    @property
    def pid_path(self) -> Path:
        return self.directory / "slapd.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "slapd.log"

    @property
    def url(self) -> str:
        """The LDAP URL clients use: plain LDAP on loopback only."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldapi_url(self) -> str:
        """The local-socket URL; local root binds there with SASL EXTERNAL."""
        return "ldapi://" + urllib.parse.quote(str(self.socket_path), safe="")

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def services_dn(self) -> str:
        """Where the services' read-only accounts live (one per instance)."""
        return f"ou=services,{self.base_dn}"

    # -- configuration -------------------------------------------------------

    @staticmethod
    def _drops_privileges() -> bool:
        """Return whether slapd must switch to the service user (we run as root)."""
        return os.geteuid() == 0

    def _service_ids(self) -> tuple[int, int]:
        """Return the uid and gid of the openldap user. Raise SlapdError if it does not exist."""
        try:
            return pwd.getpwnam(SERVICE_USER).pw_uid, grp.getgrnam(SERVICE_USER).gr_gid
        except KeyError:
            raise SlapdError(
                f"running as root, but there is no {SERVICE_USER!r} user to run slapd as; "
                "install Debian's slapd package (scripts/install-debian.sh)"
            ) from None

    def _root_password_hash(self) -> str:
        """Return the {ARGON2} hash for rootpw, reusing the one in slapd.conf if it still matches.

        Reusing it keeps slapd.conf byte-identical across restarts, so a rewrite
        means a real change.
        """
        import argon2

        hasher = argon2.PasswordHasher()
        try:
            current = self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        found = re.search(r'^rootpw\s+"\{ARGON2\}([^"]+)"', current, flags=re.MULTILINE)
        if found:
            try:
                hasher.verify(found[1], self.admin_password)
                return "{ARGON2}" + found[1]
            except argon2.exceptions.VerificationError:
                pass  # the admin password changed: hash the new one
            except argon2.exceptions.InvalidHashError:
                pass  # a hand-edited or damaged line: replace it
        return "{ARGON2}" + hasher.hash(self.admin_password)

    def _render_config(self, root_password_hash: str) -> str:
        """Given the rootpw hash, return the text of slapd.conf."""
        includes = "\n".join(
            f'include "{SYSTEM_SCHEMA_DIRECTORY / name}.schema"' for name in SYSTEM_SCHEMAS
        )
        return f"""\
# Written by Chaton (chaton.adapters.slapd) at every start: edits here are lost.
{includes}
include "{self.schema_path}"

modulepath {MODULE_DIRECTORY}
moduleload back_mdb
moduleload argon2
moduleload memberof
moduleload refint

pidfile "{self.pid_path}"
argsfile "{self.directory / 'slapd.args'}"

# Passwords set with the password-modify operation get the same hash as Django's.
password-hash {{ARGON2}}

database mdb
maxsize {MDB_MAXIMUM_SIZE}
suffix "{self.base_dn}"
rootdn "{self.admin_dn}"
rootpw "{root_password_hash}"
directory "{self.data_directory}"

index objectClass eq
index uid eq
index cn eq
index member eq
index memberOf eq
index mail eq

# Reconcile reads the whole directory, a service lists its people: no size limit for them.
limits dn.exact="{self.admin_dn}" size=unlimited time=unlimited
limits dn.exact="{LOCAL_ROOT_DN}" size=unlimited time=unlimited
limits dn.onelevel="{self.services_dn}" size=unlimited

{self._render_access()}
# Each person lists the groups that name them (memberOf, an operational attribute), so that a
# service filters its logins on (memberOf=<its login group>). refint takes a deleted or renamed
# account out of the groups that named it, and memberof-refint its memberOf values likewise.
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay refint
refint_attributes member
# groupOfNames needs a member: what is left in a group whose last member went away, until the
# reconciler writes the group's own DN there (an empty group names itself).
refint_nothing "{self.admin_dn}"
"""

    def _render_access(self) -> str:
        """Return the access rules of slapd.conf: who reads and writes what.

        The first rule that matches an entry and attribute decides, and within it the first
        ``by`` clause that matches the identity; anything unlisted is refused. The admin
        (rootdn, Chaton's own bind) is not subject to them: it reads and writes everything.
        """
        base = self.base_dn
        local_root = f'dn.exact="{LOCAL_ROOT_DN}"'
        services = f'dn.onelevel="{self.services_dn}"'
        people = f'dn.onelevel="ou=people,{base}"'
        structure = "\n".join(
            f'access to dn.base="{dn}"\n    by {local_root} read\n    by users read\n'
            "    by * none\n"
            for dn in (base, *(f"ou={name},{base}" for name in ORGANIZATIONAL_UNITS)))
        return f"""\
# Passwords: checked at bind, never read by anyone, written only by Chaton (through its admin
# bind), which checks them against its password policy first: not even by their owner, since
# slapd cannot apply that policy (ldappasswd as oneself is refused).
access to attrs=userPassword
    by anonymous auth
    by * none

# The tree itself (the base and the organizational units) names nobody.
{structure}
# Service accounts (one per instance, read-only): each reads its own entry, nothing more.
access to dn.subtree="{self.services_dn}"
    by self read
    by {local_root} read
    by * none

# Attributes of a person's entry that Chaton does not manage: the person may change them.
access to {people} attrs={",".join(SELF_WRITABLE_ATTRIBUTES)}
    by self write
    by {local_root} read
    by {services} read
    by * none

# What a service needs of a person to log them in; the person reads them too. Changed only
# through Chaton: the reconciler writes them from its database (uidNumber, loginShell or
# shadowExpire written by their owner would grant rights).
access to {people} attrs={",".join(SERVICE_READABLE_ATTRIBUTES)}
    by self read
    by {local_root} read
    by {services} read
    by * none

# The rest of a person's entry (SSH keys …): the person and local root (chaton ssh-keys).
access to {people}
    by self read
    by {local_root} read
    by * none

# Groups and organizations: services (the groups' members are their login lists) and local
# root. A person sees their own groups in their memberOf, not the other members.
access to *
    by {local_root} read
    by {services} read
    by * none
"""

    def _give_to_service_user(self) -> None:
        """Give the whole directory to the openldap user: slapd uses it after dropping root."""
        uid, gid = self._service_ids()
        for root, directories, files in os.walk(self.directory):
            os.chown(root, uid, gid, follow_symlinks=False)
            for name in (*directories, *files):
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)

    def _check_service_user_can_reach(self) -> None:
        """Raise SlapdError unless the openldap user can read slapd.conf and write the data.

        A directory under a private parent (say /root or pytest's 0700 base) is
        out of its reach even when chowned; ask the kernel rather than guess.
        """
        completed = runner.run(
            ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups",
             "test", "-r", str(self.config_path), "-a", "-w", str(self.data_directory)],
            check=False, timeout=10,
        )
        if completed.returncode != 0:
            raise SlapdError(
                f"the {SERVICE_USER} user cannot reach {self.directory}: every parent directory "
                "must be searchable by it (chmod o+x), or run Chaton as a non-root user"
            )

    def write_config(self) -> None:
        """Write slapd.conf and the openssh-lpk schema into the directory, then check them.

        Raise SlapdError when slaptest rejects the configuration.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_directory.mkdir(exist_ok=True, mode=0o700)
        # A copy beside slapd.conf: slapd reads its configuration after dropping
        # to openldap, who may not be able to read the installed package.
        self.schema_path.write_text(OPENSSH_LPK_SCHEMA.read_text(encoding="utf-8"),
                                    encoding="utf-8")
        text = self._render_config(self._root_password_hash())
        try:
            unchanged = self.config_path.read_text(encoding="utf-8") == text
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            # Written aside then renamed: a crash never leaves half a slapd.conf,
            # and 0600 from the start because it holds the admin's hash.
            temporary = self.config_path.with_name("slapd.conf.new")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, self.config_path)
        try:
            runner.run([SLAPTEST, "-u", "-f", str(self.config_path)], timeout=30)
        except runner.CommandError as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise SlapdError(f"slaptest rejects {self.config_path}: {detail}") from None
        if self._drops_privileges():
            self._give_to_service_user()

    def _base_entry_ldif(self) -> str:
        """Return the LDIF of the base entry. Raise SlapdError for a base DN it cannot build."""
        import ldap.dn
        import ldif

        try:
            first_rdn = ldap.dn.str2dn(self.base_dn)[0]
        except (ldap.DECODING_ERROR, IndexError):
            raise SlapdError(f"base DN {self.base_dn!r} is not a DN") from None
        if len(first_rdn) != 1:
            raise SlapdError(f"base DN {self.base_dn!r}: a multi-valued first RDN is not supported")
        attribute, value, _ = first_rdn[0]
        attribute = attribute.lower()
        encoded = value.encode("utf-8")
        if attribute == "dc":
            entry = {"objectClass": [b"top", b"dcObject", b"organization"],
                     "dc": [encoded], "o": [encoded]}
        elif attribute == "o":
            entry = {"objectClass": [b"top", b"organization"], "o": [encoded]}
        else:
            raise SlapdError(f"base DN {self.base_dn!r} must start with dc= or o=")
        output = io.StringIO()
        ldif.LDIFWriter(output).unparse(self.base_dn, entry)
        return output.getvalue()

    def _create_base_entry_if_missing(self) -> None:
        """Add the base entry with slapadd when the (stopped) database does not hold it yet.

        Raise SlapdError when slapcat or slapadd fail.
        """
        base_url = "ldap:///" + urllib.parse.quote(self.base_dn, safe="=,") + "??base"
        try:
            # slapcat cannot open a database that was never created: no data.mdb
            # means an empty directory, and slapadd creates it.
            if (self.data_directory / "data.mdb").exists():
                found = runner.run(
                    [SLAPCAT, "-f", str(self.config_path), "-b", self.base_dn, "-H", base_url],
                    timeout=60,
                )
                if found.stdout.strip():
                    return
            runner.run([SLAPADD, "-f", str(self.config_path), "-b", self.base_dn],
                       input=self._base_entry_ldif(), timeout=60)
        except runner.CommandError as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise SlapdError(f"cannot create the base entry {self.base_dn}: {detail}") from None

    # -- lifecycle -----------------------------------------------------------

    @staticmethod
    def _answers(url: str) -> bool:
        """Given an LDAP URL, return whether an anonymous bind there succeeds right now."""
        import ldap

        connection = ldap.initialize(url)
        # Bounded: during start-up the port may accept a connection that nobody answers yet.
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 1.0)
        connection.set_option(ldap.OPT_TIMEOUT, 1.0)
        try:
            connection.simple_bind_s("", "")
            return True
        except ldap.LDAPError:
            return False
        finally:
            try:
                connection.unbind_s()
            except ldap.LDAPError:
                pass  # the connection never opened: nothing to close

    def start(self, timeout: float = 10) -> None:
        """Write the configuration, create the base entry if needed, start slapd and wait for it.

        A slapd left running from this directory by an earlier process is stopped
        first (see stop_stale). Return once an anonymous bind on the port works.
        Raise SlapdError, with the tail of slapd's log, if it exits or does not
        answer within ``timeout`` seconds.
        """
        if self.running:
            return
        self.stop_stale(timeout=timeout)
        self._check_port_is_free()
        self.write_config()
        self._create_base_entry_if_missing()
        command = [SLAPD, "-d", "none", "-f", str(self.config_path), "-h",
                   f"{self.url} {self.ldapi_url}"]
        if self._drops_privileges():
            # slapadd ran as root and created files root owns: hand everything over again.
            self._give_to_service_user()
            self._check_service_user_can_reach()
            command += ["-u", SERVICE_USER, "-g", SERVICE_USER]
        # No slapd is using this directory any more (stop_stale ran): a socket
        # left behind by a killed one would only make the bind fail.
        self.socket_path.unlink(missing_ok=True)
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        try:
            self._process = runner.start(command, log_path=str(self.log_path))
        except runner.CommandNotFound:
            raise SlapdError(f"{SLAPD} is not installed (Debian package slapd)") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            returncode = self._process.poll()
            if returncode is not None:
                self._process = None
                raise SlapdError(
                    f"slapd exited with code {returncode} during start-up; its log ends "
                    f"with:\n{self._log_tail()}"
                )
            # The TCP port alone could be answered by another server; the ldapi
            # socket lives in our directory, and slapd opens every listener
            # before serving any, so both answering means this slapd is up.
            if self._answers(self.url) and self._answers(self.ldapi_url):
                try:
                    self._fill_member_of_once()
                except SlapdError:
                    self.stop(timeout=5)
                    raise
                return
            time.sleep(0.05)
        self.stop(timeout=5)
        raise SlapdError(
            f"slapd did not answer on {self.url} within {timeout:g} s:\n{self._log_tail()}"
        )

    @property
    def member_of_marker_path(self) -> Path:
        """Present once every group was written with the memberof overlay in place."""
        return self.directory / "memberof-filled"

    def _fill_member_of_once(self) -> None:
        """Give every group's members their ``memberOf``, once per directory.

        The memberof overlay acts only on writes: a directory filled before it
        was configured has groups whose members carry no ``memberOf``, and a
        service filtering on it would let nobody in. Each group's ``member`` is
        deleted and added back in one modify (the schema is checked at its end),
        which the overlay turns into ``memberOf`` values. Raise SlapdError when
        the directory refuses; the next start tries again.
        """
        import ldap

        if self.member_of_marker_path.exists():
            return
        connection = ldap.initialize(self.url)
        connection.set_option(ldap.OPT_NETWORK_TIMEOUT, 10.0)
        try:
            connection.simple_bind_s(self.admin_dn, self.admin_password)
            groups = connection.search_s(self.base_dn, ldap.SCOPE_SUBTREE,
                                         "(objectClass=groupOfNames)", ["member"])
            for dn, attributes in groups:
                members = attributes.get("member", []) if dn else []
                if members:
                    connection.modify_s(dn, [(ldap.MOD_DELETE, "member", None),
                                             (ldap.MOD_ADD, "member", members)])
        except ldap.NO_SUCH_OBJECT:
            pass  # no base entry yet: no group either
        except ldap.LDAPError as error:
            raise SlapdError(f"cannot fill memberOf in {self.base_dn}: {error}") from None
        finally:
            try:
                connection.unbind_s()
            except ldap.LDAPError:
                pass  # the connection never opened: nothing to close
        self.member_of_marker_path.touch()

    def _started_here(self, arguments: list[str]) -> bool:
        # An exact argument, and slapd as the program: an editor open on
        # slapd.conf must never be killed.
        return (os.path.basename(arguments[0]) == "slapd"
                and str(self.config_path) in arguments[1:])
