"""Airbyte file transfer as the platform takes it: every RECORD of a file-based stream valid as the protocol's
model, paths unique within the connection (accounts, streams, ids that differ only in case) and the same on
every sync, and each file's SHA-256 in its record, hashed as the bytes were written."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import ConfiguredAirbyteCatalog, SyncMode
from airbyte_cdk.sources.utils import files_directory
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_jmap import SourceJmap
from source_jmap.streams.staging import FileRecord, Sha256Sink, attachment_path, staged_path

from .fake_jmap import FakeJmap, email
from .loopback import loopback_server, origin
from .platform_files import case_folding_clashes, lines_of, platform_file_record
from .test_streamed_download import BLOCK, Blobs, client

FILE_STREAMS = {"raw_messages": [["accountId"], ["id"]], "attachments": [["accountId"], ["emailId"], ["partId"]]}
# Ids that differ only in case, and one that is lower case already: three emails, three files each stream.
CASE_IDS = ["Ma", "MA", "ma"]


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(files_directory, "AIRBYTE_STAGING_DIRECTORY", str(tmp_path))
    return tmp_path


def read_files(config: dict[str, Any], state: dict[str, dict[str, Any]] | None = None) -> EntrypointOutput:
    """raw_messages and attachments, both with Include files, in one read (one connection)."""
    builder = CatalogBuilder()
    for name, primary_key in FILE_STREAMS.items():
        builder.with_stream(ConfiguredAirbyteStreamBuilder().with_name(name).with_sync_mode(SyncMode.incremental)
                            .with_primary_key(primary_key))
    catalog = ConfiguredAirbyteCatalog(streams=[
        stream.__class__(**{**stream.__dict__, "include_files": True}) for stream in builder.build().streams
    ])
    states = None
    if state:
        states_builder = StateBuilder()
        for name, stream_state in state.items():
            states_builder.with_stream_state(name, stream_state)
        states = states_builder.build()
    return read(SourceJmap(), config | {"include_raw_message": True}, catalog, states)


def seed(fake: FakeJmap, ids: list[str]) -> None:
    """Emails of those ids, each with one attachment (part 2); each blob's content names it."""
    for number, email_id in enumerate(ids):
        fake.create("Email", {**email(number), "id": email_id, "blobId": f"G-{email_id}", "size": 20,
                              "messageId": [f"{email_id}@example.com"], "attachments": [
                                  {"partId": "2", "blobId": f"B-{email_id}", "name": "report.pdf",
                                   "type": "application/pdf", "size": 10, "disposition": "attachment", "cid": None}]})
    fake.mocker.get(re.compile(r"https://jmap\.test/jmap/download/acc1/"), content=lambda request, context: (
        f"content of {request.url.split('/')[6]}".encode()))


def file_records(output: EntrypointOutput, staging: Path) -> list[Any]:
    assert output.errors == []
    return [platform_file_record(line, staging) for line in lines_of(output.records)]


def test_every_file_mode_record_is_a_valid_platform_record_with_its_file_reference_and_sha256(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, ["M0001", "m0002"])
    records = file_records(read_files(config), staging)
    assert sorted((record.stream, record.data.get("id") or record.data["emailId"]) for record in records) == [
        ("attachments", "M0001"), ("attachments", "m0002"), ("raw_messages", "M0001"), ("raw_messages", "m0002")]
    for record in records:  # the content the fake server sent for each blob, hashed independently
        assert record.data["sha256"] == hashlib.sha256(f"content of {record.data['blobId']}".encode()).hexdigest()


def test_a_record_without_a_complete_file_reference_or_with_a_wrong_hash_is_not_a_platform_file_record(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, ["m0001"])
    [line, *_] = lines_of(read_files(config).records)
    for broken in [line.replace('"file_size_bytes":', '"file_size":'),
                   re.sub(r'"file_size_bytes":(\d+)', r'"file_size_bytes":"\1"', line),
                   line.replace('"source_file_relative_path":"', '"source_file_relative_path":"../'),
                   re.sub(r'"sha256":"[0-9a-f]', '"sha256":"g', line)]:
        with pytest.raises((AssertionError, ValueError)):
            platform_file_record(broken, staging)


def test_ids_that_differ_only_in_case_get_files_that_never_meet_on_a_case_insensitive_store(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    seed(fake, CASE_IDS)
    records = file_records(read_files(config), staging)
    relatives = [record.file_reference.source_file_relative_path for record in records]
    assert len(relatives) == 2 * len(CASE_IDS)
    assert case_folding_clashes(relatives) == []
    written = [str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file()]
    assert sorted(written) == sorted(relatives)  # nothing overwritten, nothing left over


def test_paths_of_two_accounts_two_streams_and_ids_that_differ_in_case_never_meet(tmp_path: Path) -> None:
    relatives = []
    for account_id in ["acc", "ACC", "Acc"]:
        for email_id in [*CASE_IDS, "a.b", "A.b", "x" * 300, "X" * 300]:
            email_of = {"id": email_id, "receivedAt": "2024-01-02T10:00:00Z"}
            relatives.append(staged_path(tmp_path, account_id, email_of)[1])
            for part_id in ["2", "b", "B"]:
                relatives.append(attachment_path(tmp_path, account_id, email_of, {"partId": part_id, "name": "a"})[1])
    assert len(set(relatives)) == len(relatives) == 3 * 7 * 4
    assert case_folding_clashes(relatives) == []


@pytest.mark.parametrize(("jmap_id", "name"), [
    ("m0001", "m0001"),
    ("Ma", "Ma~1bb657fb6ef26036"),
    ("MA", "MA~f0055891f09fff48"),
], ids=["lower case: the id itself", "a capital letter: the id and a hash of it", "the hash of the exact id"])
def test_an_id_names_its_file_as_itself_and_with_a_capital_letter_a_hash_of_it(jmap_id: str, name: str) -> None:
    email_of = {"id": jmap_id, "receivedAt": "2024-01-02T10:00:00Z"}
    assert staged_path(Path("/s"), "acc1", email_of)[1] == f"acc1/2024-01/{name}.eml"
    assert attachment_path(Path("/s"), jmap_id, email_of, {"partId": jmap_id, "name": "a.pdf"})[1] == (
        f"{name}/2024-01/{name}/{name}/a.pdf")


def test_an_updated_email_downloaded_again_lands_on_the_same_paths_with_the_same_sha256(
    fake: FakeJmap, config: dict[str, Any], staging: Path
) -> None:
    fake.create("Mailbox", {"id": "mb-inbox", "name": "Inbox", "role": "inbox", "parentId": None})
    fake.create("Mailbox", {"id": "mb-trash", "name": "Trash", "role": "trash", "parentId": None})
    seed(fake, CASE_IDS)
    config["exclude_mailboxes"] = ["trash"]  # a filter on mailboxes: updated emails are downloaded again
    first = read_files(config)
    before = {(record.stream, record.file_reference.source_file_relative_path, record.data["sha256"])
              for record in file_records(first, staging)}
    for email_id in CASE_IDS:
        fake.update("Email", email_id, keywords={"$seen": True})
    state = {name: state.stream.stream_state.__dict__ for name, state in (
        (message.state.stream.stream_descriptor.name, message.state) for message in first.state_messages)}
    again = file_records(read_files(config, state), staging)
    assert {record.data.get("id") or record.data["emailId"] for record in again} == set(CASE_IDS)
    after = {(record.stream, record.file_reference.source_file_relative_path, record.data["sha256"])
             for record in again}
    assert after == before
    assert sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file()) == sorted(
        relative for _, relative, _ in before)


def test_row_mode_raw_messages_carry_the_sha256_of_the_bytes_in_the_row(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    seed(fake, ["M0001"])
    configured = ConfiguredAirbyteStreamBuilder().with_name("raw_messages").with_sync_mode(SyncMode.incremental)
    catalog = CatalogBuilder().with_stream(configured.with_primary_key([["accountId"], ["id"]])).build()
    [record] = [message.record for message in read(SourceJmap(), config | {"include_raw_message": True},
                                                   catalog).records]
    assert record.file_reference is None
    assert record.data["sha256"] == hashlib.sha256(b"content of G-M0001").hexdigest()


def test_a_download_cut_off_and_retried_is_hashed_from_its_new_start_without_reading_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda path, mode="r", *args, **kwargs: (
        opened.append(mode), real_open(path, mode, *args, **kwargs))[1])
    with loopback_server(Blobs, cuts=set()) as httpd:
        server = origin(httpd)
        jmap = client(server)
        record = FileRecord.written({"id": "m1"}, (tmp_path / "m1.eml", "m1.eml"),
                                    lambda sink: jmap.download_to(f"{server}/cut/4", sink))
    assert jmap.requests_sent == 2  # the first answer broke off halfway: half the file was written, then again
    assert record["sha256"] == hashlib.sha256(BLOCK * 4).hexdigest()
    assert [mode for mode in opened if "r" in mode] == []  # the file was only written: no second read to hash it
    assert (tmp_path / "m1.eml").read_bytes() == BLOCK * 4


def test_a_hashed_file_refuses_a_seek_or_truncate_that_would_leave_its_hash_describing_other_bytes() -> None:
    sink = Sha256Sink(io.BytesIO())
    sink.write(b"abc")
    for refused in (lambda: sink.seek(1), lambda: sink.seek(0, io.SEEK_END), lambda: sink.truncate(2)):
        with pytest.raises(io.UnsupportedOperation):
            refused()
    assert sink.sha256.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    sink.seek(0)
    sink.truncate()
    sink.write(b"xy")
    assert sink.sha256.hexdigest() == hashlib.sha256(b"xy").hexdigest()
