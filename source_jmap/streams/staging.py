"""Files in Airbyte's staging directory: a stable path per email or attachment, written whole before any
record names it, with the SHA-256 of its bytes.

A file is written under a temporary name and renamed once whole (`write_whole`): no reader, the destination
included, ever sees a file cut short under its name. Files reach the disk once per page (`flush_to_disk`),
before the state moves past them: a crash of the machine loses no file that a saved state covers.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import mimetypes
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, AirbyteRecordMessageFileReference, Type
from airbyte_cdk.sources.utils import files_directory

# In file mode a message is refused only when the server sends more than twice the size it declared
# for it, plus this: a broken or hostile server cannot fill the disk, and no real message comes near.
FILE_SLACK_BYTES = 1 << 20
_SAFE_PATH_PART = re.compile(r"[A-Za-z0-9_-]+")  # JMAP Ids (RFC 8620 section 1.2) are made of these alone
_CAPITAL = re.compile(r"[A-Z]")  # what case folding changes in a path part (anything else is %XX-escaped)
# An id in a path: at most this many bytes. The servers we know use ids of 1 to 30 characters; RFC 8620
# allows 255, and percent-encoding triples what is not an Id character, which the file system refuses past
# 255 bytes a name (with `.eml` and the temporary `.<uuid>.part`). A longer one is cut and ends in a hash
# of it whole, which keeps it unique and the same on every run.
MAX_ID_BYTES = 64
# The hash that ends an id cut to MAX_ID_BYTES or holding a capital letter: this many hex digits of the
# SHA-256 of the exact id. It only has to tell apart ids whose names are otherwise alike under case folding
# (Ma, MA) or cut alike: two such ids share 64 bits of hash once in 2^64.
ID_HASH_DIGITS = 16
# An attachment's name in its file name: at most this many bytes of UTF-8, well under the 255 of a file name.
MAX_NAME_BYTES = 120
# Characters no file name gets: path separators, and control, format (bidi overrides), surrogate and separator
# characters of Unicode, which a file system refuses or a listing shows misleadingly.
_UNSAFE_NAME_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")


class FileRecord(dict[str, Any]):
    """A record whose content was written to a file in the staging directory, and the reference to it.

    Its `sha256` is the hex SHA-256 of the file's bytes, taken as they were written (`Sha256Sink`): an
    archive can prove later that it holds what the server sent, and find one message archived twice.
    """

    def __init__(self, data: dict[str, Any], file_reference: AirbyteRecordMessageFileReference) -> None:
        super().__init__(data)
        self.file_reference = file_reference

    @classmethod
    def written(cls, data: dict[str, Any], where: tuple[Path, str], write: Callable[[BinaryIO], int]) -> FileRecord:
        """`data` with its file, written whole first (`write_whole`) at `where`: its path, and its part below
        the staging directory (`staged_path`, `attachment_path`)."""
        path, relative = where
        hashed: Sha256Sink | None = None

        def write_hashed(sink: BinaryIO) -> int:
            nonlocal hashed
            hashed = Sha256Sink(sink)
            return write(hashed)

        size = write_whole(path, write_hashed)
        assert hashed is not None  # write_whole called write_hashed, or raised
        return cls(data | {"sha256": hashed.sha256.hexdigest()}, AirbyteRecordMessageFileReference(
            staging_file_url=str(path), source_file_relative_path=relative, file_size_bytes=size,
        ))

    def message(self, stream: str) -> AirbyteMessage:
        """The RECORD message: the CDK makes one of a plain record itself, but without a file reference."""
        return AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream=stream, data=dict(self), emitted_at=time.time_ns() // 1_000_000, file_reference=self.file_reference,
        ))


class Sha256Sink(io.BufferedIOBase, BinaryIO):
    """A file being written, whose bytes also go through a SHA-256 as they pass: the hash of a file with
    no second read of it.

    It takes what a download writes (jmap/transport.py): bytes from the start, and on a retried attempt
    `seek(0)` and `truncate()` before them again, which start the hash over. Any other seek or truncate
    would leave the hash describing other bytes than the file's: refused.
    """

    def __init__(self, target: BinaryIO) -> None:
        super().__init__()
        self._target = target
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:  # type: ignore[override]  # BufferedIOBase takes any buffer
        self.sha256.update(data)
        return self._target.write(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if (offset, whence) != (0, os.SEEK_SET):
            raise io.UnsupportedOperation("a hashed file is written from its start: seek(0) only")
        self.sha256 = hashlib.sha256()
        return self._target.seek(0)

    def truncate(self, size: int | None = None) -> int:
        if size not in (None, 0) or self._target.tell() != 0:
            raise io.UnsupportedOperation("a hashed file is emptied whole, from its start")
        return self._target.truncate(0)


def staged_path(staging: Path, account_id: str, email: dict[str, Any]) -> tuple[Path, str]:
    """`<staging>/<account>/<YYYY-MM of receivedAt>/<email id>.eml`, and the part below `staging`."""
    relative = "/".join((_path_part(account_id), _received_month(email.get("receivedAt")),
                         f"{_path_part(email['id'])}.eml"))
    return staging / relative, relative


def attachment_path(staging: Path, account_id: str, email: dict[str, Any], part: dict[str, Any]) -> tuple[Path, str]:
    """`<staging>/<account>/<YYYY-MM of receivedAt>/<email id>/<part id>/<name>`, and the part below `staging`.

    The part id, a folder of its own, makes the path unique within the email (two parts may have the same
    name; joined to the name by a character ids may hold, `1` + `2-x.pdf` and `1-2` + `x.pdf` would meet);
    the name, made safe (`file_name`), is the sender's, as e-discovery wants it.
    """
    relative = "/".join((_path_part(account_id), _received_month(email.get("receivedAt")), _path_part(email["id"]),
                         _path_part(str(part["partId"])), file_name(part.get("name"), part.get("type"))))
    return staging / relative, relative


def most_file_bytes(size: Any) -> int | None:
    """The most a file may bring: twice the size its object declares, plus FILE_SLACK_BYTES; None (the client's
    own answer cap) where the server declared no size that is an unsigned integer."""
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return 2 * size + FILE_SLACK_BYTES
    return None


def file_name(name: Any, media_type: Any) -> str:
    """A sender's attachment name as one safe path component: no separator or control character, at most
    MAX_NAME_BYTES bytes, its extension kept when cut; `attachment.<extension of its type>` when it has none."""
    text = "".join("_" if char in "/\\" or unicodedata.category(char) in _UNSAFE_NAME_CATEGORIES else char
                   for char in name).strip() if isinstance(name, str) else ""
    if not text.strip("._"):  # nothing left but dots and underscores: no name worth keeping
        return f"attachment{_extension(media_type) if isinstance(media_type, str) else ''}"
    if len(text.encode()) <= MAX_NAME_BYTES:
        return text
    stem, dot, extension = text.rpartition(".")
    suffix = f"{dot}{extension}" if dot and stem and len(extension.encode()) <= 16 else ""
    return _cut(text[:len(text) - len(suffix)], MAX_NAME_BYTES - len(suffix.encode())) + suffix


def _extension(media_type: str) -> str:
    """`.pdf` for application/pdf; nothing for a type Python does not know."""
    return _media_types().guess_extension(media_type.lower()) or ""


@functools.cache
def _media_types() -> mimetypes.MimeTypes:
    """Python's own table of media types, not the system's mime.types: a path must not change from one
    machine to another."""
    return mimetypes.MimeTypes()


def _cut(text: str, most: int) -> str:
    """The longest start of `text` of at most `most` bytes of UTF-8 (never half a character)."""
    return text.encode()[:most].decode(errors="ignore")


def write_whole(path: Path, write: Callable[[BinaryIO], int]) -> int:
    """Write a file through `write` (which returns the bytes written); it exists under its name, whole, once
    this returns. Not synced here: `flush_to_disk` does that for a page's files at once.

    Its folder is made only when the file cannot be opened without it, and the temporary name removed only when
    the file did not get its own: a mkdir and an unlink a file, half of the file-system calls' samples and 5% of
    the download threads' over 3,000 downloads (bench/README.md).
    """
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        sink = partial.open("w+b")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = partial.open("w+b")
    try:
        with sink:
            size = write(sink)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def flush_to_disk() -> None:
    """Make the files written so far durable, before a checkpoint covers them: the staging directory's filesystem
    synced (`sync_filesystem`).

    Once a page, not once a file: an fsync of each file and its directory cost 1 ms a file here, 10,000
    files 13 s, longer than the import of their metadata (10 s); one sync a page costs a few milliseconds.
    """
    sync_filesystem(Path(files_directory.get_files_directory()))


def sync_filesystem(directory: Path) -> None:
    """syncfs(2) of the filesystem that holds `directory`: its files' data and metadata (their names included)
    on disk when this returns; os.sync() where the C library has no syncfs (not Linux).

    Not os.sync() everywhere: that waits for every filesystem of the machine, other programs' writes included.
    100 MB in 3,000 files on a busy 2-core machine (bench/README.md): the sync after them took 0.17 s (median of 3)
    with os.sync(), 0.05 s with syncfs. A failed syncfs (a write the disk refused, Linux 5.8+) fails the page
    rather than let a state cover a file that may be lost.
    """
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        if syncfs(descriptor) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs of the staging directory {directory} failed: {os.strerror(error)}")
    finally:
        os.close(descriptor)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    """The C library's syncfs, or None where there is none."""
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    syncfs.argtypes, syncfs.restype = [ctypes.c_int], ctypes.c_int
    return cast(Callable[[int], int], syncfs)


def _path_part(value: str) -> str:
    """A server's id as one path component, the same on every run and unique under case folding.

    Itself when made of Id characters, else percent-encoded (never `..`). JMAP ids are case-sensitive, but
    macOS's and Windows' file systems, and object stores on them, are not: `Ma.eml` and `MA.eml` would be
    one file there. So an id with a capital letter ends in `~` and a hash of it exactly (`Ma~<16 hex>`),
    and so does one past MAX_ID_BYTES, cut first. An id without capitals keeps its plain name: no two such
    ids meet under case folding (what they hold is lower case already, and escapes are always `%XX`), and
    no plain name has a `~` (an escape, `%7E`, in an id), so none meets a hashed one.
    """
    part = value if _SAFE_PATH_PART.fullmatch(value) else "".join(
        chr(b) if _SAFE_PATH_PART.fullmatch(chr(b)) else f"%{b:02X}" for b in value.encode())
    if len(part) <= MAX_ID_BYTES and not _CAPITAL.search(value):
        return part
    digest = hashlib.sha256(value.encode()).hexdigest()[:ID_HASH_DIGITS]
    return f"{part[:MAX_ID_BYTES - ID_HASH_DIGITS - 1]}~{digest}"


def _received_month(received_at: Any) -> str:
    """`YYYY-MM` of the email's receivedAt: files of one month together, and the path never changes."""
    match = re.match(r"(\d{4})-(\d{2})", received_at) if isinstance(received_at, str) else None
    return f"{match[1]}-{match[2]}" if match else "undated"
