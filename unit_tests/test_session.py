"""Session discovery and parsing, request batching and error mapping in the JMAP client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests_mock

from source_jmap import SourceJmap
from source_jmap.jmap import (
    BasicCredentials,
    BearerCredentials,
    JmapClient,
    MethodCall,
    blob_url,
    select_mail_accounts,
)
from source_jmap.jmap.errors import (
    JmapAuthError,
    JmapConfigError,
    JmapMethodError,
    JmapNotASessionError,
    JmapRequestError,
    JmapServerError,
)
from source_jmap.jmap.session import JmapSession

from .fake_jmap import API_URL, ORIGIN, SESSION_URL, FakeJmap, email, session_document
from .helpers import read_stream

CREDENTIALS = BasicCredentials("alice@jmap.test", "pw-123")


def test_relative_api_and_download_urls_resolve_against_the_session_url() -> None:
    session = JmapSession.from_json(session_document(), SESSION_URL)
    assert session.api_url == API_URL
    assert session.download_url == f"{ORIGIN}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"


def test_cyrus_session_with_draft_capability_names_and_unknown_fields_parses() -> None:
    document = session_document()
    document["capabilities"]["https://cyrusimap.org/ns/jmap/sieve"] = {"x": 1}
    document["primaryAccounts"]["urn:ietf:params:jmap:contacts"] = "acc1"
    document["eventSourceUrl"] = "/jmap/eventsource/"
    session = JmapSession.from_json(document, SESSION_URL)
    assert session.limits.max_objects_in_get == 3


def test_limits_missing_from_the_session_fall_back_to_the_rfc_minimums() -> None:
    document = session_document()
    document["capabilities"]["urn:ietf:params:jmap:core"] = {}
    limits = JmapSession.from_json(document, SESSION_URL).limits
    assert (limits.max_objects_in_get, limits.max_calls_in_request, limits.max_concurrent_requests) == (500, 16, 4)


def test_primary_mail_account_is_read_when_no_account_ids_are_given() -> None:
    document = session_document()
    document["accounts"]["shared"] = document["accounts"]["acc1"]
    document["primaryAccounts"]["urn:ietf:params:jmap:mail"] = "shared"
    assert select_mail_accounts(JmapSession.from_json(document, SESSION_URL), []) == ["shared"]


@pytest.mark.parametrize("primary_accounts", [{}, {"urn:ietf:params:jmap:mail": "gone"}])
def test_without_a_primary_mail_account_no_shared_account_is_read_in_its_place(
    primary_accounts: dict[str, str],
) -> None:
    document = session_document()
    document["accounts"] = {"shared": {**document["accounts"]["acc1"], "isPersonal": False, "isReadOnly": True},
                            **document["accounts"]}
    document["primaryAccounts"] = primary_accounts
    session = JmapSession.from_json(document, SESSION_URL)
    with pytest.raises(JmapConfigError, match=r"names no primary mail account .* set account_ids"):
        select_mail_accounts(session, [])
    assert select_mail_accounts(session, ["acc1"]) == ["acc1"]
    assert select_mail_accounts(session, [], every=True) == ["shared", "acc1"]


def test_session_without_a_mail_account_is_reported() -> None:
    document = session_document()
    document["accounts"]["acc1"]["accountCapabilities"] = {}
    with pytest.raises(JmapConfigError, match="No JMAP account with mail capability found"):
        select_mail_accounts(JmapSession.from_json(document, SESSION_URL), [])


def test_unknown_account_id_is_reported_with_the_accounts_that_exist() -> None:
    with pytest.raises(JmapConfigError, match="'nope' is not an account of this JMAP user; accounts with mail: acc1"):
        select_mail_accounts(JmapSession.from_json(session_document(), SESSION_URL), ["nope"])


def test_bare_origin_is_resolved_through_well_known_and_credentials_go_only_to_the_session() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{ORIGIN}/.well-known/jmap", status_code=301, headers={"Location": SESSION_URL})
        mocker.get(SESSION_URL, [{"status_code": 401}, {"json": session_document()}])
        session = JmapClient(ORIGIN, CREDENTIALS).session
        assert session.api_url == API_URL
        sent = [(request.url, "Authorization" in request.headers) for request in mocker.request_history]
        assert sent == [(f"{ORIGIN}/.well-known/jmap", False), (SESSION_URL, False), (SESSION_URL, True)]


@pytest.mark.parametrize(
    ("body", "content_type", "described"),
    [
        ("<html><body>Sign in</body></html>", "text/html", "an HTML page"),
        ("{not json", "text/plain", "a response that is not valid JSON"),
        ('{"hello": "world"}', "application/json", "JSON of another kind"),
    ],
)
def test_url_that_is_not_a_session_and_has_no_well_known_fails_clearly(
    body: str, content_type: str, described: str
) -> None:
    url = f"{ORIGIN}/login"
    with requests_mock.Mocker() as mocker:
        mocker.get(url, text=body, headers={"Content-Type": content_type})
        mocker.get(f"{ORIGIN}/.well-known/jmap", status_code=404)
        with pytest.raises(JmapNotASessionError) as raised:
            _ = JmapClient(url, CREDENTIALS).session
    message = str(raised.value)
    assert f"{url} answered with {described}, not a JMAP session" in message
    assert "/.well-known/jmap answered with HTTP 404" in message
    assert "Enter the JMAP session URL" in message


def test_session_url_that_is_not_a_session_falls_back_to_well_known() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{ORIGIN}/webmail", text="<html></html>", headers={"Content-Type": "text/html"})
        mocker.get(f"{ORIGIN}/.well-known/jmap", status_code=302, headers={"Location": SESSION_URL})
        mocker.get(SESSION_URL, json=session_document())
        assert JmapClient(f"{ORIGIN}/webmail", CREDENTIALS).session.api_url == API_URL


@pytest.mark.parametrize(
    ("credentials", "status", "expected"),
    [
        (CREDENTIALS, 401, "Authentication failed (HTTP 401) at jmap.test with Basic auth as user 'alice@jmap.test'"),
        (BearerCredentials("tok-456"), 401, "Authentication failed (HTTP 401) at jmap.test with Bearer token auth"),
        (CREDENTIALS, 403, "Access forbidden (HTTP 403)"),
    ],
)
def test_rejected_credentials_name_the_auth_method(credentials: Any, status: int, expected: str) -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, status_code=status, text="<html>no</html>")
        with pytest.raises(JmapAuthError) as raised:
            _ = JmapClient(SESSION_URL, credentials).session
    assert expected in str(raised.value)
    assert "pw-123" not in str(raised.value) and "tok-456" not in str(raised.value)


@pytest.mark.parametrize("url", ["ftp://mail.example.com/", "mail.example.com", "https://", "http://u:p@host/jmap"])
def test_unusable_session_url_is_a_config_error(url: str) -> None:
    with pytest.raises(JmapConfigError, match="session_url"):
        JmapClient(url, CREDENTIALS)


def test_a_changed_session_state_makes_the_client_fetch_the_session_again() -> None:
    with requests_mock.Mocker() as mocker:
        session_fetch = mocker.get(SESSION_URL, json=session_document(state="s0"))
        mocker.post(API_URL, json={"methodResponses": [["Mailbox/get", {"list": []}, "m"]], "sessionState": "s1"})
        client = JmapClient(SESSION_URL, CREDENTIALS)
        call = MethodCall("Mailbox/get", {"accountId": "acc1", "ids": []}, "m")
        client.call([call], [])
        assert session_fetch.call_count == 1
        client.call([call], [])
        assert session_fetch.call_count == 2


def test_method_error_is_raised_for_that_call_only() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        mocker.post(API_URL, json={"sessionState": "s0", "methodResponses": [
            ["Mailbox/get", {"list": []}, "ok"],
            ["error", {"type": "accountNotFound", "description": "no such account"}, "bad"],
        ]})
        responses = JmapClient(SESSION_URL, CREDENTIALS).call(
            [MethodCall("Mailbox/get", {}, "ok"), MethodCall("Email/get", {}, "bad")], []
        )
    assert responses["ok"] == {"list": []}
    with pytest.raises(JmapMethodError, match="Email/get failed with JMAP error 'accountNotFound': no such account"):
        responses["bad"]


def test_request_level_limit_problem_names_the_limit() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        problem = {"type": "urn:ietf:params:jmap:error:limit", "limit": "maxObjectsInGet"}
        mocker.post(API_URL, status_code=400, json=problem)
        with pytest.raises(JmapRequestError) as raised:
            JmapClient(SESSION_URL, CREDENTIALS).call([MethodCall("Email/get", {}, "g")], [])
    assert raised.value.limit == "maxObjectsInGet"


@pytest.mark.parametrize(("status", "body"), [(200, "<html>proxy error</html>"), (404, "not found")])
def test_api_answer_that_is_not_jmap_is_a_server_error(status: int, body: str) -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        mocker.post(API_URL, status_code=status, text=body)
        with pytest.raises(JmapServerError, match=f"{API_URL} answered"):
            JmapClient(SESSION_URL, CREDENTIALS).call([MethodCall("Email/get", {}, "g")], [])


def test_calls_beyond_max_calls_in_request_are_refused_before_sending() -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())
        api = mocker.post(API_URL, json={})
        with pytest.raises(JmapRequestError, match="Not sent: 17 method calls in one request, more than the server's "
                           "maxCallsInRequest of 16") as raised:
            JmapClient(SESSION_URL, CREDENTIALS).call([MethodCall("Email/get", {}, str(n)) for n in range(17)], [])
    assert api.call_count == 0
    assert raised.value.limit == "maxCallsInRequest"


@pytest.mark.parametrize(
    ("credentials", "challenge", "hint"),
    [
        (CREDENTIALS, 'Bearer realm="jmap", error="invalid_token"',
         "the server asks for Bearer authentication, not Basic; use an API token"),
        (BearerCredentials("tok-456"), 'Basic realm="localhost"',
         "the server asks for Basic authentication, not Bearer; use a username and password"),
        (CREDENTIALS, 'Basic realm="localhost"',
         "check the username and password (an app password where the provider requires one)"),
        (BearerCredentials("tok-456"), 'Bearer error="invalid_token"',
         "check that the API token is valid, not expired or revoked, and has the mail scope"),
    ],
)
def test_401_hint_names_the_scheme_the_server_asks_for_when_it_is_not_ours(
    credentials: Any, challenge: str, hint: str
) -> None:
    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, status_code=401, headers={"WWW-Authenticate": challenge})
        with pytest.raises(JmapAuthError) as raised:
            _ = JmapClient(SESSION_URL, credentials).session
    assert str(raised.value).endswith(f": {hint}")


# -- the URL templates (RFC 8620 section 2) ------------------------------------------------------------------

TEMPLATE_REFUSALS = {
    "no {blobId}": ("/jmap/download/{accountId}/{name}?accept={type}", "{blobId}",
                    "every blob would be downloaded from the same URL"),
    "no {accountId}": ("/jmap/download/{blobId}/{name}?accept={type}", "{accountId}",
                       "the server could not tell which account a blob is downloaded from"),
}


@pytest.mark.parametrize(("template", "variable", "consequence"), TEMPLATE_REFUSALS.values(),
                         ids=TEMPLATE_REFUSALS.keys())
def test_a_download_url_without_blob_id_or_account_id_is_refused_in_one_line(
    template: str, variable: str, consequence: str
) -> None:
    with pytest.raises(JmapServerError) as refused:
        JmapSession.from_json(session_document(downloadUrl=template), SESSION_URL)
    assert str(refused.value) == (
        f"The JMAP session at {SESSION_URL} is malformed: downloadUrl has no {variable}, which RFC 8620 section 2 "
        f"requires: {consequence}"
    )


@pytest.mark.parametrize("template", ["/jmap/download/{accountId}/{blobId}", "/d/{accountId}/{blobId}?t={type}"])
def test_a_download_url_without_type_or_name_is_accepted(template: str) -> None:
    session = JmapSession.from_json(session_document(downloadUrl=template), SESSION_URL)
    assert session.download_url == f"{ORIGIN}{template}"


def test_check_and_read_refuse_a_download_url_without_blob_id_in_one_line(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Seen on c0834eb: 25 records at exit 0, every one the bytes of the same URL (issue 18, item 7)."""
    fake.create("Email", {**email(1), "blobId": "G1", "size": 3})
    fake.mocker.get(SESSION_URL, json=session_document(downloadUrl="/jmap/download/{accountId}/m.eml"))
    fake.mocker.get(f"{ORIGIN}/jmap/download/acc1/m.eml", content=b"raw")
    expected = (f"The JMAP session at {SESSION_URL} is malformed: downloadUrl has no {{blobId}}, which RFC 8620 "
                "section 2 requires: every blob would be downloaded from the same URL")
    config |= {"include_raw_message": True}
    assert SourceJmap().check_connection(logging.getLogger("test"), config) == (False, expected)
    output = read_stream(config, "raw_messages", expecting_exception=True)
    assert output.records == []
    assert output.errors[0].trace.error.message == expected


def test_a_session_without_a_download_url_is_accepted_and_refuses_a_download_in_one_line() -> None:
    """A sync of emails alone needs no downloadUrl; a download without one has nowhere to go."""
    document = session_document()
    del document["downloadUrl"]
    session = JmapSession.from_json(document, SESSION_URL)
    with pytest.raises(JmapServerError, match=r"^The JMAP session has no downloadUrl, which RFC 8620 section 2 "
                                              r"requires: no blob can be downloaded$"):
        blob_url(session.download_url, "acc1", "G1", "message/rfc822", "M1.eml")
