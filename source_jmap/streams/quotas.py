from __future__ import annotations

from ..jmap import DataType
from .base import JmapStream
from .dialects import CYRUS_QUOTA, QUOTA, Dialect
from .ledger import HeldIds


class QuotaStream(JmapStream):
    """Quota objects: RFC 9425 (`used`, `hardLimit`, `scope`, `resourceType`...), or Cyrus's (`used`, `total`).

    Cyrus has no Quota/query nor Quota/changes: its quotas are read whole on every sync.
    """

    name = "quotas"
    ledger = HeldIds
    dialects = (
        Dialect(QUOTA, DataType("Quota", (QUOTA,))),
        Dialect(CYRUS_QUOTA, DataType("Quota", (CYRUS_QUOTA,), query=None)),
    )
