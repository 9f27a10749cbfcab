"""raw_messages by Blob/get (RFC 9404, or Cyrus's own capability): once a page's Email/get has said their sizes,
the messages of at most BLOB_GET_LARGEST_BLOB octets in batches of BLOB_GET_BATCH_BYTES, each blob cut at
BLOB_GET_LARGEST_BLOB octets; downloads for the rest."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.sources.utils import files_directory

from source_jmap.jmap import blobs
from source_jmap.jmap.blobs import BLOB, CYRUS_BLOB
from source_jmap.streams import downloads as download_window

from .fake_jmap import FakeJmap, email
from .helpers import final_state, read_stream
from .test_raw_message_files import read_raw

DOWNLOADS = re.compile(r"https://jmap\.test/jmap/download/acc1/")
Answer = Callable[[str, bytes, int], dict[str, Any] | None]


def content_of(number: int, size: int) -> bytes:
    return (f"message {number} ".encode() * size)[:size]


def cut_to_length(blob_id: str, content: bytes, length: int) -> dict[str, Any] | None:
    """As RFC 9404 and Cyrus answer: `length` octets at most; isTruncated when the range ran past the end."""
    return {"id": blob_id, "data:asBase64": base64.b64encode(content[:length]).decode(), "size": len(content),
            **({"isTruncated": True} if length >= len(content) else {})}


def serve(fake: FakeJmap, sizes: list[int], capability: str = BLOB, answer: Answer = cut_to_length) -> dict[str, bytes]:
    """Emails of these sizes; Blob/get under `capability`, each blob answered by `answer` (None: not found)."""
    contents = {f"G{number}": content_of(number, size) for number, size in enumerate(sizes)}
    for number, size in enumerate(sizes):
        fake.create("Email", {**email(number), "blobId": f"G{number}", "size": size})
    fake.account_capabilities[capability] = {}

    def blob_get(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Blob/get":
            return None
        answered = {blob_id: answer(blob_id, contents[blob_id], arguments["length"]) for blob_id in arguments["ids"]}
        return ["Blob/get", {"accountId": arguments["accountId"], "list": [a for a in answered.values() if a],
                             "notFound": [blob_id for blob_id, a in answered.items() if a is None]}]

    fake.override = blob_get
    fake.mocker.get(DOWNLOADS, content=lambda request, context: contents[
        re.search(r"/(G\d+)/", request.url, re.IGNORECASE)[1].upper()])  # type: ignore[index]
    return contents


def rows(config: dict[str, Any]) -> dict[str, bytes]:
    output = read_stream(config | {"include_raw_message": True}, "raw_messages")
    assert output.errors == []
    return {m.record.data["id"]: base64.b64decode(m.record.data["raw_message"]) for m in output.records}


def downloads(fake: FakeJmap) -> list[str]:
    return [re.search(r"/(G\d+)/", r.url, re.IGNORECASE)[1].upper()  # type: ignore[index]
            for r in fake.mocker.request_history
            if DOWNLOADS.match(r.url)]


def blob_gets(fake: FakeJmap) -> list[tuple[list[str], dict[str, Any]]]:
    """The `using` and the arguments of every Blob/get sent, in the order of their first id (they run at once)."""
    sent = [(body["using"], arguments) for body in fake.requests
            for name, arguments, _ in body["methodCalls"] if name == "Blob/get"]
    return sorted(sent, key=lambda call: int(call[1]["ids"][0][1:]))


@pytest.mark.parametrize("capability", [BLOB, CYRUS_BLOB], ids=["RFC 9404", "Cyrus before the RFC"])
def test_messages_come_by_a_blob_get_of_their_blob_ids_once_their_page_said_their_sizes_and_large_ones_are_downloaded(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capability: str
) -> None:
    monkeypatch.setattr(blobs, "BLOB_GET_LARGEST_BLOB", 150)
    monkeypatch.setattr(download_window, "BLOB_GET_LARGEST_BLOB", 150)
    contents = serve(fake, [100, 100, 100, 200, 100], capability)  # pages of 3 (maxObjectsInGet)
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(5)}
    pages = [body for body in fake.requests if any(name == "Email/query" for name, _, _ in body["methodCalls"])]
    assert len(pages) == 2 and not any(name == "Blob/get" for body in pages for name, _, _ in body["methodCalls"])
    assert [arguments["ids"] for _, arguments in blob_gets(fake)] == [["G0", "G1", "G2"], ["G4"]]
    assert all(arguments["length"] == 150 and capability in using for using, arguments in blob_gets(fake))
    assert downloads(fake) == ["G3"]  # above BLOB_GET_LARGEST_BLOB: never asked of Blob/get


def test_is_truncated_on_a_blob_shorter_than_the_length_asked_is_not_taken_for_a_cut(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    contents = serve(fake, [50, 60])  # cut_to_length flags both: the range ran past their end, as Cyrus says
    assert rows(config) == {"M0000": contents["G0"], "M0001": contents["G1"]}
    assert downloads(fake) == []


def test_blobs_that_blob_get_cuts_short_garbles_or_does_not_know_are_downloaded(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    def answer(blob_id: str, content: bytes, length: int) -> dict[str, Any] | None:
        if blob_id == "G3":
            return None  # `notFound` beside the Email/get that just listed it: Blob/get will not serve it
        data = {"G1": base64.b64encode(content[:5]).decode(), "G2": "not base64!"}.get(
            blob_id, base64.b64encode(content).decode())
        return {"id": blob_id, "data:asBase64": data, "size": len(content)}

    contents = serve(fake, [50] * 4, answer=answer)
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(4)}
    assert sorted(downloads(fake)) == ["G1", "G2", "G3"]


def test_bytes_as_long_as_the_email_says_but_shorter_than_the_blob_says_are_downloaded_instead(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    def answer(blob_id: str, content: bytes, length: int) -> dict[str, Any] | None:
        return {"id": blob_id, "data:asBase64": base64.b64encode(content).decode(), "size": len(content) + 1}

    contents = serve(fake, [50], answer=answer)
    assert rows(config) == {"M0000": contents["G0"]}
    assert downloads(fake) == ["G0"]


def test_a_blob_get_refused_for_its_size_leaves_the_pages_as_they_are_and_its_blobs_to_downloads(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    contents = serve(fake, [50] * 5)
    fake.override = lambda name, arguments: ["error", {"type": "requestTooLarge"}] if name == "Blob/get" else None
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(5)}
    assert fake.sent("Email/query", "limit") == [3, 3]  # maxObjectsInGet: not halved for the Blob/get's refusal
    assert sorted(downloads(fake)) == [f"G{n}" for n in range(5)]


@pytest.mark.parametrize("result", [{"notFound": 5}, {"list": [{"id": 7, "data:asBase64": ""}]}, {"list": "x"}],
                         ids=["notFound not a list", "an item without a string id", "list not a list"])
def test_a_blob_get_answered_unusably_leaves_its_blobs_to_downloads_with_one_log_line(
    fake: FakeJmap, config: dict[str, Any], result: dict[str, Any]
) -> None:
    contents = serve(fake, [50] * 5)
    fake.override = lambda name, arguments: ["Blob/get", {"accountId": "acc1", **result}] if (
        name == "Blob/get") else None
    output = read_stream(config | {"include_raw_message": True}, "raw_messages")
    assert output.errors == []
    assert {m.record.data["id"]: base64.b64decode(m.record.data["raw_message"]) for m in output.records} == {
        f"M000{n}": contents[f"G{n}"] for n in range(5)}
    assert sum("Blob/get failed" in log.log.message for log in output.logs) == 1  # two pages, said once


def test_a_blob_get_answer_of_more_than_twice_the_declared_bytes_is_not_held_and_its_blobs_are_downloaded(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    def answer(blob_id: str, content: bytes, length: int) -> dict[str, Any] | None:
        return {**cut_to_length(blob_id, content, length), "padding": "x" * 10_000}  # 2 x 50 bytes declared

    contents = serve(fake, [50] * 2, answer=answer)
    output = read_stream(config | {"include_raw_message": True}, "raw_messages")
    assert {m.record.data["id"]: base64.b64decode(m.record.data["raw_message"]) for m in output.records} == {
        "M0000": contents["G0"], "M0001": contents["G1"]}
    assert sorted(downloads(fake)) == ["G0", "G1"]
    assert sum("Blob/get failed" in log.log.message for log in output.logs) == 1


def test_a_blob_get_that_fails_falls_back_to_downloads(fake: FakeJmap, config: dict[str, Any]) -> None:
    contents = serve(fake, [50] * 3)
    fake.override = lambda name, arguments: ["error", {"type": "forbidden"}] if name == "Blob/get" else None
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(3)}
    assert downloads(fake) == ["G0", "G1", "G2"]


def test_without_the_capability_every_message_is_downloaded(fake: FakeJmap, config: dict[str, Any]) -> None:
    contents = serve(fake, [50] * 3)
    fake.account_capabilities.clear()
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(3)}
    assert fake.sent_calls("Blob/get") == []


def test_pages_are_of_max_objects_in_get_from_the_first_and_each_blob_get_brings_a_batch_of_their_declared_bytes(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download_window, "BLOB_GET_BATCH_BYTES", 120)
    fake.max_objects_in_get = 100
    serve(fake, [50] * 150)
    assert len(rows(config)) == 150
    assert fake.sent("Email/query", "limit") == [100, 100]  # not a first page sized for blobs of 1 MB each
    batches = [arguments["ids"] for _, arguments in blob_gets(fake)]
    assert [len(ids) for ids in batches] == [2] * 75  # 2 x 50 <= 120 < 3 x 50
    assert sorted(blob_id for ids in batches for blob_id in ids) == sorted(f"G{n}" for n in range(150))


def test_messages_created_since_the_last_sync_come_by_a_blob_get_after_their_changes_page(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    contents = serve(fake, [50] * 2)
    state = final_state(read_stream(config | {"include_raw_message": True}, "raw_messages"))
    fake.create("Email", {**email(2), "blobId": "G2", "size": 50})
    contents["G2"] = content_of(2, 50)
    fake.requests.clear()
    output = read_stream(config | {"include_raw_message": True}, "raw_messages", state=state)
    assert [(m.record.data["id"], base64.b64decode(m.record.data["raw_message"])) for m in output.records] == [
        ("M0002", contents["G2"])]
    [changes_page, blob_get] = fake.requests
    assert [name for name, _, _ in changes_page["methodCalls"]] == ["Email/changes", "Email/get", "Email/get"]
    [[name, arguments, _]] = blob_get["methodCalls"]
    assert (name, arguments["ids"]) == ("Blob/get", ["G2"])
    assert downloads(fake) == []


def test_in_file_mode_blob_get_bytes_are_written_to_the_files(
    fake: FakeJmap, config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    contents = serve(fake, [50, 60])
    output = read_raw(config, include_files=True)
    assert {m.record.data["id"]: Path(m.record.file_reference.staging_file_url).read_bytes()
            for m in output.records} == {"M0000": contents["G0"], "M0001": contents["G1"]}
    assert downloads(fake) == [] and len(fake.sent_calls("Blob/get")) == 1
