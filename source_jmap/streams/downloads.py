"""Downloads run in parallel, their records in order: one sliding window for every stream that downloads.

The window is deep (a batch, or a short window, leaves workers idle behind one slow download) but
bounded by the bytes its tasks hold in memory, so memory holds the window, never the page.

Where the account offers Blob/get, a stream's blobs come in batches of a Blob/get each (`BlobBatches`), which
run in the same window; a blob a batch did not bring whole is downloaded.

A download that answers HTTP 404 proves nothing by itself (`checked_in_order`): the email it belongs to is asked
for, and only one the server reports destroyed is left out.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..jmap import (
    BLOB_GET_BATCH_BYTES,
    BLOB_GET_LARGEST_BLOB,
    Blobs,
    JmapBlobNotFoundError,
    JmapClient,
    JmapMethodError,
    JmapRequestError,
    JmapServerError,
    blob_get_capability,
    fetch_blobs,
)

# Tasks queued or under way at once: per worker, and in the bytes they hold (base64 adds a third).
WINDOW_PER_WORKER = 16
WINDOW_BYTES = 64 * 1024 * 1024
# A blob of an email that still exists answered 404: it is downloaded this many times in all, waiting
# MISSING_BLOB_WAIT_SECONDS times the round before each new round, before the sync fails. The rounds are for a
# blob store that lags its index for a moment (not seen on a server we know: a cheap guard), and bound what a
# server that lost the bytes costs: 3 downloads and 3 s of waiting per page, then one line.
MISSING_BLOB_ATTEMPTS = 3
MISSING_BLOB_WAIT_SECONDS = 1.0

T = TypeVar("T")

# A task, and the bytes it holds in memory until its results are taken (0 for one that writes a file).
Task = tuple[Callable[[], list[T]], int]


def in_order(tasks: Iterable[Task[T]], workers: int, name: str) -> Iterator[T]:
    """The results of `tasks`, run on `workers` threads named after `name`, in the order of the tasks.

    Tasks are taken from the iterable only while the window has room, so a lazy iterable of a page's
    objects is read as far ahead as the window, no further. A task's exception is raised when its turn
    comes: every result before it is out first.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        window: deque[tuple[Future[list[T]], int]] = deque()
        window_bytes = 0
        for task, size in tasks:
            window.append((pool.submit(task), size))
            window_bytes += size
            while len(window) >= WINDOW_PER_WORKER * workers or window_bytes > WINDOW_BYTES:
                future, size = window.popleft()
                window_bytes -= size
                yield from future.result()
        while window:
            yield from window.popleft()[0].result()


@dataclass(frozen=True)
class Download(Generic[T]):
    """A task whose records need a blob of an email: `run` makes them, downloading (JmapBlobNotFoundError on a
    404); `held` as in `Task`; `what` names the blob in a log line or an error ("part 2 of email M1 (blob B1)").
    A task of several emails (a Blob/get batch) hands each 404 back as a `NotFound` of that email's download."""

    run: Callable[[], Sequence[T | NotFound[T]]]
    held: int
    email_id: str
    what: str


@dataclass(frozen=True)
class NotFound(Generic[T]):
    """A download that answered HTTP 404, to be checked."""

    download: Download[T]


@dataclass(frozen=True)
class MissingBlobs:
    """Which emails of 404 downloads still exist (`existing`, one Email/get for a round's ids), and where to say
    what became of them (`log`, prefixed by `label`: "raw_messages: account acc1")."""

    existing: Callable[[list[str]], set[str]]
    log: Callable[[str], None]
    label: str


def checked_in_order(
    downloads: Iterable[Download[T]], workers: int, name: str, missing: MissingBlobs
) -> Iterator[T]:
    """The records of `downloads` (`in_order`), where a 404 is checked before anything is concluded.

    After the downloads, the emails of those that answered 404 are asked for, all in one Email/get: one the server
    reports `notFound` was destroyed after it was read, its deletion comes with the changes, and it is left out
    with a log line. One that still exists is downloaded again, in rounds, at most MISSING_BLOB_ATTEMPTS times in
    all; then the sync fails in one line, never leaving it out at exit 0 (no later /changes would bring an email
    that did not change). Records of a download that succeeds on a later round come after the others of the page;
    the state moves only after the page's last record all the same.
    """
    pending: Iterable[Download[T]] = downloads
    for attempt in range(1, MISSING_BLOB_ATTEMPTS + 1):
        not_found: list[Download[T]] = []
        for item in in_order(((_catching(download), download.held) for download in pending), workers, name):
            if isinstance(item, NotFound):
                not_found.append(item.download)
            else:
                yield item
        if not not_found:
            return
        existing = missing.existing(list(dict.fromkeys(download.email_id for download in not_found)))
        for download in not_found:
            if download.email_id not in existing:
                missing.log(f"{missing.label}: {download.what} answered HTTP 404 and the email is gone (Email/get: "
                            "notFound), destroyed after it was read; no record for it, its deletion comes with the "
                            "changes")
        pending = [download for download in not_found if download.email_id in existing]
        if not pending:
            return
        if attempt < MISSING_BLOB_ATTEMPTS:
            time.sleep(MISSING_BLOB_WAIT_SECONDS * attempt)
    raise JmapServerError(_still_missing(missing.label, list(pending)))


def _catching(download: Download[T]) -> Callable[[], list[T | NotFound[T]]]:
    def run() -> list[T | NotFound[T]]:
        try:
            return list(download.run())
        except JmapBlobNotFoundError:
            return [NotFound(download)]

    return run


def _still_missing(label: str, downloads: list[Download[T]]) -> str:
    if len(downloads) == 1:
        return (f"{label}: {downloads[0].what} answered HTTP 404 to each of {MISSING_BLOB_ATTEMPTS} downloads while "
                "Email/get still finds the email: the server does not serve its bytes; the sync stops rather than "
                "leave it out")
    return (f"{label}: {downloads[0].what} and {len(downloads) - 1} more answered HTTP 404 to each of "
            f"{MISSING_BLOB_ATTEMPTS} downloads while Email/get still finds their emails: the server does not serve "
            "their bytes; the sync stops rather than leave them out")


@dataclass(frozen=True)
class Wanted(Generic[T]):
    """Records that need one blob: `make` makes them from the blob's bytes, or with None downloads it
    (JmapBlobNotFoundError on HTTP 404). `blob` is its blobId and the octets its object declares where a Blob/get
    may bring it, else None (too large, no size, nothing to bring); `held`, `email_id`, `what` as in `Download`,
    for a download of it alone."""

    make: Callable[[bytes | None], list[T]]
    blob: tuple[str, int] | None
    held: int
    email_id: str
    what: str

    def download(self) -> Download[T]:
        return Download(lambda: self.make(None), self.held, self.email_id, self.what)


def batchable(blob_id: object, size: object) -> tuple[str, int] | None:
    """The blob as `Wanted.blob`: an Id with an UnsignedInt of at most BLOB_GET_LARGEST_BLOB octets (a larger one is
    downloaded on its own, streamed, rather than held in an answer in base64), else None."""
    if isinstance(blob_id, str) and isinstance(size, int) and not isinstance(size, bool) and (
            0 <= size <= BLOB_GET_LARGEST_BLOB):
        return blob_id, size
    return None


class BlobBatches:
    """A stream's downloads as Blob/get batches where the account offers Blob/get (RFC 9404, or Cyrus's dialect):
    consecutive wanted blobs, up to BLOB_GET_BATCH_BYTES by their declared sizes and maxObjectsInGet distinct ids,
    each batch one task of the download window; every other blob a download of its own. `noun` names what a batch
    brings in a log line ("messages", "attachments")."""

    def __init__(self, client: JmapClient, stream: str, noun: str, logger: logging.Logger) -> None:
        self._client = client
        self._stream = stream
        self._noun = noun
        self._logger = logger
        self._told: set[str] = set()  # the accounts whose use of Blob/get was logged
        self._told_failed = False  # a Blob/get that fails once likely fails every time: said once a read

    def tasks(self, account_id: str, wanted: Iterable[Wanted[T]]) -> Iterator[Download[T]]:
        """The tasks of `wanted`, in order: a batch ends where it is full, and before a blob that is not in it, so
        that records keep their order. `wanted` is taken lazily, as the window takes the tasks."""
        capability = blob_get_capability(self._client.session, account_id)
        if capability is not None and account_id not in self._told:
            self._told.add(account_id)
            self._logger.info("%s: account %s offers Blob/get (%s): %s of at most %d bytes come by Blob/get, larger "
                              "ones by download", self._stream, account_id, capability, self._noun,
                              BLOB_GET_LARGEST_BLOB)
        most_ids = self._client.session.limits.max_objects_in_get
        batch: list[tuple[Wanted[T], tuple[str, int]]] = []
        blob_ids: set[str] = set()  # the batch's distinct blobs: one that parts share is asked for once
        declared = 0
        for item in wanted:
            blob = item.blob if capability is not None else None
            full = blob is not None and blob[0] not in blob_ids and (
                len(blob_ids) == most_ids or declared + blob[1] > BLOB_GET_BATCH_BYTES)
            if batch and (blob is None or full):
                yield self._batch(account_id, str(capability), batch, declared)
                batch, blob_ids, declared = [], set(), 0
            if blob is None:
                yield item.download()
            else:
                batch.append((item, blob))
                declared += blob[1] if blob[0] not in blob_ids else 0
                blob_ids.add(blob[0])
        if batch:
            yield self._batch(account_id, str(capability), batch, declared)

    def _batch(
        self, account_id: str, capability: str, batch: list[tuple[Wanted[T], tuple[str, int]]], declared: int
    ) -> Download[T]:
        """The Blob/get of the batch's blobs (`declared` octets by their objects) and their records; it holds the
        answer, then (as rows, for raw_messages) the blobs in base64: twice their bytes, about. A blob not brought
        whole is downloaded; one that answers 404 is handed to `checked_in_order` as its own download, the batch's
        other records kept."""
        def run() -> list[T | NotFound[T]]:
            blobs = self._fetch(account_id, capability, list(dict.fromkeys(blob_id for _, (blob_id, _) in batch)),
                                declared)
            records: list[T | NotFound[T]] = []
            for item, (blob_id, size) in batch:
                content = blobs.content(blob_id, size) if blobs.lists else None
                if content is not None:
                    records.extend(item.make(content))
                    continue
                records.extend(_catching(item.download())())
            return records

        return Download(run, 2 * declared, batch[0][0].email_id, f"a Blob/get of {len(batch)} {self._noun}")

    def _fetch(self, account_id: str, capability: str, blob_ids: list[str], declared: int) -> Blobs:
        """What one Blob/get brought; nothing (every blob downloaded instead) where it failed or was refused,
        logged once a read. A transport failure, retried in vain, fails the read as a download's would."""
        try:
            return fetch_blobs(self._client, account_id, capability, blob_ids, declared)
        except (JmapMethodError, JmapRequestError, JmapServerError) as error:
            if not self._told_failed:
                self._told_failed = True
                self._logger.warning("%s: account %s: Blob/get failed (%s); its blobs are downloaded instead",
                                     self._stream, account_id, error)
            return Blobs()
