"""raw_messages by Blob/get (RFC 9404, or Cyrus's own capability): batches by bytes, downloads for the rest."""

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

from .fake_jmap import FakeJmap, email
from .helpers import read_stream
from .test_raw_message_files import read_raw

DOWNLOADS = re.compile(r"https://jmap\.test/jmap/download/acc1/")


def content_of(number: int, size: int) -> bytes:
    return (f"message {number} ".encode() * size)[:size]


def serve(fake: FakeJmap, sizes: list[int], capability: str = BLOB,
          answer: Callable[[str, bytes], dict[str, Any] | None] | None = None) -> dict[str, bytes]:
    """Emails of these sizes; Blob/get under `capability`, each blob answered by `answer` (None: not found)."""
    contents = {f"G{number}": content_of(number, size) for number, size in enumerate(sizes)}
    for number, size in enumerate(sizes):
        fake.create("Email", {**email(number), "blobId": f"G{number}", "size": size})
    fake.account_capabilities[capability] = {}

    def whole(blob_id: str, content: bytes) -> dict[str, Any] | None:
        return {"id": blob_id, "data:asBase64": base64.b64encode(content).decode(), "size": len(content)}

    def blob_get(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name != "Blob/get":
            return None
        answered = {blob_id: (answer or whole)(blob_id, contents[blob_id]) for blob_id in arguments["ids"]}
        return ["Blob/get", {"accountId": arguments["accountId"], "list": [a for a in answered.values() if a],
                             "notFound": [blob_id for blob_id, a in answered.items() if a is None]}]

    fake.override = blob_get
    fake.mocker.get(DOWNLOADS, content=lambda request, context: contents[
        re.search(r"/(G\d+)/", request.url, re.IGNORECASE)[1].upper()])  # type: ignore[index]
    return contents


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs, "BLOB_GET_BYTES", 250)
    monkeypatch.setattr(blobs, "BLOB_GET_LARGEST_BLOB", 150)


def rows(config: dict[str, Any]) -> dict[str, bytes]:
    output = read_stream(config | {"include_raw_message": True}, "raw_messages")
    assert output.errors == []
    return {m.record.data["id"]: base64.b64decode(m.record.data["raw_message"]) for m in output.records}


def downloads(fake: FakeJmap) -> list[str]:
    return [re.search(r"/(G\d+)/", r.url, re.IGNORECASE)[1].upper()  # type: ignore[index]
            for r in fake.mocker.request_history
            if DOWNLOADS.match(r.url)]


@pytest.mark.parametrize("capability", [BLOB, CYRUS_BLOB], ids=["RFC 9404", "Cyrus before the RFC"])
def test_messages_come_by_blob_get_in_batches_of_the_byte_budget_and_large_ones_by_download(
    fake: FakeJmap, config: dict[str, Any], small_budget: None, capability: str
) -> None:
    contents = serve(fake, [100, 100, 100, 200, 100], capability)
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(5)}
    assert [call["ids"] for call in fake.sent_calls("Blob/get")] == [["G0", "G1"], ["G2"], ["G4"]]
    assert all(capability in body["using"] for body in fake.requests if body["methodCalls"][0][0] == "Blob/get")
    assert downloads(fake) == ["G3"]


def test_a_batch_holds_at_most_max_objects_in_get_blobs(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.max_objects_in_get = 2
    serve(fake, [10] * 5)
    rows(config)
    assert [call["ids"] for call in fake.sent_calls("Blob/get")] == [["G0", "G1"], ["G2", "G3"], ["G4"]]


def test_blobs_that_blob_get_cuts_short_or_marks_are_downloaded_and_those_it_does_not_know_have_no_record(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    def answer(blob_id: str, content: bytes) -> dict[str, Any] | None:
        data = base64.b64encode(content[:5] if blob_id == "G1" else content).decode()  # Cyrus cuts silently
        return None if blob_id == "G3" else {"id": blob_id, "data:asBase64": data, "size": len(content),
                                             **({"isEncodingProblem": True} if blob_id == "G2" else {})}

    contents = serve(fake, [50] * 4, answer=answer)
    assert rows(config) == {f"M000{n}": contents[f"G{n}"] for n in range(3)}
    assert sorted(downloads(fake)) == ["G1", "G2"]


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


def test_in_file_mode_blob_get_bytes_are_written_to_the_files(
    fake: FakeJmap, config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    contents = serve(fake, [50, 60])
    output = read_raw(config, include_files=True)
    assert {m.record.data["id"]: Path(m.record.file_reference.staging_file_url).read_bytes()
            for m in output.records} == {"M0000": contents["G0"], "M0001": contents["G1"]}
    assert downloads(fake) == [] and len(fake.sent_calls("Blob/get")) == 1
