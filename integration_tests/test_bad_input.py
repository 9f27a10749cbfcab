"""Every way a user can get the settings or the state wrong, run as Airbyte runs the connector.

For each bad input: `check` exits 0 with status FAILED, the exact one-line message and no traceback;
`read` exits non-zero with a config_error TRACE carrying the same message, and emits no RECORD and no
STATE. The secrets of every run (the password, the token and the Basic header value) are grepped for.
The real Cyrus serves what it can produce; small loopback servers play the rest (a self-signed TLS
server, a login page, a JSON that is not a session, a session without mail, a Bearer-only server, 403).
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import HOST, HTTP_PORT, MailAccount, new_account
from .connector import Run, connector_arguments, run_connector

STREAMS = ["mailboxes", "emails"]
SPEC_PROPERTIES = json.loads((Path(__file__).resolve().parent.parent / "spec.json").read_text())[
    "connectionSpecification"]["properties"]
WRONG_PASSWORD = "Wr0ng-Pa55-Distinctive-5521"
EXPIRED_TOKEN = "tok-Expired-Distinctive-8812"
FIND_SESSION = "Enter the JMAP session URL (such as https://api.fastmail.com/jmap/session) or just the server's origin"
BASIC_HINT = "check the username and password (an app password where the provider requires one)"


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)


def session_without_mail() -> bytes:
    """A valid session whose only account has contacts but no mail."""
    return json.dumps({
        "capabilities": {"urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:contacts": {}},
        "accounts": {"acc1": {"name": "alice@jmap.test", "accountCapabilities": {"urn:ietf:params:jmap:contacts": {}}}},
        "primaryAccounts": {"urn:ietf:params:jmap:contacts": "acc1"},
        "username": "alice@jmap.test", "apiUrl": "/api/", "state": "0",
    }).encode()


PAGES = {
    "/webmail/login": Page(200, b"<html><body><form>Sign in</form></body></html>", (("Content-Type", "text/html"),)),
    "/hello/": Page(200, b'{"hello": "world"}'),
    "/no-mail/": Page(200, session_without_mail()),
    "/bearer-only/": Page(401, b"", (("WWW-Authenticate", 'Bearer realm="jmap", error="invalid_token"'),)),
    "/forbidden/": Page(403, b"<html>Forbidden</html>", (("Content-Type", "text/html"),)),
}


class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = PAGES.get(self.path, Page(404, b"not found", (("Content-Type", "text/plain"),)))
        self.send_response(page.status)
        for name, value in page.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        self.wfile.write(page.body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    """Loopback web server with the pages above; yields its origin."""
    with serving(http.server.ThreadingHTTPServer((HOST, 0), Pages)) as origin:
        yield origin


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same pages over HTTPS with a self-signed certificate; yields its origin."""
    cert, key = write_self_signed_certificate(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer((HOST, 0), Pages)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server, scheme="https") as origin:
        yield origin


def write_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (the `cryptography` package comes with the CDK)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def serving(server: http.server.ThreadingHTTPServer, scheme: str = "http") -> Iterator[str]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{scheme}://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def secrets_of(account: MailAccount) -> list[str]:
    passwords = [account.password, WRONG_PASSWORD, EXPIRED_TOKEN]
    return passwords + [base64.b64encode(f"{account.user}:{secret}".encode()).decode() for secret in passwords]


def assert_no_secret(account: MailAccount, *runs: Run) -> None:
    for run in runs:
        for secret in secrets_of(account):
            assert secret not in run.stdout + run.stderr


def check_and_read(account: MailAccount, tmp_path: Path, config: dict[str, Any],
                   state: list[dict[str, Any]] | None = None) -> tuple[Run, Run]:
    """`check` and `read` of the same config, side by side (each costs a Python start-up)."""
    with ThreadPoolExecutor(2) as pool:
        check = pool.submit(run_connector, "check", tmp_path, config)
        read = pool.submit(run_connector, "read", tmp_path, config, STREAMS, state)
        runs = check.result(), read.result()
    assert_no_secret(account, *runs)
    return runs


def assert_check_fails_with(check: Run, message: str) -> None:
    assert check.returncode == 0, check.stderr[-2000:]
    assert check.connection_status == {"status": "FAILED", "message": message}
    assert "Traceback" not in check.stdout + check.stderr


def read_errors(read: Run) -> list[dict[str, Any]]:
    return [m["trace"]["error"] for m in read.of_type("TRACE") if m["trace"]["type"] == "ERROR"]


def assert_read_fails_with(read: Run, message: str) -> None:
    """One error, the user's message as a config_error, and no traceback (source_jmap/run.py)."""
    errors = read_errors(read)
    assert read.returncode == 1
    assert [(error["message"], error["failure_type"]) for error in errors] == [(message, "config_error")], \
        read.stdout[-2000:]
    assert "Traceback" not in read.stdout + read.stderr
    assert read.of_type("RECORD") == [] and read.of_type("STATE") == []


# Each case: a config change (given the account and the loopback origins) and the message the user sees.
Case = Callable[[MailAccount, str, str], tuple[dict[str, Any], str]]


def spec_pattern_error(field: str, value: str) -> str:
    """What the Airbyte CDK answers for a value that does not match the pattern of its field in spec.json. The
    connector's own model checks the config first (source_jmap/run.py), so only a value that the model accepts
    and the spec does not gets this answer."""
    return f"Config validation error: {value!r} does not match {SPEC_PROPERTIES[field]['pattern']!r}"  # jsonschema's


NOT_AN_HTTP_URL = (
    "session_url must be an http:// or https:// URL such as https://api.fastmail.com/jmap/session "
    "or https://mail.example.com"
)


def malformed_url(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url="http//mail example.com/jmap"), NOT_AN_HTTP_URL


def ftp_url(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url="ftp://mail.example.com/jmap/"), NOT_AN_HTTP_URL


def plain_http_to_another_host(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    """Plain http:// is for a server on the same machine only: elsewhere it would send the credentials in the
    clear (Airbyte's HTTPS-only rule). The spec's pattern refuses it."""
    url = "http://mail.example.com/jmap/"
    return account.config(session_url=url), spec_pattern_error("session_url", url)


def unresolvable_host(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url="https://mail.nowhere.invalid/jmap/"), (
        "Could not connect to mail.nowhere.invalid: the host name could not be resolved "
        "(check the spelling of session_url)"
    )


def closed_port_url(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    port = closed_port()
    return account.config(session_url=f"http://{HOST}:{port}/jmap/"), (
        f"Could not connect to {HOST}:{port}: connection refused (is the server running, and is the port right?)"
    )


def untrusted_certificate(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{tls}/hello/"), (
        f"TLS error talking to {tls.removeprefix('https://')}: certificate verify failed: self-signed certificate. "
        "The server's certificate is not trusted (self-signed, expired or for another name); use a valid certificate"
    )


def html_login_page(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{pages}/webmail/login"), (
        f"{pages}/webmail/login answered with an HTML page, not a JMAP session, and {pages}/.well-known/jmap "
        f"answered with HTTP 404, not a JMAP session. {FIND_SESSION}"
    )


def json_that_is_not_a_session(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{pages}/hello/"), (
        f"{pages}/hello/ answered with JSON of another kind, not a JMAP session, and "
        f"{pages}/.well-known/jmap answered with HTTP 404, not a JMAP session. {FIND_SESSION}"
    )


def session_without_mail_account(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{pages}/no-mail/"), (
        "No JMAP account with mail capability found for user 'alice@jmap.test' (accounts: acc1)"
    )


def unknown_account_id(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(account_ids=["nobody@example.com"]), (
        "account_ids entry 'nobody@example.com' is not an account of this JMAP user; "
        f"accounts with mail: {account.user}"
    )


def wrong_password(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    credentials = {"auth_type": "basic", "username": account.user, "password": WRONG_PASSWORD}
    return account.config(credentials=credentials), (
        f"Authentication failed (HTTP 401) at {HOST}:{HTTP_PORT} with Basic auth as user '{account.user}': "
        f"{BASIC_HINT}"
    )


def expired_token(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    credentials = {"auth_type": "bearer", "api_token": EXPIRED_TOKEN}
    return account.config(session_url=f"{pages}/bearer-only/", credentials=credentials), (
        f"Authentication failed (HTTP 401) at {pages.removeprefix('http://')} with Bearer token auth: "
        "check that the API token is valid, not expired or revoked, and has the mail scope"
    )


def password_where_a_token_is_needed(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{pages}/bearer-only/"), (
        f"Authentication failed (HTTP 401) at {pages.removeprefix('http://')} with Basic auth as user "
        f"'{account.user}': the server asks for Bearer authentication, not Basic; use an API token"
    )


def forbidden(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(session_url=f"{pages}/forbidden/"), (
        f"Access forbidden (HTTP 403) at {pages.removeprefix('http://')} with Basic auth as user '{account.user}': "
        "the server refuses these credentials access; check that the account may use JMAP (and that an API token "
        "has the mail scope)"
    )


def not_an_absolute_date(value: str) -> str:
    return (f"start_date '{value}' is not an RFC 3339 date-time such as 2024-01-01T00:00:00Z "
            "or a date such as 2024-01-01")


def start_date_that_is_not_a_date(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    return account.config(start_date="last tuesday"), not_an_absolute_date("last tuesday")


def numeric_password(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    """A JSON number where the password goes: the CDK's schema check said "'bearer' was expected"."""
    credentials = {"auth_type": "basic", "username": account.user, "password": 20240101}
    return account.config(credentials=credentials), (
        "Invalid configuration: credentials.password must be a string (in quotes in JSON), not a number"
    )


def start_date_now(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    """"now" would be a new moment at every sync, after all mail: every sync would read nothing."""
    return account.config(start_date="now"), not_an_absolute_date("now")


def huge_body_value_limit(account: MailAccount, pages: str, tls: str) -> tuple[dict[str, Any], str]:
    """1e20 is a JSON number no JMAP server takes (RFC 8620 UnsignedInt ends at 2^53-1); it used to be sent."""
    return account.config(max_body_value_bytes=1e20), (
        "max_body_value_bytes must be a whole number from 1 to 9007199254740991"
    )


CASES: list[Case] = [
    malformed_url, ftp_url, plain_http_to_another_host, unresolvable_host, closed_port_url, untrusted_certificate,
    html_login_page,
    json_that_is_not_a_session, session_without_mail_account, unknown_account_id, wrong_password, expired_token,
    password_where_a_token_is_needed, forbidden, start_date_that_is_not_a_date, start_date_now,
    numeric_password, huge_body_value_limit,
]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_bad_setting_fails_check_and_read_with_one_clear_line_and_no_secret(
    account: MailAccount, tmp_path: Path, pages: str, self_signed: str, case: Case
) -> None:
    config, message = case(account, pages, self_signed)
    check, read = check_and_read(account, tmp_path, config)
    assert_check_fails_with(check, message)
    assert_read_fails_with(read, message)
    assert all(error["message"] == message for error in read_errors(read) if error.get("stream_descriptor"))


def read_from_state(account: MailAccount, tmp_path: Path, stream_state: dict[str, Any]) -> Run:
    """A read of every stream, each given `stream_state`; no secret may appear in what it prints."""
    state = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state}}
             for stream in STREAMS]
    read = run_connector("read", tmp_path, account.config(), STREAMS, state)
    assert_no_secret(account, read)
    return read


def test_state_that_this_connector_did_not_write_fails_read_and_emits_nothing(
    account: MailAccount, tmp_path: Path
) -> None:
    read = read_from_state(account, tmp_path, {"cursor": "2024-01-01T00:00:00Z"})
    assert_read_fails_with(read, (
        "The saved state of stream 'mailboxes' was not written by this connector (it is not a JMAP connector "
        "state); reset the stream to import it again"
    ))


def test_state_entry_that_is_not_an_object_fails_read_and_emits_nothing(account: MailAccount, tmp_path: Path) -> None:
    read = read_from_state(account, tmp_path, {"accounts": {account.user: "171"}})
    assert_read_fails_with(read, (
        f"The saved state of stream 'mailboxes' was not written by this connector (the entry for account "
        f"'{account.user}' is not an object); reset the stream to import it again"
    ))


def test_state_file_that_is_not_airbyte_state_fails_read_as_a_config_error(
    account: MailAccount, tmp_path: Path
) -> None:
    read = run_connector("read", tmp_path, account.config(), STREAMS, {"emails": 5})  # type: ignore[arg-type]
    assert_no_secret(account, read)
    assert_read_fails_with(read, (
        "The state passed to read is not a list of Airbyte STATE messages; reset the connection's state"
    ))


def test_state_of_another_account_is_kept_untouched_and_the_selected_account_is_imported_whole(
    account: MailAccount, tmp_path: Path
) -> None:
    """Changing account_ids keeps the connection's state: entries of accounts not read are carried over as
    they are (they resume correctly if the account is selected again), and a selected account without an
    entry is imported from scratch. Nothing of one account may leak into the other."""
    other = new_account()
    others_state = run_connector("read", tmp_path, other.config(), STREAMS).final_state()
    clean = run_connector("read", tmp_path, account.config(), STREAMS)
    read = run_connector("read", tmp_path, account.config(), STREAMS, others_state)
    assert_no_secret(account, read)
    assert read.returncode == 0, read.stdout[-2000:]
    for stream in STREAMS:
        assert sorted(record["id"] for record in read.records(stream)) == sorted(
            record["id"] for record in clean.records(stream)
        )
        assert {record["accountId"] for record in read.records(stream)} == {account.user}
        before = next(s for s in others_state if s["stream"]["stream_descriptor"]["name"] == stream)
        accounts = read.stream_state(stream)["accounts"]
        assert accounts[other.user] == before["stream"]["stream_state"]["accounts"][other.user]
        assert accounts[account.user] == clean.stream_state(stream)["accounts"][account.user]


# -- issue 13, item 15: malformed input ends in one line of the right failure type, never a traceback ----------


def assert_one_line_error(run: Run, message: str, failure_type: str) -> None:
    """The run fails with one TRACE error of this message and type, and prints no traceback."""
    errors = read_errors(run)
    assert run.returncode == 1
    assert [(error["message"], error["failure_type"]) for error in errors] == [(message, failure_type)], \
        run.stdout[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert run.of_type("RECORD") == [] and run.of_type("STATE") == []


@pytest.mark.parametrize("command", ["check", "read"])
def test_a_config_file_that_is_not_json_is_a_config_error_in_one_line(
    account: MailAccount, tmp_path: Path, command: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(account.config())[:-10])  # cut short: the password is in it
    arguments = connector_arguments(command, tmp_path, None, STREAMS if command == "read" else None)
    completed = subprocess.run([*arguments, "--config", str(config)], capture_output=True, text=True, timeout=300,
                               cwd=Path(__file__).resolve().parent.parent)
    run = Run(completed.returncode, completed.stdout, completed.stderr)
    assert_no_secret(account, run)
    try:
        json.loads(config.read_text())
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
    assert_one_line_error(
        run, f"The config file {config} is not valid JSON (unterminated string starting at: {where})", "config_error"
    )


def malformed_session() -> bytes:
    """A session whose core capability says maxObjectsInGet is 0: no page could ever be asked for."""
    document = json.loads(session_without_mail())
    document["capabilities"]["urn:ietf:params:jmap:core"] = {"maxObjectsInGet": 0}
    return json.dumps(document).encode()


PAGES["/malformed/"] = Page(200, malformed_session())


def test_a_malformed_session_fails_check_and_read_in_one_line_as_the_servers_fault(
    account: MailAccount, tmp_path: Path, pages: str
) -> None:
    check, read = check_and_read(account, tmp_path, account.config(session_url=f"{pages}/malformed/"))
    message = (f"The JMAP session at {pages}/malformed/ is malformed: "
               "capabilities/urn:ietf:params:jmap:core/maxObjectsInGet is not a positive integer")
    assert_check_fails_with(check, message)
    assert_one_line_error(read, message, "transient_error")


def test_a_state_entry_with_a_garbage_anchor_fails_read_and_emits_nothing(account: MailAccount, tmp_path: Path) -> None:
    read = read_from_state(account, tmp_path,
                           {"accounts": {account.user: {"state": "1", "import": {"anchor": 17, "after": ["2024"]}}}})
    assert_read_fails_with(read, (
        f"The saved state of stream 'mailboxes' was not written by this connector (the entry for account "
        f"'{account.user}' is malformed: import/anchor is not a string); reset the stream to import it again"
    ))


def test_a_global_state_fails_read_as_a_config_error_naming_it(account: MailAccount, tmp_path: Path) -> None:
    clean = run_connector("read", tmp_path, account.config(), STREAMS)
    as_global = [{"type": "GLOBAL", "global": {
        "shared_state": {"accounts": {}},
        "stream_states": [{"stream_descriptor": state["stream"]["stream_descriptor"],
                           "stream_state": state["stream"]["stream_state"]} for state in clean.final_state()],
    }}]
    read = run_connector("read", tmp_path, account.config(), STREAMS, as_global)
    assert_no_secret(account, read)
    assert_read_fails_with(read, (
        "The state passed to read is a GLOBAL state; this connector writes one STREAM state per stream: "
        "reset the connection's state"
    ))
