"""Where a concurrent read's wall time goes: each partition's start, first record and end, and each HTTP attempt's
wait for a slot of the transport's limiter (maxConcurrentRequests) and its time holding one.

    python bench/timeline.py --scenario a [--delay-ms 50] [--connector DIR] [--order]

Runs one first sync as bench/concurrent_read.py does (same data, config, catalog, proxy), but its connector under
this file's `--traced` mode, which wraps `AccountPartition.read` and `HttpTransport._attempt` (the measured
connector's own classes, from its folder) and writes one JSON line per event to a trace file; then prints, per
stream, its partitions' span and its requests (count, median and total slot wait, time held) and, per kind of
request, the same. Tracing costs a few microseconds a request and a record; the wall is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def traced(trace_path: str, argv: list[str]) -> None:
    """Run the connector (the cwd's source_jmap) with its partitions and HTTP attempts traced to `trace_path`."""
    sys.path.insert(0, os.getcwd())
    from source_jmap.jmap import transport
    from source_jmap.run import run
    from source_jmap.streams import partitions

    start = time.monotonic()
    out = open(trace_path, "w")  # noqa: SIM115  (open for the whole run, closed at its end)
    lock = threading.Lock()
    current = threading.local()

    def event(**fields: Any) -> None:
        line = json.dumps({"t": round(time.monotonic() - start, 4), "thread": threading.current_thread().name,
                           **fields})
        with lock:
            out.write(line + "\n")

    original_read = partitions.AccountPartition.read

    def read(self: Any) -> Any:
        name = f"{self.stream_name()}/{self._account_id}"
        current.partition = name
        event(kind="partition-start", partition=name)
        first = True
        for record in original_read(self):
            if first:
                event(kind="first-record", partition=name)
                first = False
            yield record
        event(kind="partition-end", partition=name)

    original_attempt = transport.HttpTransport._attempt
    original_exchange = transport.HttpTransport._exchange_once

    def attempt(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        current.asked = time.monotonic()  # before the limiter's slot, which the original takes
        return original_attempt(self, method, url, *args, **kwargs)

    def exchange(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        got = time.monotonic()  # a slot held
        what = "download"
        if kwargs.get("data"):
            try:
                calls = json.loads(kwargs["data"])["methodCalls"]
                what = "+".join(call[0] for call in calls)
            except (ValueError, KeyError, TypeError):
                what = "api"
        try:
            return original_exchange(self, method, url, *args, **kwargs)
        finally:
            asked = getattr(current, "asked", got)
            event(kind="request", what=what, partition=getattr(current, "partition", None),
                  asked=round(asked - start, 4), wait=round(got - asked, 4), held=round(time.monotonic() - got, 4))

    partitions.AccountPartition.read = read  # type: ignore[method-assign]
    transport.HttpTransport._attempt = attempt  # type: ignore[method-assign]
    transport.HttpTransport._exchange_once = exchange  # type: ignore[method-assign]
    sys.argv = ["main.py", *argv]
    try:
        run()
    finally:
        event(kind="exit")
        out.close()


def summarize(trace: Path) -> None:
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    end = max(event["t"] for event in events)
    spans: dict[str, dict[str, float]] = defaultdict(dict)
    for event in events:
        if event["kind"] in ("partition-start", "first-record", "partition-end"):
            spans[event["partition"]][event["kind"]] = event["t"]
    print(f"trace ends at {end:.2f} s\n\n| partition | start | first record | end |\n|---|---|---|---|")
    for name, span in sorted(spans.items(), key=lambda item: item[1].get("partition-start", 0)):
        if len(spans) > 30 and span.get("partition-end", 0) - span.get("partition-start", 0) < 1:
            continue  # (b): only the partitions that took a second or more
        start, first, end = (span.get(kind, float("nan"))
                             for kind in ("partition-start", "first-record", "partition-end"))
        print(f"| {name} | {start:.2f} | {first:.2f} | {end:.2f} |")
    requests = [event for event in events if event["kind"] == "request"]
    by_what: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in requests:
        by_what[request["what"]].append(request)
    print("\n| request | count | wait median | wait total | held median | held total |\n|---|---|---|---|---|---|")
    for what, mine in sorted(by_what.items(), key=lambda item: -sum(r["held"] for r in item[1])):
        waits, helds = [r["wait"] for r in mine], [r["held"] for r in mine]
        print(f"| {what} | {len(mine)} | {statistics.median(waits):.3f} | {sum(waits):.2f} | "
              f"{statistics.median(helds):.3f} | {sum(helds):.2f} |")
    if len(requests) <= 60:
        print("\n| asked | wait | held | thread | partition | request |\n|---|---|---|---|---|---|")
        for r in sorted(requests, key=lambda r: r["asked"]):
            print(f"| {r['asked']:.2f} | {r['wait']:.2f} | {r['held']:.2f} | {r['thread']} | {r['partition']} | "
                  f"{r['what'][:40]} |")
    # How busy the limiter was: the seconds in which 0..5 slots were held.
    changes = sorted([(r["asked"] + r["wait"], 1) for r in requests] + [(r["asked"] + r["wait"] + r["held"], -1)
                                                                        for r in requests])
    busy: dict[int, float] = defaultdict(float)
    level, last = 0, 0.0
    for moment, step in changes:
        busy[level] += moment - last
        level, last = level + step, moment
    busy[0] += end - last
    print("\nslots held: " + ", ".join(f"{n}: {busy[n]:.1f} s" for n in sorted(busy)))


def _children_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


class CyrusCpu(threading.Thread):
    """CPU-seconds of the ext Cyrus's processes (httpd, imapd: its imapd.conf on their command line) while running:
    each process's last sample (every 0.2 s) less its first; a process that lived less than 0.2 s is missed."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if b"source-jmap-cyrus-ext/" not in (entry / "cmdline").read_bytes():
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used = (int(fields[11]) + int(fields[12])) / tick
            self.first.setdefault(int(entry.name), used)
            self.last[int(entry.name)] = used

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()

    def seconds(self) -> float:
        self.stop.set()
        self.sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


def _machine_busy() -> tuple[float, float]:
    """CPU-seconds of the whole machine so far: busy (not idle nor iowait), and all."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / tick, sum(ticks) / tick


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--traced":
        traced(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("a", "b"), default="a")
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--connector", type=Path, default=BENCH.parent)
    parser.add_argument("--prefix", default="", help="a command the connector runs under (strace -c -f -o FILE)")
    parser.add_argument("--keep-output", type=Path, default=None, help="copy the run's stdout and files here")
    parser.add_argument("--keep", type=Path, default=None, help="copy the trace here")
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH))
    import concurrent_read as bench
    from raw_paths import DelayingProxy

    connector = args.connector.resolve()
    user, _ = bench.seed(args.scenario, 10_000, 50)
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as work:
        directory = Path(work)
        (directory / "staging").mkdir()
        straight = directory / "config-straight.json"
        straight.write_text(json.dumps(bench.connector_config(user, bench.HTTP_PORT, args.scenario, None)))
        (directory / "catalog.json").write_text(json.dumps(bench.every_stream(connector, straight)))
        trace = directory / "trace.jsonl"
        with DelayingProxy(bench.HTTP_PORT, args.delay_ms / 1000) as relay:
            (directory / "config.json").write_text(json.dumps(
                bench.connector_config(user, relay.port, args.scenario, None)))
            print(f"load {bench.load_average()}", flush=True)
            cyrus = CyrusCpu()
            cyrus.sample()
            cyrus.start()
            started, cpu, machine = time.perf_counter(), _children_cpu(), _machine_busy()
            with open(directory / "stdout", "wb") as stdout, open(directory / "stderr", "wb") as stderr:
                argv = ["read", "--config", str(directory / "config.json"),
                        "--catalog", str(directory / "catalog.json")]
                subprocess.run([*args.prefix.split(), sys.executable, str(BENCH / "timeline.py"), "--traced",
                                str(trace), *argv], cwd=connector, stdout=stdout, stderr=stderr, check=False,
                               env={**os.environ, "AIRBYTE_STAGING_DIRECTORY": str(directory / "staging")})
            if (directory / "stdout").read_bytes().count(b'"status":"COMPLETE"') == 0:
                print((directory / "stderr").read_text()[-3000:], (directory / "stdout").read_text()[-3000:])
            wall = time.perf_counter() - started
            busy = [after - before for before, after in zip(machine, _machine_busy(), strict=True)]
            print(f"wall {wall:.2f} s, {relay.counts().requests} requests; connector CPU user "
                  f"{_children_cpu()[0] - cpu[0]:.2f} s, system {_children_cpu()[1] - cpu[1]:.2f} s; "
                  f"Cyrus CPU {cyrus.seconds():.2f} s; "
                  f"machine busy {busy[0]:.2f} of {busy[1]:.2f} CPU-seconds", flush=True)
        if args.keep:
            args.keep.write_bytes(trace.read_bytes())
        if args.keep_output:  # to compare two connectors' records and files
            shutil.copytree(directory / "staging", args.keep_output / "staging")
            shutil.copy(directory / "stdout", args.keep_output / "stdout")
        summarize(trace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
