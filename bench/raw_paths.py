"""Raw-message retrieval paths side by side (issue 11): metadata only, raw by downloads, raw by Blob/get, file mode.

    .venv/bin/python bench/raw_paths.py [--messages 10000] [--delay-ms 50]
    .venv/bin/python bench/raw_paths.py --real-sized [--messages 3000] [--rounds 3]

Runs against the project's two Cyrus test instances (scripts/cyrus.sh: the plain one, which offers no
Blob/get, and CYRUS_PROFILE=ext, which offers Cyrus's Blob/get); it never starts, stops or resets them. It
adds a fresh account with the same N seeded emails to each (one of them a scanned contract of `--large-mb`,
50 MB by default), then runs every scenario once through a
counting loopback proxy, and again through the same proxy holding each request `--delay-ms` before
forwarding it (a remote server). Columns: wall seconds, HTTP requests, peak RSS (GNU time).

--real-sized (issue 20) seeds mail of real size instead (`real_sized_messages`: a few KB to a few MB, median
near 25 KB, one in 300 over 1 MB, attachments common, plus the `--large-mb` message), and times raw_messages
in file mode against `raw_floor.py`, a plain `requests` client that writes the same files, on both servers,
straight (no proxy), floor and connector interleaved `--rounds` times. Read time excludes start-up for both
the same way (`timed.py`: from the first HTTP request to the end of the script's main).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
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


# Real-sized mail (issue 20): sizes drawn from a log-normal around REAL_MEDIAN_BYTES, one message in
# REAL_LARGE_ONE_IN between 1.1 and 3 MB; above REAL_TEXT_ONLY_BYTES a message is a text part with an attachment.
REAL_SEED = 20
REAL_MEDIAN_BYTES = 20_000
REAL_SIGMA = 0.75
REAL_LARGE_ONE_IN = 300
REAL_TEXT_ONLY_BYTES = 8_000
REAL_KINDS = (("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("application/vnd.openxmlformats-officedocument."
              "wordprocessingml.document", "docx"), ("application/zip", "zip"))


def real_sized_messages(count: int, seed: int = REAL_SEED) -> list[seed_mail.SampleMessage]:
    """`count` messages of real sizes, the same bytes for the same seed: a text part of filler lines, and
    where the drawn size leaves room, an attachment of random bytes (incompressible, as real ones are)."""
    rng = random.Random(seed)
    filler = seed_mail._filler_lines()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    messages = []
    for index in range(count):
        if rng.randrange(REAL_LARGE_ONE_IN) == 0:
            size = rng.randrange(1_100_000, 3_000_000)
        else:
            size = min(950_000, max(2_000, int(rng.lognormvariate(math.log(REAL_MEDIAN_BYTES), REAL_SIGMA))))
        date = start + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        message_id = f"<real-{seed}-{index:06d}@bench.example>"
        headers = [f"From: Sender {index % 53} <sender{index % 53}@real.example>",
                   "To: Alice Example <alice@example.com>", f"Subject: Real-sized message {index}",
                   f"Date: {seed_mail.format_datetime(date)}", f"Message-ID: {message_id}", "MIME-Version: 1.0"]
        lines = rng.randrange(10, 120)
        first = rng.randrange(len(filler) - lines)
        text = "\r\n".join(filler[first:first + lines]) + "\r\n"
        room = size - len(text) - 600
        if size > REAL_TEXT_ONLY_BYTES and room > 1_000:
            media_type, extension = REAL_KINDS[rng.randrange(len(REAL_KINDS))]
            payload = base64.encodebytes(rng.randbytes(room * 57 // 78)).replace(b"\n", b"\r\n").decode("ascii")
            boundary = f"=_real-{index:06d}"
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            body = (f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
                    f"--{boundary}\r\nContent-Type: {media_type}\r\nContent-Transfer-Encoding: base64\r\n"
                    f'Content-Disposition: attachment; filename="document-{index}.{extension}"\r\n\r\n'
                    f"{payload}--{boundary}--\r\n")
        else:
            headers.append("Content-Type: text/plain; charset=us-ascii")
            body = text
        raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("ascii")
        messages.append(seed_mail.SampleMessage("INBOX", ("\\Seen",), date, raw, message_id,
                                                f"Real-sized message {index}", size > REAL_TEXT_ONLY_BYTES))
    return messages


def new_real_sized_account(server: str, messages: list[seed_mail.SampleMessage]) -> tuple[str, str]:
    _, imap_port, env = SERVERS[server]
    user, password = f"bench-real-{uuid.uuid4().hex[:10]}@example.com", f"Pw-{uuid.uuid4().hex}"
    subprocess.run([str(ROOT / "scripts" / "cyrus.sh"), "adduser", user, password], check=True,
                   capture_output=True, env={**os.environ, **env})
    seed_mail.append_pipelined("127.0.0.1", imap_port, user, password, messages, batch_size=50)
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


def _files(directory: Path) -> tuple[int, int]:
    """The .eml files under `directory` and their bytes."""
    files = [path for path in directory.rglob("*.eml") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def _failed(stdout: Path) -> str | None:
    """The first error a connector's output reports, if any."""
    for line in stdout.open():
        if '"type":"TRACE"' in line and '"error"' in line:
            return json.loads(line)["trace"]["error"]["message"]
    return None


def real_run(work: Path, name: str, server: str, account: tuple[str, str], round_: int,
             other: Path | None = None) -> dict[str, Any]:
    """One timed run, floor or connector (this checkout's, or `other`'s for a name that ends in `(other)`), on one
    server; its files are counted, then removed."""
    directory = work / f"{name}-{server}-{round_}"
    staging = directory / "staging"
    staging.mkdir(parents=True)
    session_url = f"http://127.0.0.1:{SERVERS[server][0]}/jmap/"  # ignore-https-check: the test Cyrus, on loopback
    python, timing = sys.executable, directory / "read-seconds"
    env = dict(os.environ)
    if name.startswith("floor"):
        argv = [python, str(BENCH / "timed.py"), str(timing), str(BENCH / "raw_floor.py"), "--session-url",
                session_url, "--user", account[0], "--out", str(staging),
                *(["--quickack"] if "QUICKACK" in name else [])]
        env["FLOOR_PASSWORD"] = account[1]
    else:
        config = {"session_url": session_url,
                  "credentials": {"auth_type": "basic", "username": account[0], "password": account[1]},
                  "exclude_mailboxes": [], "include_raw_message": True}
        catalog = {"streams": [{"stream": {"name": "raw_messages", "json_schema": {},
                                           "supported_sync_modes": ["incremental"]},
                                "sync_mode": "incremental", "destination_sync_mode": "append", "include_files": True}]}
        (directory / "config.json").write_text(json.dumps(config))
        (directory / "catalog.json").write_text(json.dumps(catalog))
        checkout = other if name.endswith("(other)") and other is not None else ROOT
        argv = [python, str(BENCH / "timed.py"), str(timing), str(checkout / "main.py"), "read",
                "--config", str(directory / "config.json"), "--catalog", str(directory / "catalog.json")]
        env["AIRBYTE_STAGING_DIRECTORY"] = str(staging)
    measured = run_measured(argv, ROOT, env, stdout=directory / "stdout", stderr=directory / "stderr")
    if not name.startswith("floor") and (error := _failed(directory / "stdout")):
        raise SystemExit(f"{name} on {server} failed: {error}")
    files, size = _files(staging)
    shutil.rmtree(staging)
    os.sync()  # untimed: the next run's sync must not write back this run's files (the floor never syncs them)
    return {"scenario": name, "server": server, "read_s": float(timing.read_text()), "wall_s": measured.wall,
            "peak_rss_mb": measured.max_rss_mb, "files": files, "bytes": size}


def real_sized(args: argparse.Namespace) -> int:
    """Raw messages of real size in file mode against the plain-client floor, on both servers."""
    messages = [*real_sized_messages(args.messages), seed_mail.large_message(int(args.large_mb * 1e6))]
    sizes = sorted(len(message.raw) for message in messages)
    print(f"seeding {len(messages)} messages, {sum(sizes) / 1e6:.1f} MB, median {sizes[len(sizes) // 2] / 1e3:.1f} KB, "
          f"{sum(size > 1_000_000 for size in sizes)} over 1 MB, "
          f"{sum(message.has_attachment for message in messages)} with an attachment", flush=True)
    kept = Path(args.accounts) if args.accounts else None
    if kept is not None and kept.exists():  # seeded by an earlier run with the same arguments
        accounts = {server: tuple(account) for server, account in json.loads(kept.read_text()).items()}
    else:
        accounts = {server: new_real_sized_account(server, messages) for server in SERVERS}
        if kept is not None:
            kept.write_text(json.dumps(accounts))
    runs: list[dict[str, Any]] = []
    names = [("floor", "ext"), ("connector", "ext"), ("floor", "plain"), ("floor, TCP_QUICKACK", "plain"),
             ("connector", "plain")]
    if args.other:  # the same connector runs of another checkout, in the same rounds
        names += [("connector (other)", server) for server in SERVERS]
    if args.only:
        names = [(name, server) for name, server in names if args.only in f"{name} on {server}"]
    with tempfile.TemporaryDirectory(prefix="bench-real-", dir=args.work) as work:
        for round_ in range(args.rounds):
            for name, server in names[round_ % len(names):] + names[:round_ % len(names)]:  # no run always first
                runs.append(real_run(Path(work), name, server, accounts[server], round_, args.other))
                row = runs[-1]
                print(f"round {round_ + 1}: {name} on {server}: read {row['read_s']:.2f} s, "
                      f"wall {row['wall_s']:.2f} s, {row['peak_rss_mb']:.0f} MB, {row['files']} files, "
                      f"{row['bytes'] / 1e6:.1f} MB", flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nload average at the end: {' '.join(load)}\n")
    print(f"| server | scenario | read (median of {args.rounds}) | runs | wall | peak RSS | files | MB | x floor |\n"
          + "|---" * 9 + "|")
    medians = {}
    for name, server in names:
        mine = [row for row in runs if row["scenario"] == name and row["server"] == server]
        medians[name, server] = statistics.median(row["read_s"] for row in mine)
        ratio = medians[name, server] / medians["floor", server] if ("floor", server) in medians else math.nan
        each = " ".join(f"{row['read_s']:.2f}" for row in mine)
        print(f"| {server} | {name} | {medians[name, server]:.2f} s | "
              f"{each} | "
              f"{statistics.median(row['wall_s'] for row in mine):.2f} s | "
              f"{max(row['peak_rss_mb'] for row in mine):.0f} MB | {mine[0]['files']} | "
              f"{mine[0]['bytes'] / 1e6:.1f} | {ratio:.2f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=None, help="10,000 (3,000 with --real-sized)")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--large-mb", type=float, default=50.0)
    parser.add_argument("--real-sized", action="store_true", help="raw_messages of real size in file mode against "
                        "the plain-client floor (issue 20)")
    parser.add_argument("--rounds", type=int, default=3, help="with --real-sized: floor and connector interleaved")
    parser.add_argument("--accounts", default=None, help="with --real-sized: a JSON file that keeps the seeded "
                        "accounts for the next run with the same arguments (seeded afresh when it does not exist)")
    parser.add_argument("--only", default=None, help="with --real-sized: run only the scenarios whose name or "
                        "server contains this (for profiling)")
    parser.add_argument("--other", type=Path, default=None, help="with --real-sized: also time the connector of "
                        "this checkout (rows `connector (other)`), in the same rounds")
    parser.add_argument("--work", default=None, help="where files are written (a temporary directory in it)")
    args = parser.parse_args()
    if args.real_sized:
        args.messages = args.messages or 3_000
        return real_sized(args)
    args.messages = args.messages or 10_000
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
