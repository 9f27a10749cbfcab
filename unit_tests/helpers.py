from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.state_builder import StateBuilder

from source_jmap import SourceJmap


def read_stream(config: dict[str, Any], stream: str, sync_mode: SyncMode = SyncMode.incremental,
                state: dict[str, Any] | None = None, expecting_exception: bool = False) -> EntrypointOutput:
    configured = ConfiguredAirbyteStreamBuilder().with_name(stream).with_sync_mode(sync_mode)
    catalog = CatalogBuilder().with_stream(configured.with_primary_key([["accountId"], ["id"]])).build()
    state_messages = StateBuilder().with_stream_state(stream, state).build() if state is not None else None
    return read(SourceJmap(), config, catalog, state_messages, expecting_exception=expecting_exception)


def ids(output: EntrypointOutput) -> list[str]:
    return [message.record.data["id"] for message in output.records]


def stream_states(output: EntrypointOutput) -> list[dict[str, Any]]:
    return [message.state.stream.stream_state.__dict__ for message in output.state_messages]


def last_state_before_the_first_record(output: EntrypointOutput) -> dict[str, Any]:
    """What a run killed right after its first record leaves for the next one."""
    states = []
    for message in output.records_and_state_messages:
        if message.type.value == "RECORD":
            return dict(states[-1].stream.stream_state.__dict__)
        states.append(message.state)
    raise AssertionError("no record")


def final_state(output: EntrypointOutput) -> dict[str, Any]:
    return stream_states(output)[-1]


def path_name(jmap_id: str) -> str:
    """The file or folder name of an id made of Id characters in file mode: itself, and when it has a capital
    letter `~` and 16 hex digits of its SHA-256, so that no two ids meet on a case-insensitive store."""
    if jmap_id == jmap_id.lower():
        return jmap_id
    return f"{jmap_id}~{hashlib.sha256(jmap_id.encode()).hexdigest()[:16]}"


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Poll `condition` until it holds; fail with `what` if it has not within `seconds` (a thread's work that ends
    on its own, but not at a moment the test can wait on)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)
