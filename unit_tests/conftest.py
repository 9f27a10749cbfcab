from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock

from .fake_jmap import SESSION_URL, FakeJmap

PASSWORD = "unit-Pa55word-xyzzy"


@pytest.fixture
def config() -> dict[str, Any]:
    return {"session_url": SESSION_URL,
            "credentials": {"auth_type": "basic", "username": "alice@jmap.test", "password": PASSWORD},
            "exclude_mailboxes": []}


@pytest.fixture
def fake() -> Iterator[FakeJmap]:
    with requests_mock.Mocker() as mocker:
        yield FakeJmap(mocker)
