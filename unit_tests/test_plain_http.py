"""Plain http:// to anything but loopback sends the credentials in the clear: the client says so, and refuses
an https session that would send them to plain http elsewhere (a downgrade)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient, JmapConfigError

from .fake_jmap import session_document

CREDENTIALS = BasicCredentials("alice@example.com", "pw-Plain-4242")


def warnings_for(
    session_url: str, caplog: Any, api_url: str = "/jmap/api/",
    download_url: str = "/jmap/download/{accountId}/{blobId}"
) -> list[str]:
    with requests_mock.Mocker() as mocker, caplog.at_level(logging.WARNING, logger="source_jmap.jmap"):
        mocker.get(session_url, json=session_document(apiUrl=api_url, downloadUrl=download_url))
        _ = JmapClient(session_url, CREDENTIALS).session
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_plain_http_to_another_host_warns_once_that_credentials_travel_unencrypted(caplog: Any) -> None:
    assert warnings_for("http://mail.example.com/jmap/?x=1", caplog) == [
        "session_url http://mail.example.com/jmap/ is plain http: the credentials (Basic auth as user "
        "'alice@example.com') and every email travel unencrypted to mail.example.com; use https://"
    ]


def refusal(session_url: str, **urls: str) -> str:
    with requests_mock.Mocker() as mocker:
        mocker.get(session_url, json=session_document(**urls))
        with pytest.raises(JmapConfigError) as refused:
            _ = JmapClient(session_url, CREDENTIALS).session
    return str(refused.value)


@pytest.mark.parametrize(
    ("name", "url"),
    [("apiUrl", "http://api.example.com/jmap/api/"),
     ("downloadUrl", "http://files.example.com/download/{accountId}/{blobId}/{name}?accept={type}"),
     ("uploadUrl", "http://files.example.com/upload/{accountId}/")],
)
def test_https_session_that_sends_the_credentials_to_plain_http_elsewhere_is_refused(name: str, url: str) -> None:
    host = url.split("/")[2]
    without_query = url.split("?")[0]
    assert refusal("https://mail.example.com/jmap/", **{name: url}) == (
        f"The JMAP session at https://mail.example.com/jmap/ is https, but its {name} {without_query} is plain http: "
        f"the credentials (Basic auth as user 'alice@example.com') would travel unencrypted to {host}. "
        "The server must publish https:// URLs (behind a TLS proxy: tell the server its public URL is https)"
    )


def test_https_session_whose_api_url_is_plain_http_to_loopback_is_accepted(caplog: Any) -> None:
    assert warnings_for("https://mail.example.com/jmap/", caplog, api_url="http://127.0.0.1:8080/jmap/api/") == []


def test_plain_http_session_whose_api_url_is_plain_http_elsewhere_is_warned_about_not_refused(caplog: Any) -> None:
    """The session itself travels unencrypted: its warning covers the credentials, as before."""
    warnings = warnings_for("http://mail.example.com/jmap/", caplog, api_url="http://api.example.com/jmap/api/")
    assert [warning.split(" is plain http")[0] for warning in warnings] == [
        "session_url http://mail.example.com/jmap/", "The JMAP apiUrl http://api.example.com/jmap/api/"
    ]


def test_the_refusal_never_shows_the_password() -> None:
    message = refusal("https://mail.example.com/jmap/", apiUrl="http://api.example.com/jmap/api/")
    assert "pw-Plain-4242" not in message and CREDENTIALS.encoded not in message


@pytest.mark.parametrize(
    "session_url",
    ["https://mail.example.com/jmap/", "http://127.0.0.1:18080/jmap/", "http://127.8.9.1/jmap/",
     "http://localhost:8080/jmap/", "http://[::1]:8080/jmap/"],
)
def test_https_and_loopback_do_not_warn(session_url: str, caplog: Any) -> None:
    assert warnings_for(session_url, caplog) == []


def test_the_warning_never_shows_the_password(caplog: Any) -> None:
    warnings = warnings_for("http://mail.example.com/jmap/", caplog)
    assert warnings and not any("pw-Plain-4242" in warning or CREDENTIALS.encoded in warning for warning in warnings)
