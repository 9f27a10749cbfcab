"""The benchmark's table, its targets (PASS/FAIL) and its JSON file in bench/results/."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import Measurement

RESULTS = Path(__file__).resolve().parent / "results"
RSS_LIMIT_MB = 250
RSS_GROWTH_LIMIT = 0.25
MEMORY_SIZES = (2000, 20_000)  # the mailbox sizes between which peak memory may grow by RSS_GROWTH_LIMIT
STATE_SIZES = (2000, 10_000, 20_000)  # the mailbox sizes at which the largest STATE of each stream is reported
STATE_LIMIT_BYTES = 4096  # a STATE message must not grow with the mailbox (issue 13, item 18)


@dataclass
class Row:
    name: str
    kind: str  # start-up, floor or connector
    median: Measurement  # median wall and CPU of the timed runs; the largest peak RSS
    walls: list[float]
    emails: int | None = None
    requests: int | None = None  # from the counted run (through the proxy)
    bytes_received: int | None = None
    proxy_wall: float | None = None  # wall time of the counted run
    baseline: str | None = None  # the start-up row whose wall time is not "work"
    versus: str | None = None  # the row this one's work is compared with
    work: float | None = None
    ratio: float | None = None


def _by_name(rows: list[Row]) -> dict[str, Row]:
    return {row.name: row for row in rows}


def derive(rows: list[Row]) -> None:
    """Fill `work` (wall minus the start-up baseline) and `ratio` (work / the compared row's work)."""
    named = _by_name(rows)
    for row in rows:
        if row.baseline in named:
            row.work = row.median.wall - named[row.baseline].median.wall
    for row in rows:
        other = named.get(row.versus or "")
        if other and row.work is not None and other.work:
            row.ratio = row.work / other.work


def _cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def print_table(result: dict[str, Any]) -> None:
    rows: list[Row] = result["rows"]
    derive(rows)
    print(f"\n== {result['messages']} emails, median of {result['repeat']} runs "
          f"(requests and bytes: one run through the counting proxy)")
    header = (f"{'scenario':36} {'wall s':>7} {'work s':>7} {'emails':>7} {'emails/s':>9} {'HTTP req':>8} "
              f"{'MB recv':>8} {'RSS MB':>7} {'CPU s':>6} {'ratio':>6} {'proxy':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = row.emails / row.work if row.emails and row.work and row.work > 0 else None
        overhead = (row.proxy_wall / row.median.wall - 1) * 100 if row.proxy_wall else None
        megabytes = row.bytes_received / 1e6 if row.bytes_received is not None else None
        print(f"{row.name:36} {row.median.wall:7.2f} {_cell(row.work, '7.2f'):>7} {_cell(row.emails, 'd'):>7} "
              f"{_cell(rate, '9.0f'):>9} {_cell(row.requests, 'd'):>8} {_cell(megabytes, '8.1f'):>8} "
              f"{row.median.max_rss_mb:7.0f} {row.median.cpu:6.2f} {_cell(row.ratio, '6.2f'):>6} "
              f"{_cell(overhead, '+5.0f') + '%' if overhead is not None else '-':>6}")
    print("work = wall - start-up baseline (python -c pass for the floor, connector spec for the connector); "
          "ratio = work / floor work; proxy = wall of the counted run vs the median")


def _target(name: str, value: float | None, limit: float, unit: str = "") -> dict[str, Any]:
    passed = None if value is None else value <= limit
    return {"target": name, "value": value, "limit": limit, "unit": unit, "passed": passed}


def check_targets(rows: list[Row], messages: int, max_objects_in_get: int) -> list[dict[str, Any]]:
    derive(rows)
    named = _by_name(rows)

    def get(name: str, attribute: str) -> Any:
        row = named.get(name)
        return getattr(row, attribute) if row else None

    zero, ten = "incremental, 0 changes", "incremental, 10 changes"
    full_rss = max((row.median.max_rss_mb for row in rows if row.kind == "connector"), default=None)
    trivial, spec = get("trivial CDK source spec", "median"), get("connector spec", "median")
    return [
        _target("full read, start-up excluded, <= 1.2 x floor", get("connector full refresh", "ratio"), 1.2, "x"),
        _target(f"full read HTTP requests <= ceil({messages}/{max_objects_in_get}) + 3",
                get("connector full refresh", "requests"), math.ceil(messages / max_objects_in_get) + 3),
        _target("incremental, 0 changes: HTTP requests (1 stream) <= 3", get(zero, "requests"), 3),
        _target("incremental, 0 changes: <= 0.5 s beyond start-up", get(zero, "work"), 0.5, "s"),
        _target("incremental, 10 changes: HTTP requests <= 5", get(ten, "requests"), 5),
        _target(f"peak RSS of connector reads <= {RSS_LIMIT_MB} MB", full_rss, RSS_LIMIT_MB, "MB"),
        rss_growth_target(rows),
        _target("spec start-up <= 1.1 x trivial CDK source", spec.wall / trivial.wall if spec and trivial else None,
                1.1, "x"),
    ]


def memory_row_name(messages: int) -> str:
    return f"connector full refresh {messages}"


def rss_growth_target(rows: list[Row], small: int = MEMORY_SIZES[0], large: int = MEMORY_SIZES[1]) -> dict[str, Any]:
    """Peak RSS growth of full reads from `small` to `large` emails."""
    named = _by_name(rows)
    low, high = named.get(memory_row_name(small)), named.get(memory_row_name(large))
    growth = high.median.max_rss_mb / low.median.max_rss_mb - 1 if low and high else None
    target = _target(f"peak RSS growth {small} -> {large} emails < {RSS_GROWTH_LIMIT:.0%}", growth,
                     RSS_GROWTH_LIMIT, "fraction")
    if low and high:
        target["detail"] = f"{low.median.max_rss_mb:.0f} MB -> {high.median.max_rss_mb:.0f} MB"
    return target


def memory_scaling_targets(rows: list[Row]) -> list[dict[str, Any]]:
    rss = max(row.median.max_rss_mb for row in rows)
    return [_target(f"peak RSS <= {RSS_LIMIT_MB} MB", rss, RSS_LIMIT_MB, "MB"),
            rss_growth_target(rows, rows[0].emails or 0, rows[-1].emails or 0)]


def largest_states(stdout: Path) -> dict[str, int]:
    """Per stream, the size in bytes of the largest STATE message in a connector's output (the line as printed)."""
    largest: dict[str, int] = {}
    with open(stdout, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"STATE"'):
                name = json.loads(line)["state"]["stream"]["stream_descriptor"]["name"]
                largest[name] = max(largest.get(name, 0), len(line.rstrip(b"\n")))
    return largest


def print_state_sizes(state_sizes: dict[int, dict[str, int]]) -> None:
    """The table "largest STATE per stream (bytes)": a row per stream, a column per mailbox size."""
    if not state_sizes:
        return
    sizes = sorted(state_sizes)
    streams = sorted({stream for per_stream in state_sizes.values() for stream in per_stream})
    print("\n== largest STATE per stream (bytes), full read of every stream")
    header = f"{'stream':14}" + "".join(f"{f'{size} emails':>14}" for size in sizes)
    print(header)
    print("-" * len(header))
    for stream in streams:
        print(f"{stream:14}" + "".join(f"{_cell(state_sizes[size].get(stream), 'd'):>14}" for size in sizes))


def state_size_target(state_sizes: dict[int, dict[str, int]]) -> dict[str, Any]:
    """The largest STATE message of any stream at any size, against STATE_LIMIT_BYTES."""
    largest = max((size for per_stream in state_sizes.values() for size in per_stream.values()), default=None)
    target = _target(f"largest STATE message per stream <= {STATE_LIMIT_BYTES} bytes", largest, STATE_LIMIT_BYTES,
                     "bytes")
    if largest is not None:
        messages, stream = next((messages, stream) for messages, per_stream in sorted(state_sizes.items())
                                for stream, size in per_stream.items() if size == largest)
        target["detail"] = f"{stream} at {messages} emails"
    return target


def print_targets(targets: list[dict[str, Any]]) -> None:
    print("\n== targets")
    for target in targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target["passed"]]
        value = "-" if target["value"] is None else f"{target['value']:.3g}"
        detail = f" ({target['detail']})" if target.get("detail") else ""
        print(f"{verdict}  {target['target']}: {value}{detail}")


def _machine() -> dict[str, Any]:
    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], capture_output=True, text=True, cwd=RESULTS.parent).stdout.strip()

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "commit": git("rev-parse", "HEAD"),
            "modified": git("status", "--porcelain", "--", "source_jmap", "spec.json").splitlines()}


def write_results(result: dict[str, Any], label: str = "") -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}-{result['messages']}{'-' + label if label else ''}.json"
    document = {**result, "rows": [dataclasses.asdict(row) for row in result["rows"]], "machine": _machine()}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
