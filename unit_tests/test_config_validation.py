"""A config that cannot mean what the user wants is refused at parse time, in one line that names the field."""

from __future__ import annotations

from typing import Any

import pytest

from source_jmap.config import JmapConfig
from source_jmap.jmap import JmapConfigError

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
