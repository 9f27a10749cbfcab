"""Blobs: downloads through the session's downloadUrl template (RFC 8620 section 6.2), and Blob/get
(RFC 9404), which brings many blobs' bytes in one method call."""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .client import JmapClient
from .datatype import DataType
from .errors import JmapServerError
from .methods import GetCall
from .responses import ObjectList
from .results import GetResult
from .session import MAIL, JmapSession

RFC822 = "message/rfc822"


def blob_url(template: str, account_id: str, blob_id: str, media_type: str, name: str) -> str:
    """Expand the RFC 6570 level-1 template: every value percent-encoded, including '/'.

    Cyrus answers with the Content-Type of `{type}`; leaving it empty makes the server guess. A session without
    a downloadUrl (RFC 8620 section 2 requires one; `JmapSession` checks the variables of one it has) cannot
    download: JmapServerError.
    """
    if not template:
        raise JmapServerError("The JMAP session has no downloadUrl, which RFC 8620 section 2 requires: "
                              "no blob can be downloaded")
    values = {"accountId": account_id, "blobId": blob_id, "type": media_type, "name": name}
    url = template
    for key, value in values.items():
        url = url.replace("{" + key + "}", quote(value, safe=""))
    return url


# Blob/get (RFC 9404), and the same method in Cyrus before the RFC (with `jmap_nonstandard_extensions: yes`).
BLOB = "urn:ietf:params:jmap:blob"
CYRUS_BLOB = "https://cyrusimap.org/ns/jmap/blob"
BLOB_GET_CAPABILITIES = (BLOB, CYRUS_BLOB)


# Blob/get asks for at most this many octets of each blob (`length`), and raw_messages and attachments ask it only
# for blobs of at most this size: a larger one is downloaded on its own, streamed, rather than held in an answer in
# base64. On Cyrus, 10,000 messages (55 MB) came in 11.2 s by Blob/get, against 76 s by parallel downloads
# (bench/raw_paths.py).
BLOB_GET_LARGEST_BLOB = 1_000_000


# The blobs of one Blob/get request (raw_messages' messages, attachments' parts; `streams.downloads.BlobBatches`):
# consecutive ones of at most BLOB_GET_LARGEST_BLOB, up to this many octets by the sizes their objects declare.
# Batches rather than 0.2.0's Blob/get chained to each page: their sizes are known before they are asked for (no
# first page sized for the worst), each answer is a few MB (not one 64 MB document that the server builds whole
# before sending any of it), and several run at once, so the server builds the next while the last is written:
# 3,000 messages of real size (100 MB) in file mode were read in 0.70 to 0.77 of the time the chained Blob/get
# took (medians of 3, two runs; bench/README.md).
BLOB_GET_BATCH_BYTES = 8_000_000


def blob_get_capability(session: JmapSession, account_id: str) -> str | None:
    """The capability under which the account offers Blob/get, or None."""
    account = session.accounts.get(account_id)
    return next((name for name in BLOB_GET_CAPABILITIES if account is not None and account.has(name)), None)


def fetch_blobs(client: JmapClient, account_id: str, capability: str, blob_ids: Sequence[str],
                declared_bytes: int) -> Blobs:
    """The Blob/get of `blob_ids` in one request, under `capability`, each blob cut at BLOB_GET_LARGEST_BLOB
    octets; `declared_bytes` is what their objects say the blobs hold. An answer of more than twice that in base64
    (plus 1000 octets a blob) is refused (JmapAnswerTooLargeError) rather than held: a broken server cannot fill
    the memory.

    Raises what the client raises; JmapServerError where the answer has no usable `list`.
    """
    call = GetCall("Blob", account_id, blob_ids, "blobs", properties=["data:asBase64", "size"],
                   extra={"length": BLOB_GET_LARGEST_BLOB}).call()
    cap = 2 * (declared_bytes * 4 // 3 + 1000 * len(blob_ids))
    blobs = Blobs()
    blobs.add(client.call([call], (MAIL, capability), max_bytes=cap)[call])
    return blobs


@dataclass
class Blobs:
    """What Blob/get calls brought, each blob decoded when it is asked for. A blob the answer
    does not hold whole (absent, `notFound`, cut, garbled) is for the caller to download: only a download
    that finds nothing (HTTP 404) says that the blob is gone."""

    lists: list[ObjectList] = field(default_factory=list)

    def add(self, result: Mapping[str, Any]) -> None:
        """Take in one Blob/get result; JmapServerError when its list is not a list of objects with ids."""
        objects = result.get("list")
        if not isinstance(objects, ObjectList):
            raise JmapServerError("The JMAP server answered Blob/get without a `list`")
        objects.by_id()  # an item without a string id is refused now, not while records are made
        self.lists.append(objects)

    def content(self, blob_id: str, size: int) -> bytes | None:
        """The blob's bytes if they came whole, that is `size` octets (the size its object declares, and the
        blob's own `size` where the answer gives one); else None.

        Whole is judged by length alone. RFC 9404's `isTruncated` says that the asked range ran past the END
        of the blob (Cyrus sets it on every blob shorter than `length`), while a blob longer than `length`
        comes cut to it without a flag.
        """
        for objects in self.lists:
            item = objects.get(blob_id)
            if item is not None:
                data, own_size = item.get("data:asBase64"), item.get("size", size)
                content = _base64(data) if isinstance(data, str) else None
                return content if content is not None and len(content) == size == own_size else None
        return None


def _base64(text: str) -> bytes | None:
    """The bytes of strict base64 (RFC 4648 alphabet and padding only), else None.

    binascii straight from the str: base64.b64decode first copies the text to bytes, a third of the decoding
    time (30 MB: 0.33 s against 0.24 s).
    """
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        return None


# The Email/get of ids alone that tells which emails still exist.
EMAIL_IDS = DataType("Email", (MAIL,), properties=("id",))


def existing_emails(client: JmapClient, account_id: str, ids: Sequence[str]) -> set[str]:
    """Of the emails `ids`, those the server still has, by Email/get of their ids alone (one request for a page's
    worth). A download's 404 says only that no blob is at that URL: an email is taken as destroyed when Email/get
    reports it `notFound`, never because it is missing from an answer (a skip must be proven)."""
    limits = client.session.limits
    chunks = [ids[start:start + limits.max_objects_in_get] for start in range(0, len(ids), limits.max_objects_in_get)]
    gone: set[str] = set()
    for first in range(0, len(chunks), limits.max_calls_in_request):
        calls = [EMAIL_IDS.get(account_id, list(chunk), f"exists{number}")
                 for number, chunk in enumerate(chunks[first:first + limits.max_calls_in_request])]
        responses = client.call(calls, (MAIL,))
        for call in calls:
            gone.update(GetResult.of(call.name, responses[call]).not_found)
    return set(ids) - gone
