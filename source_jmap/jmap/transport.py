"""HTTP connections that acknowledge each answer at once.

A server that writes an answer in pieces without TCP_NODELAY (Cyrus does) sends the first segment
and holds the rest until that one is acknowledged (Nagle's algorithm), while Linux delays the ACK
of a client that has nothing to send back by up to 40 ms. Every answer of more than one segment
then arrives 40 ms late: 10,000 raw-message downloads took 61 s instead of 8 s on loopback
(bench/README.md). TCP_QUICKACK makes the kernel acknowledge at once, but it does not stick (the
kernel falls back to delayed ACKs by itself), so it is set again before each answer is read.
Where the platform has no TCP_QUICKACK, connections are plain ones.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
# Connections kept open per host: enough for the parallel blob downloads of any server's
# maxConcurrentRequests seen so far (Fastmail 10, Cyrus 5, Stalwart 4).
POOL_SIZE = 16


class _AcknowledgeAtOnce:
    sock: Any

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
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    return http
