from __future__ import annotations

from ..jmap import MAIL, SUBMISSION, DataType
from .base import JmapStream
from .dialects import Dialect
from .ledger import HeldIds


class IdentityStream(JmapStream):
    """Identity objects (RFC 8621 section 6): the addresses the user sends as. There is no Identity/query.

    Cyrus has no Identity/changes: every sync reads them whole, and an identity destroyed meanwhile is
    known only by its absence from that read; the ids the destination holds say which (ledger.py).
    """

    name = "identities"
    ledger = HeldIds
    dialects = (Dialect(SUBMISSION, DataType("Identity", (MAIL, SUBMISSION), query=None), unserved_is_absent=False),)
