"""Blobs written to a file as they arrive: retries, the cap and the memory of a streamed download.

Against a real HTTP server on loopback, since what matters is how the body comes off the socket.
The jmap layer takes an opened file; where the file lives is the caller's business.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from source_jmap.jmap import BasicCredentials, JmapBlobNotFoundError, JmapClient, JmapServerError
from source_jmap.jmap.retry import RetryPolicy

from .fake_jmap import session_document
from .loopback import LoopbackHandler, loopback_server, origin

BLOCK = bytes(range(256)) * 4096  # 1 MB


class Blobs(LoopbackHandler):
    """/blob/<MB>: that many megabytes; /cut/<MB>: the first answer breaks off halfway; /gone: 404."""

    cuts: set[str]

    def do_GET(self) -> None:
        if self.path == "/jmap/":
            return self._answer(200, json.dumps(session_document(apiUrl="/jmap/api/")).encode())
        kind, _, megabytes = self.path.strip("/").partition("/")
        if kind == "gone":
            return self._answer(404, b"Not Found")
        self.send_head(200, int(megabytes) * len(BLOCK), "message/rfc822")
        cut = kind == "cut" and self.path not in self.server.cuts  # type: ignore[attr-defined]
        for number in range(int(megabytes)):
            if cut and number == int(megabytes) // 2:
                self.server.cuts.add(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
                return
            self.wfile.write(BLOCK)
        return None

    def _answer(self, status: int, body: bytes) -> None:
        self.send_head(status, len(body))
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    with loopback_server(Blobs, cuts=set()) as httpd:
        yield origin(httpd)


def client(origin: str) -> JmapClient:
    return JmapClient(f"{origin}/jmap/", BasicCredentials("alice", "pw-123"), retry=RetryPolicy(jitter=0),
                      sleep=lambda seconds: None)


def test_a_streamed_download_writes_the_blob_to_the_file_and_returns_its_size(server: str, tmp_path: Path) -> None:
    with (tmp_path / "m.eml").open("w+b") as sink:
        assert client(server).download_to(f"{server}/blob/3", sink) == 3 * len(BLOCK)
    assert (tmp_path / "m.eml").read_bytes() == BLOCK * 3


def test_a_download_cut_off_midway_is_retried_and_the_file_written_again_from_its_start(
    server: str, tmp_path: Path
) -> None:
    jmap = client(server)
    with (tmp_path / "m.eml").open("w+b") as sink:
        sink.write(b"left over from an earlier try")
        assert jmap.download_to(f"{server}/cut/4", sink) == 4 * len(BLOCK)
    assert jmap.requests_sent == 2
    assert (tmp_path / "m.eml").read_bytes() == BLOCK * 4


def test_a_streamed_download_larger_than_its_cap_is_refused(server: str, tmp_path: Path) -> None:
    with (tmp_path / "m.eml").open("w+b") as sink, pytest.raises(JmapServerError, match="sent more than 2"):
        client(server).download_to(f"{server}/blob/3", sink, max_bytes=2 * len(BLOCK))


def test_a_streamed_download_of_a_blob_the_server_does_not_have_says_not_found(server: str, tmp_path: Path) -> None:
    with (tmp_path / "m.eml").open("w+b") as sink, pytest.raises(JmapBlobNotFoundError):
        client(server).download_to(f"{server}/gone", sink)


def test_memory_does_not_grow_with_the_size_of_a_streamed_blob(server: str, tmp_path: Path) -> None:
    jmap = client(server)
    _ = jmap.session
    tracemalloc.start()
    try:
        with (tmp_path / "m.eml").open("w+b") as sink:
            assert jmap.download_to(f"{server}/blob/64", sink) == 64 * len(BLOCK)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(BLOCK)  # a few 1 MB chunks, not the 64 MB blob
