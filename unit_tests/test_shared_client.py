"""One client is shared by the raw-message download threads: what it caches is fetched once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient

from .fake_jmap import SESSION_URL, session_document


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Let threads interleave at almost every bytecode: without the lock, 8 threads fetched the session 2 to 8
    times in three runs of the test."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_the_session_is_fetched_once_however_many_threads_ask_for_it(switch_often: None) -> None:
    with requests_mock.Mocker() as mocker:
        session = mocker.get(SESSION_URL, json=session_document())
        client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            api_urls = set(pool.map(lambda _: client.session.api_url, range(200)))
    assert (api_urls, session.call_count) == ({"https://jmap.test/jmap/api/"}, 1)
