"""`check` against the real server: success both ways in, and a clear one-line failure for each mistake."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import HOST, ORIGIN, MailAccount
from .connector import Run, run_connector


def check(tmp_path: Path, config: dict) -> Run:
    run = run_connector("check", tmp_path, config)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    return run


@pytest.mark.parametrize("session_url", [f"{ORIGIN}/jmap/", ORIGIN, f"{ORIGIN}/"])
def test_check_succeeds_with_the_session_url_and_with_the_bare_origin(
    account: MailAccount, tmp_path: Path, session_url: str
) -> None:
    assert check(tmp_path, account.config(session_url=session_url)).connection_status == {"status": "SUCCEEDED"}


def test_check_fails_cleanly_on_a_wrong_password(account: MailAccount, tmp_path: Path) -> None:
    config = account.config()
    config["credentials"]["password"] = "definitely-wrong"
    status = check(tmp_path, config).connection_status
    assert status["status"] == "FAILED"
    assert status["message"] == (
        f"Authentication failed (HTTP 401) at {HOST}:{ORIGIN.rsplit(':', 1)[1]} with Basic auth as user "
        f"'{account.user}': check the username and password (an app password where the provider requires one)"
    )


@pytest.fixture
def html_server() -> Iterator[str]:
    """A web server that answers every GET with a login page, as a mistyped URL would."""

    class LoginPage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 404 if self.path.startswith("/.well-known/") else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><form>Sign in</form></body></html>")

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer((HOST, 0), LoginPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


def test_check_fails_cleanly_on_a_url_that_is_not_jmap(account: MailAccount, tmp_path: Path, html_server: str) -> None:
    status = check(tmp_path, account.config(session_url=f"{html_server}/webmail/login")).connection_status
    assert status["status"] == "FAILED"
    assert status["message"].startswith(f"{html_server}/webmail/login answered with an HTML page, not a JMAP session")
    assert "Enter the JMAP session URL" in status["message"]


def test_check_fails_cleanly_on_a_closed_port(account: MailAccount, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        closed_port = probe.getsockname()[1]
    status = check(tmp_path, account.config(session_url=f"http://{HOST}:{closed_port}/jmap/")).connection_status
    assert status["status"] == "FAILED"
    assert "connection refused" in status["message"]


def test_check_fails_cleanly_on_an_account_id_that_does_not_exist(account: MailAccount, tmp_path: Path) -> None:
    status = check(tmp_path, account.config(account_ids=["nobody@example.com"])).connection_status
    assert status["status"] == "FAILED"
    assert status["message"] == (
        "account_ids entry 'nobody@example.com' is not an account of this JMAP user; "
        f"accounts with mail: {account.user}"
    )


def test_check_refuses_an_exclusion_that_matches_no_mailbox_and_names_the_closest(
    account: MailAccount, tmp_path: Path
) -> None:
    """A typo in exclude_mailboxes would archive the Trash it meant to leave out (issue 18)."""
    status = check(tmp_path, account.config(exclude_mailboxes=["Trashh", "junk"])).connection_status
    assert status["status"] == "FAILED"
    assert status["message"].startswith(
        f"exclude_mailboxes entry 'Trashh' matches no mailbox name or role in account {account.user} "
        "(closest: Trash"
    ), status["message"]
