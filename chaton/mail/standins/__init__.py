"""Stand-ins for the DNS and signer adapters, to their agreed contracts, until those land.

``dns.py`` mirrors ``chaton.adapters.dns`` (protocol, values, errors, ``resolve``, the slot)
with ``FakeZone``; ``opendkim.py`` mirrors ``chaton.adapters.opendkim`` with ``FakeSigner``.
The mail app imports them only through these two modules: once the adapters are merged,
each module becomes a re-export of the real package and its fake.
"""
