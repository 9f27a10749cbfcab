#!/usr/bin/env python3
"""The raw JMAP floor: the same emails the connector emits, with the fewest JMAP requests and nothing else.

    GET  <session>                                      the session (apiUrl, limits, downloadUrl)
    POST [Email/query position p limit L, Email/get #ids]   once per page of L = maxObjectsInGet emails

The first query asks for the total, so the last page is known without an extra empty request:
1 + ceil(N / L) requests in all. Each response is parsed (orjson) and every email is written as one JSON line
to --out (/dev/null by default). The Email/get properties and body arguments come from --get-arguments, a JSON
file that bench.py writes from the constants of source_jmap/streams/emails.py (this script does not import the
connector: that would load the Airbyte CDK and hide the floor under 1.5 s of imports).

--raw also downloads every email's RFC 5322 message through the session's downloadUrl, with as many requests
in flight as the server's maxConcurrentRequests, and adds it base64-encoded as "raw_message" (what the
connector's raw_messages stream emits; bench.py passes that stream's Email/get properties, without bodies).
--since STATE reads changes instead: Email/changes with Email/get of the created and updated ids in the same
request, until hasMoreChanges is false (destroyed ids are written as {"id", "destroyed": true}).

--quickack re-arms TCP_QUICKACK before every read from a socket (plain http only): Cyrus writes a response in
pieces without TCP_NODELAY, so on loopback every response over ~4 KB waits for the client's delayed ACK (40 ms).
A summary (emails, requests, body bytes) goes to stderr as one JSON line.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
TIMEOUT = (10.0, 300.0)


class _QuickAckSocket(socket.socket):
    """A socket that asks the kernel to ACK at once before each read, instead of delaying the ACK by 40 ms."""

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return super().recv_into(buffer, nbytes, flags)


class _QuickAckConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        plain = super()._new_conn()
        timeout = plain.gettimeout()
        sock = _QuickAckSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(timeout)
        return sock


class _QuickAckPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _QuickAckConnection


class QuickAckAdapter(HTTPAdapter):
    """For http:// URLs: connections whose sockets re-arm TCP_QUICKACK before every read."""  # ignore-https-check

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "http": _QuickAckPool}


def new_session(quickack: bool) -> requests.Session:
    http = requests.Session()
    if quickack:
        http.mount("http://", QuickAckAdapter())  # ignore-https-check: the benchmark's Cyrus, on loopback
    return http


@dataclass
class Floor:
    session_url: str
    auth: tuple[str, str]
    properties: list[str]
    get_arguments: dict[str, Any]
    quickack: bool = False
    http: requests.Session = field(init=False)
    requests_sent: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.http = new_session(self.quickack)

    def get_json(self, http: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        return orjson.loads(self.send(http, method, url, **kwargs))

    def send(self, http: requests.Session, method: str, url: str, **kwargs: Any) -> bytes:
        response = http.request(method, url, auth=self.auth, timeout=TIMEOUT, **kwargs)
        response.raise_for_status()
        with self._lock:
            self.requests_sent += 1
            self.bytes_received += len(response.content)
        return response.content

    def session(self) -> dict[str, Any]:
        return self.get_json(self.http, "GET", self.session_url)

    def pages(self, api_url: str, account_id: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        position, total = 0, None
        while total is None or position < total:
            query = {"accountId": account_id, "sort": [{"property": "receivedAt", "isAscending": True}],
                     "position": position, "limit": page_size, "calculateTotal": total is None}
            get = {"accountId": account_id, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                   "properties": self.properties, **self.get_arguments}
            body = orjson.dumps({"using": [CORE, MAIL], "methodCalls": [["Email/query", query, "q"],
                                                                         ["Email/get", get, "g"]]})
            responses = self.get_json(self.http, "POST", api_url, data=body,
                                      headers={"Content-Type": "application/json"})["methodResponses"]
            answer = dict((call_id, arguments) for _, arguments, call_id in responses)
            if total is None:
                total = answer["q"]["total"]
            if not answer["q"]["ids"]:
                return
            position += len(answer["q"]["ids"])
            yield answer["g"]["list"]

    def changes(self, api_url: str, account_id: str, since: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        while True:
            changes = {"accountId": account_id, "sinceState": since, "maxChanges": page_size}
            calls = [["Email/changes", changes, "c"]] + [
                ["Email/get", {"accountId": account_id, "properties": self.properties, **self.get_arguments,
                               "#ids": {"resultOf": "c", "name": "Email/changes", "path": f"/{kind}"}}, kind]
                for kind in ("created", "updated")
            ]
            body = orjson.dumps({"using": [CORE, MAIL], "methodCalls": calls})
            responses = self.get_json(self.http, "POST", api_url, data=body,
                                      headers={"Content-Type": "application/json"})["methodResponses"]
            answer = dict((call_id, arguments) for _, arguments, call_id in responses)
            destroyed = [{"id": object_id, "destroyed": True} for object_id in answer["c"]["destroyed"]]
            yield answer["created"]["list"] + answer["updated"]["list"] + destroyed
            if not answer["c"]["hasMoreChanges"]:
                return
            since = answer["c"]["newState"]


class RawDownloader:
    """Downloads Email blobs through downloadUrl, `concurrency` requests in flight, one Session per thread."""

    def __init__(self, floor: Floor, download_url: str, account_id: str, concurrency: int) -> None:
        self._floor = floor
        self._template = download_url.replace("{accountId}", quote(account_id, safe=""))
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency)

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "http"):
            self._local.http = new_session(self._floor.quickack)
        return self._local.http

    def _download(self, blob_id: str) -> bytes:
        url = (self._template.replace("{blobId}", quote(blob_id, safe="")).replace("{name}", "message.eml")
               .replace("{type}", quote("message/rfc822", safe="")))
        return self._floor.send(self._http(), "GET", url)

    def add_raw(self, emails: list[dict[str, Any]]) -> None:
        for email, raw in zip(emails, self._pool.map(self._download, [e["blobId"] for e in emails]), strict=True):
            email["raw_message"] = base64.b64encode(raw).decode("ascii")

    def close(self) -> None:
        self._pool.shutdown()


def run(floor: Floor, out: BinaryIO, raw: bool, since: str | None) -> int:
    session = floor.session()
    api_url = urljoin(floor.session_url, session["apiUrl"])
    account_id = session["primaryAccounts"][MAIL]
    limits = session["capabilities"][CORE]
    downloader = None
    if raw:
        download_url = urljoin(floor.session_url, session["downloadUrl"])
        downloader = RawDownloader(floor, download_url, account_id, int(limits["maxConcurrentRequests"]))
    emitted = 0
    try:
        page_size = int(limits["maxObjectsInGet"])
        pages = floor.changes(api_url, account_id, since, page_size) if since else floor.pages(
            api_url, account_id, page_size)
        for emails in pages:
            if downloader:
                downloader.add_raw(emails)
            for email in emails:
                email["accountId"] = account_id
                out.write(orjson.dumps(email) + b"\n")
            emitted += len(emails)
    finally:
        if downloader:
            downloader.close()
    return emitted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--session-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--get-arguments", required=True, help="JSON file: {properties: [...], arguments: {...}}")
    parser.add_argument("--raw", action="store_true", help="also download every raw message")
    parser.add_argument("--since", help="read the changes since this Email state instead of every email")
    parser.add_argument("--quickack", action="store_true", help="re-arm TCP_QUICKACK before every socket read")
    parser.add_argument("--out", default=os.devnull)
    args = parser.parse_args(argv)
    with open(args.get_arguments, "rb") as file:
        get = orjson.loads(file.read())
    floor = Floor(args.session_url, (args.user, os.environ["FLOOR_PASSWORD"]), get["properties"], get["arguments"],
                  args.quickack)
    with open(args.out, "wb", buffering=1 << 20) as out:
        emitted = run(floor, out, args.raw, args.since)
    summary = {"emails": emitted, "requests": floor.requests_sent, "body_bytes": floor.bytes_received}
    sys.stderr.write(orjson.dumps(summary).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
