from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..jmap import MAIL, RFC822, DataType, JmapBlobNotFoundError, JmapClient, blob_url
from .base import UPDATED_AT, JmapStream, Record
from .selection import EmailSelection

# Downloads queued or under way at once: per worker, and in message bytes (base64 adds a third).
WINDOW_PER_WORKER = 16
WINDOW_BYTES = 64 * 1024 * 1024


class RawMessageStream(JmapStream):
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
        max_raw_message_bytes: int,
    ) -> None:
        super().__init__(client, accounts, selection)
        self._selection: EmailSelection = selection
        self._max_bytes = max_raw_message_bytes

    def data_type(self, account_id: str) -> DataType:
        return DataType("Email", (MAIL,), ("id", "blobId", "size", "receivedAt", "mailboxIds"),
                        query=self._selection.query(account_id))

    def selects(self, account_id: str, obj: Record) -> bool:
        return self._selection.matches(account_id, obj)

    def new_records(self, account_id: str, objects: Iterable[Record], fetched_at: str) -> Iterator[Record]:
        """Downloads in a sliding window, records in query order.

        The window is deep (a batch, or a short window, leaves workers idle behind one slow message)
        but bounded by the messages' sizes, so memory holds the window, never the page.
        An email whose blob vanished before its download has no record (`_raw_record`).
        """
        workers = self._client.session.limits.max_concurrent_requests
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw-message") as pool:
            window: deque[tuple[Future[Record | None], int]] = deque()
            window_bytes = 0
            for obj in objects:
                size = obj["size"] if self._downloads(obj) else 0
                window.append((pool.submit(self._raw_record, account_id, obj, fetched_at), size))
                window_bytes += size
                while len(window) >= WINDOW_PER_WORKER * workers or window_bytes > WINDOW_BYTES:
                    future, size = window.popleft()
                    window_bytes -= size
                    if (record := future.result()) is not None:
                        yield record
            while window:
                if (record := window.popleft()[0].result()) is not None:
                    yield record

    def updated_records(self, account_id: str, objects: Iterable[Record], fetched_at: str) -> Iterator[Record]:
        """An updated email that left the selection is deleted; one that is in it may have just entered it.

        Content is immutable, so a keyword change alone changes nothing here; but an email moved out
        of an excluded mailbox (Junk to INBOX) enters the selection by an update, and /changes does not
        say which property changed. Where the selection filters mailboxes, every selected updated email
        is downloaded again (a rewrite of the same row for a flag change, the price of never missing one
        that moved in); where it does not, no update can bring an email in, and none costs anything.
        """
        left: list[str] = []

        def selected() -> Iterator[Record]:
            for obj in objects:
                if not self.selects(account_id, obj):
                    left.append(obj["id"])
                elif self._selection.filters_mailboxes:
                    yield obj

        yield from self.new_records(account_id, selected(), fetched_at)
        for object_id in left:
            yield from self.deleted_records_of(account_id, object_id, fetched_at)

    def _downloads(self, email: Record) -> bool:
        """Whether the message is small enough to download (max_raw_message_bytes)."""
        return bool(email["size"] <= self._max_bytes)

    def _raw_record(self, account_id: str, email: Record, fetched_at: str) -> Record | None:
        """The email's record; None when its blob is gone (the email was destroyed after Email/get).

        Such an email is neither failed nor recorded: the next incremental sync's /changes reports it
        destroyed, and its deletion record reaches the destination then.
        """
        record: dict[str, Any] = {
            "accountId": account_id, "id": email["id"], "blobId": email["blobId"], "size": email["size"],
            "receivedAt": email["receivedAt"], UPDATED_AT: fetched_at,
        }
        if not self._downloads(email):
            record["raw_message_skipped"] = (
                f"size {email['size']} bytes exceeds max_raw_message_bytes {self._max_bytes}"
            )
            self.logger.warning(
                "raw_messages: account %s: email %s not downloaded: %s", account_id, email["id"],
                record["raw_message_skipped"],
            )
            return record
        url = blob_url(self._client.session.download_url, account_id, email["blobId"], RFC822, f"{email['id']}.eml")
        try:
            content = self._client.download(url)
        except JmapBlobNotFoundError:
            self._log_vanished(account_id, email)
            return None
        record["raw_message"] = base64.b64encode(content).decode("ascii")
        return record

    def _log_vanished(self, account_id: str, email: Record) -> None:
        self.logger.info(
            "raw_messages: account %s: email %s was destroyed before its download (the server has no blob %s); "
            "no record for it, its deletion is left to the next incremental sync", account_id, email["id"],
            email["blobId"],
        )
