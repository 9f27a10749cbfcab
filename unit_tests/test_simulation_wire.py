"""The simulation's model server answers downloads as the wire does, so that its faults are ones a client can meet."""

from __future__ import annotations

from typing import Any

import requests_mock

from source_jmap.jmap import BasicCredentials, JmapClient
from source_jmap.jmap.retry import RetryPolicy

from .simulation.model import http_answer

BLOB_URL = "https://jmap.sim/jmap/download/u1/G1/m.eml"


def test_a_simulated_download_cut_short_is_seen_cut_and_fetched_again() -> None:
    """Seed 3-55: the model answered a cut download with half the bytes and nothing else, which no HTTP/1.1
    client can tell from a short blob, and the destination kept half a message. A body ends before the length its
    head declared; the client stack raises (as test_streamed_download's loopback cut shows), and it is retried."""
    answers = iter([http_answer(200, b"half", declared=8), http_answer(200, b"whole!!!")])

    def download(request: Any, context: Any) -> Any:
        return next(answers)

    client = JmapClient("https://jmap.sim/jmap/session", BasicCredentials("alice", "pw"), retry=RetryPolicy(jitter=0),
                        sleep=lambda seconds: None)
    with requests_mock.Mocker() as mocker:
        mocker.get(BLOB_URL, raw=download)
        assert client.download(BLOB_URL) == b"whole!!!"
    assert client.requests_sent == 2
