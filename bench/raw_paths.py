"""Raw-message retrieval paths side by side (issue 11): metadata only, raw by downloads, raw by Blob/get, file mode.

    .venv/bin/python bench/raw_paths.py [--messages 10000] [--delay-ms 50]

Runs against the project's two Cyrus test instances (scripts/cyrus.sh: the plain one, which offers no
Blob/get, and CYRUS_PROFILE=ext, which offers Cyrus's Blob/get); it never starts, stops or resets them. It
adds a fresh account with the same N seeded emails to each (one of them a scanned contract of `--large-mb`,
50 MB by default), then runs every scenario once through a
counting loopback proxy, and again through the same proxy holding each request `--delay-ms` before
forwarding it (a remote server). Columns: wall seconds, HTTP requests, peak RSS (GNU time).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "scripts"))

import proxy  # noqa: E402
import seed_mail  # noqa: E402
from measure import run_measured  # noqa: E402

SERVERS = {"plain": (18080, 11143, {}),
           "ext": (18081, 11144, {"CYRUS_PROFILE": "ext", "CYRUS_HTTP_PORT": "18081", "CYRUS_IMAP_PORT": "11144"})}


class _DelayingHandler(proxy._Handler):
    """The counting proxy's handler, holding each request `delay` seconds before it goes upstream."""

    delay = 0.0

    def _relay_requests(self, client: socket.socket, upstream: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            while (request := proxy._read_request(reader)) is not None:
                self.server.counter.add(requests=1, sent=len(request))
                time.sleep(self.delay)
                upstream.sendall(request)
        except OSError:
            pass
        finally:
            proxy._shutdown_write(upstream)


class DelayingProxy(proxy.CountingProxy):
    def __init__(self, upstream_port: int, delay: float) -> None:
        handler = type("Handler", (_DelayingHandler,), {"delay": delay})
        server = proxy._ProxyServer.__new__(proxy._ProxyServer)
        socketserver.ThreadingTCPServer.__init__(server, ("127.0.0.1", 0), handler)
        server.upstream, server.counter = ("127.0.0.1", upstream_port), proxy._Counter()
        self._server = server
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)


def new_account(server: str, messages: int, large_bytes: int) -> tuple[str, str]:
    _, imap_port, env = SERVERS[server]
    user, password = f"bench-raw-{uuid.uuid4().hex[:10]}@example.com", f"Pw-{uuid.uuid4().hex}"
    subprocess.run([str(ROOT / "scripts" / "cyrus.sh"), "adduser", user, password], check=True,
                   capture_output=True, env={**os.environ, **env})
    seed_mail.seed("127.0.0.1", imap_port, user, password,
                   bulk=max(0, messages - 1 - len(seed_mail.sample_messages())))
    seed_mail.append_pipelined("127.0.0.1", imap_port, user, password, [seed_mail.large_message(large_bytes)])
    return user, password


def scenario(work: Path, name: str, server: str, account: tuple[str, str], stream: str, include_files: bool,
             delay: float) -> dict[str, Any]:
    directory = work / f"{name}-{delay}".replace(" ", "_")
    (directory / "staging").mkdir(parents=True)
    with DelayingProxy(SERVERS[server][0], delay) as relay:
        config = {"session_url": f"http://127.0.0.1:{relay.port}/jmap/",  # ignore-https-check
                  "credentials": {"auth_type": "basic", "username": account[0], "password": account[1]},
                  "exclude_mailboxes": [], "include_raw_message": True, "max_raw_message_bytes": 64 << 20}
        catalog = {"streams": [{"stream": {"name": stream, "json_schema": {}, "supported_sync_modes": ["incremental"]},
                                "sync_mode": "incremental", "destination_sync_mode": "append",
                                "include_files": include_files}]}
        (directory / "config.json").write_text(json.dumps(config))
        (directory / "catalog.json").write_text(json.dumps(catalog))
        argv = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "main.py"), "read",
                "--config", str(directory / "config.json"), "--catalog", str(directory / "catalog.json")]
        before = relay.counts()
        measured = run_measured(argv, ROOT, {**os.environ, "AIRBYTE_STAGING_DIRECTORY": str(directory / "staging")},
                                stdout=directory / "stdout")
        counts = relay.counts() - before
    lines = [line for line in (directory / "stdout").open() if line.startswith('{"type":"RECORD"')]
    records, skipped = len(lines), sum('"raw_message_skipped"' in line for line in lines)
    return {"scenario": name, "delay_ms": round(delay * 1000), "wall_s": round(measured.wall, 2),
            "requests": counts.requests, "peak_rss_mb": round(measured.max_rss_mb), "records": records,
            "skipped": skipped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--large-mb", type=float, default=50.0)
    args = parser.parse_args()
    accounts = {server: new_account(server, args.messages, int(args.large_mb * 1e6)) for server in SERVERS}
    rows = []
    print("| scenario | added delay | wall | HTTP requests | peak RSS | records | skipped |\n" + "|---" * 7 + "|")
    with tempfile.TemporaryDirectory(prefix="bench-raw-") as work:
        for delay in (0.0, args.delay_ms / 1000):
            for name, server, stream, files in [
                ("metadata only (emails)", "ext", "emails", False),
                ("raw by downloads", "plain", "raw_messages", False),
                ("raw by Blob/get", "ext", "raw_messages", False),
                ("file mode, downloads", "plain", "raw_messages", True),
                ("file mode, Blob/get", "ext", "raw_messages", True),
            ]:
                rows.append(scenario(Path(work), name, server, accounts[server], stream, files, delay))
                row = rows[-1]
                print(f"| {row['scenario']} | {row['delay_ms']} ms | {row['wall_s']} s | {row['requests']} | "
                      f"{row['peak_rss_mb']} MB | {row['records']} | {row['skipped']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
