"""A stand-in for the signer adapter, to its agreed contract, until it lands.

``opendkim.py`` mirrors ``chaton.adapters.opendkim`` with ``FakeSigner``. The mail app imports
the signer only through it: once the adapter is merged, it becomes a re-export of the real
package and its fake (as the DNS stand-in became ``chaton.adapters.dns``).
"""
