"""Credentials as pasted: surrounding whitespace is dropped, control characters are refused unseen, and every
form in which a secret could be printed (escaped, URL-encoded, Base64) is known to the masking."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets

from source_jmap.config import JmapConfig
from source_jmap.jmap import BasicCredentials, BearerCredentials, JmapConfigError
from source_jmap.run import JmapEntrypoint
from source_jmap.source import SourceJmap

from .fake_jmap import SESSION_URL as FAKE_SESSION_URL
from .fake_jmap import FakeJmap

SESSION_URL = "https://mail.example.com/jmap/"


def basic(username: str = "alice@example.com", password: str = "pw-Creds-4242") -> dict[str, Any]:
    return {"session_url": SESSION_URL,
            "credentials": {"auth_type": "basic", "username": username, "password": password}}


def bearer(api_token: str) -> dict[str, Any]:
    return {"session_url": SESSION_URL, "credentials": {"auth_type": "bearer", "api_token": api_token}}


def test_surrounding_whitespace_of_username_and_password_is_dropped_at_parse_time() -> None:
    credentials = JmapConfig.parse(basic(" alice@example.com\t", "pw-Creds-4242\r\n")).jmap_credentials()
    assert credentials == BasicCredentials("alice@example.com", "pw-Creds-4242")


def test_a_token_pasted_with_a_trailing_newline_is_the_token() -> None:
    assert JmapConfig.parse(bearer("\ttok-Creds-7788\n")).jmap_credentials() == BearerCredentials("tok-Creds-7788")


@pytest.mark.parametrize("control", ["\r\n", "\n", "\r", "\x00", "\x1b", "\t", "\x7f"])
@pytest.mark.parametrize(
    ("config", "field"),
    [
        (lambda c: basic(password=f"pw-Creds{c}4242"), "password"),
        (lambda c: basic(username=f"alice{c}@example.com"), "username"),
        (lambda c: bearer(f"tok-Creds{c}7788"), "api_token"),
    ],
    ids=["password", "username", "api_token"],
)
def test_a_control_character_inside_a_credential_is_a_config_error_that_does_not_show_the_value(
    control: str, config: Any, field: str
) -> None:
    with pytest.raises(JmapConfigError) as refused:
        JmapConfig.parse(config(control))
    message = str(refused.value)
    assert message == (
        f"credentials.{field} contains a control character (a line break, tab or the like); enter it again without it"
    )
    assert "Creds" not in message and "alice" not in message


SECRET = 'pw\\"Creds/é+ 42&'  # a backslash, a quote, a slash, a non-ASCII letter, a plus, a space, an ampersand


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        repr(SECRET)[1:-1],  # how Python prints it inside a message (str repr)
        repr(SECRET.encode())[2:-1],  # how http.client prints it (bytes repr)
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
    ],
    ids=["raw", "repr", "bytes repr", "json", "json utf-8", "url-encoded", "url path", "form-encoded"],
)
def test_every_printable_form_of_a_secret_is_among_the_secrets_to_mask(form: str) -> None:
    assert form in BearerCredentials(SECRET).secrets
    assert form in BasicCredentials("alice@example.com", SECRET).secrets


@pytest.mark.parametrize(
    ("credentials", "field", "kind"),
    [
        ({"auth_type": "basic", "username": "alice@example.com", "password": 123456}, "password", "a number"),
        ({"auth_type": "basic", "username": 4711, "password": "pw-Creds-4242"}, "username", "a number"),
        ({"auth_type": "bearer", "api_token": 99.5}, "api_token", "a number"),
        ({"auth_type": "basic", "username": "alice@example.com", "password": True}, "password", "true or false"),
    ],
)
def test_a_credential_that_is_not_a_string_is_named_in_the_message_without_its_value(
    credentials: dict[str, Any], field: str, kind: str
) -> None:
    with pytest.raises(JmapConfigError) as refused:
        JmapConfig.parse({"session_url": SESSION_URL, "credentials": credentials})
    assert str(refused.value) == (
        f"Invalid configuration: credentials.{field} must be a string (in quotes in JSON), not {kind}"
    )


def run_check(tmp_path: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """`check` through the console script's entrypoint, as Airbyte runs it; its messages."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    entrypoint = JmapEntrypoint(SourceJmap())
    return [json.loads(line) for line in entrypoint.run(entrypoint.parse_args(["check", "--config", str(path)]))]


def test_check_with_a_numeric_password_says_it_must_be_a_string_not_which_auth_type_was_expected(
    tmp_path: Any,
) -> None:
    [status] = [m["connectionStatus"] for m in run_check(tmp_path, basic(password=123456)) if "connectionStatus" in m]
    assert status == {
        "status": "FAILED",
        "message": "Invalid configuration: credentials.password must be a string (in quotes in JSON), not a number",
    }


def test_a_one_character_password_is_not_starred_in_every_log_line(tmp_path: Any, fake: FakeJmap) -> None:
    """Masking "e" would print "Sourc****Jmap"; a secret this short is not masked (nor refused)."""
    config = {"session_url": FAKE_SESSION_URL, "exclude_mailboxes": [],
              "credentials": {"auth_type": "basic", "username": "alice@jmap.test", "password": "e"}}
    [status] = [m["connectionStatus"] for m in run_check(tmp_path, config) if "connectionStatus" in m]
    assert status == {"status": "SUCCEEDED"}
    assert filter_secrets("Check succeeded for SourceJmap") == "Check succeeded for SourceJmap"
    assert filter_secrets(f"Basic {BasicCredentials('alice@jmap.test', 'e').encoded}") == "Basic ****"


@pytest.mark.parametrize("character", ["€", "é", "\u00a0", "ﬁ"], ids=["euro", "latin-1 letter", "nbsp", "ligature"])
def test_a_token_with_a_character_that_is_not_ascii_is_a_config_error_that_does_not_show_it(character: str) -> None:
    """Seen on c0834eb: "'latin-1' codec can't encode", and `check` exited 1 without a CONNECTION_STATUS."""
    with pytest.raises(JmapConfigError) as refused:
        JmapConfig.parse(bearer(f"tok-Creds{character}7788"))
    assert str(refused.value) == (
        "credentials.api_token contains a character that is not ASCII (a letter with an accent, a typographic "
        "quote or space, €); an API token is made of ASCII letters, digits and -._~+/=: copy it again"
    )


def test_check_with_a_token_that_is_not_ascii_fails_with_a_connection_status_in_one_line(tmp_path: Any) -> None:
    messages = run_check(tmp_path, bearer("tok-Creds€7788"))
    [status] = [m["connectionStatus"] for m in messages if "connectionStatus" in m]
    assert status == {"status": "FAILED", "message": (
        "credentials.api_token contains a character that is not ASCII (a letter with an accent, a typographic "
        "quote or space, €); an API token is made of ASCII letters, digits and -._~+/=: copy it again"
    )}
    assert not any("Creds" in json.dumps(message) for message in messages)


def test_a_username_and_password_beyond_latin_1_are_sent_as_utf_8(fake: FakeJmap) -> None:
    """RFC 7617 section 2.1: Basic credentials may be UTF-8 (charset="UTF-8"), which servers decode: kept as typed."""
    config = {"session_url": FAKE_SESSION_URL, "exclude_mailboxes": [],
              "credentials": {"auth_type": "basic", "username": "zoë@jmap.test", "password": "pw-€-4242"}}
    assert SourceJmap().check_connection(logging.getLogger("test"), config) == (True, None)
    sent = fake.mocker.request_history[0].headers["Authorization"]
    assert sent == "Basic " + base64.b64encode("zoë@jmap.test:pw-€-4242".encode()).decode()
