from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, cast

from ..jmap import JmapClient, JmapServerError, blob_url
from .base import DELETED_AT, UPDATED_AT, JmapStream, Record
from .declared import EmailBlobs
from .dialects import Dialect
from .downloads import Wanted, batchable
from .ledger import PartIdCounts, parts_of
from .selection import EmailSelection
from .staging import FileRecord, attachment_path, file_name, most_file_bytes

ATTACHMENT_FIELDS = ("partId", "blobId", "name", "type", "size", "disposition", "cid")


class AttachmentStream(JmapStream):
    """One record per attachment body part of every email, from the Email's `attachments` property.

    It reads the selected emails as the emails stream does (same query, same resume points) but asks
    only for the properties it needs, and downloads nothing unless in file mode.

    File mode (Airbyte file transfer): the stream is declared file-based, and when the configured stream
    has `include_files`, each part's decoded content (its blob: in JMAP a part's blob is its decoded content) is
    written to `<staging>/<accountId>/<YYYY-MM received>/<emailId>/<partId>/<name>` (`staging.attachment_path`).
    Where the account offers Blob/get, parts of at most BLOB_GET_LARGEST_BLOB octets come by Blob/get in batches
    of BLOB_GET_BATCH_BYTES by their declared sizes (`downloads.BlobBatches`, as raw_messages); the others, and
    any a Blob/get did not bring whole, are streamed through the session's downloadUrl. Batches and downloads run
    in parallel up to maxConcurrentRequests, records in order (`downloads.in_order`). Its record is the same
    row with the file reference; the file is complete on disk before the record is produced, and the state
    moves only after a page's records. A download answering HTTP 404 is checked (`downloads.checked_in_order`):
    a part of an email destroyed after its Email/get has no record and a log line, its deletion comes with the
    email's; a part of an email that still exists is tried again, then fails the sync. Deletions carry no file.

    Deletions. A destroyed email cannot be fetched, so its part ids are unknown when `/changes` reports
    it. The state does not keep them per email (that map grew by ~40 bytes an email and was re-emitted
    with every checkpoint: megabytes for a large archive). It keeps the set of DISTINCT part ids the
    account's attachments use, with how many emails used each ("memo": {"partIds": {"2": 812, "3": 95}}).
    JMAP part ids are structural on the servers we know (Cyrus: "2", "3", "1.2"), so a whole mailbox
    uses a handful. A destroyed email gets a deletion record for each of them: the ones it had remove
    its rows; the others name rows that never existed, which a deduplicating destination ignores (in
    append mode they are extra rows flagged `_ab_cdc_deleted_at`). The set is bounded: past
    ledger.MAX_PART_IDS entries or ledger.MAX_PART_IDS_BYTES of JSON the most common are kept and a warning says so,
    since a destroyed email's attachment under a dropped part id then stays in the destination.

    Why not something else: a Bloom filter or a hash of the map cannot give back the ids to delete;
    `Email/queryChanges` would say what left the selection but not what a destroyed email held.

    Updates. An updated email IS fetched (with its attachments), so one that left the selection gets
    deletions of exactly its own parts. One still selected is emitted again when the selection filters
    mailboxes: without a per-email map the stream cannot tell an email that stayed in the selection from
    one that just came into it (moved out of Junk), and attachments never change in JMAP, so the rows are
    the same and nothing is downloaded (in file mode the files are, to the same paths). Without a mailbox
    filter the selection depends only on `receivedAt`, which is immutable: an update can neither bring an
    email in nor take it out, so it emits nothing.

    States of earlier versions ("memo": {"parts": {emailId: [partId, ...]}}) are read: the set is taken
    from the map's part ids, and the next checkpoint writes the set instead.
    """

    name = "attachments"
    file_based = True
    primary_key: ClassVar[list[str]] = ["accountId", "emailId", "partId"]
    ledger = PartIdCounts
    email_blobs = EmailBlobs("attachments", "attachment")

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection) -> None:
        super().__init__(client, accounts)
        self._selection = selection

    def dialects_of(self, account_id: str) -> tuple[Dialect, ...]:
        return (self._selection.email_dialect(account_id, ("id", "receivedAt", "mailboxIds", "attachments")),)

    def fingerprint(self) -> dict[str, Any] | None:
        return self._selection.describe()

    def rows_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        return [
            {"accountId": account_id, "emailId": obj["id"], **{key: part.get(key) for key in ATTACHMENT_FIELDS},
             UPDATED_AT: fetched_at}
            for part in parts_of(obj)
        ]

    def emits_updated_again(self) -> bool:
        """Attachments never change: an update matters only when the email may enter the selection (see Updates)."""
        return self._selection.filters_mailboxes

    def left_rows_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """Deletions of exactly the email's own parts; none without a mailbox filter, where receivedAt, which is
        immutable, alone selects: the email is where it always was, out of the selection."""
        if not self._selection.filters_mailboxes:
            return []
        return _deletions(account_id, obj["id"], (part["partId"] for part in parts_of(obj)), fetched_at)

    def deletion_rows_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """A deletion for every part id the account's attachments use (see the class docstring)."""
        return _deletions(account_id, object_id, cast(PartIdCounts, self.ledger_of(account_id)).ranked(), fetched_at)

    def reads_blobs(self) -> bool:
        """Only in file mode: a row emitted again gets its file again (the same path, the same content)."""
        return self._staging is not None

    def wanted_of(self, account_id: str, email: Record, row: Record) -> Wanted[Record] | None:
        """The part's blob, written to its file (nothing held in memory: a download streams to it). A part without
        a blob (RFC 8621 gives a blobId to every part but a multipart one, which is never an attachment) needs none
        and goes out as in row mode."""
        if row["blobId"] is None:
            return None
        assert self._staging is not None, "reads_blobs says so"
        return Wanted(functools.partial(self._file_records, account_id, email, row, self._staging),
                      batchable(row["blobId"], row["size"]), 0, email["id"],
                      f"part {row['partId']} of email {email['id']} (blob {row.get('blobId')})")

    def _file_records(
        self, account_id: str, email: Record, record: Record, staging: Path, content: bytes | None
    ) -> list[Record]:
        """The part's record with its file, written whole first: `content` where a Blob/get brought it, else
        downloaded (JmapBlobNotFoundError on HTTP 404, for `checked_in_order` to check)."""
        if not isinstance(record["blobId"], str):
            raise JmapServerError(f"The JMAP server sent part {record['partId']!r} of email {email['id']!r} with "
                                  f"blobId {record['blobId']!r}; RFC 8621 requires an Id")
        media_type = record["type"] if isinstance(record["type"], str) else "application/octet-stream"
        url = blob_url(self._client.session.download_url, account_id, record["blobId"], media_type,
                       file_name(record["name"], record["type"]))

        def write(sink: BinaryIO) -> int:
            if content is not None:
                return sink.write(content)
            return self._client.download_to(url, sink, max_bytes=most_file_bytes(record["size"]))

        return [FileRecord.written(record, attachment_path(staging, account_id, email, record), write)]


def _deletions(account_id: str, email_id: str, part_ids: Iterable[str], fetched_at: str) -> list[Record]:
    return [
        {"accountId": account_id, "emailId": email_id, "partId": part_id, UPDATED_AT: fetched_at,
         DELETED_AT: fetched_at}
        for part_id in part_ids
    ]
