"""The real client of Caddy's admin API: :class:`CaddyAdmin`."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaton.adapters.caddy import (
    INTERNAL_CA,
    LOAD_TIMEOUT,
    READ_TIMEOUT,
    SERVER_NAME,
    CaddyError,
    ProxyRefused,
    ProxyUnreachable,
    _get,
    _listen_address,
    certificate_failure_in_log,
    parse_admin_url,
)


class CaddyAdmin:
    """A client of one Caddy's admin API (plain HTTP, as Caddy serves it on loopback)."""

    def __init__(self, admin_url: str, *, timeout: float = READ_TIMEOUT,
                 load_timeout: float = LOAD_TIMEOUT, log_path: Path | None = None) -> None:
        """Given the admin API's URL (and the file Caddy logs to, when known), prepare;
        nothing is sent yet. Raise ProxyInvalid."""
        self.admin_url = admin_url.rstrip("/")
        self.host, self.port = parse_admin_url(admin_url)
        self.timeout = timeout
        self.load_timeout = load_timeout
        self.log_path = log_path

    @property
    def listen(self) -> str:
        """The admin API's address as Caddy's ``admin.listen`` spells it."""
        return _listen_address(self.host, self.port)

    def _request(self, method: str, path: str, body: bytes | None,
                 timeout: float) -> tuple[int, bytes]:
        """Send one request; return (status, body). Raise ProxyUnreachable."""
        # http.client, not urllib: no proxy from the environment may sit between Chaton and
        # a loopback admin API.
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            raise ProxyUnreachable(
                f"Caddy's admin API at {self.admin_url} does not answer: "
                f"{getattr(error, 'strerror', None) or error or type(error).__name__}"
            ) from None
        finally:
            connection.close()

    @staticmethod
    def _reason(body: bytes) -> str:
        """Return Caddy's error message from an error answer's body."""
        text = body.decode("utf-8", errors="replace").strip()
        try:
            parsed = json.loads(text)
        except ValueError:
            return text[:500] or "(no reason given)"
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return str(parsed["error"])
        return text[:500]

    def read_config(self) -> dict[str, Any]:
        """Return the configuration Caddy runs ({} when it has none).

        Raise ProxyUnreachable, or ProxyRefused when the answer is not Caddy's.
        """
        status, body = self._request("GET", "/config/", None, self.timeout)
        if status != 200:
            raise ProxyRefused(f"GET {self.admin_url}/config/: {status} {self._reason(body)}")
        try:
            config = json.loads(body or b"null")
        except ValueError:
            raise ProxyRefused(f"{self.admin_url} answered something that is not JSON: is it "
                               "Caddy's admin API?") from None
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise ProxyRefused(f"{self.admin_url}/config/ is not a JSON object")
        return config

    def load(self, config: Mapping[str, Any]) -> None:
        """Replace Caddy's whole configuration with ``config``, atomically.

        Raise ProxyUnreachable, or ProxyRefused with Caddy's reason (a port
        already taken …), in which case the previous configuration keeps serving.
        """
        body = json.dumps(config).encode()
        status, answer = self._request("POST", "/load", body, self.load_timeout)
        if status != 200:
            raise ProxyRefused(f"Caddy refused the configuration: {self._reason(answer)}")

    def root_certificate(self) -> str:
        """Return the PEM root certificate of Caddy's own authority (``tls = "internal"``).

        Caddy creates the authority when a configuration first uses it. Raise
        ProxyUnreachable, or ProxyRefused when Caddy has no such authority.
        """
        status, body = self._request("GET", f"/pki/ca/{INTERNAL_CA}", None, self.timeout)
        if status != 200:
            raise ProxyRefused(f"Caddy has no certificate authority of its own: "
                               f"{self._reason(body)}")
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        root = answer.get("root_certificate") if isinstance(answer, dict) else None
        if not isinstance(root, str) or "BEGIN CERTIFICATE" not in root:
            raise ProxyRefused(f"{self.admin_url}/pki/ca/{INTERNAL_CA} holds no root "
                               "certificate")
        return root

    def certificate_failure(self, domain: str) -> str | None:
        """Return Caddy's reason for the last failed attempt at ``domain``'s certificate
        (read from its log, when this client knows where it is), or None."""
        if self.log_path is None:
            return None
        return certificate_failure_in_log(self.log_path, domain)

    def certificate_served(self, domain: str) -> bool:
        """Return whether Caddy completes a TLS handshake for ``domain`` on its HTTPS
        listener (read from its configuration; 127.0.0.1 when it listens everywhere).

        The certificate is not verified: only whether Caddy has one to present.
        Raise ProxyUnreachable, ProxyRefused as :meth:`read_config`.
        """
        listen = _get(self.read_config(), "apps", "http", "servers", SERVER_NAME, "listen")
        if not isinstance(listen, list) or not listen or not isinstance(listen[0], str):
            return False
        host, _colon, port_text = listen[0].rpartition(":")
        host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
        if host in ("0.0.0.0", "::"):  # noqa: S104 - where to connect, not to listen
            host = "127.0.0.1"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((host, int(port_text)), timeout=self.timeout) as raw, \
                    context.wrap_socket(raw, server_hostname=domain):
                return True
        except (OSError, ValueError):
            return False

    def answers(self) -> bool:
        """Return whether the admin API answers right now."""
        try:
            self.read_config()
        except CaddyError:
            return False
        return True


