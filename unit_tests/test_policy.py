"""The policy rows decide: what a stream, the engine or the pager does about an error is the row resolve() gives,
and the failure type the connector reports is the row's kind, mapped in one place (failures.py)."""

from __future__ import annotations

from typing import Any

import pytest
from airbyte_cdk.models import FailureType

from source_jmap.failures import FAILURE_TYPES, failure_type_of
from source_jmap.jmap.errors import (
    JmapAnswerTooLargeError,
    JmapMethodError,
    JmapRequestError,
    JmapUnreachableError,
    MethodErrorType,
)
from source_jmap.jmap.policy import METHOD_ERRORS, Action, FailureKind, Row, resolve
from source_jmap.jmap.wire import LIMIT_PROBLEM

from .fake_jmap import FakeJmap
from .helpers import read_stream

CYRUS_SIEVE = "https://cyrusimap.org/ns/jmap/sieve"


def test_unknown_method_on_get_is_a_type_not_offered_and_on_changes_a_type_read_whole() -> None:
    assert resolve(JmapMethodError("SieveScript/get", "unknownMethod")).action is Action.NOT_OFFERED
    assert resolve(JmapMethodError("SieveScript/query", "unknownMethod")).action is Action.NOT_OFFERED
    assert resolve(JmapMethodError("Identity/changes", "unknownMethod")).action is Action.READ_WHOLE


def test_the_row_decides_what_a_dialect_stream_does_about_unknown_method(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cyrus lists its sieve capability without serving SieveScript/get: by the row, nothing to read; with the
    row changed to fail, the same answer fails the read, so no other place decides."""
    fake.account_capabilities = {CYRUS_SIEVE: {}}
    fake.override = lambda name, arguments: ["error", {"type": "unknownMethod"}] if name.startswith("Sieve") else None
    assert read_stream(config, "sieve_scripts").errors == []
    monkeypatch.setitem(METHOD_ERRORS, MethodErrorType.UNKNOWN_METHOD,
                        Row(Action.FAIL, FailureKind.UNEXPECTED, "test: no such method"))
    assert read_stream(config, "sieve_scripts", expecting_exception=True).errors != []


def test_an_error_type_no_rfc_names_is_other_and_keeps_its_own_string_for_the_message() -> None:
    error = JmapMethodError("Email/get", "cyrusSaysNo", "no")
    assert error.type is MethodErrorType.OTHER
    assert str(error) == "Email/get failed with JMAP error 'cyrusSaysNo': no"
    assert (resolve(error).action, failure_type_of(error)) == (Action.FAIL, FailureType.system_error)


@pytest.mark.parametrize(
    ("error", "action", "failure_type"),
    [
        (JmapAnswerTooLargeError("too large"), Action.SHRINK, FailureType.transient_error),
        (JmapRequestError("", LIMIT_PROBLEM, "maxObjectsInGet"), Action.SHRINK, FailureType.system_error),
        (JmapUnreachableError("no route"), Action.FAIL, FailureType.config_error),
    ],
)
def test_every_error_resolves_to_one_row_whose_kind_is_the_failure_type(
    error: Any, action: Action, failure_type: FailureType
) -> None:
    assert resolve(error).action is action and failure_type_of(error) is failure_type


def test_every_kind_maps_to_an_airbyte_failure_type() -> None:
    assert set(FAILURE_TYPES) == set(FailureKind)
