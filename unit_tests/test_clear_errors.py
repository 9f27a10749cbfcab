"""Malformed input ends in one line that says whose it is, with the right failure type (issue 13, item 15).

A session of the wrong types is the server's; `forbidden`, `accountNotFound` and
`accountNotSupportedByMethod` are the user's to fix; a config that is not JSON, or a number no JMAP
server can take, and a saved state this connector did not write are the user's too. Each used to end
in "Something went wrong in the connector" with a stack trace.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_jmap.config import JmapConfig
from source_jmap.failures import failure_type_of
from source_jmap.jmap import BasicCredentials, JmapClient
from source_jmap.jmap.errors import JmapConfigError, JmapMethodError, JmapServerError
from source_jmap.jmap.policy import Action, FailureKind, resolve
from source_jmap.source import SourceJmap
from source_jmap.streams.state import AccountStates, InvalidStreamState

from .fake_jmap import SESSION_URL, FakeJmap, email, session_document
from .helpers import read_stream

CORE = "urn:ietf:params:jmap:core"
MALFORMED = f"The JMAP session at {SESSION_URL} is malformed: "
MINIMAL: dict[str, Any] = {
    "session_url": "https://mail.example.com",
    "credentials": {"auth_type": "basic", "username": "alice@example.com", "password": "pw-Config-4242"},
}


def with_limit(value: Any) -> dict[str, Any]:
    document = session_document()
    document["capabilities"][CORE]["maxObjectsInGet"] = value
    return document


def changed(**members: Any) -> dict[str, Any]:
    document = copy.deepcopy(session_document())
    document.update(members)
    return document


def account_changed(**members: Any) -> dict[str, Any]:
    document = session_document()
    document["accounts"]["acc1"].update(members)
    return document


MALFORMED_SESSIONS = {
    "maxObjectsInGet 0": (with_limit(0), f"capabilities/{CORE}/maxObjectsInGet is not a positive integer"),
    "maxObjectsInGet null": (with_limit(None), f"capabilities/{CORE}/maxObjectsInGet is not an integer"),
    "maxObjectsInGet abc": (with_limit("abc"), f"capabilities/{CORE}/maxObjectsInGet is not an integer"),
    "accounts a list": (changed(accounts=[]), "accounts is not an object"),
    "capabilities a list": (changed(capabilities=[CORE]), "capabilities is not an object"),
    "core capability a string": (changed(capabilities={CORE: "yes"}), f"capabilities/{CORE} is not an object"),
    "account a string": (changed(accounts={"acc1": "alice"}), "accounts/acc1 is not an object"),
    "accountCapabilities a list": (account_changed(accountCapabilities=["urn:ietf:params:jmap:mail"]),
                                   "accounts/acc1/accountCapabilities is not an object"),
    "apiUrl a number": (changed(apiUrl=5), "apiUrl is not a string"),
    "primaryAccounts a list": (changed(primaryAccounts=["acc1"]), "primaryAccounts is not an object"),
}


@pytest.mark.parametrize(("document", "what"), MALFORMED_SESSIONS.values(), ids=MALFORMED_SESSIONS.keys())
def test_a_session_of_wrong_types_is_a_server_error_in_one_line(document: dict[str, Any], what: str) -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=document)
        with pytest.raises(JmapServerError) as raised:
            JmapClient(SESSION_URL, BasicCredentials("alice", "pw-123")).session  # noqa: B018
    assert str(raised.value) == MALFORMED + what
    assert failure_type_of(raised.value) is FailureType.transient_error


def test_a_malformed_session_fails_check_with_that_line(config: dict[str, Any]) -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=with_limit(0))
        succeeded, message = SourceJmap().check_connection(None, config)  # type: ignore[arg-type]
    assert (succeeded, message) == (False, MALFORMED + f"capabilities/{CORE}/maxObjectsInGet is not a positive integer")


# -- method errors the user must fix ------------------------------------------------------------------------

USERS_TO_FIX = ["forbidden", "accountNotFound", "accountNotSupportedByMethod"]


@pytest.mark.parametrize("error_type", USERS_TO_FIX)
def test_method_errors_about_the_account_are_config_errors_by_the_table(error_type: str) -> None:
    row = resolve(JmapMethodError("Email/get", error_type))
    assert (row.action, row.kind) == (Action.FAIL, FailureKind.USER)
    assert failure_type_of(JmapMethodError("Email/get", error_type)) is FailureType.config_error


def test_other_method_errors_stay_system_errors() -> None:
    assert failure_type_of(JmapMethodError("Email/get", "invalidArguments")) is FailureType.system_error


def test_account_not_found_fails_a_read_as_a_config_error_in_one_line(fake: FakeJmap, config: dict[str, Any]) -> None:
    fake.override = lambda name, arguments: ["error", {"type": "accountNotFound"}]
    output = read_stream(config, "mailboxes", expecting_exception=True)
    [error, *_] = [message.trace.error for message in output.errors]
    assert error.failure_type is FailureType.config_error
    assert error.message.startswith("Mailbox/") and "'accountNotFound'" in error.message
    assert "\n" not in error.message


# -- the config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"session_url": "https://mail.example.com", ', "", "[1, 2]", '"config"'])
def test_a_config_file_that_is_not_a_json_object_is_a_config_error_in_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(AirbyteTracedException) as raised:
        SourceJmap().read_config(str(path))
    assert raised.value.failure_type is FailureType.config_error
    assert raised.value.message is not None and raised.value.message.startswith(f"The config file {path} ")
    assert "\n" not in raised.value.message
    assert "mail.example.com" not in raised.value.message  # nothing of the content: it holds secrets


NUMBERS = ["max_body_value_bytes", "max_raw_message_bytes", "request_timeout_seconds"]


@pytest.mark.parametrize("field", NUMBERS)
@pytest.mark.parametrize("value", [1e20, 1e18, 2**64, 0, -1, 1.5, float("inf"), "abc", True])
def test_a_number_setting_beyond_what_json_and_jmap_carry_is_a_config_error_in_one_line(
    field: str, value: Any
) -> None:
    with pytest.raises(JmapConfigError) as raised:
        JmapConfig.parse({**MINIMAL, field: value})
    assert str(raised.value) == f"{field} must be a whole number from 1 to 9007199254740991"


@pytest.mark.parametrize("field", NUMBERS)
def test_the_largest_number_a_setting_takes_is_the_rfc_8620_unsigned_int(field: str) -> None:
    spec = json.loads((Path(__file__).parent.parent / "spec.json").read_text())["connectionSpecification"]
    assert spec["properties"][field]["maximum"] == 2**53 - 1
    assert getattr(JmapConfig.parse({**MINIMAL, field: 2**53 - 1}), field) == 2**53 - 1
    assert getattr(JmapConfig.parse({**MINIMAL, field: 1e3}), field) == 1000


# -- the saved state ----------------------------------------------------------------------------------------

CORRUPTED_ENTRIES = {
    "import.anchor a number": {"state": "5", "import": {"anchor": 17}},
    "import.anchor an object": {"state": "5", "import": {"anchor": {"id": "M1"}}},
    "import.after a number": {"state": "5", "import": {"after": 1704067200}},
    "import.after a list": {"state": "5", "import": {"after": ["2024-01-01T00:00:00Z"]}},
    "import a list": {"state": "5", "import": ["M1"]},
    "import.anchor null": {"state": "5", "import": {"anchor": None}},
    "import.position negative": {"state": "5", "import": {"after": "2024-01-01T00:00:00Z", "position": -3}},
    "import.position a string": {"state": "5", "import": {"after": "2024-01-01T00:00:00Z", "position": "3"}},
    "import.receivedAt not a date": {"state": "5", "import": {"anchor": "M1", "receivedAt": "garbage"}},
    "import.receivedAt without its offset": {"state": "5",
                                             "import": {"anchor": "M1", "receivedAt": "2024-01-01T00:00"}},
    "import.receivedAt a number": {"state": "5", "import": {"anchor": "M1", "receivedAt": 1704067200}},
    "import.after not a date": {"state": "5", "import": {"after": "yesterday"}},
    "import.after no day of the calendar": {"state": "5", "import": {"after": "2024-02-30T00:00:00Z"}},
    "import.position past an UnsignedInt": {"state": "5",
                                            "import": {"after": "2024-01-01T00:00:00Z", "position": 2**53}},
    "memo a string": {"state": "5", "memo": "parts"},  # what is inside a memo is its stream's to check
    "selection a list": {"state": "5", "selection": ["inbox"]},
    "state a number": {"state": 5},
    "pending a string": {"state": "5", "pending": "M1"},
    "pending of numbers": {"state": "5", "pending": [1, 2]},
    "a member no version wrote": {"state": "5", "imports": {}},
}


@pytest.mark.parametrize("entry", CORRUPTED_ENTRIES.values(), ids=CORRUPTED_ENTRIES.keys())
def test_a_corrupted_account_entry_is_refused_naming_the_account(entry: dict[str, Any]) -> None:
    with pytest.raises(InvalidStreamState, match=r"^the entry for account 'acc1' is malformed: "):
        AccountStates().set_initial_state({"accounts": {"acc1": entry}})


def test_entries_this_connector_writes_are_accepted() -> None:
    states = AccountStates()
    states.set_initial_state({"accounts": {
        "acc1": {"state": "5", "import": {"anchor": "M1", "receivedAt": "2024-01-01T00:00:00Z"}},
        "acc2": {"state": "7", "import": {"after": "2024-01-01T00:00:00Z"}, "memo": {"parts": {"M1": ["2", "3"]}}},
        "acc3": {"state": "9", "import": {}},
        "acc4": {"state": "9", "import": {"after": "2024-01-01T00:00:00Z", "position": 2}},
        # an email whose receivedAt the server left null, and the window after it on a server without anchors
        "acc5": {"state": "9", "import": {"anchor": "M1", "receivedAt": None}},
        "acc6": {"state": "9", "import": {"after": None, "position": 2}},
        "acc7": {"state": "9", "import": {"anchor": "M1", "receivedAt": "2024-01-01T10:00:00.25+02:00"}},
        "acc8": {"state": "9", "pending": ["M1", "M2"]},  # written ahead of a page of created emails
    }})
    assert states.account_ids() == ["acc1", "acc2", "acc3", "acc4", "acc5", "acc6", "acc7", "acc8"]


def test_a_corrupted_entry_fails_a_read_as_a_config_error_naming_the_state(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    output = read_stream(config, "emails", state={"accounts": {"acc1": {"state": "5", "import": {"anchor": 17}}}},
                         expecting_exception=True)
    [error, *_] = [message.trace.error for message in output.errors]
    assert error.failure_type is FailureType.config_error
    assert error.message == (
        "The saved state of stream 'emails' was not written by this connector (the entry for account 'acc1' is "
        "malformed: import/anchor is not a string); reset the stream to import it again"
    )
    assert output.records == []


def test_a_resume_point_whose_received_at_is_no_date_fails_a_read_as_a_config_error_naming_the_stream(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Seen on c0834eb: "Something went wrong in the connector" (Invalid isoformat string) once the anchor was gone."""
    fake.create("Email", email(1))
    state = {"accounts": {"acc1": {"state": "0", "import": {"anchor": "gone", "receivedAt": "garbage"}}}}
    output = read_stream(config, "emails", state=state, expecting_exception=True)
    [error, *_] = [message.trace.error for message in output.errors]
    assert error.failure_type is FailureType.config_error
    assert error.message == (
        "The saved state of stream 'emails' was not written by this connector (the entry for account 'acc1' is "
        "malformed: import/receivedAt is not a date-time with its offset, such as 2024-01-01T00:00:00Z); reset the "
        "stream to import it again"
    )
    assert output.records == []


@pytest.mark.parametrize("kind", ["GLOBAL", "LEGACY"])
def test_a_state_that_is_not_per_stream_is_a_config_error_naming_it(tmp_path: Path, kind: str) -> None:
    message: dict[str, Any] = {"type": kind}
    if kind == "GLOBAL":
        message["global"] = {"shared_state": {"accounts": {}}, "stream_states": [
            {"stream_descriptor": {"name": "emails"}, "stream_state": {"accounts": {"acc1": {"state": "5"}}}}]}
    else:
        message["data"] = {"emails": {"accounts": {"acc1": {"state": "5"}}}}
    path = tmp_path / "state.json"
    path.write_text(json.dumps([message]))
    with pytest.raises(AirbyteTracedException) as raised:
        SourceJmap.read_state(str(path))
    assert raised.value.failure_type is FailureType.config_error
    assert raised.value.message == (
        f"The state passed to read is a {kind} state; this connector writes one STREAM state per stream: "
        "reset the connection's state"
    )
