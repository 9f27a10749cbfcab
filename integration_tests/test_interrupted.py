"""Syncs killed with SIGKILL at seeded-random records, again and again, and resumed, lose nothing.

Airbyte commits a source's records up to its last STATE message; after a crash it starts the next
attempt from that state. So at each kill: keep the records before the killed run's last STATE and
resume from that STATE (streams that never checkpointed resume from the state they were given); the
resumed run is killed in turn at the next point, and the last one runs to the end. What all of them
delivered must equal a run that was never killed.

The connector runs behind the fault proxy with maxObjectsInGet rewritten to 7 (a legitimate server
limit) so that a mailbox of ~100 messages takes many pages, and so many checkpoints.

raw_messages in file mode (Airbyte file transfer) is killed the same way: each run stages its files in a
directory of its own, as each Airbyte attempt does, so what a killed run's kept records reference is
checked as the kill left it.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import HOST, HTTP_PORT, IMAP_PORT, ROOT, MailAccount, new_account, seed_mail
from .connector import Run, connector_arguments, run_connector, staging_environment
from .fault_proxy import FaultProxy, announcing_max_objects_in_get, running
from .test_raw_messages import assert_equal_to_imap_body, raw_bytes

# Streams with little output first: a kill must land where much output is still to come.
STREAMS = ["threads", "attachments", "mailboxes", "emails"]
PRIMARY_KEYS = {"threads": ("id",), "attachments": ("emailId", "partId"), "mailboxes": ("id",), "emails": ("id",)}
SMALL_PAGE = 7
BULK_MESSAGES = 60
SEED = 20240611
FULL_READ_KILLS = 6
INCREMENTAL_KILLS = 5
# A killed connector can be ahead of what the test has read by the pipe (64 KiB) plus its stdout
# buffer (8 KiB). Kill points are only drawn where more output than twice that is still to come,
# so the connector cannot have finished by the time it is killed.
OUTPUT_STILL_TO_COME = 2 * (64 + 8) * 1024
# raw_messages records in file mode are small (~600 bytes): emails comes after them, and its bodies are
# the output still to come at every raw_messages record.
FILE_MODE_STREAMS = ("raw_messages", "emails")
STAGING = "staging"

Key = tuple[str, ...]
Snapshot = dict[Key, str]
State = list[dict[str, Any]]


@dataclass(frozen=True)
class Sync:
    """What every run of a sync reads: the config, the streams in catalog order, and the streams whose files
    are transferred (Airbyte file transfer), which each run writes to STAGING in its own work directory."""

    config: dict[str, Any]
    streams: tuple[str, ...] = tuple(STREAMS)
    files: tuple[str, ...] = ()

    def environment(self, workdir: Path) -> dict[str, str] | None:
        return staging_environment(workdir / STAGING) if self.files else None


@pytest.fixture
def bulk_account(cyrus: None) -> MailAccount:
    account = new_account(seed=False)
    seeded = seed_mail.seed(HOST, IMAP_PORT, account.user, account.password, bulk=BULK_MESSAGES)
    return MailAccount(account.user, account.password, seeded)


@contextmanager
def small_page_origin() -> Iterator[str]:
    with running(FaultProxy(HTTP_PORT, rewrite_session=announcing_max_objects_in_get(SMALL_PAGE))) as origin:
        yield origin


def read(sync: Sync, workdir: Path, state: State | None = None) -> Run:
    workdir.mkdir(exist_ok=True)
    run = run_connector("read", workdir, sync.config, list(sync.streams), state, files=sync.files,
                        env=sync.environment(workdir))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def read_until_killed(sync: Sync, workdir: Path, state: State | None, records: int) -> Run:
    """Run `read` and kill -9 it right after its `records`-th RECORD line; what it printed until then."""
    workdir.mkdir()
    arguments = connector_arguments("read", workdir, sync.config, list(sync.streams), state, files=sync.files)
    process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                               env=sync.environment(workdir))
    assert process.stdout is not None
    lines, seen = [], 0
    for line in process.stdout:
        lines.append(line)
        seen += line.startswith('{"type":"RECORD"')
        if seen == records:
            process.kill()
            break
    process.stdout.close()
    return Run(process.wait(), "".join(lines), "")


def committed(run: Run) -> Run:
    """What a destination keeps of a failed run: the output up to its last STATE message."""
    lines = run.stdout.splitlines(keepends=True)
    last_state = max((n for n, line in enumerate(lines) if line.startswith('{"type":"STATE"')), default=-1)
    return Run(run.returncode, "".join(lines[: last_state + 1]), "")


def resumed_state(previous: State | None, killed: Run) -> State:
    """The state Airbyte gives the next attempt: each stream's last STATE, else what the killed run got."""
    by_stream = {s["stream"]["stream_descriptor"]["name"]: s for s in previous or []}
    by_stream |= {s["stream"]["stream_descriptor"]["name"]: s for s in killed.final_state()}
    return list(by_stream.values())


def killable_records(run: Run) -> list[int]:
    """The record numbers (1-based) of a clean `run` after which plenty of output is still to come."""
    lines = run.stdout.splitlines(keepends=True)
    total = sum(len(line) for line in lines)
    candidates, printed, records = [], 0, 0
    for line in lines:
        printed += len(line)
        if line.startswith('{"type":"RECORD"'):
            records += 1
            if total - printed > OUTPUT_STILL_TO_COME:
                candidates.append(records)
    return candidates


def kill_points(run: Run, count: int, rng: random.Random) -> list[int]:
    """`count` distinct record numbers (1-based) of a clean `run` after which plenty of output is still to come."""
    candidates = killable_records(run)
    assert len(candidates) >= count, "seed more mail: too few records to kill the connector among"
    return sorted(rng.sample(candidates, count))


def run_directories(tmp_path: Path, points: list[int]) -> list[Path]:
    """The work directory of each run of `kill_repeatedly`: one per kill point, then the run that finishes."""
    return [*(tmp_path / f"killed-at-{point}" for point in points), tmp_path / "finished"]


def kill_repeatedly(sync: Sync, tmp_path: Path, state: State | None, points: list[int]) -> list[Run]:
    """Kill the sync when it reaches each point (a record number of the clean run), resume, and finish.

    A run resumed after N delivered records prints the clean run's records from N + 1 on, so the
    next point is that many records into it. Returns what a destination keeps of every run.
    """
    kept: list[Run] = []
    delivered = 0
    *killed_in, finished_in = run_directories(tmp_path, points)
    for point, workdir in zip(points, killed_in, strict=True):
        killed = read_until_killed(sync, workdir, state, point - delivered)
        assert killed.returncode == -signal.SIGKILL, f"the connector finished before record {point}"
        kept.append(committed(killed))
        delivered += len(kept[-1].of_type("RECORD"))
        state = resumed_state(state, killed)
    return [*kept, read(sync, finished_in, state)]


def apply(snapshot: Snapshot, *runs: Run) -> Snapshot:
    """A deduplicating destination: upsert each record by primary key, drop it when marked deleted."""
    result = dict(snapshot)
    for run in runs:
        for stream in STREAMS:
            for record in run.records(stream):
                key = (stream, record["accountId"], *(str(record[field]) for field in PRIMARY_KEYS[stream]))
                if record.get("_ab_cdc_deleted_at"):
                    result.pop(key, None)
                else:
                    content = {name: value for name, value in record.items() if not name.startswith("_ab_cdc_")}
                    result[key] = json.dumps(content, sort_keys=True)
    return result


def stream_states(run: Run) -> dict[str, Any]:
    return {s["stream"]["stream_descriptor"]["name"]: s["stream"]["stream_state"] for s in run.final_state()}


def assert_same_final_states(resumed: Run, clean: Run) -> None:
    """Each stream's final state is the clean run's, but for the attachments' part id counts: a part id first seen
    on a page of a killed run is counted once ahead of the page (streams/attachments.py `learn_ahead`) and again
    when the next run emits the page, so its count is the clean run's or one more, never less, whatever the
    kill points and the interleaving of the streams (the counts only rank the ids to keep when there are many)."""
    states, expected = stream_states(resumed), stream_states(clean)
    for account_id, entry in expected.get("attachments", {}).get("accounts", {}).items():
        counts = entry["memo"]["partIds"]
        resumed_counts = states["attachments"]["accounts"][account_id]["memo"]["partIds"]
        assert resumed_counts.keys() == counts.keys()
        assert all(counts[part_id] <= resumed_counts[part_id] <= counts[part_id] + 1 for part_id in counts), \
            f"part id counts {resumed_counts}, clean {counts}"
        entry["memo"]["partIds"] = resumed_counts
    assert states == expected


def change_many_emails(account: MailAccount) -> None:
    """Enough changes for many pages of 7: flags, moves, expunges and new mail."""
    imap = account.imap()
    imap.select("INBOX")
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    imap.uid("STORE", b",".join(uids[:40]), "+FLAGS", r"(\Flagged)")
    imap.uid("MOVE", b",".join(uids[40:50]), "Archive")
    imap.uid("STORE", b",".join(uids[50:58]), "+FLAGS", r"(\Deleted)")
    imap.expunge()
    for n in range(8):
        imap.append("INBOX", "", None, f"From: k@example.org\r\nSubject: new {n}\r\nMessage-ID: <kill-{n}@example.org>"
                    f"\r\n\r\nmessage {n} after the first sync\r\n".encode())
    imap.logout()


def test_full_import_killed_again_and_again_and_resumed_delivers_every_record(
    bulk_account: MailAccount, tmp_path: Path
) -> None:
    with small_page_origin() as origin:
        sync = Sync(bulk_account.config(session_url=f"{origin}/jmap/"))
        clean = read(sync, tmp_path)
        points = kill_points(clean, FULL_READ_KILLS, random.Random(SEED))
        kept = kill_repeatedly(sync, tmp_path, None, points)
    assert len([key for key in apply({}, clean) if key[0] == "emails"]) > 80
    assert apply({}, *kept) == apply({}, clean), f"killed at records {points}"
    assert_same_final_states(kept[-1], clean)


def test_incremental_sync_killed_again_and_again_and_resumed_ends_in_the_same_mailbox_state(
    bulk_account: MailAccount, tmp_path: Path
) -> None:
    with small_page_origin() as origin:
        sync = Sync(bulk_account.config(session_url=f"{origin}/jmap/"))
        first = read(sync, tmp_path)
        change_many_emails(bulk_account)
        clean = read(sync, tmp_path, first.final_state())
        points = kill_points(clean, INCREMENTAL_KILLS, random.Random(SEED + 1))
        kept = kill_repeatedly(sync, tmp_path, first.final_state(), points)
    before = apply({}, first)
    assert len(clean.records("emails")) > 60 and apply(before, clean) != before
    assert apply(before, *kept) == apply(before, clean), f"killed at records {points}"
    assert_same_final_states(kept[-1], clean)


def file_mode_kill_points(clean: Run, large_message_id: str) -> list[int]:
    """Two record numbers of the clean run to kill a file-mode import at: three records into the second page
    of raw_messages (the first one checkpointed), and the record before the 17 MB message, whose page the
    second killed run leaves uncommitted, so that the resumed run writes that file again. Each killed run
    checkpoints a page before its kill, and the emails are still to come: the runs are killed, never finished."""
    checkpoints, records, large = [], 0, 0
    for message in clean.messages:
        if message["type"] == "RECORD" and message["record"]["stream"] == "raw_messages":
            records += 1
            if message["record"]["data"]["messageId"] == [large_message_id.strip("<>")]:
                large = records
        elif message["type"] == "STATE" and message["state"]["stream"]["stream_descriptor"]["name"] == "raw_messages":
            checkpoints.append(records)
    first_page, second_page = [records for records in checkpoints if records > 0][:2]
    points = [first_page + 3, large - 1]
    # The second killed run resumes after first_page and checkpoints second_page before its kill.
    assert second_page < points[1], "the 17 MB message must come at least two pages into the import"
    assert set(points) <= set(killable_records(clean))
    return points


def test_raw_messages_in_file_mode_killed_mid_import_and_resumed_keep_only_complete_files_equal_to_imap_body(
    cyrus: None, tmp_path: Path
) -> None:
    account = new_account(seed=False)
    account.seeded.extend(seed_mail.seed(HOST, IMAP_PORT, account.user, account.password, bulk=BULK_MESSAGES,
                                         large=True))
    with small_page_origin() as origin:
        # One stream at a time: the kill points are counted in raw_messages records, which come first then (with
        # several workers the emails records come between them and the 17 MB message ends the output).
        sync = Sync(account.config(session_url=f"{origin}/jmap/", include_raw_message=True, exclude_mailboxes=[],
                                   num_workers=1), streams=FILE_MODE_STREAMS, files=("raw_messages",))
        clean = read(sync, tmp_path / "clean")
        points = file_mode_kill_points(clean, seed_mail.LARGE_MESSAGE_ID)
        kept = kill_repeatedly(sync, tmp_path, None, points)

    # Each killed run checkpointed raw_messages records before its kill.
    assert all(run.records("raw_messages") and run.final_state() for run in kept[:-1])
    # Every kept record names its message's own file, complete (its size is file_size_bytes), in the staging
    # directory of the run that wrote it; never a temporary file that a kill can leave behind.
    delivered: dict[str, bytes] = {}
    for run, workdir in zip(kept, run_directories(tmp_path, points), strict=True):
        for email_id, content in raw_bytes(run, True, workdir / STAGING).items():
            assert delivered.setdefault(email_id, content) == content, f"{email_id} delivered twice, differently"
    assert_equal_to_imap_body(account, clean, delivered, IMAP_PORT)
    # The import finished as an unkilled one does: the state captured before it, no resume point left.
    assert_same_final_states(kept[-1], clean)
