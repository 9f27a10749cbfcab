#!/usr/bin/env python3
"""Benchmark the connector's emails stream against the raw JMAP floor, on the bench's own Cyrus instance.

    bench/run.sh [--messages N] [--repeat R] [--raw-repeat R]
    bench/run.sh --memory-scaling [N ...]
    bench/run.sh --state-sizes [N ...]

Every scenario runs once through a counting proxy (HTTP requests and bytes), then R times straight against Cyrus
(timings: the median is reported), in interleaved rounds. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from mailserver import HTTP_PORT, BenchAccount, ensure_account, start_instance, toggle_flags
from measure import Measurement, RunFailed, check_gnu_time, median_of, run_measured
from proxy import CountingProxy, Counts
from report import (
    MEMORY_SIZES,
    STATE_SIZES,
    Row,
    check_targets,
    largest_states,
    memory_row_name,
    memory_scaling_targets,
    print_state_sizes,
    print_table,
    print_targets,
    state_size_target,
    write_results,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CHANGES = 10
# The connector checkout whose main.py is run: this one, or a patched copy (--connector DIR).
connector_dir = ROOT

Argv = Callable[[int], list[str]]  # the command line, given the port of the JMAP server (direct or proxy)


@dataclass
class Files:
    """Config, catalogs and states in a scratch directory, one config per port."""

    account: BenchAccount
    directory: Path
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, port: int) -> Path:
        path = self.directory / f"config-{port}.json"
        if not path.exists():
            path.write_text(json.dumps(self.account.config(port, **self.config_overrides)))
        return path

    def write(self, name: str, content: Any) -> Path:
        path = self.directory / name
        path.write_text(json.dumps(content))
        return path


def connector_argv(files: Files, command: str, catalog: Path | None = None, state: Path | None = None) -> Argv:
    def argv(port: int) -> list[str]:
        line = [PYTHON, str(connector_dir / "main.py"), command]
        if command != "spec":
            line += ["--config", str(files.config(port))]
        if catalog:
            line += ["--catalog", str(catalog)]
        if state:
            line += ["--state", str(state)]
        return line

    return argv


def floor_argv(
    account: BenchAccount, get_arguments: Path, raw: bool = False, quickack: bool = False, since: str | None = None
) -> Argv:
    def argv(port: int) -> list[str]:
        line = [PYTHON, str(BENCH / "floor.py"), "--session-url", account.session_url(port), "--user", account.user,
                "--get-arguments", str(get_arguments)]
        line += ["--raw"] if raw else []
        line += ["--quickack"] if quickack else []
        return line + (["--since", since] if since else [])

    return argv


@dataclass
class Scenario:
    name: str
    kind: str  # start-up, floor or connector
    argv: Argv
    repeat: int
    counted: bool = True  # also run once through the counting proxy
    baseline: str | None = None
    versus: str | None = None


@dataclass
class Counted:
    measurement: Measurement
    counts: Counts
    emails: int
    stdout: Path


class Runner:
    """Runs scenarios: counted runs through the proxy, then timed runs straight to Cyrus, interleaved in rounds
    (A B C A B C ...) so that load from elsewhere on the machine spreads over every scenario alike."""

    def __init__(self, scratch: Path, env: dict[str, str]) -> None:
        self.scratch = scratch
        self.env = env
        self.proxy = CountingProxy(HTTP_PORT)
        self.counted_runs: dict[str, Counted] = {}
        self.failures: list[str] = []

    def timed(self, argv: Argv) -> Measurement:
        return run_measured(argv(HTTP_PORT), ROOT, self.env)

    def count(self, scenario: Scenario) -> Counted:
        """One run through the counting proxy; its stdout is kept (records, state)."""
        if scenario.name not in self.counted_runs:
            print(f"  counted: {scenario.name}", flush=True)
            name = scenario.name.replace(" ", "-").replace(",", "")
            stdout, stderr = self.scratch / f"{name}.out", self.scratch / f"{name}.err"
            before = self.proxy.counts()
            measurement = run_measured(scenario.argv(self.proxy.port), ROOT, self.env, stdout=stdout, stderr=stderr)
            counts = self.proxy.counts() - before
            self.counted_runs[scenario.name] = Counted(measurement, counts, _emails_in(stdout, stderr), stdout)
        return self.counted_runs[scenario.name]

    def run(self, scenarios: list[Scenario]) -> list[Row]:
        """Rows of the scenarios that ran; one that fails (the connector is changed by others) becomes a note."""
        scenarios = [scenario for scenario in scenarios if not scenario.counted or self._counts(scenario)]
        timings: dict[str, list[Measurement]] = {scenario.name: [] for scenario in scenarios}
        for round_number in range(max(scenario.repeat for scenario in scenarios)):
            print(f"  timed round {round_number + 1}", flush=True)
            for scenario in scenarios:
                if round_number < scenario.repeat:
                    timings[scenario.name].append(self.timed(scenario.argv))
        return [self._row(scenario, timings[scenario.name]) for scenario in scenarios]

    def _counts(self, scenario: Scenario) -> bool:
        try:
            self.count(scenario)
        except RunFailed as error:
            self.failures.append(f"{scenario.name}: FAILED, left out ({_failure_reason(error, scenario, self)})")
            print(f"  {self.failures[-1]}")
            return False
        return True

    def _row(self, scenario: Scenario, runs: list[Measurement]) -> Row:
        row = Row(scenario.name, scenario.kind, median_of(runs), [run.wall for run in runs],
                  baseline=scenario.baseline, versus=scenario.versus)
        if counted := self.counted_runs.get(scenario.name):
            row.emails, row.requests = counted.emails, counted.counts.requests
            row.bytes_received, row.proxy_wall = counted.counts.bytes_received, counted.measurement.wall
        return row


def _failure_reason(error: RunFailed, scenario: Scenario, runner: Runner) -> str:
    """The connector's error TRACE message if it printed one, else the last line of stderr."""
    stdout = runner.scratch / f"{scenario.name.replace(' ', '-').replace(',', '')}.out"
    for line in reversed(stdout.read_bytes().splitlines() if stdout.exists() else []):
        if line.startswith(b'{"type":"TRACE"') and b'"error"' in line:
            return str(orjson.loads(line)["trace"]["error"]["message"])[:300]
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _emails_in(stdout: Path, stderr: Path) -> int:
    """Emails emitted: RECORD messages (the catalog has one stream) or the floor's own summary line."""
    count = 0
    with open(stdout, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                count += 1
    if count:
        return count
    for line in reversed(stderr.read_bytes().splitlines()):
        if line.startswith(b'{"emails"'):
            return int(orjson.loads(line)["emails"])
    return 0


def email_state(states: list[dict[str, Any]]) -> str:
    """The JMAP Email state string in the emails stream's state (the bench account is the only account)."""
    [stream] = [s for s in states if s["stream"]["stream_descriptor"]["name"] == "emails"]
    [account] = stream["stream"]["stream_state"]["accounts"].values()
    return str(account["state"])


def final_state(stdout: Path) -> list[dict[str, Any]]:
    """The last STATE message of each stream, as a --state file."""
    latest: dict[str, Any] = {}
    with open(stdout, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"STATE"'):
                state = orjson.loads(line)["state"]
                latest[state["stream"]["stream_descriptor"]["name"]] = state
    return list(latest.values())


def catalog(discovered: dict[str, Any], sync_mode: str, name: str = "emails") -> dict[str, Any]:
    [stream] = [s for s in discovered["streams"] if s["name"] == name]
    return {"streams": [{
        "stream": stream, "sync_mode": sync_mode,
        "destination_sync_mode": "append_dedup" if sync_mode == "incremental" else "overwrite",
        "cursor_field": stream.get("default_cursor_field", []), "primary_key": stream.get("source_defined_primary_key"),
    }]}


def catalog_of_every_stream(discovered: dict[str, Any]) -> dict[str, Any]:
    """Every discovered stream, incremental where it can be (that is where states are checkpointed)."""
    streams = []
    for stream in discovered["streams"]:
        incremental = "incremental" in stream.get("supported_sync_modes", [])
        streams.append({
            "stream": stream, "sync_mode": "incremental" if incremental else "full_refresh",
            "destination_sync_mode": "append_dedup" if incremental else "overwrite",
            "cursor_field": stream.get("default_cursor_field", []),
            "primary_key": stream.get("source_defined_primary_key"),
        })
    return {"streams": streams}


def discover(files: Files, runner: Runner) -> dict[str, Any]:
    out = files.directory / "discover.out"
    run_measured(connector_argv(files, "discover")(HTTP_PORT), ROOT, runner.env, stdout=out)
    for line in out.read_bytes().splitlines():
        if line.startswith(b'{"type":"CATALOG"'):
            return orjson.loads(line)["catalog"]
    raise RuntimeError("discover printed no catalog")


def email_get_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """What the connector's Email/get asks for, from the constants of source_jmap/streams/emails.py.

    The default config's body options; the stream built from the bench config is checked against them.
    """
    from source_jmap.config import JmapConfig
    from source_jmap.streams.emails import BODY_PROPERTIES, BODY_VALUE_ARGUMENTS, METADATA_PROPERTIES

    max_body_value_bytes = JmapConfig.model_fields["max_body_value_bytes"].default
    expected = {"properties": [*METADATA_PROPERTIES, *BODY_PROPERTIES],
                "arguments": {**BODY_VALUE_ARGUMENTS["text"], "maxBodyValueBytes": max_body_value_bytes}}
    try:
        actual = stream_get_arguments(config, "emails")
    except Exception as error:  # the connector is being changed by others: a check, not a requirement
        print(f"note: could not build the emails stream to cross-check the floor's arguments ({error})")
        return expected
    if actual != expected:
        print(f"note: the connector asks for {actual}, not the constants' {expected}: the floor follows the connector")
        return actual
    return expected


def stream_get_arguments(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The Email/get properties and arguments of a stream as the connector builds it from `config` (no network)."""
    from source_jmap.source import SourceJmap

    [stream] = [s for s in SourceJmap().streams(config) if s.name == name]
    [dialect] = stream.dialects_of("bench")  # type: ignore[attr-defined]  # mail: one, built from the selection
    data_type = dialect.data_type
    return {"properties": list(data_type.properties or []), "arguments": dict(data_type.get_arguments)}


def spec_has(option: str) -> bool:
    spec = json.loads((ROOT / "source_jmap" / "spec.json").read_text())
    return option in spec["connectionSpecification"].get("properties", {})


def max_objects_in_get(account: BenchAccount) -> int:
    import requests

    session = requests.get(account.session_url(), auth=(account.user, account.password), timeout=30).json()
    return int(session["capabilities"]["urn:ietf:params:jmap:core"]["maxObjectsInGet"])


def run_benchmark(messages: int, repeat: int, raw_repeat: int) -> dict[str, Any]:
    account = ensure_account(messages)
    scratch = Path(tempfile.mkdtemp(prefix=f"source-jmap-bench-{messages}-", dir="/dev/shm"))
    files = Files(account, scratch)
    runner = Runner(scratch, {**os.environ, "FLOOR_PASSWORD": account.password})
    get_arguments = files.write("get-arguments.json", email_get_arguments(account.config()))
    discovered = discover(files, runner)
    full, incremental = (files.write(f"catalog-{mode}.json", catalog(discovered, mode))
                         for mode in ("full_refresh", "incremental"))
    notes: list[str] = []
    with runner.proxy:
        print("== states for the incremental reads")
        first = Scenario("connector incremental, first sync", "connector", connector_argv(files, "read", incremental),
                         repeat, baseline="connector spec", versus="floor")
        state_before = final_state(runner.count(first).stdout)
        before = files.write("state-before-changes.json", state_before)
        toggle_flags(account, CHANGES)
        changed = Scenario(f"incremental, {CHANGES} changes", "connector",
                           connector_argv(files, "read", incremental, before), repeat, baseline="connector spec",
                           versus=f"floor, {CHANGES} changes")
        state_after = final_state(runner.count(changed).stdout)
        after = files.write("state-after-changes.json", state_after)
        startup = max(repeat, 5)
        scenarios = [
            Scenario("python -c pass", "start-up", lambda port: [PYTHON, "-c", "pass"], startup, counted=False),
            Scenario("trivial CDK source spec", "start-up",
                     lambda port: [PYTHON, str(BENCH / "trivial_source.py"), "spec"], startup, counted=False),
            Scenario("connector spec", "start-up", connector_argv(files, "spec"), startup, counted=False),
            Scenario("floor", "floor", floor_argv(account, get_arguments), repeat, baseline="python -c pass"),
            Scenario("connector full refresh", "connector", connector_argv(files, "read", full), repeat,
                     baseline="connector spec", versus="floor"),
            first,
            Scenario("floor, 0 changes", "floor", floor_argv(account, get_arguments, since=email_state(state_after)),
                     repeat, baseline="python -c pass"),
            Scenario("incremental, 0 changes", "connector", connector_argv(files, "read", incremental, after),
                     repeat, baseline="connector spec", versus="floor, 0 changes"),
            Scenario(f"floor, {CHANGES} changes", "floor",
                     floor_argv(account, get_arguments, since=email_state(state_before)), repeat,
                     baseline="python -c pass"),
            changed,
        ]
        print(f"== {messages} emails: counted runs, then {repeat} timed rounds ({startup} for start-up)")
        rows = runner.run(scenarios)
        if raw_repeat and (raw := raw_scenarios(files, runner, raw_repeat, notes)):
            rows += runner.run(raw)
    rows += memory_rows(runner, list(MEMORY_SIZES), repeat)
    state_sizes = state_size_table(runner, sorted({*STATE_SIZES, messages}))
    limit = max_objects_in_get(account)
    return {"messages": messages, "repeat": repeat, "max_objects_in_get": limit, "rows": rows,
            "state_sizes": state_sizes,
            "targets": [*check_targets(rows, messages, limit), state_size_target(state_sizes)],
            "notes": notes + runner.failures, "scratch": str(scratch)}


def raw_scenarios(files: Files, runner: Runner, repeat: int, notes: list[str]) -> list[Scenario]:
    """The raw_messages stream (include_raw_message) against a floor that downloads the same blobs."""
    print(f"== raw messages (include_raw_message), {repeat} timed round(s)")
    if not spec_has("include_raw_message"):
        note = "raw messages: skipped, spec.json has no include_raw_message property yet"
        print(f"  {note}")
        notes.append(note)
        return []
    raw = Files(files.account, files.directory / "raw", {"include_raw_message": True})
    raw.directory.mkdir(exist_ok=True)
    raw_config = raw.account.config(**raw.config_overrides)
    get_arguments = raw.write("get-arguments.json", stream_get_arguments(raw_config, "raw_messages"))
    full = raw.write("catalog.json", catalog(discover(raw, runner), "full_refresh", "raw_messages"))
    return [
        Scenario("floor raw", "floor", floor_argv(raw.account, get_arguments, raw=True), repeat,
                 baseline="python -c pass"),
        Scenario("floor raw, TCP_QUICKACK", "floor", floor_argv(raw.account, get_arguments, raw=True, quickack=True),
                 repeat, baseline="python -c pass"),
        Scenario("connector raw_messages", "connector", connector_argv(raw, "read", full), repeat,
                 baseline="connector spec", versus="floor raw"),
    ]


def memory_rows(runner: Runner, sizes: list[int], repeat: int) -> list[Row]:
    """Peak RSS of the connector's full read at each size (no proxy, no floor), interleaved in rounds."""
    scenarios = []
    for messages in sizes:
        files = Files(ensure_account(messages), runner.scratch / f"memory-{messages}")
        files.directory.mkdir()
        full = files.write("catalog.json", catalog(discover(files, runner), "full_refresh"))
        scenarios.append(Scenario(memory_row_name(messages), "connector", connector_argv(files, "read", full),
                                  repeat, counted=False))
    print(f"== peak RSS of full reads at {', '.join(map(str, sizes))} emails, {repeat} rounds")
    rows = runner.run(scenarios)
    for row, messages in zip(rows, sizes, strict=True):
        row.emails = messages
    return rows


def state_size_table(runner: Runner, sizes: list[int]) -> dict[int, dict[str, int]]:
    """Per mailbox size, the largest STATE message of each stream in one first (incremental) read of every stream.

    raw_messages is included (include_raw_message), so the read downloads every message once. Nothing is timed.
    """
    print(f"== largest STATE per stream: a full read of every stream at {', '.join(map(str, sizes))} emails")
    table: dict[int, dict[str, int]] = {}
    for messages in sizes:
        overrides = {"include_raw_message": True} if spec_has("include_raw_message") else {}
        files = Files(ensure_account(messages), runner.scratch / f"states-{messages}", overrides)
        files.directory.mkdir()
        every = files.write("catalog.json", catalog_of_every_stream(discover(files, runner)))
        stdout = files.directory / "read.out"
        try:
            run_measured(connector_argv(files, "read", every)(HTTP_PORT), ROOT, runner.env, stdout=stdout,
                         stderr=files.directory / "read.err")
        except RunFailed as error:
            runner.failures.append(f"states at {messages} emails: FAILED, left out ({str(error)[-300:]})")
            print(f"  {runner.failures[-1]}")
            continue
        table[messages] = largest_states(stdout)
    return table


def run_state_sizes(sizes: list[int]) -> dict[str, Any]:
    runner = Runner(Path(tempfile.mkdtemp(prefix="source-jmap-bench-states-", dir="/dev/shm")), dict(os.environ))
    state_sizes = state_size_table(runner, sizes)
    return {"messages": "states", "sizes": sizes, "repeat": 0, "rows": [], "state_sizes": state_sizes,
            "targets": [state_size_target(state_sizes)], "notes": runner.failures, "scratch": str(runner.scratch)}


def run_memory_scaling(sizes: list[int], repeat: int) -> dict[str, Any]:
    runner = Runner(Path(tempfile.mkdtemp(prefix="source-jmap-bench-memory-", dir="/dev/shm")), dict(os.environ))
    rows = memory_rows(runner, sizes, repeat)
    return {"messages": "memory", "sizes": sizes, "repeat": repeat, "rows": rows,
            "targets": memory_scaling_targets(rows), "notes": [], "scratch": str(runner.scratch)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000, help="emails in the mailbox (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per scenario (median; default 3)")
    parser.add_argument("--raw-repeat", type=int, default=1,
                        help="timed runs of the raw-message scenarios (slow: one download per email; 0 skips them)")
    parser.add_argument("--connector", type=Path, default=ROOT, metavar="DIR",
                        help="run DIR/main.py (a patched copy of the connector) instead of this checkout's")
    parser.add_argument("--keep-scratch", action="store_true", help="keep configs, states and counted outputs")
    parser.add_argument("--label", default="", help="added to the results file name")
    parser.add_argument("--memory-scaling", nargs="*", type=int, metavar="N",
                        help="only peak RSS of full reads at these sizes (default 2000 20000; the full run "
                             "measures those two as well)")
    parser.add_argument("--state-sizes", nargs="*", type=int, metavar="N",
                        help="only the largest STATE per stream in a full read of every stream at these sizes "
                             "(default 2000 10000 20000; the full run measures those as well)")
    args = parser.parse_args(argv)
    global connector_dir
    connector_dir = args.connector.resolve()
    check_gnu_time()
    start_instance()
    started = time.monotonic()
    if args.state_sizes is not None:
        result = run_state_sizes(args.state_sizes or list(STATE_SIZES))
    elif args.memory_scaling is not None:
        result = run_memory_scaling(args.memory_scaling or list(MEMORY_SIZES), args.repeat)
    else:
        result = run_benchmark(args.messages, args.repeat, args.raw_repeat)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["connector"] = str(connector_dir)
    if result["rows"]:
        print_table(result)
    print_state_sizes(result.get("state_sizes", {}))
    print_targets(result["targets"])
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"results: {write_results(result, args.label)}")
    if args.keep_scratch:
        print(f"scratch files (configs, catalogs, states, outputs of the counted runs): {result['scratch']}")
    else:
        shutil.rmtree(result["scratch"], ignore_errors=True)
    return 0  # a benchmark reports figures; failed targets are printed, not an error


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
