"""Streams read side by side (reading.py): one limiter for every thread, a stopped read stops, STATEs in place."""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests_mock
from airbyte_cdk.models import Type
from airbyte_cdk.sources.streams.concurrent.partitions.types import PartitionCompleteSentinel
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder

from source_jmap import SourceJmap, handoff
from source_jmap.handoff import AheadOfOutput, Lockstep
from source_jmap.jmap import BasicCredentials, JmapCancelled, JmapClient, JmapConfigError
from source_jmap.jmap.transport import HttpTransport
from source_jmap.streams.selection import EmailSelection, MailboxIds

from .fake_jmap import SESSION_URL, FakeJmap, email, session_document
from .helpers import wait_for

STREAMS = ("mailboxes", "emails", "threads", "identities")


def test_threads_sharing_a_client_never_have_more_requests_under_way_than_max_concurrent_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted around the HTTP exchange itself (requests_mock answers one request at a time, under its lock)."""
    under_way, most = 0, 0
    lock = threading.Lock()
    exchange = HttpTransport._exchange_once

    def counted(self: HttpTransport, *args: Any, **kwargs: Any) -> Any:
        nonlocal under_way, most
        with lock:
            under_way += 1
            most = max(most, under_way)
        time.sleep(0.005)
        try:
            return exchange(self, *args, **kwargs)
        finally:
            with lock:
                under_way -= 1

    with requests_mock.Mocker() as mocker:
        mocker.get(SESSION_URL, json=session_document())  # maxConcurrentRequests 4
        mocker.get("https://jmap.test/blob", content=b"x")
        client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
        assert client.session.limits.max_concurrent_requests == 4
        monkeypatch.setattr(HttpTransport, "_exchange_once", counted)
        with ThreadPoolExecutor(max_workers=12) as pool:
            list(pool.map(lambda _: client.download("https://jmap.test/blob"), range(60)))
    assert most == 4


def catalog() -> Any:
    builder = CatalogBuilder()
    for name in STREAMS:
        builder = builder.with_stream(ConfiguredAirbyteStreamBuilder().with_name(name).with_primary_key([["id"]]))
    return builder.build()


@pytest.mark.parametrize("workers", [1, 4])
def test_every_state_follows_the_records_it_covers_whatever_the_number_of_workers(
    fake: FakeJmap, config: dict[str, Any], workers: int
) -> None:
    for number in range(1, 8):
        fake.create("Email", email(number))
    messages = list(SourceJmap().read(logging.getLogger("test"), config | {"num_workers": workers}, catalog()))
    emails = [m.record.data["id"] for m in messages if m.type == Type.RECORD and m.record.stream == "emails"]
    assert len(emails) == 7
    for position, message in enumerate(messages):
        if message.type == Type.STATE and message.state.stream.stream_descriptor.name == "emails":
            anchor = (message.state.stream.stream_state.accounts["acc1"].get("import") or {}).get("anchor")
            emitted = [m.record.data["id"] for m in messages[:position]
                       if m.type == Type.RECORD and m.record.stream == "emails"]
            assert anchor is None or anchor in emitted, f"a STATE at {anchor} before its record"


def test_a_read_closed_after_its_first_record_sends_no_request_after_it(fake: FakeJmap, config: dict[str, Any]) -> None:
    for number in range(1, 30):
        fake.create("Email", email(number))
    messages = SourceJmap().read(logging.getLogger("test"), config | {"num_workers": 4}, catalog())
    next(message for message in messages if message.type == Type.RECORD)
    messages.close()  # joins the workers
    sent = fake.mocker.call_count
    time.sleep(0.05)
    assert fake.mocker.call_count == sent
    assert threads_named("partition") == []
    # a page being read ahead ends on its own (refused: the client is cancelled)
    wait_for(lambda: not threads_named("read-ahead"), "a read-ahead thread outlived the read")


def threads_named(prefix: str) -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(prefix)]


@pytest.mark.parametrize("workers", [0, 9, True, "4"])
def test_a_number_of_workers_out_of_range_is_refused(config: dict[str, Any], workers: Any) -> None:
    from source_jmap.config import JmapConfig

    with pytest.raises(JmapConfigError, match="num_workers must be a whole number from 1 to 8"):
        JmapConfig.parse(config | {"num_workers": workers})


def test_a_stopped_read_starts_no_download(fake: FakeJmap) -> None:
    """A window of downloads may have queued more when the read is closed: none of them goes out."""
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    requests_before = len(fake.mocker.request_history)
    client.cancel()
    for download in (lambda: client.download("https://jmap.test/download/acc1/B1/x"),
                     lambda: client.download_to("https://jmap.test/download/acc1/B1/x", io.BytesIO())):
        with pytest.raises(JmapCancelled, match="the read was stopped"):
            download()
    assert len(fake.mocker.request_history) == requests_before


def test_a_retry_due_after_the_read_was_stopped_is_not_sent(fake: FakeJmap) -> None:
    """A page read ahead may be between two attempts when its read stops."""
    fake.mocker.get("https://jmap.test/blob", status_code=503)
    client: JmapClient

    def stop_while_waiting(_: float) -> None:
        client.cancel()

    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"), sleep=stop_while_waiting)
    client.session  # noqa: B018  # fetched first: only the download counts
    sent = fake.mocker.call_count
    with pytest.raises(JmapCancelled, match="the read was stopped"):
        client.download("https://jmap.test/blob")
    assert fake.mocker.call_count == sent + 1  # the first attempt only


def test_a_request_waiting_for_a_free_slot_when_the_read_stops_is_not_sent(fake: FakeJmap) -> None:
    """A page read ahead may be waiting for one of maxConcurrentRequests when its read stops."""
    answering, answer = threading.Event(), threading.Event()

    def slow(request: Any, context: Any) -> bytes:
        answering.set()
        answer.wait(5)
        return b"x"

    one_at_a_time = session_document()
    one_at_a_time["capabilities"]["urn:ietf:params:jmap:core"]["maxConcurrentRequests"] = 1
    fake.mocker.get(SESSION_URL, json=one_at_a_time)
    fake.mocker.get("https://jmap.test/slow", content=slow)
    fake.mocker.get("https://jmap.test/blob", content=b"x")
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    client.session  # noqa: B018
    with ThreadPoolExecutor(max_workers=2) as pool:
        holding = pool.submit(client.download, "https://jmap.test/slow")
        assert answering.wait(5)  # the one slot is taken
        waiting = pool.submit(client.download, "https://jmap.test/blob")
        time.sleep(0.05)  # it waits for the slot (were it sent, it would be counted below)
        client.cancel()
        answer.set()
        assert holding.result(5) == b"x"  # one under way finishes
        with pytest.raises(JmapCancelled, match="the read was stopped"):
            waiting.result(5)
    assert [request.url for request in fake.mocker.request_history][-1] == "https://jmap.test/slow"


def test_a_worker_slow_to_return_after_its_partitions_last_item_does_not_fail_the_read(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker the system does not schedule between handing over its partition's last item and returning: the
    engine has taken every item by then and ends the read with that task still running (seen here: 4 of 8 tasks).
    CDK 7.39.1 waits for them, as it asks each task for its exception, before it checks that all are done
    ("Failed reading with futures not done"), so the read does not fail; this keeps it so. No worker is left
    waiting in a `put` then: a put that waits is followed by its task's last item, which does not wait."""
    for number in range(1, 8):
        fake.create("Email", email(number))
    for queue in (Lockstep, AheadOfOutput):
        monkeypatch.setattr(queue, "put", _slow_after_the_last_item(queue.put))
    for workers in (1, 4):
        messages = list(SourceJmap().read(logging.getLogger("test"), config | {"num_workers": workers}, catalog()))
        assert len([m for m in messages if m.type == Type.RECORD and m.record.stream == "emails"]) == 7


def _slow_after_the_last_item(put: Callable[..., None]) -> Callable[..., None]:
    def slow(self: Any, item: Any, block: bool = True, timeout: float | None = None) -> None:
        put(self, item, block, timeout)
        if isinstance(item, PartitionCompleteSentinel):
            time.sleep(0.05)
    return slow


def test_streams_of_an_account_read_side_by_side_read_its_mailboxes_once(fake: FakeJmap) -> None:
    """The mailbox filters of an account, asked by 4 threads at once while Mailbox/get takes 50 ms: one read of
    its mailboxes, one value (a9e8735 read them 4 times, functools.cache having no lock)."""
    fake.create("Mailbox", {"id": "mb-inbox", "name": "Inbox", "parentId": None, "role": "inbox"})
    fake.create("Mailbox", {"id": "mb-junk", "name": "Junk", "parentId": None, "role": "junk"})

    def slow_mailboxes(name: str, arguments: dict[str, Any]) -> list[Any] | None:
        if name.startswith("Mailbox/"):
            time.sleep(0.05)
        return None

    fake.override = slow_mailboxes
    client = JmapClient(SESSION_URL, BasicCredentials("alice@jmap.test", "pw"))
    selection = EmailSelection(client, None, [], ["junk"])
    start = threading.Barrier(4)

    def resolve(_: int) -> MailboxIds:
        start.wait()
        return selection.mailbox_ids("acc1")

    with ThreadPoolExecutor(max_workers=4) as pool:
        resolved = list(pool.map(resolve, range(4)))
    assert resolved == [MailboxIds(frozenset(), frozenset({"mb-junk"}))] * 4
    assert [calls for calls in fake.method_calls() if any(call.startswith("Mailbox/") for call in calls)] == [
        ["Mailbox/query", "Mailbox/get"]]


# With several workers, the first page's records are written while the two pages after it come (a pair, pairs.py).
@pytest.mark.parametrize(("workers", "queries_while_the_first_record_is_held"), [(1, 1), (4, 3)])
def test_several_workers_ask_for_an_accounts_next_page_while_the_page_before_is_written_and_one_does_not(
    fake: FakeJmap, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, workers: int,
    queries_while_the_first_record_is_held: int,
) -> None:
    """One worker keeps in lockstep with the output, which the simulation's replay of a seed relies on."""
    monkeypatch.setattr(handoff, "AHEAD_BYTES", 1)  # several workers too wait for the output at every record
    for number in range(1, 10):  # three pages of three
        fake.create("Email", email(number))
    only_emails = CatalogBuilder().with_stream(
        ConfiguredAirbyteStreamBuilder().with_name("emails").with_primary_key([["id"]])).build()
    messages = SourceJmap().read(logging.getLogger("test"), config | {"num_workers": workers}, only_emails)
    with contextlib.closing(messages):  # joins the workers, which wait for the output
        next(message for message in messages if message.type == Type.RECORD)
        wait_for(lambda: len(fake.sent("Email/query", "limit")) >= queries_while_the_first_record_is_held,
                 "the next page was never asked for")
        time.sleep(0.05)  # and no page after them: it is asked for once the next one is used
        assert len(fake.sent("Email/query", "limit")) == queries_while_the_first_record_is_held
