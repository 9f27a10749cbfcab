"""A config that cannot mean what the user wants is refused at parse time, in one line that names the field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from source_jmap.config import JmapConfig
from source_jmap.jmap import JmapConfigError
from source_jmap.run import JmapEntrypoint
from source_jmap.source import SourceJmap

SPEC = json.loads((Path(__file__).parent.parent / "spec.json").read_text())["connectionSpecification"]

MINIMAL: dict[str, Any] = {
    "session_url": "https://mail.example.com",
    "credentials": {"auth_type": "basic", "username": "alice@example.com", "password": "pw-Config-4242"},
}


def refusal(**changes: Any) -> str:
    with pytest.raises(JmapConfigError) as refused:
        JmapConfig.parse({**MINIMAL, **changes})
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("field", ["mailboxes", "exclude_mailboxes"])
@pytest.mark.parametrize("entry", ["", " ", "\t", "  \n "])
def test_an_empty_or_blank_mailbox_entry_is_a_config_error_naming_the_field(field: str, entry: str) -> None:
    message = refusal(**{field: ["inbox", entry]})
    assert message == (
        f"{field} has an empty entry (entry 2); remove it, or enter a mailbox path (Archive/2023) or role (inbox)"
    )


def test_mailbox_entries_that_are_not_blank_are_kept_as_entered() -> None:
    parsed = JmapConfig.parse({**MINIMAL, "mailboxes": ["inbox", "Archive/2023"], "exclude_mailboxes": ["junk"]})
    assert (parsed.mailboxes, parsed.exclude_mailboxes) == (["inbox", "Archive/2023"], ["junk"])


ABSOLUTE_START_DATES = {
    "2024-01-01T00:00:00Z": datetime(2024, 1, 1, tzinfo=UTC),
    "2024-01-01T00:00:00.250Z": datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
    "2024-01-01T09:30:00+02:00": datetime(2024, 1, 1, 7, 30, tzinfo=UTC),
    "2024-01-01": datetime(2024, 1, 1, tzinfo=UTC),  # its midnight UTC
}
NOT_ABSOLUTE_START_DATES = [
    "now", "NOW", " now ", "today", "yesterday", "tomorrow", "last tuesday",  # relative words
    "2024-01-01T00:00:00",  # no offset: the moment depends on where the connector runs
    "2024-01", "2024-W01", "2024-001", "20240101", "2024-01-01 00:00:00Z", "01/02/2024",
]


@pytest.mark.parametrize(("value", "moment"), ABSOLUTE_START_DATES.items())
def test_start_date_is_an_rfc3339_date_time_or_a_date_meaning_its_midnight_utc(value: str, moment: datetime) -> None:
    assert JmapConfig.parse({**MINIMAL, "start_date": value}).start_date == moment


@pytest.mark.parametrize("value", NOT_ABSOLUTE_START_DATES)
def test_start_date_that_is_relative_or_not_absolute_is_a_config_error(value: str) -> None:
    assert refusal(start_date=value) == (
        f"start_date '{value}' is not an RFC 3339 date-time such as 2024-01-01T00:00:00Z or a date such as 2024-01-01"
    )


def test_start_date_that_is_no_day_of_the_calendar_is_a_config_error() -> None:
    assert refusal(start_date="2024-02-30").startswith("start_date '2024-02-30' is not an RFC 3339 date-time")


@pytest.mark.parametrize("value", [*ABSOLUTE_START_DATES, *NOT_ABSOLUTE_START_DATES])
def test_spec_pattern_and_config_model_accept_the_same_start_dates(value: str) -> None:
    try:
        JmapConfig.parse({**MINIMAL, "start_date": value})
        accepted = True
    except JmapConfigError:
        accepted = False
    assert bool(re.search(SPEC["properties"]["start_date"]["pattern"], value)) is accepted


def connection_status(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """`check` through the console script's entrypoint, as Airbyte runs it."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    entrypoint = JmapEntrypoint(SourceJmap())
    messages = [json.loads(line) for line in entrypoint.run(entrypoint.parse_args(["check", "--config", str(path)]))]
    [status] = [message["connectionStatus"] for message in messages if message["type"] == "CONNECTION_STATUS"]
    return status


def test_check_answers_a_relative_start_date_in_the_connectors_words_not_the_spec_patterns(tmp_path: Path) -> None:
    assert connection_status(tmp_path, {**MINIMAL, "start_date": "now"}) == {
        "status": "FAILED",
        "message": "start_date 'now' is not an RFC 3339 date-time such as 2024-01-01T00:00:00Z or a date such as "
                   "2024-01-01",
    }
