"""raw_messages in file mode (Airbyte file transfer): each message a file in the staging directory."""

from __future__ import annotations

import ctypes
import errno
import os
import re
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.utils import files_directory
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_jmap import SourceJmap
from source_jmap.streams import staging as staging_module
from source_jmap.streams.staging import _path_part, _received_month

from .fake_jmap import FakeJmap, email
from .helpers import final_state, path_name

DOWNLOADS = re.compile(r"https://jmap\.test/jmap/download/acc1/")
M0000, M0001, M0002 = (path_name(f"M000{n}") for n in range(3))  # the names of the seeded emails' files


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    return tmp_path


def read_raw(config: dict[str, Any], include_files: bool, failing: bool = False,
             state: dict[str, Any] | None = None) -> EntrypointOutput:
    configured = ConfiguredAirbyteStreamBuilder().with_name("raw_messages").with_sync_mode(SyncMode.incremental)
    catalog = CatalogBuilder().with_stream(configured.with_primary_key([["accountId"], ["id"]])).build()
    catalog = ConfiguredAirbyteCatalog(streams=[
        stream.__class__(**{**stream.__dict__, "include_files": include_files}) for stream in catalog.streams
    ])
    state_messages = StateBuilder().with_stream_state("raw_messages", state).build() if state else None
    return read(SourceJmap(), config | {"include_raw_message": True, "max_raw_message_bytes": 1000}, catalog,
                state_messages, expecting_exception=failing)


def seed(fake: FakeJmap, sizes: list[int]) -> None:
    for number, size in enumerate(sizes):
        fake.create("Email", {**email(number), "blobId": f"G{number}", "size": size,
                              "messageId": [f"m{number}@example.com"]})
    fake.mocker.get(DOWNLOADS, content=lambda request, context: b"x" * sizes[
        int(re.search(r"/G(\d+)/", request.url, re.IGNORECASE)[1])])  # type: ignore[index]


def test_discover_declares_raw_messages_file_based(fake: FakeJmap, config: dict[str, Any]) -> None:
    output = discover(SourceJmap(), config | {"include_raw_message": True})
    streams = {stream.name: stream for stream in output.catalog.catalog.streams}
    assert streams["raw_messages"].is_file_based is True
    assert not streams["emails"].is_file_based


def test_with_include_files_each_message_is_a_file_and_its_record_a_file_reference_without_the_bytes(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, [100, 5000])  # 5000 bytes: above max_raw_message_bytes, which does not apply to files
    output = read_raw(config, include_files=True)
    assert output.errors == []
    records = [message.record for message in output.records]
    assert [record.data["id"] for record in records] == ["M0000", "M0001"]
    for record, size in zip(records, [100, 5000], strict=True):
        month = record.data["receivedAt"][:7]
        relative = f"acc1/{month}/{path_name(record.data['id'])}.eml"
        assert record.file_reference is not None
        assert record.file_reference.source_file_relative_path == relative
        assert record.file_reference.staging_file_url == str(staging / relative)
        assert record.file_reference.file_size_bytes == size
        assert (staging / relative).read_bytes() == b"x" * size
        assert "raw_message" not in record.data and "raw_message_skipped" not in record.data
        assert {key: record.data[key] for key in ("blobId", "size", "messageId", "mailboxIds")} == {
            "blobId": record.data["blobId"], "size": size, "messageId": [f"m{record.data['id'][-1]}@example.com"],
            "mailboxIds": fake.store("Email").objects[record.data["id"]]["mailboxIds"],
        }
    assert sorted(path.name for path in staging.rglob("*") if path.is_file()) == [f"{M0000}.eml", f"{M0001}.eml"]


def test_without_include_files_raw_messages_are_rows_as_before(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, [100, 5000])
    records = [message.record for message in read_raw(config, include_files=False).records]
    assert [record.file_reference for record in records] == [None, None]
    assert [("raw_message" in record.data, "raw_message_skipped" in record.data) for record in records] == [
        (True, False), (False, True)
    ]
    assert list(staging.iterdir()) == []


def test_a_message_that_could_not_be_written_fails_the_sync_and_the_next_one_resumes_from_the_page_before(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.max_objects_in_get = 2
    seed(fake, [100, 100, 100, 100])
    fake.mocker.get(re.compile(r"https://jmap\.test/jmap/download/acc1/G3/"), status_code=410)
    output = read_raw(config, include_files=True, failing=True)
    assert "answered HTTP 410" in str(output.errors[-1].trace.error.message)
    # M0002's record went out as soon as its file was whole (the classic CDK held a page's last record back);
    # the last STATE covers only the first page, so the next sync sends it again.
    assert [message.record.data["id"] for message in output.records] == ["M0000", "M0001", "M0002"]
    assert final_state(output)["accounts"]["acc1"]["import"]["anchor"] == "M0001"
    files = sorted(path.name for path in staging.rglob("*") if path.is_file())
    assert files == [f"{M0000}.eml", f"{M0001}.eml", f"{M0002}.eml"]

    fake.mocker.get(re.compile(r"https://jmap\.test/jmap/download/acc1/G3/"), content=b"x" * 100)
    resumed = read_raw(config, include_files=True, state=final_state(output))
    assert [message.record.data["id"] for message in resumed.records] == ["M0002", "M0003"]


def test_a_message_destroyed_before_its_download_gets_neither_a_file_nor_a_record_nor_a_partial_file(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, [100, 100])

    def destroyed(request: Any, context: Any) -> bytes:
        fake.destroy("Email", "M0000")  # after the page's Email/get
        context.status_code = 404
        return b""

    fake.mocker.get(re.compile(r"https://jmap\.test/jmap/download/acc1/G0/"), content=destroyed)
    output = read_raw(config, include_files=True)
    assert output.errors == []
    assert [message.record.data["id"] for message in output.records] == ["M0001"]
    assert [path.name for path in staging.rglob("*") if path.is_file()] == [f"{M0001}.eml"]
    assert any("the message of email M0000 (blob G0) answered HTTP 404 and the email is gone" in log.log.message
               for log in output.logs)


@pytest.mark.parametrize(("account_id", "email_id", "relative"), [
    ("acc1", "m0000", "acc1/2024-01/m0000.eml"),
    ("acc1", "M0000", "acc1/2024-01/M0000~8fdc47d07fcd308a.eml"),
    ("../..", "a/b", "%2E%2E%2F%2E%2E/2024-01/a%2Fb.eml"),
], ids=["JMAP ids as they are", "with a capital letter: and a hash of the exact id",
        "anything else percent-encoded, never leaving the staging directory"])
def test_file_paths_are_made_of_the_account_the_received_month_and_the_email_id(
    account_id: str, email_id: str, relative: str
) -> None:
    assert "/".join((_path_part(account_id), _received_month("2024-01-02T10:00:00Z"),
                     f"{_path_part(email_id)}.eml")) == relative


def test_a_pages_files_are_flushed_to_disk_once_all_are_written_and_before_its_state_is_saved(
    fake: FakeJmap, config: dict[str, Any], staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[list[str]] = []  # the files on disk at each flush
    monkeypatch.setattr(staging_module, "sync_filesystem",
                        lambda directory: flushes.append(sorted(p.name for p in directory.rglob("*.eml"))))
    seed(fake, [10] * 5)  # maxObjectsInGet 3: pages of 3 and 2
    output = read_raw(config, include_files=True)
    assert output.errors == []
    assert flushes == [[f"{M0000}.eml", f"{M0001}.eml", f"{M0002}.eml"],
                       [f"{path_name(f'M000{n}')}.eml" for n in range(5)]]
    assert len(output.state_messages) >= 2  # each page checkpointed (base._emit flushes, then moves the state)


def test_without_include_files_nothing_is_flushed_to_disk(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    flushes: list[None] = []
    monkeypatch.setattr(staging_module, "sync_filesystem", lambda directory: flushes.append(None))
    monkeypatch.setattr(os, "sync", lambda: flushes.append(None))
    seed(fake, [10] * 5)
    assert read_raw(config, include_files=False).errors == []
    assert flushes == []


def test_flushing_syncs_the_filesystem_of_the_staging_directory_alone(
    staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []  # the device of each directory given to syncfs
    monkeypatch.setattr(staging_module, "_libc_syncfs", lambda: lambda fd: synced.append(os.fstat(fd).st_dev) or 0)
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("os.sync() waits for every filesystem of the machine"))
    staging_module.flush_to_disk()
    assert synced == [staging.stat().st_dev]


def test_a_syncfs_that_fails_fails_the_flush_so_that_no_state_covers_the_files(
    staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(staging_module, "_libc_syncfs", lambda: failing)
    with pytest.raises(OSError, match=r"syncfs of the staging directory .* failed: Input/output error"):
        staging_module.flush_to_disk()


def test_without_syncfs_in_the_c_library_every_filesystem_is_synced(
    staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[None] = []
    monkeypatch.setattr(staging_module, "_libc_syncfs", lambda: None)
    monkeypatch.setattr(os, "sync", lambda: synced.append(None))
    staging_module.flush_to_disk()
    assert synced == [None]


def test_syncfs_of_the_c_library_syncs_a_real_directory(tmp_path: Path) -> None:
    staging_module.sync_filesystem(tmp_path)  # raises if the call is wrong (Linux has syncfs since 2.6.39)


@pytest.mark.parametrize(("blob_id", "size"), [("G0", None), ("G0", "abc"), ("G0", -1), (None, 10), (5, 10)])
@pytest.mark.parametrize("include_files", [True, False], ids=["file mode", "row mode"])
def test_an_email_without_a_usable_blob_id_or_size_ends_the_sync_with_one_line_naming_it(
    fake: FakeJmap, config: dict[str, Any], staging: Path, blob_id: Any, size: Any, include_files: bool
) -> None:
    fake.create("Email", {**email(0), "blobId": blob_id, "size": size})
    output = read_raw(config, include_files=include_files, failing=True)
    error = output.errors[0].trace.error  # the stream's; the CDK then sums up the streams that failed
    assert error.message.startswith("The JMAP server sent email 'M0000' with blobId")
    assert "\n" not in error.message
