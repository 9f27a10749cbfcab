from __future__ import annotations

from ..jmap import DataType, blob_url
from .base import JmapStream, Record
from .dialects import CYRUS_SIEVE, SIEVE, Dialect
from .ledger import HeldIds

SIEVE_MEDIA_TYPE = "application/sieve"


class SieveScriptStream(JmapStream):
    """SieveScript objects (RFC 9661: `id`, `name`, `blobId`, `isActive`) with the script's text in `content`,
    downloaded from its blob. Cyrus has no SieveScript/changes: its scripts are read whole on every sync.
    """

    name = "sieve_scripts"
    ledger = HeldIds
    dialects = tuple(Dialect(capability, DataType("SieveScript", (capability,))) for capability in (SIEVE, CYRUS_SIEVE))

    def rows_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        url = blob_url(self._client.session.download_url, account_id, obj["blobId"], SIEVE_MEDIA_TYPE,
                       f"{obj.get('name') or obj['id']}.sieve")
        # RFC 5228: a script is UTF-8; a byte that is not stays visible as U+FFFD rather than failing the sync.
        obj["content"] = self._client.download(url).decode("utf-8", errors="replace")
        return super().rows_of(account_id, obj, fetched_at)
