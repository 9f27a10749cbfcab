"""attachments in file mode (Airbyte file transfer): each attachment part a file of its decoded content."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from airbyte_cdk.models import AirbyteRecordMessage, ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.utils import files_directory
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_jmap import SourceJmap
from source_jmap.streams.staging import (
    FILE_SLACK_BYTES,
    MAX_NAME_BYTES,
    attachment_path,
    file_name,
    staged_path,
    write_whole,
)

from .fake_jmap import FakeJmap, email
from .helpers import final_state, path_name

DOWNLOADS = re.compile(r"https://jmap\.test/jmap/download/acc1/")
M0001, M0002 = path_name("M0001"), path_name("M0002")  # the folders of the seeded emails' files


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    return tmp_path


def read_attachments(config: dict[str, Any], include_files: bool, state: dict[str, Any] | None = None,
                     failing: bool = False) -> EntrypointOutput:
    configured = ConfiguredAirbyteStreamBuilder().with_name("attachments").with_sync_mode(SyncMode.incremental)
    catalog = CatalogBuilder().with_stream(configured.with_primary_key([["accountId"], ["emailId"], ["partId"]]))
    catalog_with_files = ConfiguredAirbyteCatalog(streams=[
        stream.__class__(**{**stream.__dict__, "include_files": include_files}) for stream in catalog.build().streams
    ])
    state_messages = StateBuilder().with_stream_state("attachments", state).build() if state else None
    return read(SourceJmap(), config, catalog_with_files, state_messages, expecting_exception=failing)


def part(part_id: str, blob_id: str, name: str | None, media_type: str = "application/pdf",
         size: int = 10) -> dict[str, Any]:
    return {"partId": part_id, "blobId": blob_id, "name": name, "type": media_type, "size": size,
            "disposition": "attachment", "cid": None}


def content(blob_id: str) -> bytes:
    """The decoded content the fake server sends for a blob: its id, repeated to 10 bytes."""
    return (blob_id.encode() * 10)[:10]


def blob_of(url: str) -> str:
    """The blobId of a download URL (/jmap/download/{accountId}/{blobId}/...): requests-mock's path is lower-cased."""
    return unquote(urlsplit(url).path.split("/")[4])


def serve(fake: FakeJmap) -> list[str]:
    """Answer downloads with `content(blobId)`; the blob ids asked for, in order."""
    asked: list[str] = []

    def answer(request: Any, context: Any) -> bytes:
        blob_id = blob_of(request.url)
        asked.append(blob_id)
        return content(blob_id)

    fake.mocker.get(DOWNLOADS, content=answer)
    return asked


def seed(fake: FakeJmap) -> None:
    """Two emails of different months: one with two parts of the same name, one with a part without a name."""
    fake.create("Email", {**email(1), "attachments": [part("2", "B1-2", "report.pdf"),
                                                      part("3", "B1-3", "report.pdf")]})
    fake.create("Email", {**email(2, "2024-02-03T10:00:00Z"),
                          "attachments": [part("1.2", "B2-1.2", None, "image/png")]})


def files(staging: Path) -> list[str]:
    return sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())


def records(output: EntrypointOutput) -> list[AirbyteRecordMessage]:
    return [message.record for message in output.records]


def without_cursor(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "_ab_cdc_updated_at"}


def test_discover_declares_attachments_file_based(fake: FakeJmap, config: dict[str, Any]) -> None:
    streams = {stream.name: stream for stream in discover(SourceJmap(), config).catalog.catalog.streams}
    assert streams["attachments"].is_file_based is True
    assert not streams["emails"].is_file_based


def test_with_include_files_each_part_is_a_file_of_its_decoded_content_at_a_stable_path_named_in_its_record(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake)
    serve(fake)
    rows = records(read_attachments(config, include_files=False))
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    with_files = records(output)
    assert [without_cursor(record.data) for record in with_files] == [  # the row, and its file's SHA-256
        without_cursor(row.data) | {"sha256": hashlib.sha256(content(row.data["blobId"])).hexdigest()} for row in rows
    ]
    relatives = [f"acc1/2024-01/{M0001}/2/report.pdf", f"acc1/2024-01/{M0001}/3/report.pdf",
                 f"acc1/2024-02/{M0002}/1%2E2/attachment.png"]
    for record, relative in zip(with_files, relatives, strict=True):
        assert record.file_reference is not None
        assert record.file_reference.source_file_relative_path == relative
        assert record.file_reference.staging_file_url == str(staging / relative)
        assert record.file_reference.file_size_bytes == 10
        assert (staging / relative).read_bytes() == content(record.data["blobId"])
    assert files(staging) == sorted(relatives)

    again = read_attachments(config, include_files=True)  # an import from scratch: the same paths, rewritten
    assert [record.file_reference.source_file_relative_path for record in records(again)] == relatives
    assert files(staging) == sorted(relatives)


def test_without_include_files_attachments_are_rows_and_nothing_is_downloaded(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake)
    asked = serve(fake)
    output = read_attachments(config, include_files=False)
    assert [(record.data["partId"], record.file_reference) for record in records(output)] == [
        ("2", None), ("3", None), ("1.2", None)
    ]
    assert asked == []
    assert files(staging) == []


def test_downloads_run_on_up_to_max_concurrent_requests_threads_and_records_keep_their_order(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Email", {**email(1), "attachments": [part(str(n), f"B{n:02d}", f"f{n}.txt") for n in range(12)]})
    threads: set[str] = set()

    def answer(request: Any, context: Any) -> bytes:
        threads.add(threading.current_thread().name)
        time.sleep(0.02)  # requests-mock answers one request at a time: the others wait, and take other threads
        return content(blob_of(request.url))

    fake.mocker.get(DOWNLOADS, content=answer)
    output = read_attachments(config, include_files=True)
    assert [record.data["partId"] for record in records(output)] == [str(n) for n in range(12)]
    assert 1 < len(threads) <= 4  # the fake session's maxConcurrentRequests
    assert all(name.startswith("attachment") for name in threads)


def test_the_parts_of_an_email_destroyed_before_their_download_are_skipped_with_a_log_line_and_the_sync_succeeds(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake)

    def answer(request: Any, context: Any) -> bytes:
        if not blob_of(request.url).startswith("B1-"):
            return content(blob_of(request.url))
        if "M0001" in fake.store("Email").objects:
            fake.destroy("Email", "M0001")  # after the page's Email/get
        context.status_code = 404
        return b""

    fake.mocker.get(DOWNLOADS, content=answer)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert [record.data["partId"] for record in records(output)] == ["1.2"]
    assert files(staging) == [f"acc1/2024-02/{M0002}/1%2E2/attachment.png"]
    for part_id, blob_id in (("2", "B1-2"), ("3", "B1-3")):
        assert any(f"part {part_id} of email M0001 (blob {blob_id}) answered HTTP 404 and the email is gone"
                   in log.log.message for log in output.logs)


def test_hostile_part_names_give_files_inside_their_part_directory_of_the_staging_directory(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    names = ["../../etc/passwd", "a/b", "..", "con\x00trol\r\n\x1b[31m\u202egpj.exe", "n" * 1000 + ".pdf", "\\..\\x"]
    fake.create("Email", {**email(1), "attachments": [part(str(n), f"B{n}", name) for n, name in enumerate(names)]})
    serve(fake)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    directory = (staging / "acc1/2024-01" / M0001).resolve()
    written = [Path(record.file_reference.staging_file_url) for record in records(output) if record.file_reference]
    assert len(written) == len(names)
    for path in written:
        assert path.resolve().parent.parent == directory  # <email>/<part id>/<name>, nowhere else
        assert len(path.name.encode()) <= 255
        assert path.read_bytes() == content(f"B{path.parent.name}")
    assert files(staging) == sorted(str(path.relative_to(staging)) for path in written)


@pytest.mark.parametrize(("name", "media_type", "expected"), [
    ("Übersicht 2023.pdf", "application/pdf", "Übersicht 2023.pdf"),
    ("../../etc/passwd", None, ".._.._etc_passwd"),
    ("a/b\\c", None, "a_b_c"),
    ("tab\there\x00\x7f\u202e.txt", None, "tab_here___.txt"),
    ("..", "text/plain", "attachment.txt"),
    (None, "application/pdf", "attachment.pdf"),
    ("", "application/x-unknown", "attachment"),
    (None, None, "attachment"),
], ids=["a name as it is", "no way up", "no separator", "no control or format character", "dots alone are no name",
        "no name: from its type", "an unknown type: no extension", "neither"])
def test_an_attachment_name_becomes_one_safe_file_name(name: str | None, media_type: str | None, expected: str) -> None:
    assert file_name(name, media_type) == expected


def test_a_long_attachment_name_is_cut_to_its_bound_keeping_its_extension_and_whole_characters() -> None:
    cut = file_name("Ü" * 1000 + ".pdf", "application/pdf")
    assert cut.endswith("Ü.pdf") and len(cut.encode()) <= MAX_NAME_BYTES
    assert len(cut.encode()) > MAX_NAME_BYTES - 2  # as long as whole two-byte characters allow


def test_a_part_larger_than_twice_its_declared_size_is_refused_and_leaves_no_file(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Email", {**email(1), "attachments": [part("2", "B1-2", "report.pdf", size=10)]})
    fake.mocker.get(DOWNLOADS, content=b"x" * (2 * 10 + FILE_SLACK_BYTES + 1))
    output = read_attachments(config, include_files=True, failing=True)
    assert "sent more than" in str(output.errors[-1].trace.error.message)
    assert records(output) == []
    assert files(staging) == []


def test_in_file_mode_a_row_emitted_again_after_an_update_carries_its_file_and_deletions_carry_none(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    for mailbox_id, name, role in [("mb-inbox", "Inbox", "inbox"), ("mb-trash", "Trash", "trash")]:
        fake.create("Mailbox", {"id": mailbox_id, "name": name, "role": role, "parentId": None})
    seed(fake)
    asked = serve(fake)
    config["exclude_mailboxes"] = ["trash"]
    first = read_attachments(config, include_files=True)
    (staging / f"acc1/2024-01/{M0001}/2/report.pdf").unlink()

    fake.update("Email", "M0001", keywords={"$seen": True})  # stays in the selection: emitted again
    fake.update("Email", "M0002", mailboxIds={"mb-trash": True})  # leaves it: its part is deleted
    asked.clear()
    second = read_attachments(config, include_files=True, state=final_state(first))
    assert sorted((r.data["emailId"], r.data["partId"], r.data.get("_ab_cdc_deleted_at") is not None,
                   r.file_reference is not None) for r in records(second)) == [
        ("M0001", "2", False, True), ("M0001", "3", False, True), ("M0002", "1.2", True, False)
    ]
    assert sorted(asked) == ["B1-2", "B1-3"]
    assert (staging / f"acc1/2024-01/{M0001}/2/report.pdf").read_bytes() == content("B1-2")

    fake.destroy("Email", "M0001")
    third = read_attachments(config, include_files=True, state=final_state(second))
    assert {(r.data["emailId"], r.data.get("_ab_cdc_deleted_at") is not None, r.file_reference)
            for r in records(third)} == {("M0001", True, None)}


@pytest.mark.parametrize("long_id", ["M" * 255, "é" * 127], ids=["255 Id characters", "percent-encoded to 762"])
def test_ids_of_any_length_make_files_within_the_255_bytes_of_a_file_name_and_stay_distinct(
    tmp_path: Path, long_id: str
) -> None:
    email_of = {"id": long_id, "receivedAt": "2024-01-02T10:00:00Z"}
    other = {**email_of, "id": long_id[:-1] + "N"}  # the same long prefix
    part = {"partId": long_id, "name": "n" * 400 + ".pdf", "type": "application/pdf"}
    paths = [staged_path(tmp_path, long_id, email_of)[0], staged_path(tmp_path, long_id, other)[0],
             attachment_path(tmp_path, long_id, email_of, part)[0]]
    assert len(set(paths)) == 3
    for path in paths:
        assert write_whole(path, lambda sink: sink.write(b"x")) == 1  # the OS takes the name, and its temp name
        assert path.read_bytes() == b"x" and path.is_relative_to(tmp_path)


def test_part_ids_and_names_that_would_join_alike_give_two_files(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Email", {**email(1), "attachments": [part("1", "B1", "2-x.pdf"), part("1-2", "B2", "x.pdf")]})
    serve(fake)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert files(staging) == [f"acc1/2024-01/{M0001}/1-2/x.pdf", f"acc1/2024-01/{M0001}/1/2-x.pdf"]
    assert (staging / f"acc1/2024-01/{M0001}/1/2-x.pdf").read_bytes() == content("B1")
    assert (staging / f"acc1/2024-01/{M0001}/1-2/x.pdf").read_bytes() == content("B2")


def test_a_part_whose_type_and_size_are_not_what_rfc_8621_says_is_still_written_whole(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Email", {**email(1), "attachments": [{**part("2", "B2", "scan.pdf"), "type": 7, "size": "ten"}]})
    serve(fake)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert (staging / f"acc1/2024-01/{M0001}/2/scan.pdf").read_bytes() == content("B2")


def test_a_part_whose_blob_id_is_not_an_id_ends_the_sync_with_one_line_naming_it(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Email", {**email(1), "attachments": [{**part("2", "B2", "scan.pdf"), "blobId": ["B2"]}]})
    serve(fake)
    output = read_attachments(config, include_files=True, failing=True)
    assert output.errors[0].trace.error.message == (
        "The JMAP server sent part '2' of email 'M0001' with blobId ['B2']; RFC 8621 requires an Id")
