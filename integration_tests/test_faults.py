"""Syncs through a proxy that breaks requests on a fixed schedule deliver exactly what clean syncs deliver.

The clean runs talk to Cyrus directly with its real limits; the faulty ones go through the fault
proxy, which also shrinks maxObjectsInGet to 7 so that the import takes many requests for the
faults to land on. Records are compared whole, except the time each was read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .conftest import HTTP_PORT, MailAccount
from .connector import Run, run_connector
from .fault_proxy import (
    Corrupt,
    Delay,
    Drop,
    Fault,
    FaultProxy,
    Refuse,
    Truncate,
    announcing_max_objects_in_get,
    running,
)

STREAMS = ["mailboxes", "emails", "threads", "identities", "attachments"]
SMALL_PAGE = 7

# Request numbers as the proxy counts them (1 is the session). A clean full read through the proxy
# takes 17 requests and every fault but the delay adds one, so each scheduled request is reached.
FULL_READ_FAULTS: dict[int, Fault] = {
    1: Refuse(503, retry_after="0"),
    3: Drop(),
    5: Refuse(429, retry_after="1"),
    7: Truncate(),
    9: Corrupt(),
    11: Drop(reset=True),
    13: Truncate(short_of_length=True),
    15: Refuse(502),
    17: Delay(1.0),
    19: Refuse(500),
}
INCREMENTAL_FAULTS: dict[int, Fault] = {
    1: Drop(reset=True),
    2: Refuse(429, retry_after="0"),
    4: Corrupt(),
    6: Refuse(503, retry_after="1"),
    8: Truncate(),
}


def read(config: dict[str, Any], tmp_path: Path, state: list[dict[str, Any]] | None = None) -> Run:
    run = run_connector("read", tmp_path, config, STREAMS, state)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stdout + run.stderr
    return run


def read_through_faults(
    account: MailAccount, tmp_path: Path, schedule: Mapping[int, Fault], state: list[dict[str, Any]] | None = None
) -> tuple[Run, FaultProxy]:
    proxy = FaultProxy(HTTP_PORT, schedule, rewrite_session=announcing_max_objects_in_get(SMALL_PAGE))
    with running(proxy) as origin:
        run = read(account.config(session_url=f"{origin}/jmap/"), tmp_path, state)
    return run, proxy


def delivered(run: Run) -> dict[str, list[str]]:
    """Per stream, every record as canonical JSON without the read time, sorted: a multiset to compare."""
    return {stream: sorted(json.dumps(_without_read_times(record), sort_keys=True) for record in run.records(stream))
            for stream in STREAMS}


def _without_read_times(record: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in record.items() if not key.startswith("_ab_cdc_")}
    return kept | {"deleted": record.get("_ab_cdc_deleted_at") is not None}


def stream_states(run: Run) -> dict[str, Any]:
    return {stream: run.stream_state(stream) for stream in STREAMS}


def stream_errors(run: Run) -> list[dict[str, Any]]:
    """The run's TRACE errors (a failed read has one: its first failed stream's, source_jmap/reading.py)."""
    return [message["trace"]["error"] for message in run.of_type("TRACE") if message["trace"]["type"] == "ERROR"]


def retry_lines(run: Run) -> list[str]:
    return [line for line in run.log_text.splitlines() if re.search(r"failed: .*; attempt \d of 5 in", line)]


def change_mail_over_imap(account: MailAccount) -> None:
    """A flag, a move, an expunge and a new message."""
    imap = account.imap()
    imap.select("INBOX")
    uids = imap.uid("SEARCH", "ALL")[1][0].split()
    imap.uid("STORE", uids[0], "+FLAGS", r"(\Flagged)")
    imap.uid("MOVE", uids[1], "Archive")
    imap.uid("STORE", uids[2], "+FLAGS", r"(\Deleted)")
    imap.expunge()
    imap.append("INBOX", "", None, b"From: a@example.org\r\nSubject: after faults\r\nMessage-ID: <f-1@example.org>\r\n"
                b"\r\nhello\r\n")
    imap.logout()


def test_full_and_incremental_syncs_through_faults_deliver_exactly_the_clean_records(
    account: MailAccount, tmp_path: Path
) -> None:
    clean_full = read(account.config(), tmp_path)
    faulty_full, proxy = read_through_faults(account, tmp_path, FULL_READ_FAULTS)
    assert sum(proxy.injected.values()) == len(FULL_READ_FAULTS), proxy.injected
    assert len(retry_lines(faulty_full)) == len(FULL_READ_FAULTS) - 1  # the delay needs no retry
    assert delivered(faulty_full) == delivered(clean_full)
    assert all(delivered(clean_full)[stream] for stream in STREAMS), "every stream must have records to compare"
    assert stream_states(faulty_full) == stream_states(clean_full)

    change_mail_over_imap(account)
    clean_incremental = read(account.config(), tmp_path, clean_full.final_state())
    faulty_incremental, proxy = read_through_faults(account, tmp_path, INCREMENTAL_FAULTS, clean_full.final_state())
    assert sum(proxy.injected.values()) == len(INCREMENTAL_FAULTS), proxy.injected
    assert len(retry_lines(faulty_incremental)) == len(INCREMENTAL_FAULTS)
    assert delivered(faulty_incremental) == delivered(clean_incremental)
    assert len(clean_incremental.records("emails")) == 4
    assert stream_states(faulty_incremental) == stream_states(clean_incremental)


def test_retries_that_run_out_fail_the_sync_as_transient_with_no_state_past_the_last_good_page(
    account: MailAccount, tmp_path: Path
) -> None:
    """Five 503s in a row on the second page (request 3): the sync stops with a transient error after the first."""
    second_page = {request: Refuse(503, retry_after="0") for request in range(3, 8)}
    proxy = FaultProxy(HTTP_PORT, second_page, rewrite_session=announcing_max_objects_in_get(SMALL_PAGE))
    with running(proxy) as origin:
        run = run_connector("read", tmp_path, account.config(session_url=f"{origin}/jmap/"), ["mailboxes"])
    [error] = stream_errors(run)
    assert run.returncode == 1
    assert error["failure_type"] == "transient_error" and error["stream_descriptor"] == {"name": "mailboxes"}
    assert re.fullmatch(
        rf"The JMAP server at 127\.0\.0\.1:{origin.rsplit(':', 1)[1]} answered HTTP 503 Service Unavailable; "
        r"gave up after 5 attempts taking [0-9]\.[0-9] s \(0\.0 s of it waiting\)", error["message"]
    ), error["message"]
    assert len(run.records("mailboxes")) == SMALL_PAGE
    assert run.stream_state("mailboxes")["accounts"][account.user]["import"]["anchor"]
