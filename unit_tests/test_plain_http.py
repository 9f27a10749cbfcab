"""Plain http:// to anything but loopback sends the credentials in the clear: the client says so."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient

from .fake_jmap import session_document

CREDENTIALS = BasicCredentials("alice@example.com", "pw-Plain-4242")


def warnings_for(
    session_url: str, caplog: Any, api_url: str = "/jmap/api/", download_url: str = "/jmap/download/{blobId}"
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


def test_https_session_whose_api_url_is_plain_http_warns_about_the_api_url(caplog: Any) -> None:
    [warning] = warnings_for("https://mail.example.com/jmap/", caplog, api_url="http://api.example.com/jmap/api/")
    assert warning.startswith("The JMAP apiUrl http://api.example.com/jmap/api/ is plain http")


def test_https_session_whose_download_url_is_plain_http_on_another_host_warns_about_it(caplog: Any) -> None:
    download_url = "http://files.example.com/download/{accountId}/{blobId}/{name}?accept={type}"
    [warning] = warnings_for("https://mail.example.com/jmap/", caplog, download_url=download_url)
    assert warning.startswith(
        "The JMAP downloadUrl http://files.example.com/download/{accountId}/{blobId}/{name} is plain http"
    )


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
