from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..jmap.blobs import RFC822, blob_url
from ..jmap.client import JmapClient
from .base import UPDATED_AT, Record
from .emails import EmailStream
from .selection import EmailSelection

# Common destinations cap a row near 16 MB; base64 grows a message by a third.
DEFAULT_MAX_RAW_MESSAGE_BYTES = 10 * 1024 * 1024


class RawMessageStream(EmailStream):
    """The RFC 5322 source of each email, base64-encoded, downloaded through the session's downloadUrl.

    A stream of its own rather than a column of `emails`: a destination that deduplicates keeps
    the latest row whole, so a column would have to be downloaded again on every flag change to
    keep the row complete. Message content never changes in JMAP, so these rows are written once
    and removed only when the email is destroyed; keyword or mailbox changes cost nothing here.
    Downloads run in parallel up to the server's maxConcurrentRequests; records keep query order.
    """

    name = "raw_messages"

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection,
        max_raw_message_bytes: int = DEFAULT_MAX_RAW_MESSAGE_BYTES,
    ) -> None:
        super().__init__(client, accounts, selection, body_values="none")
        self.properties = ["id", "blobId", "size", "receivedAt", "mailboxIds"]
        self._max_bytes = max_raw_message_bytes

    def page_records(self, account_id: str, objects: list[Record], fetched_at: str) -> Iterator[Record]:
        workers = self._client.session.limits.max_concurrent_requests
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw-message") as pool:
            # A few downloads per worker at a time: memory stays bounded by the batch, not the page.
            batch = workers * 2
            for start in range(0, len(objects), batch):
                chunk = objects[start:start + batch]
                yield from pool.map(lambda obj: self._raw_record(account_id, obj, fetched_at), chunk)

    def updated_records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """Content is immutable: an update (keywords, mailboxes) changes nothing here."""
        return []

    def _raw_record(self, account_id: str, email: Record, fetched_at: str) -> Record:
        record: dict[str, Any] = {
            "accountId": account_id, "id": email["id"], "blobId": email["blobId"], "size": email["size"],
            "receivedAt": email["receivedAt"], UPDATED_AT: fetched_at,
        }
        if email["size"] > self._max_bytes:
            record["raw_message_skipped"] = (
                f"size {email['size']} bytes exceeds max_raw_message_bytes {self._max_bytes}"
            )
            self.logger.warning(
                "raw_messages: account %s: email %s not downloaded: %s", account_id, email["id"],
                record["raw_message_skipped"],
            )
            return record
        url = blob_url(self._client.session.download_url, account_id, email["blobId"], RFC822, f"{email['id']}.eml")
        record["raw_message"] = base64.b64encode(self._client.download(url)).decode("ascii")
        return record
