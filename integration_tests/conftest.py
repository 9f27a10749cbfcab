"""Integration tests run against the project's own Cyrus JMAP server (scripts/cyrus.sh).

Each test gets a fresh mail account seeded with the sample mail, so tests never see each
other's changes. The server is started (and installed if needed) once per session.
"""

from __future__ import annotations

import imaplib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
CYRUS = ROOT / "scripts" / "cyrus.sh"
sys.path.insert(0, str(ROOT / "scripts"))

import seed_account  # noqa: E402
import seed_mail  # noqa: E402

HOST = "127.0.0.1"
HTTP_PORT = int(os.environ.get("CYRUS_HTTP_PORT", "18080"))
IMAP_PORT = int(os.environ.get("CYRUS_IMAP_PORT", "11143"))
ORIGIN = f"http://{HOST}:{HTTP_PORT}"
# The second instance, with CardDAV/CalDAV and Cyrus's JMAP extensions (contacts, calendars, quota, sieve).
EXT_HTTP_PORT = int(os.environ.get("CYRUS_EXT_HTTP_PORT", "18081"))
EXT_IMAP_PORT = int(os.environ.get("CYRUS_EXT_IMAP_PORT", "11144"))
EXT_ORIGIN = f"http://{HOST}:{EXT_HTTP_PORT}"
EXT_ENV = {**{k: v for k, v in os.environ.items() if k != "CYRUS_DIR"},  # the plain instance's directory stays its own
           "CYRUS_PROFILE": "ext", "CYRUS_HTTP_PORT": str(EXT_HTTP_PORT), "CYRUS_IMAP_PORT": str(EXT_IMAP_PORT)}


@dataclass
class MailAccount:
    user: str
    password: str
    seeded: list[seed_mail.SampleMessage]
    origin: str = ORIGIN

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "session_url": f"{self.origin}/jmap/",
            "credentials": {"auth_type": "basic", "username": self.user, "password": self.password},
            **overrides,
        }

    def imap(self) -> imaplib.IMAP4:
        return seed_mail.open_imap(HOST, IMAP_PORT, self.user, self.password)

    def jmap(self, using: list[str], calls: list[list[Any]]) -> list[list[Any]]:
        """The method responses to `calls`, asked with plain HTTP, without the connector (Cyrus's apiUrl is
        its session URL, /jmap/): the independent view tests compare the connector's output with."""
        body = {"using": ["urn:ietf:params:jmap:core", *using], "methodCalls": calls}
        response = requests.post(f"{self.origin}/jmap/", json=body, auth=(self.user, self.password), timeout=30)
        response.raise_for_status()
        responses: list[list[Any]] = response.json()["methodResponses"]
        return responses


@pytest.fixture(scope="session")
def cyrus() -> None:
    subprocess.run([str(CYRUS), "install"], check=True)
    subprocess.run([str(CYRUS), "start"], check=True)


def new_account(seed: bool = True, large: bool = False) -> MailAccount:
    """A fresh account on the plain instance, with the sample mail unless `seed` is false, and the 17 MB
    message (seed_mail.large_message) too when `large`."""
    user = f"it-{uuid.uuid4().hex[:12]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    subprocess.run([str(CYRUS), "adduser", user, password], check=True, capture_output=True)
    seeded = seed_mail.seed(HOST, IMAP_PORT, user, password, large=large) if seed else []
    return MailAccount(user, password, seeded)


@pytest.fixture
def account(cyrus: None) -> Iterator[MailAccount]:
    yield new_account()


@pytest.fixture(scope="session")
def ext_cyrus() -> None:
    subprocess.run([str(CYRUS), "install"], check=True)
    subprocess.run([str(CYRUS), "start"], check=True, env=EXT_ENV)


def new_ext_account(contacts: int, mail: bool = False) -> MailAccount:
    """A fresh account on the ext instance with the sample contacts, calendars, events and sieve script
    (scripts/seed_account.py), and the sample mail when asked."""
    user = f"it-{uuid.uuid4().hex[:12]}@example.com"
    password = f"Pw-{uuid.uuid4().hex}"
    subprocess.run([str(CYRUS), "adduser", user, password], check=True, capture_output=True, env=EXT_ENV)
    seeded = seed_mail.seed(HOST, EXT_IMAP_PORT, user, password) if mail else []
    seed_account.seed(EXT_ORIGIN, user, password, contacts=contacts)
    return MailAccount(user, password, seeded, origin=EXT_ORIGIN)
