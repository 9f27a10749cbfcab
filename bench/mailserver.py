"""The benchmark's own Cyrus instance and its cached, seeded accounts (one per message count)."""

from __future__ import annotations

import imaplib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parent.parent
CYRUS = ROOT / "scripts" / "cyrus.sh"
sys.path.insert(0, str(ROOT / "scripts"))

import seed_mail  # noqa: E402

HOST = "127.0.0.1"
# Never the default instance (18080/11143): other engineers run their tests against it.
CYRUS_ENV = {"CYRUS_DIR": "/dev/shm/source-jmap-bench", "CYRUS_HTTP_PORT": "18180", "CYRUS_IMAP_PORT": "11243"}
HTTP_PORT = int(CYRUS_ENV["CYRUS_HTTP_PORT"])
IMAP_PORT = int(CYRUS_ENV["CYRUS_IMAP_PORT"])
PASSWORD = "bench-password-1"
MAIL = "urn:ietf:params:jmap:mail"
CORE = "urn:ietf:params:jmap:core"


@dataclass(frozen=True)
class BenchAccount:
    user: str
    password: str = PASSWORD

    def session_url(self, port: int = HTTP_PORT) -> str:
        return f"http://{HOST}:{port}/jmap/"  # ignore-https-check: the benchmark's Cyrus, on loopback

    def config(self, port: int = HTTP_PORT, **overrides: Any) -> dict[str, Any]:
        """The connector config: defaults, except that every mailbox is read (the floor reads them all too)."""
        return {
            "session_url": self.session_url(port),
            "credentials": {"auth_type": "basic", "username": self.user, "password": self.password},
            "exclude_mailboxes": [],
            **overrides,
        }

    def imap(self) -> imaplib.IMAP4:
        return seed_mail.open_imap(HOST, IMAP_PORT, self.user, self.password)


def cyrus(command: str, *arguments: str) -> None:
    subprocess.run([str(CYRUS), command, *arguments], check=True, env={**os.environ, **CYRUS_ENV})


def start_instance() -> None:
    cyrus("install")
    cyrus("start")


def _can_log_in(account: BenchAccount) -> bool:
    try:
        account.imap().logout()
    except imaplib.IMAP4.error:
        return False
    return True


def email_count(account: BenchAccount) -> int:
    http = requests.Session()
    http.auth = (account.user, account.password)
    session = http.get(account.session_url(), timeout=30).json()
    account_id = session["primaryAccounts"][MAIL]
    body = {"using": [CORE, MAIL], "methodCalls": [
        ["Email/query", {"accountId": account_id, "limit": 1, "calculateTotal": True}, "q"],
    ]}
    answer = http.post(urljoin(account.session_url(), session["apiUrl"]), json=body, timeout=60)
    return int(answer.json()["methodResponses"][0][1]["total"])


def _wipe(account: BenchAccount) -> None:
    """Delete every mailbox but INBOX and expunge INBOX, so that the account can be seeded again."""
    imap = account.imap()
    try:
        _, listing = imap.list()
        names = [line.decode().rsplit(' "/" ', 1)[-1] for line in listing if line]
        for name in sorted(names, key=len, reverse=True):  # children before parents
            if name.strip('"').upper() != "INBOX":
                imap.delete(name)
        imap.select("INBOX")
        imap.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
    finally:
        imap.logout()


def ensure_account(messages: int) -> BenchAccount:
    """`bench-<messages>@example.com` holding exactly `messages` emails; seeded only when it does not yet."""
    samples = len(seed_mail.sample_messages())
    if messages < samples:
        raise SystemExit(f"--messages must be at least {samples} (the hand-written sample mail)")
    account = BenchAccount(f"bench-{messages}@example.com")
    if not _can_log_in(account):
        cyrus("adduser", account.user, account.password)
    count = email_count(account)
    if count == messages:
        print(f"account {account.user}: {count} emails, already seeded")
        return account
    if count:
        print(f"account {account.user}: {count} emails, not {messages}: wiping it")
        _wipe(account)
    started = time.monotonic()
    seed_mail.seed(HOST, IMAP_PORT, account.user, account.password, bulk=messages - samples)
    print(f"account {account.user}: seeded {messages} emails in {time.monotonic() - started:.1f} s")
    return account


def toggle_flags(account: BenchAccount, count: int) -> None:
    """Change `count` emails over IMAP: flip \\Flagged on the first `count` messages of INBOX."""
    imap = account.imap()
    try:
        imap.select("INBOX")
        _, data = imap.fetch(f"1:{count}", "(FLAGS)")
        for line in data:
            text = line.decode() if isinstance(line, bytes) else line[0].decode()
            number = text.split(" ", 1)[0]
            sign = "-" if "\\Flagged" in text else "+"
            imap.store(number, f"{sign}FLAGS.SILENT", "(\\Flagged)")
    finally:
        imap.logout()
