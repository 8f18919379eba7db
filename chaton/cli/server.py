"""``chaton serve``: the web interface and the API under waitress, with the worker, slapd,
a Docker engine where none runs, and Caddy.

Start-up order: the managed slapd (when ``ldap.managed``), a managed dockerd
(when ``services.docker_managed`` says so: see :mod:`chaton.services.engine`),
the managed Caddy (when ``proxy.managed``), static files, the worker thread,
then the HTTP server. On Ctrl-C or SIGTERM everything stops in the reverse
order: the server, the worker (it finishes its current job), Caddy, dockerd,
slapd. A Caddy or a dockerd that does not start is reported on stderr and the
pages are served without it: the services wait for it, the rest of Chaton
does not.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from django.utils.translation import gettext as _

from chaton.cli import runtime
from chaton.cli.runtime import console, setup_django

if TYPE_CHECKING:
    from chaton.adapters.caddy.server import ManagedCaddy
    from chaton.adapters.dockerd import ManagedDockerd
    from chaton.adapters.slapd import ManagedSlapd

#: Seconds to wait for the worker to finish its current job on shutdown.
WORKER_STOP_TIMEOUT = 30


def parse_listen(address: str) -> tuple[str, int]:
    """Given ``HOST:PORT`` (``[::1]:PORT`` for IPv6), return (host, port).

    Raise InvalidInput for anything else.
    """
    from chaton.core.errors import InvalidInput

    host, _colon, port_text = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not host or not 0 < port < 65536:
        raise InvalidInput(_("“%(address)s” is not an address to listen on: expected HOST:PORT, "
                             "for example 127.0.0.1:8000.") % {"address": address},
                           field="listen")
    return host, port


def _raise_interrupt(number: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C."""
    raise KeyboardInterrupt


def start_managed_caddy() -> ManagedCaddy | None:
    """Start the Caddy Chaton manages and return it, or report why it did not start and
    return None.

    A Caddy left behind by a killed run is stopped first (never a stranger's).
    Its failure never stops the web pages: it is printed on stderr, one line.
    """
    from chaton.adapters.caddy import CaddyError
    from chaton.core.runner import CommandError
    from chaton.project.config import ConfigError
    from chaton.services.proxy import managed_caddy

    try:
        caddy = managed_caddy()
        caddy.stop_stale()
        caddy.start()
    except (CaddyError, CommandError, ConfigError, OSError) as error:
        message = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
        typer.echo(_("chaton: warning: the reverse proxy (Caddy) did not start, the pages are "
                     "served without it: %(error)s") % {"error": message}, err=True)
        return None
    if caddy.resume_failure is not None:
        typer.echo(_("chaton: warning: Caddy did not take back its saved configuration; the "
                     "next services reconcile restores its routes."), err=True)
    console().print(_("Proxy: Caddy, admin API on %(url)s.") % {"url": caddy.admin_url},
                    markup=False)
    return caddy


def start_managed_dockerd() -> ManagedDockerd | None:
    """Start the dockerd Chaton runs itself when ``services.docker_managed`` says so, and
    return it; return None when it is not wanted, or report why it did not start.

    A dockerd left behind by a killed run is stopped first (never a stranger's).
    Its failure never stops the web pages: it is printed on stderr, one line.
    """
    from chaton.adapters.dockerd import DockerdError
    from chaton.core.runner import CommandError
    from chaton.project.config import ConfigError
    from chaton.services import engine

    try:
        if not engine.should_manage():
            return None
        dockerd = engine.managed_dockerd()
        dockerd.start()
    except (DockerdError, CommandError, ConfigError, OSError) as error:
        message = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
        typer.echo(_("chaton: warning: the Docker engine did not start, the services wait for "
                     "it: %(error)s") % {"error": message}, err=True)
        return None
    console().print(_("Docker engine: dockerd (pid %(pid)s) on %(url)s.")
                    % {"pid": dockerd.pid, "url": dockerd.url}, markup=False)
    return dockerd


def serve(
    listen: Annotated[str | None, typer.Option(
        "--listen", metavar="HOST:PORT", help="Address to serve on (default: the "
        "configuration's listen, 127.0.0.1:8000).")] = None,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Do not run the worker in this process.")] = False,
    threads: Annotated[int, typer.Option(
        "--threads", min=1, max=64, help="Requests served at once.")] = 8,
) -> None:
    """Serve the web interface and the API (with the worker, the managed slapd and Caddy)."""
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from chaton.core import worker
    from chaton.core.errors import ChatonError

    host, port = parse_listen(listen or settings.CHATON.listen)
    call_command("collectstatic", interactive=False, verbosity=0)
    slapd: ManagedSlapd | None = None
    caddy: ManagedCaddy | None = None
    dockerd: ManagedDockerd | None = None
    stop = threading.Event()
    worker_thread: threading.Thread | None = None
    previous_handlers = {number: signal.getsignal(number)
                         for number in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if settings.CHATON.ldap.managed:
            slapd = runtime.managed_slapd()
            # A slapd left behind by a killed run holds the port: stop it, never a stranger.
            slapd.stop_stale()
            slapd.start()
            console().print(_("Directory: slapd on %(url)s.") % {"url": slapd.url}, markup=False)
        dockerd = start_managed_dockerd()
        if settings.CHATON.proxy.managed:
            caddy = start_managed_caddy()
        from waitress.server import create_server

        from chaton.project.wsgi import application

        try:
            server = create_server(application, host=host, port=port, threads=threads)
        except OSError as error:
            raise ChatonError(_("Cannot listen on %(host)s:%(port)d: %(error)s")
                              % {"host": host, "port": port, "error": error.strerror or error},
                              field="listen") from None
        if not no_worker:
            worker_thread = threading.Thread(target=worker.run_forever, args=(stop,),
                                             name="chaton-worker", daemon=True)
            worker_thread.start()
        shown_host = f"[{host}]" if ":" in host else host
        console().print(_("Serving on http://%(address)s/ — Ctrl-C stops.")
                        % {"address": f"{shown_host}:{port}"}, style="bold", markup=False)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        # Shutdown is bounded (timeouts below): a second signal must not cut it short
        # and leave slapd running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop.set()
        if worker_thread is not None:
            worker_thread.join(timeout=WORKER_STOP_TIMEOUT)
        try:
            if caddy is not None:
                caddy.stop()
        finally:
            try:
                if dockerd is not None:
                    dockerd.stop()
            finally:
                if slapd is not None:
                    slapd.stop()
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
        console().print(_("Stopped."), markup=False)
