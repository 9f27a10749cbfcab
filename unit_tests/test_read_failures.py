"""A read that fails ends as `python main.py read` shows it: one TRACE error in the connector's words, exit 1.

Seen on a9e8735 (a stream failing mid-read, 4 workers): a LOG line with the worker's traceback, the stream's
TRACE error with a stack trace, then the CDK's summary ("During the sync, the following streams did not sync
successfully: ...") as a second TRACE error and a FATAL LOG line with the traceback of the main thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_jmap.run import run
from source_jmap.streams import EmailStream

from .conftest import PASSWORD
from .fake_jmap import FakeJmap, email

STREAMS = ("emails", "mailboxes")


def read_on_the_command_line(
    config: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, list[dict[str, Any]], str]:
    """`main.py read` in this process: its exit code, the messages on stdout, and all it printed."""
    catalog = {"streams": [
        {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
         "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
         "cursor_field": ["_ab_cdc_updated_at"], "primary_key": [["accountId"], ["id"]]}
        for name in STREAMS
    ]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    monkeypatch.setattr("sys.argv", ["main.py", "read", "--config", str(tmp_path / "config.json"),
                                     "--catalog", str(tmp_path / "catalog.json")])
    with pytest.raises(SystemExit) as exited:
        run()
    out, err = capfd.readouterr()
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return int(exited.value.code or 0), messages, out + err


def fail_the_second_page(fake: FakeJmap, error_type: str) -> None:
    """Email/get of the second page of 3 (M0004 on) answers `error_type`."""
    def override(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name == "Email/get" and "M0004" in (arguments.get("ids") or []):
            return ["error", {"type": error_type}]
        return None

    fake.override = override


@pytest.mark.parametrize("workers", [1, 4])
def test_a_stream_failing_mid_read_ends_the_read_in_one_trace_error_without_traceback(
    fake: FakeJmap, config: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, workers: int,
) -> None:
    for number in range(1, 10):
        fake.create("Email", email(number))
    fail_the_second_page(fake, "accountNotFound")
    code, messages, printed = read_on_the_command_line(config | {"num_workers": workers}, tmp_path, capfd,
                                                       monkeypatch)
    assert code == 1
    errors = [m["trace"]["error"] for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"]
    message = "Email/get failed with JMAP error 'accountNotFound'"
    assert errors == [{"message": message, "internal_message": f"{message} (no such account for these credentials)",
                       "failure_type": "config_error", "stream_descriptor": {"name": "emails"}}]
    assert messages[-1]["type"] == "TRACE" and messages[-1]["trace"]["type"] == "ERROR"
    statuses = [(m["trace"]["stream_status"]["stream_descriptor"]["name"], m["trace"]["stream_status"]["status"])
                for m in messages if m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS"]
    assert ("emails", "INCOMPLETE") in statuses and ("mailboxes", "COMPLETE") in statuses
    assert [m for m in messages if m["type"] == "RECORD" and m["record"]["stream"] == "emails"]  # a page came first
    assert "Traceback" not in printed and "did not sync successfully" not in printed
    assert f"Exception while syncing stream emails: {message}" in printed  # its one log line
    assert PASSWORD not in printed


def test_a_bug_in_a_stream_keeps_its_stack_trace_in_the_reads_one_error(
    fake: FakeJmap, config: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a failure in the connector's words: the engine's, raised from the exception, whose stack the CDK's
    handler prints (for whoever fixes it)."""
    for number in range(1, 4):
        fake.create("Email", email(number))

    def broken(self: EmailStream, account_id: str, obj: dict[str, Any], fetched_at: str) -> list[dict[str, Any]]:
        raise KeyError("bodyValues")

    monkeypatch.setattr(EmailStream, "rows_of", broken)
    with pytest.raises(AirbyteTracedException) as raised:
        read_on_the_command_line(config, tmp_path, capfd, monkeypatch)
    assert raised.value.message == "An unexpected error occurred in stream emails: KeyError"
    assert isinstance(raised.value.__cause__, KeyError)
    trace = raised.value.as_airbyte_message().trace
    assert trace is not None and trace.error is not None and "in broken" in str(trace.error.stack_trace)


# A read whose records, written by the main thread, alternate short and longer than a text buffer (8 KiB), while
# two threads log as partitions do (the CDK's log handler writes each line to stdout from the thread that logs).
INTERLEAVED_OUTPUT = """
import sys, threading, time
from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, Type
from source_jmap.run import run
from source_jmap.source import SourceJmap

def read(self, logger, config, catalog, state=None):
    stop = threading.Event()
    def progress():
        while not stop.is_set():
            logger.info("emails: account acc1: 3 of 9 imported " + "z" * 200)
            time.sleep(0.0005)
    threads = [threading.Thread(target=progress) for _ in range(2)]
    for thread in threads:
        thread.start()
    for number in range(5000):
        body = "x" * (300 if number % 2 else 9000)
        yield AirbyteMessage(type=Type.RECORD, record=AirbyteRecordMessage(
            stream="emails", data={"id": str(number), "body": body}, emitted_at=0))
    stop.set()
    for thread in threads:
        thread.join()

SourceJmap.read = read
sys.argv = ["main.py", "read", "--config", sys.argv[1], "--catalog", sys.argv[2]]
run()
"""


def test_records_and_log_lines_of_other_threads_never_share_a_line(config: dict[str, Any], tmp_path: Path) -> None:
    """Read slowly from the pipe, as a busy platform does: a write of the main thread then waits for room while
    another thread writes. On a9e8735 a line mixed a record with a log line (test_interrupted, 5 workers; here
    10 to 40 lines of 5,000 broken), as Python's text stream over stdout is not safe between threads."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps({"streams": [
        {"stream": {"name": "emails", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
         "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}]}))
    process = subprocess.Popen(
        [sys.executable, "-c", INTERLEAVED_OUTPUT, str(tmp_path / "config.json"), str(tmp_path / "catalog.json")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert process.stdout is not None
    broken, records = [], 0
    for number, line in enumerate(process.stdout):
        if number % 100 == 0:
            time.sleep(0.002)
        try:
            records += json.loads(line)["type"] == "RECORD"
        except json.JSONDecodeError:
            broken.append(line[:80])
    assert process.wait() == 0
    assert broken == [] and records == 5000
