from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..jmap import RFC822, JmapClient, JmapServerError, blob_url
from .base import UPDATED_AT, JmapStream, Record
from .declared import EmailBlobs
from .dialects import Dialect
from .downloads import Wanted, batchable
from .selection import EmailSelection
from .staging import FileRecord, most_file_bytes, staged_path


class RawMessageStream(JmapStream):
    """The RFC 5322 source of each email, base64-encoded in its row or, in file mode, as a file.

    A stream of its own rather than a column of `emails`: a destination that deduplicates keeps
    the latest row whole, so a column would have to be downloaded again on every flag change to
    keep the row complete. Message content never changes in JMAP, so these rows are written once
    and removed only when the email is destroyed; keyword or mailbox changes cost nothing here.
    Each row declares its message (`wanted_of`), which the base reads in its one window of downloads
    (`JmapStream._windowed`). Where the account offers Blob/get (RFC 9404, or Cyrus's extension), the messages
    of at most BLOB_GET_LARGEST_BLOB bytes come by Blob/get, in batches of BLOB_GET_BATCH_BYTES by the sizes the
    page's Email/get declared (`downloads.BlobBatches`); larger ones, and any a Blob/get did not send whole, are
    downloaded through the session's downloadUrl. Batches and downloads run in parallel up to the server's
    maxConcurrentRequests; records keep query order. A download answering HTTP 404 is checked
    (`downloads.checked_in_order`): an email destroyed after its Email/get has no record (its deletion comes with
    the changes); one that still exists is tried again, then fails the sync.

    File mode (Airbyte file transfer): the stream is declared file-based, and when the configured stream
    has `include_files`, each message is streamed to `<staging>/<accountId>/<YYYY-MM received>/<id>.eml`
    whatever its size, and its record carries the file reference and the email's metadata instead of
    the bytes. The file is whole under its name (written under a temporary name, then renamed) before
    its record is produced, and the state moves only after a page's records and files, flushed to disk:
    never past a missing file.
    """

    name = "raw_messages"
    file_based = True
    email_blobs = EmailBlobs("messages", "raw-message")

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection,
        max_raw_message_bytes: int,
    ) -> None:
        super().__init__(client, accounts)
        self._selection = selection
        self._max_bytes = max_raw_message_bytes

    def dialects_of(self, account_id: str) -> tuple[Dialect, ...]:
        """The emails' metadata; their messages are asked for once their sizes are known (`wanted_of`)."""
        return (self._selection.email_dialect(
            account_id, ("id", "blobId", "size", "receivedAt", "messageId", "mailboxIds")),)

    def fingerprint(self) -> dict[str, Any] | None:
        return self._selection.describe()

    def emits_updated_again(self) -> bool:
        """Content is immutable, so a keyword change alone changes nothing here; but an email moved out of an
        excluded mailbox (Junk to INBOX) enters the selection by an update, and /changes does not say which
        property changed. Where the selection filters mailboxes, every selected updated email is downloaded again
        (a rewrite of the same row for a flag change, the price of never missing one that moved in); where it does
        not, no update can bring an email in, and none costs anything. One that left the selection is deleted."""
        return self._selection.filters_mailboxes

    def rows_of(self, account_id: str, email: Record, fetched_at: str) -> list[Record]:
        """The email's row before its message (`wanted_of`): with its metadata in file mode, and the reason where
        the message is too large to be downloaded into it."""
        _check(email)
        row: Record = {
            "accountId": account_id, "id": email["id"], "blobId": email["blobId"], "size": email["size"],
            "receivedAt": email["receivedAt"], UPDATED_AT: fetched_at,
        }
        if self._staging is not None:
            row |= {"messageId": email.get("messageId"), "mailboxIds": email.get("mailboxIds")}
        elif email["size"] > self._max_bytes:
            row["raw_message_skipped"] = f"size {email['size']} bytes exceeds max_raw_message_bytes {self._max_bytes}"
            self.logger.warning("raw_messages: account %s: email %s not downloaded: %s", account_id, email["id"],
                                row["raw_message_skipped"])
        return [row]

    def wanted_of(self, account_id: str, email: Record, row: Record) -> Wanted[Record] | None:
        """The email's message, with the bytes its download holds in memory (streamed to its file in file mode:
        nothing held); by Blob/get if at most BLOB_GET_LARGEST_BLOB octets. None where it is not downloaded."""
        if "raw_message_skipped" in row:
            return None
        return Wanted(functools.partial(self._raw_record, account_id, email, row),
                      batchable(email["blobId"], email["size"]), 0 if self._staging is not None else email["size"],
                      email["id"], f"the message of email {email['id']} (blob {email['blobId']})")

    def _raw_record(self, account_id: str, email: Record, row: Record, content: bytes | None) -> list[Record]:
        """The email's record, with `content` when Blob/get brought it, else downloaded (JmapBlobNotFoundError
        on HTTP 404, for `checked_in_order` to check)."""
        if self._staging is not None:
            return [self._file_record(account_id, email, row, self._staging, content)]
        if content is None:
            content = self._client.download(self._message_url(account_id, email))
        return [row | {"raw_message": base64.b64encode(content).decode("ascii"),
                       "sha256": hashlib.sha256(content).hexdigest()}]

    def _file_record(
        self, account_id: str, email: Record, record: Record, staging: Path, content: bytes | None
    ) -> FileRecord:
        """Stream the message to its file, whole before the record exists."""
        def write(sink: BinaryIO) -> int:
            if content is not None:
                return sink.write(content)
            return self._client.download_to(self._message_url(account_id, email), sink,
                                            max_bytes=most_file_bytes(email["size"]))

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
