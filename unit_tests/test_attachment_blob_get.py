"""attachments in file mode by Blob/get: where the account offers it, a page's parts come in batches of a Blob/get
each (as raw_messages' messages do), and a part a Blob/get did not bring whole is downloaded as without it."""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.sources.utils import files_directory

from source_jmap.jmap.blobs import BLOB, CYRUS_BLOB
from source_jmap.streams import downloads as download_window

from .fake_jmap import FakeJmap, email
from .helpers import final_state, path_name
from .test_attachment_files import DOWNLOADS, blob_of, content, files, part, read_attachments, records


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    return tmp_path


def seed(fake: FakeJmap, emails: int, parts: int) -> None:
    """`emails` emails of `parts` parts each, blob ids B<email>-<part>."""
    for number in range(emails):
        fake.create("Email", {**email(number), "attachments": [
            part(str(n + 2), f"B{number}-{n + 2}", f"f{n}.txt") for n in range(parts)]})


def serve(fake: FakeJmap, capability: str | None = BLOB, not_found: frozenset[str] = frozenset(),
          gone: frozenset[str] = frozenset()) -> tuple[list[list[str]], list[str]]:
    """Blob/get under `capability` (none: the account does not offer it) answering `content(blobId)`, but for
    `not_found`; downloads answering it too, but HTTP 404 for `gone`. The ids of each Blob/get and the blob ids
    downloaded, in the order asked."""
    blob_gets: list[list[str]] = []
    downloaded: list[str] = []
    if capability is not None:
        fake.account_capabilities[capability] = {}

    def blob_get(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Blob/get":
            return None
        ids = arguments["ids"]
        assert len(ids) <= fake.max_objects_in_get and len(set(ids)) == len(ids)
        blob_gets.append(ids)
        return ["Blob/get", {"accountId": "acc1", "notFound": [blob_id for blob_id in ids if blob_id in not_found],
                             "list": [{"id": blob_id, "data:asBase64": base64.b64encode(content(blob_id)).decode(),
                                       "size": 10} for blob_id in ids if blob_id not in not_found]}]

    def download(request: Any, context: Any) -> bytes:
        blob_id = blob_of(request.url)
        downloaded.append(blob_id)
        if blob_id in gone:
            context.status_code = 404
            return b""
        return content(blob_id)

    fake.override = blob_get
    fake.mocker.get(DOWNLOADS, content=download)
    return blob_gets, downloaded


def file_bytes(staging: Path) -> dict[str, bytes]:
    return {name: (staging / name).read_bytes() for name in files(staging)}


@pytest.mark.parametrize("capability", [BLOB, CYRUS_BLOB], ids=["RFC 9404", "Cyrus before the RFC"])
def test_a_page_of_many_parts_comes_by_few_blob_gets_with_the_records_and_files_the_downloads_gave(
    fake: FakeJmap, config: dict[str, Any], staging: Path, capability: str
) -> None:
    fake.max_objects_in_get = 20
    seed(fake, emails=6, parts=6)  # 36 parts on one page of Email/get
    _, downloaded = serve(fake, capability=None)
    by_downloads = read_attachments(config, include_files=True)
    assert len(downloaded) == 36
    expected = [(record.data, record.file_reference) for record in records(by_downloads)]
    expected_files = file_bytes(staging)

    for path in staging.rglob("*"):
        if path.is_file():
            path.unlink()
    blob_gets, downloaded = serve(fake, capability)
    fake.requests.clear()
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert downloaded == []
    assert sorted(blob_id for ids in blob_gets for blob_id in ids) == sorted(f"B{e}-{p}" for e in range(6)
                                                                             for p in range(2, 8))
    assert len(blob_gets) == 2  # 36 distinct blobs, 20 ids a /get at most (maxObjectsInGet)
    assert len(fake.requests) == 1 + 2  # the page (query and get), then the two Blob/gets
    assert [({**record.data, "_ab_cdc_updated_at": None}, record.file_reference) for record in records(output)] == [
        ({**data, "_ab_cdc_updated_at": None}, reference) for data, reference in expected]
    assert file_bytes(staging) == expected_files
    assert all(record.data["sha256"] == hashlib.sha256(content(record.data["blobId"])).hexdigest()
               for record in records(output))


def test_a_batch_holds_at_most_blob_get_batch_bytes_and_a_blob_shared_by_parts_is_asked_for_once(
    fake: FakeJmap, config: dict[str, Any], staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_window, "BLOB_GET_BATCH_BYTES", 35)  # three parts of 10 octets
    fake.max_objects_in_get = 20
    fake.create("Email", {**email(1), "attachments": [part(str(n), f"B{n}", f"f{n}.txt") for n in range(7)]})
    fake.create("Email", {**email(2), "attachments": [part("2", "B1", "same.txt"), part("3", "B7", "g.txt")]})
    blob_gets, downloaded = serve(fake)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert sorted(blob_gets) == [["B0", "B1", "B2"], ["B3", "B4", "B5"], ["B6", "B1", "B7"]]  # run at once
    assert downloaded == []
    assert (staging / f"acc1/2024-01/{path_name('M0002')}/2/same.txt").read_bytes() == content("B1")


def test_a_part_that_blob_get_reports_not_found_is_downloaded_and_the_others_are_not(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, emails=2, parts=2)
    blob_gets, downloaded = serve(fake, not_found=frozenset({"B1-3"}))
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert sorted(blob_gets) == [["B0-2", "B0-3", "B1-2"], ["B1-3"]]  # the fake's maxObjectsInGet is 3
    assert downloaded == ["B1-3"]
    assert [(record.data["emailId"], record.data["partId"]) for record in records(output)] == [
        ("M0000", "2"), ("M0000", "3"), ("M0001", "2"), ("M0001", "3")]
    for record in records(output):
        assert record.file_reference is not None
        assert Path(record.file_reference.staging_file_url).read_bytes() == content(record.data["blobId"])


def test_without_blob_get_each_part_is_downloaded(fake: FakeJmap, config: dict[str, Any], staging: Path) -> None:
    seed(fake, emails=2, parts=2)
    blob_gets, downloaded = serve(fake, capability=None)
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert sorted(downloaded) == ["B0-2", "B0-3", "B1-2", "B1-3"]
    assert blob_gets == [] and fake.sent_calls("Blob/get") == []
    assert len(records(output)) == 4


def test_a_part_larger_than_blob_get_brings_is_downloaded_in_its_place_among_the_records(
    fake: FakeJmap, config: dict[str, Any], staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_window, "BLOB_GET_LARGEST_BLOB", 15)
    fake.create("Email", {**email(1), "attachments": [part("2", "B2", "a.txt"), part("3", "B3", "b.txt", size=20),
                                                      part("4", "B4", "c.txt")]})
    blob_gets, downloaded = serve(fake)
    output = read_attachments(config, include_files=True)
    assert sorted(blob_gets) == [["B2"], ["B4"]]  # a batch ends before a part it does not hold: records keep order
    assert downloaded == ["B3"]
    assert [record.data["partId"] for record in records(output)] == ["2", "3", "4"]


def test_a_part_blob_get_did_not_bring_whose_email_was_destroyed_has_no_record_and_a_log_line(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, emails=2, parts=1)

    def destroyed_meanwhile(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Blob/get" and "M0001" in fake.store("Email").objects:
            fake.destroy("Email", "M0001")  # after the page's Email/get
        return blob_get(name, arguments)

    _, downloaded = serve(fake, not_found=frozenset({"B1-2"}), gone=frozenset({"B1-2"}))
    blob_get, fake.override = fake.override, destroyed_meanwhile
    output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert downloaded == ["B1-2"]
    assert [record.data["emailId"] for record in records(output)] == ["M0000"]
    assert any("part 2 of email M0001 (blob B1-2) answered HTTP 404 and the email is gone" in log.log.message
               for log in output.logs)


def test_a_part_blob_get_did_not_bring_whose_email_still_exists_and_answers_404_fails_the_sync(
    fake: FakeJmap, config: dict[str, Any], staging: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_window, "MISSING_BLOB_WAIT_SECONDS", 0.0)
    seed(fake, emails=2, parts=1)
    _, downloaded = serve(fake, not_found=frozenset({"B1-2"}), gone=frozenset({"B1-2"}))
    output = read_attachments(config, include_files=True, failing=True)
    assert downloaded == ["B1-2"] * download_window.MISSING_BLOB_ATTEMPTS
    assert [record.data["emailId"] for record in records(output)] == ["M0000"]
    assert (
        "attachments: account acc1: part 2 of email M0001 (blob B1-2) answered HTTP 404 to each of "
        f"{download_window.MISSING_BLOB_ATTEMPTS} downloads while Email/get still finds the email: the server does "
        "not serve its bytes; the sync stops rather than leave it out") in str(output.errors[-1].trace.error.message)


def test_a_blob_get_that_fails_leaves_its_parts_to_downloads_with_one_log_line(
    fake: FakeJmap, config: dict[str, Any], staging: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(fake, emails=3, parts=2)
    _, downloaded = serve(fake)
    fake.override = lambda name, arguments: ["error", {"type": "forbidden"}] if name == "Blob/get" else None
    with caplog.at_level(logging.WARNING):
        output = read_attachments(config, include_files=True)
    assert output.errors == []
    assert len(downloaded) == 6 and len(records(output)) == 6
    assert sum("attachments: account acc1: Blob/get failed" in log.log.message for log in output.logs) == 1


def test_a_row_emitted_again_after_an_update_gets_its_file_by_blob_get(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    for mailbox_id, name, role in [("mb-inbox", "Inbox", "inbox"), ("mb-trash", "Trash", "trash")]:
        fake.create("Mailbox", {"id": mailbox_id, "name": name, "role": role, "parentId": None})
    seed(fake, emails=2, parts=2)
    blob_gets, downloaded = serve(fake)
    config["exclude_mailboxes"] = ["trash"]
    first = read_attachments(config, include_files=True)
    fake.update("Email", "M0000", keywords={"$seen": True})  # stays in the selection: emitted again, with its files
    fake.update("Email", "M0001", mailboxIds={"mb-trash": True})  # leaves it: deletions, no file
    blob_gets.clear()
    second = read_attachments(config, include_files=True, state=final_state(first))
    assert second.errors == []
    assert blob_gets == [["B0-2", "B0-3"]] and downloaded == []
    assert sorted((r.data["emailId"], r.data["partId"], r.file_reference is not None) for r in records(second)) == [
        ("M0000", "2", True), ("M0000", "3", True), ("M0001", "2", False), ("M0001", "3", False)]
