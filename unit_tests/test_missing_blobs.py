"""A blob download that answers HTTP 404 is checked, never taken for a deletion (issue 18, item 3).

On c0834eb a fake server whose every download answered 404 gave 25 emails, 0 raw_messages records, the stream
complete at exit 0: each 404 was taken as "destroyed after Email/get", and no later /changes brings an email that
did not change. Now the 404s of a page are checked with one Email/get: an email the server reports `notFound`
was destroyed (its deletion comes from /changes) and is skipped; one that still exists is downloaded again, a
bounded number of times, and then fails the sync in one line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.utils import files_directory
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_jmap import SourceJmap
from source_jmap.jmap import BasicCredentials, JmapClient, existing_emails
from source_jmap.streams import downloads

from .fake_jmap import SESSION_URL, FakeJmap, email
from .helpers import final_state, path_name, stream_states

DOWNLOADS = re.compile(r"https://jmap\.test/jmap/download/acc1/")
ATTEMPTS = downloads.MISSING_BLOB_ATTEMPTS


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(downloads, "MISSING_BLOB_WAIT_SECONDS", 0.0)


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    return tmp_path


class Downloads:
    """The fake server's downloads: the blobs `missing` answer 404 (all of them for `None`) for their first `times`
    tries, and those of `destroy` destroy their email and answer 404 (an email destroyed after Email/get)."""

    def __init__(self, fake: FakeJmap, missing: Collection[str] | None = (), times: int = 10**6,
                 destroy: dict[str, str] | None = None) -> None:
        self.fake, self.missing, self.times, self.destroy = fake, missing, times, destroy or {}
        self.asked: Counter[str] = Counter()
        fake.mocker.get(DOWNLOADS, content=self.answer)

    def answer(self, request: Any, context: Any) -> bytes:
        blob_id = unquote(urlsplit(request.url).path.split("/")[4])
        self.asked[blob_id] += 1
        if blob_id in self.destroy:
            if self.destroy[blob_id] in self.fake.store("Email").objects:
                self.fake.destroy("Email", self.destroy[blob_id])
            context.status_code = 404
            return b""
        if (self.missing is None or blob_id in self.missing) and self.asked[blob_id] <= self.times:
            context.status_code = 404
            return b""
        return f"raw {blob_id}".encode()


def checks(fake: FakeJmap) -> list[list[str]]:
    """The ids of each Email/get that asks only for ids: the checks of 404s (a page's Email/get asks for more)."""
    return [arguments["ids"] for arguments in fake.sent_calls("Email/get")
            if arguments.get("properties") == ["id"] and "ids" in arguments]  # not a page's ids asked again ("#ids")


def seed_emails(fake: FakeJmap, count: int) -> None:
    fake.max_objects_in_get = 50  # one page
    for number in range(count):
        fake.create("Email", {**email(number), "blobId": f"G{number}", "size": 100, "messageId": None,
                              "attachments": [{"partId": "2", "blobId": f"B{number}", "name": "a.pdf",
                                               "type": "application/pdf", "size": 10}]})


def read_with_files(config: dict[str, Any], stream: str, include_files: bool, failing: bool = False,
                    state: dict[str, Any] | None = None) -> EntrypointOutput:
    keys = [["accountId"], ["emailId"], ["partId"]] if stream == "attachments" else [["accountId"], ["id"]]
    configured = ConfiguredAirbyteStreamBuilder().with_name(stream).with_sync_mode(SyncMode.incremental)
    catalog = CatalogBuilder().with_stream(configured.with_primary_key(keys)).build()
    catalog = ConfiguredAirbyteCatalog(streams=[
        configured_stream.__class__(**{**configured_stream.__dict__, "include_files": include_files})
        for configured_stream in catalog.streams
    ])
    state_messages = StateBuilder().with_stream_state(stream, state).build() if state else None
    return read(SourceJmap(), config | {"include_raw_message": True}, catalog, state_messages,
                expecting_exception=failing)


def files(staging: Path) -> list[str]:
    return sorted(path.name for path in staging.rglob("*") if path.is_file())


def failure(output: EntrypointOutput) -> str:
    return str(output.errors[0].trace.error.message)


MODES = {"rows": ("raw_messages", False), "files": ("raw_messages", True)}


@pytest.mark.parametrize(("stream", "include_files"), MODES.values(), ids=MODES.keys())
def test_emails_that_exist_but_whose_every_download_answers_404_fail_the_sync_in_one_line(
    fake: FakeJmap, config: dict[str, Any], staging: Path, stream: str, include_files: bool
) -> None:
    seed_emails(fake, 25)
    served = Downloads(fake, missing=None)
    output = read_with_files(config, stream, include_files, failing=True)
    assert output.records == []
    # Only the import's start, which covers no record: the next sync imports them again
    assert [state["accounts"]["acc1"]["import"] for state in stream_states(output)] == [{}]
    assert failure(output) == (
        f"raw_messages: account acc1: the message of email M0000 (blob G0) and 24 more answered HTTP 404 to each of "
        f"{ATTEMPTS} downloads while Email/get still finds their emails: the server does not serve their bytes; the "
        "sync stops rather than leave them out"
    )
    assert served.asked == Counter({f"G{number}": ATTEMPTS for number in range(25)})
    assert checks(fake) == [[f"M{number:04d}" for number in range(25)]] * ATTEMPTS  # one check a round, whole
    assert files(staging) == []


@pytest.mark.parametrize(("stream", "include_files"), MODES.values(), ids=MODES.keys())
def test_a_download_that_answers_404_for_an_email_that_exists_is_tried_again_and_its_record_arrives(
    fake: FakeJmap, config: dict[str, Any], staging: Path, stream: str, include_files: bool
) -> None:
    seed_emails(fake, 3)
    served = Downloads(fake, missing={"G1"}, times=ATTEMPTS - 1)
    output = read_with_files(config, stream, include_files)
    assert output.errors == []
    assert sorted(message.record.data["id"] for message in output.records) == ["M0000", "M0001", "M0002"]
    assert served.asked["G1"] == ATTEMPTS
    assert checks(fake) == [["M0001"]] * (ATTEMPTS - 1)
    assert "import" not in final_state(output)["accounts"]["acc1"]  # the import is over
    if include_files:
        assert files(staging) == [f"{path_name(f'M000{n}')}.eml" for n in range(3)]


@pytest.mark.parametrize(("stream", "include_files"), MODES.values(), ids=MODES.keys())
def test_a_page_whose_downloads_answer_404_is_checked_in_one_email_get_and_only_destroyed_emails_are_skipped(
    fake: FakeJmap, config: dict[str, Any], staging: Path, stream: str, include_files: bool
) -> None:
    seed_emails(fake, 4)
    served = Downloads(fake, missing={"G0"}, times=1, destroy={"G1": "M0001", "G3": "M0003"})
    output = read_with_files(config, stream, include_files)
    assert output.errors == []
    assert sorted(message.record.data["id"] for message in output.records) == ["M0000", "M0002"]
    assert checks(fake) == [["M0000", "M0001", "M0003"]]
    assert (served.asked["G1"], served.asked["G3"]) == (1, 1)  # destroyed: not downloaded again
    logged = [log.log.message for log in output.logs]
    assert any("raw_messages: account acc1: the message of email M0001 (blob G1) answered HTTP 404 and the email is "
               "gone (Email/get: notFound), destroyed after it was read; no record for it, its deletion comes with "
               "the changes" in line for line in logged)

    later = read_with_files(config, stream, include_files, state=final_state(output))
    assert sorted((message.record.data["id"], "_ab_cdc_deleted_at" in message.record.data)
                  for message in later.records) == [("M0001", True), ("M0003", True)]


def test_an_attachment_whose_email_exists_but_whose_part_answers_404_fails_the_sync_in_one_line(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed_emails(fake, 2)
    Downloads(fake, missing={"B1"})
    output = read_with_files(config, "attachments", include_files=True, failing=True)
    # Only the import's start: the page's records are not covered, the next sync reads it again
    assert [state["accounts"]["acc1"]["import"] for state in stream_states(output)] == [{}]
    assert failure(output) == (
        f"attachments: account acc1: part 2 of email M0001 (blob B1) answered HTTP 404 to each of {ATTEMPTS} "
        "downloads while Email/get still finds the email: the server does not serve its bytes; the sync stops "
        "rather than leave it out"
    )
    assert checks(fake) == [["M0001"]] * ATTEMPTS


def test_an_attachment_whose_email_was_destroyed_before_its_download_is_skipped_with_a_log_line(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed_emails(fake, 2)
    Downloads(fake, destroy={"B1": "M0001"})
    output = read_with_files(config, "attachments", include_files=True)
    assert output.errors == []
    assert [message.record.data["emailId"] for message in output.records] == ["M0000"]
    assert checks(fake) == [["M0001"]]
    assert any("attachments: account acc1: part 2 of email M0001 (blob B1) answered HTTP 404 and the email is gone "
               "(Email/get: notFound)" in log.log.message for log in output.logs)


def test_the_check_asks_for_every_id_in_one_request_within_max_objects_in_get_and_trusts_only_not_found(
    fake: FakeJmap,
) -> None:
    for number in range(7):
        fake.create("Email", email(number))
    fake.destroy("Email", "M0002")
    fake.override = lambda name, arguments: (  # a server that leaves M0005 out of both list and notFound
        [name, {"accountId": "acc1", "state": "8", "list": [], "notFound": []}]
        if "M0005" in arguments.get("ids", []) else None)
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    ids = [f"M{number:04d}" for number in range(7)]
    assert existing_emails(client, "acc1", ids) == set(ids) - {"M0002"}
    assert fake.method_calls() == [["Email/get"] * 3]  # maxObjectsInGet 3: three calls, one request
