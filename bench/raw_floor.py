#!/usr/bin/env python3
"""The plain-client floor of raw_messages in file mode: every email's RFC 5322 message written to a file.

    FLOOR_PASSWORD=... python bench/raw_floor.py --session-url URL --user USER --out DIR [--quickack]

What a plain `requests` client that knows JMAP does, and nothing more (no retries, no checks, no fsync):

    GET  <session>
    POST [Email/query position p limit L, Email/get #ids (id, blobId, size, receivedAt)]  per page of
         L = maxObjectsInGet emails
    POST [Blob/get ids, data:asBase64]  where the account offers Blob/get: the page's messages of at most
         1 MB, in batches of at most 32 MB of message bytes, one batch at a time
    GET  <downloadUrl>  every other message (all of them without Blob/get), maxConcurrentRequests at once,
         streamed to its file; the page's downloads run while its Blob/get batches are fetched

Each message goes to `DIR/<accountId>/<YYYY-MM of receivedAt>/<id>.eml`, the connector's layout. A summary
(files, bytes, requests) goes to stderr as one JSON line. --quickack re-arms TCP_QUICKACK before every socket
read (floor.py says why); the connector sets it once per answer.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import new_session

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
BLOB_CAPABILITIES = ("urn:ietf:params:jmap:blob", "https://cyrusimap.org/ns/jmap/blob")
TIMEOUT = (10.0, 300.0)
LARGEST_BY_BLOB_GET = 1_000_000
BATCH_BYTES = 32_000_000


class RawFloor:
    def __init__(self, session_url: str, auth: tuple[str, str], out: Path, quickack: bool) -> None:
        self.session_url, self.auth, self.out, self.quickack = session_url, auth, out, quickack
        self.http = new_session(quickack)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.requests = self.files = self.bytes = 0
        self.made: set[Path] = set()

    def _count(self, files: int, size: int, requests_sent: int = 0) -> None:
        with self.lock:
            self.files, self.bytes, self.requests = self.files + files, self.bytes + size, self.requests + requests_sent

    def post(self, api_url: str, using: list[str], calls: list[list[Any]]) -> dict[str, Any]:
        response = self.http.post(api_url, data=orjson.dumps({"using": using, "methodCalls": calls}), auth=self.auth,
                                  headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
        response.raise_for_status()
        self._count(0, 0, 1)
        return {call_id: arguments for _, arguments, call_id in orjson.loads(response.content)["methodResponses"]}

    def path(self, account_id: str, email: dict[str, Any]) -> Path:
        month = email["receivedAt"][:7]
        directory = self.out / account_id / month
        if directory not in self.made:
            directory.mkdir(parents=True, exist_ok=True)
            self.made.add(directory)
        return directory / f"{email['id']}.eml"

    def download(self, template: str, account_id: str, email: dict[str, Any], path: Path) -> None:
        if not hasattr(self.local, "http"):
            self.local.http = new_session(self.quickack)
        url = (template.replace("{accountId}", quote(account_id, safe="")).replace("{blobId}", quote(email["blobId"]))
               .replace("{name}", "message.eml").replace("{type}", quote("message/rfc822", safe="")))
        with self.local.http.get(url, auth=self.auth, timeout=TIMEOUT, stream=True) as response:
            response.raise_for_status()
            with open(path, "wb") as sink:
                size = sum(sink.write(chunk) for chunk in response.iter_content(1 << 20))
        self._count(1, size, 1)

    def run(self) -> None:
        session = self.http.get(self.session_url, auth=self.auth, timeout=TIMEOUT).json()
        self._count(0, 0, 1)
        api_url, download_url = (urljoin(self.session_url, session[key]) for key in ("apiUrl", "downloadUrl"))
        account_id = session["primaryAccounts"][MAIL]
        capabilities = session["accounts"][account_id]["accountCapabilities"]
        blob = next((name for name in BLOB_CAPABILITIES if name in capabilities), None)
        limits = session["capabilities"][CORE]
        page_size = int(limits["maxObjectsInGet"])
        pool = ThreadPoolExecutor(max_workers=int(limits["maxConcurrentRequests"]))
        position, total = 0, None
        while total is None or position < total:
            query = {"accountId": account_id, "sort": [{"property": "receivedAt", "isAscending": True}],
                     "position": position, "limit": page_size, "calculateTotal": total is None}
            get = {"accountId": account_id, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                   "properties": ["id", "blobId", "size", "receivedAt"]}
            answer = self.post(api_url, [CORE, MAIL], [["Email/query", query, "q"], ["Email/get", get, "g"]])
            total = answer["q"]["total"] if total is None else total
            if not answer["q"]["ids"]:
                break
            position += len(answer["q"]["ids"])
            emails = answer["g"]["list"]
            by_blob_get = [email for email in emails if blob and email["size"] <= LARGEST_BY_BLOB_GET]
            downloads: list[Future[None]] = [
                pool.submit(self.download, download_url, account_id, email, self.path(account_id, email))
                for email in emails if not (blob and email["size"] <= LARGEST_BY_BLOB_GET)]
            batch: list[dict[str, Any]] = []
            batch_bytes = 0
            for email in [*by_blob_get, None]:
                if batch and (email is None or batch_bytes + email["size"] > BATCH_BYTES):
                    self.blob_get(api_url, blob, account_id, batch)
                    batch, batch_bytes = [], 0
                if email is not None:
                    batch.append(email)
                    batch_bytes += email["size"]
            for future in downloads:
                future.result()
        pool.shutdown()

    def blob_get(self, api_url: str, capability: str | None, account_id: str, emails: list[dict[str, Any]]) -> None:
        arguments = {"accountId": account_id, "ids": [email["blobId"] for email in emails],
                     "properties": ["data:asBase64", "size"]}
        answer = self.post(api_url, [CORE, MAIL, str(capability)], [["Blob/get", arguments, "b"]])
        data = {item["id"]: item["data:asBase64"] for item in answer["b"]["list"]}
        written = 0
        for email in emails:
            with open(self.path(account_id, email), "wb") as sink:
                written += sink.write(base64.b64decode(data.pop(email["blobId"])))
        self._count(len(emails), written)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--session-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--quickack", action="store_true")
    args = parser.parse_args()
    floor = RawFloor(args.session_url, (args.user, os.environ["FLOOR_PASSWORD"]), args.out, args.quickack)
    floor.run()
    sys.stderr.write(orjson.dumps({"files": floor.files, "bytes": floor.bytes, "requests": floor.requests}).decode()
                     + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
