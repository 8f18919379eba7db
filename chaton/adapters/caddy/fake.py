"""An in-memory Caddy admin API for unit tests: same interface, same errors."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from chaton.adapters.caddy import ProxyRefused, ProxyUnreachable, served_routes


class FakeCaddyAdmin:
    """An in-memory admin API for unit tests: keeps the last configuration loaded.

    Set ``down`` to make every call raise ProxyUnreachable, ``refuse`` to a
    reason to make loads raise ProxyRefused. ``loads`` counts the loads accepted.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = copy.deepcopy(dict(config or {}))
        self.down = False
        self.refuse: str | None = None
        self.loads = 0
        #: The root of its "own authority"; ``failures``: {domain: Caddy's reason}.
        self.root = "-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n"
        self.failures: dict[str, str] = {}

    def root_certificate(self) -> str:
        if self.down:
            raise ProxyUnreachable("the fake Caddy is down")
        return self.root

    def certificate_failure(self, domain: str) -> str | None:
        return self.failures.get(domain)

    def certificate_served(self, domain: str) -> bool:
        """A domain routed in the loaded configuration has a certificate, unless it failed."""
        return domain in served_routes(self.read_config()) and domain not in self.failures

    def read_config(self) -> dict[str, Any]:
        if self.down:
            raise ProxyUnreachable("the fake Caddy is down")
        return copy.deepcopy(self.config)

    def load(self, config: Mapping[str, Any]) -> None:
        if self.down:
            raise ProxyUnreachable("the fake Caddy is down")
        if self.refuse is not None:
            raise ProxyRefused(f"Caddy refused the configuration: {self.refuse}")
        # Through JSON, as the real API: what is stored is what a JSON round trip gives.
        self.config = json.loads(json.dumps(config))
        self.loads += 1


