"""Airbyte file transfer as the platform reads it: a file-based stream's RECORD line checked against the
protocol's own model (PyPI airbyte-protocol-models-pdv2, generated from airbyte_protocol.yaml, the schema the
platform and destination-s3 are built on), not against the CDK's dataclasses, which check nothing.

Used by the unit tests (fake server) and the integration tests (Cyrus) of raw_messages and attachments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path, PurePosixPath

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.models import AirbyteMessage
from airbyte_protocol.models import AirbyteMessage as PlatformMessage
from airbyte_protocol.models import AirbyteRecordMessage as PlatformRecord
from airbyte_protocol.models import Type as PlatformType
from jsonschema import Draft7Validator

FILE_REFERENCE_FIELDS = {"staging_file_url", "source_file_relative_path", "file_size_bytes"}


def platform_file_record(line: str, staging: Path) -> PlatformRecord:
    """The record of a file-based stream's RECORD line, once it holds to the whole file transfer contract;
    an AssertionError naming what breaks it otherwise.

    - the line parses as the platform's AirbyteMessage, strictly (no "12" for an integer);
    - `file_reference` has the three fields, none null and none besides (the platform drops what it does
      not know, so a misspelt field is a lost one);
    - `staging_file_url` is the absolute path of a file in the staging directory, at
      `source_file_relative_path` below it, and `file_size_bytes` is that file's size;
    - `source_file_relative_path` is relative, `/`-separated, with no `.` or `..` part: the destination
      puts it below its own prefix, and it must stay there;
    - the data's `sha256` is the SHA-256 of the file's bytes, and the data is valid against the stream's
      JSON schema.
    """
    message = PlatformMessage.model_validate_json(line, strict=True)
    record = message.record
    assert message.type is PlatformType.RECORD and record is not None, line[:200]
    reference = record.file_reference
    assert reference is not None, f"a record of file-based stream {record.stream} without a file_reference"
    sent = set(json.loads(line)["record"]["file_reference"])
    assert sent == FILE_REFERENCE_FIELDS, f"file_reference fields {sorted(sent)}"
    assert reference.staging_file_url and reference.source_file_relative_path, reference
    assert reference.file_size_bytes is not None and reference.file_size_bytes >= 0, reference
    relative = PurePosixPath(reference.source_file_relative_path)
    assert not relative.is_absolute() and "\\" not in str(relative), relative
    assert not {".", ".."} & set(reference.source_file_relative_path.split("/")), relative
    path = Path(reference.staging_file_url)
    assert path.is_absolute() and path == staging / relative, (path, staging, relative)
    assert path.is_file() and path.stat().st_size == reference.file_size_bytes, path
    assert record.data.get("sha256") == hashlib.sha256(path.read_bytes()).hexdigest(), path
    errors = [error.message for error in stream_schema(record.stream).iter_errors(record.data)]
    assert errors == [], errors
    return record


def stream_schema(stream: str) -> Draft7Validator:
    """The validator of a stream's JSON schema, as the connector ships it."""
    schema = json.loads((resources.files("source_jmap") / "schemas" / f"{stream}.json").read_text())
    return Draft7Validator(schema)


def case_folding_clashes(relative_paths: Iterable[str]) -> list[str]:
    """The paths that would meet another on a case-insensitive store (macOS, Windows, an object store on
    them): two files of one name under case folding, or a file whose name is another's folder."""
    files: dict[str, str] = {}
    clashes = []
    for relative in relative_paths:
        if relative.casefold() in files:
            clashes.append(f"{relative} and {files[relative.casefold()]}")
        files[relative.casefold()] = relative
    folders = {"/".join(parts[:end]) for parts in (path.split("/") for path in files) for end in range(1, len(parts))}
    clashes += [f"{files[folded]} is also a folder" for folded in files if folded in folders]
    return clashes


def lines_of(messages: Iterable[AirbyteMessage]) -> list[str]:
    """The stdout lines of the CDK's messages (what the platform reads): the entrypoint's own serializer."""
    return [AirbyteEntrypoint.airbyte_message_to_string(message) for message in messages]
