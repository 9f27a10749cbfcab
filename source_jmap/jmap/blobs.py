"""Blobs: downloads through the session's downloadUrl template (RFC 8620 section 6.2), and Blob/get
(RFC 9404), which brings many blobs' bytes in one method call, chained to the `/get` that names them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .responses import ObjectList
from .session import JmapSession
from .wire import MethodCall, ResultReference

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


# Blob/get asks for at most this many octets of each blob (`length`): a blob up to this size comes with its
# page; a larger one is cut to it, and downloaded on its own instead. A page's sizes are not known before
# its answer, so a large blob's first megabyte is sent in vain: the price of one request per page. On
# Cyrus, 3,014 messages came in 2.8 s by Blob/get, 7.7 s by parallel downloads.
BLOB_GET_LARGEST_BLOB = 1_000_000
# What one blob adds to an answer at most: its data in base64, with room for its id and size.
BLOB_GET_LARGEST_ANSWER = BLOB_GET_LARGEST_BLOB * 4 // 3 + 1000


def blob_get_capability(session: JmapSession, account_id: str) -> str | None:
    """The capability under which the account offers Blob/get, or None."""
    account = session.accounts.get(account_id)
    return next((name for name in BLOB_GET_CAPABILITIES if account is not None and account.has(name)), None)


def blob_get(account_id: str, ids: Sequence[str] | ResultReference, call_id: str) -> MethodCall:
    """Blob/get of the blobs a back-reference names (`get.ref("/list/*/blobId")`), each cut at
    BLOB_GET_LARGEST_BLOB octets."""
    return MethodCall("Blob/get", {"accountId": account_id, "ids": ids, "properties": ["data:asBase64", "size"],
                                   "length": BLOB_GET_LARGEST_BLOB}, call_id)


@dataclass
class Blobs:
    """What the Blob/get calls of a page brought: their lists, decoded one blob at a time as it is asked
    for, and the ids the server does not know (the blob is gone: its object was destroyed meanwhile)."""

    lists: list[ObjectList] = field(default_factory=list)
    not_found: set[str] = field(default_factory=set)

    def add(self, result: Mapping[str, Any]) -> None:
        """Take in one Blob/get result."""
        if isinstance(result.get("list"), ObjectList):
            self.lists.append(result["list"])
        self.not_found |= {blob_id for blob_id in result.get("notFound") or () if isinstance(blob_id, str)}

    def content(self, blob_id: str, size: int) -> bytes | None:
        """The blob's bytes if they came whole, that is `size` octets (the size its object declares); else None.

        Whole is judged by length alone. RFC 9404's `isTruncated` says that the asked range ran past the END
        of the blob (Cyrus sets it on every blob shorter than `length`), while a blob longer than `length`
        comes cut to it without a flag.
        """
        for blobs in self.lists:
            item = blobs.get(blob_id)
            if item is not None:
                data = item.get("data:asBase64")
                content = _base64(data) if isinstance(data, str) else None
                return content if content is not None and len(content) == size else None
        return None


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
