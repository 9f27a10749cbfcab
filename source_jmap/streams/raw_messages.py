from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..jmap import (
    BLOB_GET_LARGEST_BLOB,
    MAIL,
    RFC822,
    Blobs,
    DataType,
    JmapClient,
    JmapServerError,
    blob_get_capability,
    blob_url,
    existing_emails,
)
from .base import UPDATED_AT, JmapStream, Record
from .downloads import Download, MissingBlobs, checked_in_order
from .selection import EmailSelection
from .staging import FileRecord, most_file_bytes, staged_path


class RawMessageStream(JmapStream):
    """The RFC 5322 source of each email, base64-encoded in its row or, in file mode, as a file.

    A stream of its own rather than a column of `emails`: a destination that deduplicates keeps
    the latest row whole, so a column would have to be downloaded again on every flag change to
    keep the row complete. Message content never changes in JMAP, so these rows are written once
    and removed only when the email is destroyed; keyword or mailbox changes cost nothing here.
    Where the account offers Blob/get (RFC 9404, or Cyrus's extension), each page's messages come in the
    same request as its Email/get, by a Blob/get chained to it (jmap.DataType.blobs), each up to
    BLOB_GET_LARGEST_BLOB bytes; larger ones, and any the Blob/get did not send whole, are downloaded
    through the session's downloadUrl, in parallel up to the server's maxConcurrentRequests. Records keep
    query order. A download answering HTTP 404 is checked (`downloads.checked_in_order`): an email destroyed
    after its Email/get has no record (its deletion comes with the changes); one that still exists is tried
    again, then fails the sync.

    File mode (Airbyte file transfer): the stream is declared file-based, and when the configured stream
    has `include_files`, each message is streamed to `<staging>/<accountId>/<YYYY-MM received>/<id>.eml`
    whatever its size, and its record carries the file reference and the email's metadata instead of
    the bytes. The file is whole under its name (written under a temporary name, then renamed) before
    its record is produced, and the state moves only after a page's records and files, flushed to disk:
    never past a missing file.
    """

    name = "raw_messages"
    file_based = True

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection,
        max_raw_message_bytes: int,
    ) -> None:
        super().__init__(client, accounts, selection)
        self._selection: EmailSelection = selection
        self._max_bytes = max_raw_message_bytes
        self._told_blob_get: set[str] = set()  # the accounts whose use of Blob/get was logged

    def data_type(self, account_id: str) -> DataType:
        """The emails' metadata; where the account offers Blob/get, each page's messages come with it."""
        capability = blob_get_capability(self._client.session, account_id)
        if capability is not None and account_id not in self._told_blob_get:
            self._told_blob_get.add(account_id)
            self.logger.info("raw_messages: account %s offers Blob/get (%s): messages of at most %d bytes come with "
                             "their page, larger ones by download", account_id, capability, BLOB_GET_LARGEST_BLOB)
        return DataType("Email", (MAIL,) if capability is None else (MAIL, capability),
                        ("id", "blobId", "size", "receivedAt", "messageId", "mailboxIds"),
                        query=self._selection.query(account_id), blobs=capability is not None,
                        blobs_of_updated=capability is not None and self._selection.filters_mailboxes)

    def selects(self, account_id: str, obj: Record) -> bool:
        return self._selection.matches(account_id, obj)

    def new_records(
        self, account_id: str, objects: Iterable[Record], fetched_at: str, blobs: Blobs
    ) -> Iterator[Record]:
        """The messages Blob/get brought with the page, the others downloaded in a sliding window
        (`downloads.checked_in_order`); records in query order, but for those whose download answered 404 at first.
        """
        workers = self._client.session.limits.max_concurrent_requests
        missing = MissingBlobs(functools.partial(existing_emails, self._client, account_id), self.logger.info,
                               f"{self.name}: account {account_id}")
        yield from checked_in_order(self._tasks(account_id, objects, fetched_at, blobs), workers, "raw-message",
                                    missing)

    def _tasks(
        self, account_id: str, objects: Iterable[Record], fetched_at: str, blobs: Blobs
    ) -> Iterator[Download[Record]]:
        """The work for each email, in order, with the message bytes it holds in memory: what Blob/get brought,
        or a download (streamed to its file in file mode: nothing held)."""
        for email in objects:
            _check(email)
            downloads = self._downloads(email)
            content = blobs.content(email["blobId"], email["size"]) if downloads else None
            if content is not None:
                held = len(content)
            elif self._staging is not None or not downloads:
                held = 0  # streamed to its file, or not downloaded at all
            else:
                held = email["size"]
            yield Download(functools.partial(self._records_of_one, account_id, email, fetched_at, content), held,
                           email["id"], f"the message of email {email['id']} (blob {email['blobId']})")

    def _records_of_one(self, account_id: str, email: Record, fetched_at: str, content: bytes | None) -> list[Record]:
        return [self._raw_record(account_id, email, fetched_at, content)]

    def updated_records(
        self, account_id: str, objects: Iterable[Record], fetched_at: str, blobs: Blobs
    ) -> Iterator[Record]:
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

        yield from self.new_records(account_id, selected(), fetched_at, blobs)
        for object_id in left:
            yield from self.deleted_records_of(account_id, object_id, fetched_at)

    def _downloads(self, email: Record) -> bool:
        """Whether the message is downloaded: always to a file, into a row when within max_raw_message_bytes."""
        return self._staging is not None or bool(email["size"] <= self._max_bytes)

    def _raw_record(self, account_id: str, email: Record, fetched_at: str, content: bytes | None) -> Record:
        """The email's record, with `content` when Blob/get brought it, else downloaded (JmapBlobNotFoundError
        on HTTP 404, for `checked_in_order` to check)."""
        record: dict[str, Any] = {
            "accountId": account_id, "id": email["id"], "blobId": email["blobId"], "size": email["size"],
            "receivedAt": email["receivedAt"], UPDATED_AT: fetched_at,
        }
        if self._staging is not None:
            return self._file_record(account_id, email, record, self._staging, content)
        if not self._downloads(email):
            record["raw_message_skipped"] = (
                f"size {email['size']} bytes exceeds max_raw_message_bytes {self._max_bytes}"
            )
            self.logger.warning(
                "raw_messages: account %s: email %s not downloaded: %s", account_id, email["id"],
                record["raw_message_skipped"],
            )
            return record
        if content is None:
            content = self._client.download(self._message_url(account_id, email))
        record["raw_message"] = base64.b64encode(content).decode("ascii")
        record["sha256"] = hashlib.sha256(content).hexdigest()
        return record

    def _file_record(
        self, account_id: str, email: Record, record: Record, staging: Path, content: bytes | None
    ) -> FileRecord:
        """Stream the message to its file, whole before the record exists."""
        def write(sink: BinaryIO) -> int:
            if content is not None:
                return sink.write(content)
            return self._client.download_to(self._message_url(account_id, email), sink,
                                            max_bytes=most_file_bytes(email["size"]))

        record |= {"messageId": email.get("messageId"), "mailboxIds": email.get("mailboxIds")}
        return FileRecord.written(record, staged_path(staging, account_id, email), write)

    def _message_url(self, account_id: str, email: Record) -> str:
        """The downloadUrl of the email's RFC 5322 source."""
        return blob_url(self._client.session.download_url, account_id, email["blobId"], RFC822, f"{email['id']}.eml")


def _check(email: Record) -> None:
    """An email as raw_messages needs it: a blobId (an Id) and a size (an UnsignedInt), RFC 8621 section 4.1.1."""
    blob_id, size = email.get("blobId"), email.get("size")
    if not isinstance(blob_id, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise JmapServerError(f"The JMAP server sent email {email.get('id')!r} with blobId {blob_id!r} and size "
                              f"{size!r}; RFC 8621 requires an Id and an unsigned integer")
