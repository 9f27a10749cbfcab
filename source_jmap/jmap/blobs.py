"""Blobs: downloads through the session's downloadUrl template (RFC 8620 section 6.2), and Blob/get
(RFC 9404), which brings many blobs' bytes in one method call."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import quote

from .client import JmapClient
from .session import JmapSession
from .wire import MethodCall

RFC822 = "message/rfc822"


def blob_url(template: str, account_id: str, blob_id: str, media_type: str, name: str) -> str:
    """Expand the RFC 6570 level-1 template: every value percent-encoded, including '/'.

    Cyrus answers with the Content-Type of `{type}`; leaving it empty makes the server guess.
    """
    values = {"accountId": account_id, "blobId": blob_id, "type": media_type, "name": name}
    url = template
    for key, value in values.items():
        url = url.replace("{" + key + "}", quote(value, safe=""))
    return url


# Blob/get (RFC 9404), and the same method in Cyrus before the RFC (with `jmap_nonstandard_extensions: yes`).
BLOB = "urn:ietf:params:jmap:blob"
CYRUS_BLOB = "https://cyrusimap.org/ns/jmap/blob"
BLOB_GET_CAPABILITIES = (BLOB, CYRUS_BLOB)


# Where the account offers Blob/get, blobs up to this size come in batches of one Blob/get call each, of
# at most BLOB_GET_BYTES (the sum of their sizes; the answer is a third more in base64); larger ones are
# downloaded, each on its own. On Cyrus, 3,014 messages came in 2.8 s by Blob/get, 7.7 s by parallel downloads.
BLOB_GET_LARGEST_BLOB = 1_000_000
BLOB_GET_BYTES = 8_000_000

T = TypeVar("T")


@dataclass(frozen=True)
class Retrieval(Generic[T]):
    """Blobs fetched together: by one Blob/get call, or one blob downloaded alone."""

    items: list[T]
    bytes: int
    by_blob_get: bool


def plan_retrieval(
    items: Iterable[T], size_of: Callable[[T], int], blob_get: bool, most: int
) -> Iterator[Retrieval[T]]:
    """The items in their order, grouped for fetching: where `blob_get`, those of at most BLOB_GET_LARGEST_BLOB
    bytes in batches of at most BLOB_GET_BYTES and `most` ids; every other item alone (size 0: nothing to fetch)."""
    batch: list[T] = []
    batch_bytes = 0
    for item in items:
        size = size_of(item)
        if blob_get and 0 < size <= BLOB_GET_LARGEST_BLOB:
            if batch and (batch_bytes + size > BLOB_GET_BYTES or len(batch) >= most):
                yield Retrieval(batch, batch_bytes, by_blob_get=True)
                batch, batch_bytes = [], 0
            batch.append(item)
            batch_bytes += size
            continue
        if batch:
            yield Retrieval(batch, batch_bytes, by_blob_get=True)
            batch, batch_bytes = [], 0
        yield Retrieval([item], size, by_blob_get=False)
    if batch:
        yield Retrieval(batch, batch_bytes, by_blob_get=True)


def blob_get_capability(session: JmapSession, account_id: str) -> str | None:
    """The capability under which the account offers Blob/get, or None."""
    account = session.accounts.get(account_id)
    return next((name for name in BLOB_GET_CAPABILITIES if account is not None and account.has(name)), None)


@dataclass
class Blobs:
    """What one Blob/get brought: the bytes of each blob it sent whole, the ids it does not know (gone),
    and the ids it answered unusably (cut short, an encoding problem, no data): those are for a download."""

    found: dict[str, bytes] = field(default_factory=dict)
    not_found: set[str] = field(default_factory=set)
    unusable: set[str] = field(default_factory=set)


def get_blobs(client: JmapClient, capability: str, account_id: str, sizes: Mapping[str, int]) -> Blobs:
    """The bytes of the blobs `sizes` names (blob id -> its size in octets) in one Blob/get call.

    A blob counts as whole only when its decoded bytes are as long as the size the caller knows: Cyrus
    cuts a blob short to `length` without saying so (no `isTruncated`). JmapMethodError for the call.
    """
    call = MethodCall("Blob/get", {"accountId": account_id, "ids": list(sizes),
                                   "properties": ["data:asBase64", "size"]}, "blobs")
    result = client.call([call], [capability])[call]
    blobs = Blobs(not_found={blob_id for blob_id in result.get("notFound") or () if blob_id in sizes})
    for item in result.get("list") or ():
        blob_id = item.get("id")
        if blob_id not in sizes:
            continue
        data = item.get("data:asBase64")
        content = _base64(data) if isinstance(data, str) else None
        if content is None or len(content) != sizes[blob_id] or item.get("isTruncated") or item.get(
                "isEncodingProblem"):
            blobs.unusable.add(blob_id)
        else:
            blobs.found[blob_id] = content
    blobs.unusable |= set(sizes) - blobs.found.keys() - blobs.not_found
    return blobs


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
