"""The typed params of the mail app's gated change: what the members decide on.

The ``Params`` of the governance operation ``mail.publish_retired_keys``
(``chaton/governance/operations/publish_retired_keys.py``), handed to
:func:`chaton.core.gate.require` by :func:`chaton.mail.actions.do_set_publish_retired_keys`.
"""

from __future__ import annotations

from chaton.core.gate import StrictParams


class PublishRetiredKeysParams(StrictParams):
    #: The mail domain ("example.org").
    domain: str
    #: True: publish each retired private key from now on; false: stop publishing.
    publish: bool = True
