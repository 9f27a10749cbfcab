"""HTTP connections for JMAP: each answer acknowledged at once, and read within the attempt's deadline.

Connections acknowledge each answer at once. A server that writes an answer in pieces without
TCP_NODELAY (Cyrus does) sends the first segment and holds the rest until that one is acknowledged
(Nagle's algorithm), while Linux delays the ACK of a client that has nothing to send back by up to
40 ms. Every answer of more than one segment then arrives 40 ms late: 10,000 raw-message downloads
took 61 s instead of 8 s on loopback (bench/README.md). TCP_QUICKACK makes the kernel acknowledge at
once, but it does not stick, so it is set again before each read of an answer. Where the platform has
no TCP_QUICKACK, connections are plain ones.

Each attempt has an overall deadline. requests' read timeout bounds each socket read only, so a
server that trickles one byte every two seconds never trips it and held a sync forever (issue 13).
The connections read every answer, headers and body, through a reader that shortens each socket
read to what is left of the attempt's deadline; the deadline reaches the connection in a
thread-local (`ATTEMPT`), since requests passes nothing of its own to the connection that reads the answer.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# Connections kept open per host: enough for the parallel blob downloads of any server's
# maxConcurrentRequests seen so far (Fastmail 10, Cyrus 5, Stalwart 4).
POOL_SIZE = 16


@dataclass
class Deadline:
    """The deadline of one attempt; `passed` is set by the reader that found it passed."""

    at: float
    passed: bool = False


class _AttemptDeadline(threading.local):
    current: Deadline | None = None


ATTEMPT = _AttemptDeadline()


class _ReadsBeforeDeadline(io.RawIOBase):
    """A socket's reads, each bounded by the read timeout and by what is left of the attempt's deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # counted by the socket: it stays open while this reads
        self._deadline = deadline
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline.at - time.monotonic()
        if remaining <= 0:
            self._deadline.passed = True
            raise TimeoutError("the request's deadline passed")
        bounded = self._read_timeout is None or remaining < self._read_timeout
        self._sock.settimeout(remaining if bounded else self._read_timeout)
        if TCP_QUICKACK is not None:
            # Again before every read: the kernel drops back to delayed ACKs within an answer. 3,000 downloads of
            # real size from Cyrus by a plain client: 22 s re-armed before every read, 32 s never armed; by the
            # connector, 25 s re-armed before every read, 28 s armed once an answer (medians; bench/README.md).
            with contextlib.suppress(OSError, AttributeError):
                self._sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        try:
            return self._raw.readinto(buffer)
        except TimeoutError:
            self._deadline.passed = self._deadline.passed or bounded
            raise

    def close(self) -> None:
        """The answer is read (or abandoned): the connection's next request gets the plain read timeout."""
        if not self.closed:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self._read_timeout)
            self._raw.close()
        super().close()


class _SocketWithDeadline:
    """What http.client's response asks of a socket (its file), with each read bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_ReadsBeforeDeadline(self._sock, self._deadline))


class _AnswerBeforeDeadline(http.client.HTTPResponse):
    """http.client's response, reading through the deadline of the attempt under way in this thread."""

    def __init__(self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None) -> None:
        deadline = ATTEMPT.current
        super().__init__(sock if deadline is None else _SocketWithDeadline(sock, deadline),  # type: ignore[arg-type]
                         debuglevel, method, url)


class _AcknowledgeAtOnce:
    sock: Any
    response_class: Any = _AnswerBeforeDeadline

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        if TCP_QUICKACK is not None and self.sock is not None:
            # Not every socket is a TCP socket one can set this on (a TLS tunnel through a proxy).
            with contextlib.suppress(OSError, AttributeError):
                self.sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class QuickAckHTTPConnection(_AcknowledgeAtOnce, HTTPConnection):
    pass


class QuickAckHTTPSConnection(_AcknowledgeAtOnce, HTTPSConnection):
    pass


class _QuickAckHTTPPool(HTTPConnectionPool):
    ConnectionCls = QuickAckHTTPConnection


class _QuickAckHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = QuickAckHTTPSConnection


class QuickAckAdapter(HTTPAdapter):
    """requests' adapter, with connections that set TCP_QUICKACK before reading each answer."""

    def __init__(self) -> None:
        super().__init__(pool_maxsize=POOL_SIZE)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _QuickAckHTTPPool, "https": _QuickAckHTTPSPool}


def new_http_session() -> requests.Session:
    """A keep-alive session whose connections acknowledge answers at once."""
    http = requests.Session()
    adapter = QuickAckAdapter()
    for scheme in ("http://", "https://"):  # ignore-https-check: the adapter serves both schemes
        http.mount(scheme, adapter)
    return http
