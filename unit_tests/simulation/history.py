"""Histories: a mailbox changing under a sync that is killed, faulted and resumed, judged by an oracle.

One history, drawn from its seed: a model server (model.py) with a dialect and some mail; a catalog of
streams (each incremental or full refresh, files or rows); then a few runs of the connector, in process,
each of which may be killed after any message (the next run starts from the last STATE emitted), may meet
faults on any request, and sees the mailbox change between any two method calls, a burst of a few changes
an object (new mail, mail destroyed, the email emitted last destroyed or moved to Trash, keyword flips, moves
in and out of the selection, threads split, mailboxes made, renamed and destroyed, identities, a purged
change log). Then one quiescent
incremental sync, and the oracle: the destination (records applied by primary key, `_ab_cdc_deleted_at`
removes, each file reference read back) must equal the server's view under the selection, stream by stream.

Outcomes: lost (on the server, missing or stale in the destination), left over (in the destination, gone
from the server), hung (a run sent more requests than any sync of this mailbox needs), unclear (a run
failed without one clear line: a traceback's "Something went wrong", a multi-line message, a protocol
violation).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import json
import logging
import os
import random
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import requests_mock
from airbyte_cdk.models import (
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.utils import files_directory

import source_jmap.source
from source_jmap import SourceJmap
from source_jmap.jmap import JmapClient
from source_jmap.streams import downloads
from source_jmap.streams.base import JmapStream

from .model import (
    API_URL,
    DOWNLOAD,
    SESSION_URL,
    Dialect,
    Faults,
    Hung,
    Model,
    ProtocolViolation,
    blob_of_download,
    http_answer,
)

STREAMS = ("mailboxes", "emails", "threads", "identities", "attachments", "raw_messages")
FILE_STREAMS = ("raw_messages", "attachments")
PRIMARY_KEYS = {"attachments": ("accountId", "emailId", "partId")}
EXCLUDED_ROLES = frozenset({"trash", "junk"})  # the spec's default exclude_mailboxes
GENERIC_FAILURE = "Something went wrong in the connector"
LOGGER = logging.getLogger("airbyte.simulation")
# Changes mid-request one run may see: MID_RUN_CHANGES_PER_OBJECT for each object at its start, and
# MID_RUN_CHANGES_BASE more; a burst as a user's, not a server that changes faster the more it is asked. Drawn
# before each method call without end, they came in proportion to the connector's own calls, and each stream's
# /changes began behind every change made while the streams before it ran: pages of one object at one change
# before a call in five, final-771's run 3 (70 objects, 5 streams) logged 0.78 changes a request while
# /changes read 1.25 a request; every stream caught up (emails 980 behind to 1 in 2,201 requests, attachments
# 4,039 to 3 in 8,514), but raw_messages started 10,064 behind and gained 0.26 a request, past any bound a
# run's size can set (14,200). 600 histories drew at most 8.4 changes an object in a run (904 for 107
# objects); 3 runs of their 1,834 drew more than the cap.
MID_RUN_CHANGES_PER_OBJECT = 4
MID_RUN_CHANGES_BASE = 20
# Partitions the connector reads at once. One (CI's) replays a seed's history exactly; more must lose nothing
# either, though which request comes first, and so the story, varies from play to play.
WORKERS = int(os.environ.get("JMAP_SIMULATION_WORKERS", "1"))


@dataclass
class Outcome:
    seed: str
    lost: list[str] = field(default_factory=list)
    left_over: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    clean_exit_with_difference: bool = False
    requests: int = 0
    runs: int = 0
    story: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.left_over or self.hung or self.unclear)

    def summary(self) -> str:
        parts = [f"{name}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                 for name, items in (("lost", self.lost), ("left over", self.left_over), ("hung", self.hung),
                                     ("unclear", self.unclear)) if items]
        worst = " (the final sync exited 0)" if self.clean_exit_with_difference else ""
        return f"seed {self.seed}: " + ("; ".join(parts) or "ok") + worst


@dataclass
class Run:
    """What one connector run left: its messages up to where it ended, and how it ended."""

    records: list[AirbyteMessage] = field(default_factory=list)
    committed: int = 0  # how many of `records` the last STATE covers
    states: dict[str, AirbyteStateMessage] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    hung: bool = False
    violation: str | None = None
    killed: bool = False


@dataclass
class Plan:
    """One history as drawn from its seed."""

    dialect: Dialect
    streams: dict[str, tuple[SyncMode, bool]]  # stream -> (sync mode, include files)
    include_roles: tuple[str, ...]
    emails: int
    runs: int
    fault_rate: float
    mid_request_changes: float
    drop_uncommitted: float
    purges: bool


# Holes no fix has closed yet, each a switch of the plan that stays off where `open_holes` is False (CI's
# slice); `simulate.sh` explores them all. See README "Reliability" for each one.
OPEN_HOLES = (
    "a purged change log: the import that follows cannot tell the destination what was destroyed meanwhile",
)


@dataclass(frozen=True)
class Shrink:
    """What a shrunk history changes in the plan its seed draws (and in its dialect)."""

    plan: dict[str, Any] = field(default_factory=dict)
    dialect: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in {**self.plan, **self.dialect}.items()) or "nothing"


def shrink(seed: str, open_holes: bool = True) -> tuple[Shrink, Outcome]:
    """A shorter history that still fails: the plan's knobs made smaller one at a time (fewer runs, emails and
    streams, no faults, no changes mid-request, a plainer dialect), each kept while the history still fails."""
    shrunk = Shrink()
    outcome = play(seed, open_holes)
    if outcome.ok:
        return shrunk, outcome
    plan = draw_plan(random.Random(seed), seed, open_holes)
    candidates: list[tuple[str, str, Any]] = [("plan", "runs", runs) for runs in range(1, plan.runs)]
    candidates += [("plan", "emails", emails) for emails in (0, 3, 10, 25) if emails < plan.emails]
    candidates += [("plan", "fault_rate", 0.0), ("plan", "mid_request_changes", 0.0), ("plan", "include_roles", ())]
    candidates += [("dialect", name, value) for name, value in dataclasses.asdict(Dialect()).items()]
    for kind, name, value in candidates:
        trial = Shrink({**shrunk.plan, name: value} if kind == "plan" else shrunk.plan,
                       {**shrunk.dialect, name: value} if kind == "dialect" else shrunk.dialect)
        if not (tried := play(seed, open_holes, trial)).ok:
            shrunk, outcome = trial, tried
    for stream in list(plan.streams):
        streams = {name: mode for name, mode in shrunk.plan.get("streams", plan.streams).items() if name != stream}
        if streams:
            trial = Shrink({**shrunk.plan, "streams": streams}, shrunk.dialect)
            if not (tried := play(seed, open_holes, trial)).ok:
                shrunk, outcome = trial, tried
    return shrunk, outcome


def draw_plan(rng: random.Random, seed: str, open_holes: bool = True) -> Plan:
    """The plan of the history `seed`, whose draws come from `rng`. How much of a killed run's tail the destination
    keeps comes from the seed alone: drawing it from `rng` would change every later draw, and with them the
    histories of the seeds kept as tests (FOUND_BUGS), found before the destination could keep that tail."""
    chosen = [name for name in STREAMS if rng.random() < 0.6] or [rng.choice(STREAMS)]
    streams = {name: (SyncMode.incremental if rng.random() < 0.85 else SyncMode.full_refresh,
                      name in FILE_STREAMS and rng.random() < 0.5) for name in chosen}
    return Plan(
        dialect=Dialect.draw(rng),
        streams=streams,
        include_roles=rng.choice(((), (), (), ("inbox", "archive"))),
        emails=rng.choice((0, 3, 10, 25, 60)),
        runs=rng.randint(1, 5),
        fault_rate=rng.choice((0.0, 0.0, 0.05, 0.2)),
        mid_request_changes=rng.choice((0.0, 0.05, 0.2)),
        drop_uncommitted=random.Random(f"{seed}/drop_uncommitted").random(),
        purges=open_holes and rng.random() < 0.3,
    )


class History:
    def __init__(self, seed: str, staging: Path, open_holes: bool = True, shrunk: Shrink | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.plan = draw_plan(self.rng, seed, open_holes)
        if shrunk:
            self.plan = dataclasses.replace(self.plan, **shrunk.plan,
                                            dialect=dataclasses.replace(self.plan.dialect, **shrunk.dialect))
        self.model = Model(self.plan.dialect)
        self.faults = Faults(random.Random(f"{seed}/faults"))
        self.staging = staging
        self.outcome = Outcome(seed)
        self.destination: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {name: {} for name in self.plan.streams}
        self.files: dict[str, dict[tuple[str, ...], bytes]] = {name: {} for name in self.plan.streams}
        self.states: dict[str, AirbyteStateMessage] = {}
        self.last_emitted: str | None = None
        self.mutating = 0.0
        self.changes_left = 0
        self.requests_this_run = 0
        self.request_budget = 0
        self.downloads: dict[str, int] = {}  # per blob: downloads so far, each drawing its faults from its own rng
        # The connector's workers ask side by side; the model answers one request at a time.
        self.wire = threading.RLock()
        # What a worker thread raised (Hung, ProtocolViolation): the engine reports it as the stream's failure.
        self.escaped: Exception | None = None

    # --- the mailbox ---------------------------------------------------------------------------------------

    def populate(self) -> None:
        model, rng = self.model, self.rng
        for role in ("inbox", "archive", "sent", "trash", "junk"):
            model.add_mailbox(role.capitalize(), role)
        model.add_mailbox("Projects")
        for _ in range(rng.randint(0, 2)):
            model.add_identity()
        for _ in range(self.plan.emails):
            self.new_email()

    def new_email(self) -> None:
        model, rng = self.model, self.rng
        mailbox_id = rng.choice(list(model.mailboxes))
        threads = list(model.threads())
        thread_id = rng.choice(threads) if threads and rng.random() < 0.3 else None
        model.add_email(rng, mailbox_id, thread_id)

    def mutate(self) -> None:
        """One change a user or another client could make at any moment."""
        model, rng = self.model, self.rng
        emails = list(model.emails)
        choice = rng.random()
        if choice < 0.25 or not emails:
            self.new_email()
        elif choice < 0.40:
            model.destroy_email(rng.choice(emails))
        elif choice < 0.55:
            target = (rng.choice([*model.mailboxes]) if rng.random() < 0.5
                      else model.role(rng.choice(("trash", "inbox"))))
            model.set_mailboxes(rng.choice(emails), {target: True})
        elif choice < 0.68:
            model.flip_keyword(rng.choice(emails), rng.choice(("$seen", "$flagged")))
        elif choice < 0.73:
            model.rethread(rng, rng.choice(emails))
        elif choice < 0.78:
            model.add_mailbox(f"Folder {model.next_id}")
        elif choice < 0.82:
            plain = [mailbox_id for mailbox_id, mailbox in model.mailboxes.items() if mailbox["role"] is None]
            if plain:
                model.rename_mailbox(rng.choice(plain), f"Renamed {model.next_id}")
        elif choice < 0.86:
            plain = [mailbox_id for mailbox_id, mailbox in model.mailboxes.items() if mailbox["role"] is None]
            if plain:
                model.destroy_mailbox(rng.choice(plain))
        elif choice < 0.90:
            if model.identities and rng.random() < 0.5:
                model.destroy_identity(rng.choice(list(model.identities)))
            else:
                model.add_identity()
        elif choice < 0.92:
            if self.plan.purges:
                model.purge_changes()
        else:
            self.hit_last_emitted()

    def hit_last_emitted(self) -> None:
        """The email the connector emitted last is destroyed or moved to Trash: its anchor is gone."""
        email_id = self.last_emitted
        if email_id is None or email_id not in self.model.emails:
            return
        if self.rng.random() < 0.5:
            self.model.destroy_email(email_id)
        else:
            self.model.set_mailboxes(email_id, {self.model.role("trash"): True})

    def between_calls(self) -> None:
        # Drawn before the cap is looked at: a run under it plays as it did before there was one.
        if self.mutating and self.rng.random() < self.mutating and self.changes_left:
            self.changes_left -= 1
            self.mutate()

    # --- the wire ------------------------------------------------------------------------------------------

    def _count(self) -> None:
        self.requests_this_run += 1
        self.outcome.requests += 1
        if self.requests_this_run > self.request_budget:
            self.escaped = self.escaped or Hung(f"more than {self.request_budget} requests in one run")
            raise self.escaped

    def _session(self, request: Any, context: Any) -> Any:
        with self.wire:
            self._count()
            fault = self.faults.api_fault()
            if fault in ("timeout", "reset"):
                raise requests.exceptions.ReadTimeout("simulated") if fault == "timeout" else \
                    requests.exceptions.ConnectionError("simulated reset")
            context.headers["Content-Type"] = "application/json"
            return json.dumps(self.model.session()).encode()

    def _api(self, request: Any, context: Any) -> Any:
        with self.wire:
            self._count()
            context.headers["Content-Type"] = "application/json"
            fault = self.faults.api_fault()
            if fault is not None and fault.startswith(("429", "503")):
                context.status_code = int(fault[:3])
                if fault.endswith("retry-after"):
                    context.headers["Retry-After"] = "1"
                return b'{"type": "about:blank", "status": %d}' % context.status_code
            if fault == "timeout":
                raise requests.exceptions.ReadTimeout("simulated")
            if fault == "reset":
                raise requests.exceptions.ConnectionError("simulated reset")
            try:
                body = json.loads(request.body)
            except ValueError as error:
                self.escaped = self.escaped or ProtocolViolation(f"a request that is not JSON: {error}")
                raise self.escaped from None
            answer = self.model.api(body, self.between_calls)
            if fault == "serverUnavailable":
                answer["methodResponses"] = [["error", {"type": "serverUnavailable"}, call[2]]
                                             for call in answer["methodResponses"]]
            text = json.dumps(answer).encode()
            if fault == "truncated":
                return text[: len(text) // 2]
            if fault == "garbled":
                return b"<html>502 Bad Gateway</html>"
            return text

    def _download(self, request: Any, context: Any) -> Any:
        with self.wire:
            self._count()
            _, blob_id = blob_of_download(request.url)
            attempt = self.downloads[blob_id] = self.downloads.get(blob_id, 0) + 1
            fault = self.faults.download_fault(random.Random(f"{self.seed}/download/{blob_id}/{attempt}"))
            if fault in ("429", "503"):
                return http_answer(int(fault), b"")
            if fault == "timeout":
                raise requests.exceptions.ReadTimeout("simulated")
            if fault == "reset":
                raise requests.exceptions.ConnectionError("simulated reset")
            if fault == "404" or blob_id not in self.model.blobs:
                return http_answer(404, b"")
            data = self.model.blobs[blob_id]
            # A download cut short breaks off before the length its head declared, and the client stack says so
            # (test_streamed_download's loopback cut). It was a whole answer of half the bytes, which no HTTP/1.1
            # client can tell from a short blob: seed 3-55 kept half a message at exit 0.
            return http_answer(200, data[: len(data) // 2], declared=len(data)) if fault == "truncated" and data else \
                http_answer(200, data)

    # --- runs ----------------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "session_url": SESSION_URL,
            "credentials": {"auth_type": "basic", "username": "alice", "password": "sim-secret-password"},
            "include_raw_message": "raw_messages" in self.plan.streams,
            "num_workers": WORKERS,
        }
        if self.plan.include_roles:
            config["mailboxes"] = list(self.plan.include_roles)
        return config

    @functools.cached_property
    def catalog(self) -> ConfiguredAirbyteCatalog:
        discovered = {stream.name: stream for stream in SourceJmap().discover(LOGGER, self.config()).streams}
        return ConfiguredAirbyteCatalog(streams=[
            ConfiguredAirbyteStream(
                stream=discovered[name], sync_mode=mode, destination_sync_mode=DestinationSyncMode.append_dedup,
                primary_key=[[key] for key in PRIMARY_KEYS.get(name, ("accountId", "id"))],
                cursor_field=["_ab_cdc_updated_at"], include_files=files,
            )
            for name, (mode, files) in self.plan.streams.items()
        ])

    def run(self, quiescent: bool) -> Run:
        """One connector run; unless `quiescent`, it may be killed, faulted and changed under."""
        rng = self.rng
        self.faults.rate = 0.0 if quiescent else self.plan.fault_rate
        self.mutating = 0.0 if quiescent else self.plan.mid_request_changes
        kill_after = None if quiescent or rng.random() < 0.3 else rng.randint(1, 4 + 2 * self.plan.emails)
        objects = len(self.model.emails) + len(self.model.mailboxes) + len(self.model.identities)
        self.changes_left = MID_RUN_CHANGES_PER_OBJECT * objects + MID_RUN_CHANGES_BASE if self.mutating else 0
        # Each object, and each change made during the run, may take a request of its own in each stream (pages of
        # one, downloads of parts), and each request a few retries: anything past this is a loop. The changes
        # are few (above), so a connector that loops is still stopped here.
        self.request_budget = 200 + 40 * (objects + self.changes_left) * len(self.plan.streams)
        self.requests_this_run = 0
        self.escaped = None
        run = Run()
        state = list(self.states.values())
        messages = SourceJmap().read(LOGGER, self.config(), self.catalog, state or None)
        counted = 0
        try:
            for message in messages:
                if message.type == Type.RECORD:
                    run.records.append(message)
                    if message.record.stream == "emails" and not (message.record.data or {}).get("_ab_cdc_deleted_at"):
                        self.last_emitted = message.record.data.get("id")
                elif message.type == Type.STATE:
                    stream = message.state.stream.stream_descriptor.name
                    run.states[stream] = message.state
                    run.committed = len(run.records)
                elif message.type == Type.TRACE and message.trace.error is not None:
                    run.failures.append(message.trace.error.message or "")
                else:
                    continue
                counted += 1
                if kill_after is not None and counted >= kill_after:
                    run.killed = True
                    break
        except Hung as error:
            run.hung = True
            self.outcome.hung.append(f"run {self.outcome.runs + 1}: {error}")
        except ProtocolViolation as error:
            run.violation = str(error)
            self.outcome.unclear.append(f"run {self.outcome.runs + 1}: protocol violation: {error}")
        except Exception as error:  # the CDK's own exception at the end of a failed read, or an escape
            message = getattr(error, "message", None) or str(error)
            if not run.failures:
                run.failures.append(message)
        finally:
            messages.close()
        if isinstance(self.escaped, Hung) and not run.hung:
            run.hung = True
            self.outcome.hung.append(f"run {self.outcome.runs + 1}: {self.escaped}")
        elif isinstance(self.escaped, ProtocolViolation) and run.violation is None:
            run.violation = str(self.escaped)
            self.outcome.unclear.append(f"run {self.outcome.runs + 1}: protocol violation: {self.escaped}")
        self.outcome.runs += 1
        return run

    def apply(self, run: Run, full_refresh_final: bool) -> None:
        """What the destination keeps of a run: everything its last STATE covers, and maybe the rest."""
        keep_uncommitted = not run.killed or self.rng.random() >= self.plan.drop_uncommitted
        records = run.records if keep_uncommitted else run.records[: run.committed]
        if full_refresh_final:
            for name, (mode, _) in self.plan.streams.items():
                if mode == SyncMode.full_refresh:
                    self.destination[name] = {}
                    self.files[name] = {}
        for message in records:
            record = message.record
            name = record.stream
            mode = self.plan.streams[name][0]
            if mode == SyncMode.full_refresh and not full_refresh_final:
                continue  # overwritten by the next complete full refresh
            key = tuple(str(record.data.get(part)) for part in PRIMARY_KEYS.get(name, ("accountId", "id")))
            if record.data.get("_ab_cdc_deleted_at"):
                self.destination[name].pop(key, None)
                self.files[name].pop(key, None)
                continue
            self.destination[name][key] = dict(record.data)
            if record.file_reference is not None:
                path = Path(record.file_reference.staging_file_url)
                self.files[name][key] = path.read_bytes() if path.exists() else b"<missing file>"
            else:
                self.files[name].pop(key, None)
        self.states.update(run.states)

    # --- the oracle ----------------------------------------------------------------------------------------

    def selected(self, email: dict[str, Any]) -> bool:
        roles = {self.model.mailboxes[mailbox_id]["role"] for mailbox_id in email["mailboxIds"]}
        if self.plan.include_roles and not roles & set(self.plan.include_roles):
            return False
        return not roles <= EXCLUDED_ROLES or not roles

    def view(self, name: str) -> dict[tuple[str, ...], Any]:
        """The server's final view of a stream, each object as the projection the oracle compares."""
        model = self.model
        emails = [email for email in model.emails.values() if self.selected(email)]
        if name == "mailboxes":
            return {("u1", mailbox_id): _mailbox_projection(model.mailbox(mailbox_id))
                    for mailbox_id in model.mailboxes}
        if name == "emails":
            return {("u1", email["id"]): _email_projection(email) for email in emails}
        if name == "threads":  # threads follow the account, not the mailbox filters (threads.py)
            return {("u1", thread_id): email_ids for thread_id, email_ids in model.threads().items()}
        if name == "identities":
            return {("u1", identity_id): identity["email"] for identity_id, identity in model.identities.items()}
        if name == "raw_messages":
            return {("u1", email["id"]): model.blobs[email["blobId"]] for email in emails}
        if name == "attachments":
            return {("u1", email["id"], part["partId"]): (part["blobId"], model.blobs[part["blobId"]])
                    for email in emails for part in email["attachments"]}
        raise AssertionError(name)

    def held(self, name: str) -> dict[tuple[str, ...], Any]:
        rows, files = self.destination[name], self.files[name]
        if name == "mailboxes":
            return {key: _mailbox_projection(row) for key, row in rows.items()}
        if name == "emails":
            return {key: _email_projection(row) for key, row in rows.items()}
        if name == "threads":
            return {key: row.get("emailIds") for key, row in rows.items()}
        if name == "identities":
            return {key: row.get("email") for key, row in rows.items()}
        if name == "raw_messages":
            return {key: files[key] if key in files else _raw_bytes(row) for key, row in rows.items()}
        if name == "attachments":
            return {key: (row.get("blobId"), files.get(key, self.model.blobs.get(str(row.get("blobId")))))
                    for key, row in rows.items()}
        raise AssertionError(name)

    def judge(self, final: Run) -> None:
        outcome = self.outcome
        for name in self.plan.streams:
            view, held = self.view(name), self.held(name)
            for key, value in view.items():
                if held.get(key, _ABSENT) != value:
                    outcome.lost.append(f"{name} {'/'.join(key[1:])}" + ("" if key not in held else " (stale)"))
            for key in held.keys() - view.keys():
                outcome.left_over.append(f"{name} {'/'.join(key[1:])}")
        if (outcome.lost or outcome.left_over) and not final.failures and not final.hung:
            outcome.clean_exit_with_difference = True

    def check_failures(self, run: Run) -> None:
        for failure in run.failures:
            if not failure or GENERIC_FAILURE in failure or "\n" in failure.strip() or "Traceback" in failure:
                self.outcome.unclear.append(f"run {self.outcome.runs}: {failure[:300]!r}")

    # --- the whole history ---------------------------------------------------------------------------------

    def play(self) -> Outcome:
        self.populate()
        plan = self.plan
        self.outcome.story.append(f"plan: {plan}")
        with requests_mock.Mocker() as mocker:
            mocker.get(SESSION_URL, content=self._session)
            mocker.post(API_URL, content=self._api)
            mocker.get(DOWNLOAD, raw=self._download)
            for number in range(plan.runs):
                run = self.run(quiescent=False)
                self.check_failures(run)
                self.outcome.story.append(
                    f"run {number + 1}: {len(run.records)} records, killed={run.killed}, failures={run.failures[:1]}")
                self.outcome.story.append("   " + _records_told(run))
                self.apply(run, full_refresh_final=not run.killed and not run.failures and not run.hung)
                if run.hung or run.violation:
                    return self.outcome
                for _ in range(self.rng.randint(0, 4)):
                    self.mutate()
                if self.rng.random() < 0.3:
                    self.hit_last_emitted()
            # A sync that finishes an import leaves what changed while it ran to the next one (its state was
            # captured before its first page): the quiescent phase is two syncs.
            for name in ("final", "final 2"):
                final = self.run(quiescent=True)
                self.check_failures(final)
                self.outcome.story.append(f"{name}: {len(final.records)} records, failures={final.failures[:1]}")
                self.outcome.story.append("   " + _records_told(final))
                self.apply(final, full_refresh_final=True)
                if final.hung or final.violation:
                    return self.outcome
            self.judge(final)
        return self.outcome


_ABSENT = object()


def _records_told(run: Run) -> str:
    """The run's records in a line: stream:id, '-' for a deletion, '|' where the last STATE stood."""
    words = []
    for number, message in enumerate(run.records):
        data = message.record.data
        key = "/".join(str(data.get(part)) for part in PRIMARY_KEYS.get(message.record.stream, ("id",))
                       if part != "accountId")
        words.append(f"{message.record.stream[:3]}:{'-' if data.get('_ab_cdc_deleted_at') else ''}{key}")
        if number + 1 == run.committed:
            words.append("|")
    return " ".join(words)


def _email_projection(email: dict[str, Any]) -> Any:
    return (tuple(sorted(email.get("mailboxIds") or {})), tuple(sorted(email.get("keywords") or {})),
            email.get("threadId"), email.get("blobId"), email.get("receivedAt"))


def _mailbox_projection(mailbox: dict[str, Any]) -> Any:
    return tuple(mailbox.get(key) for key in ("name", "role", "parentId", "totalEmails", "unreadEmails",
                                                "totalThreads", "unreadThreads"))


def _raw_bytes(row: dict[str, Any]) -> bytes | None:
    raw = row.get("raw_message")
    return base64.b64decode(raw) if isinstance(raw, str) else None


def without_waiting() -> Iterator[None]:
    """Retries wait on a clock that does not sleep: 429s, backoffs and 404 rounds cost no time. Stream schemas
    are loaded once, not once a stream and run (their $ref resolution was 40 % of a history's time)."""
    original_client, original_schema = source_jmap.source.JmapClient, JmapStream.get_json_schema
    original_blob_wait = downloads.MISSING_BLOB_WAIT_SECONDS
    downloads.MISSING_BLOB_WAIT_SECONDS = 0.0
    source_jmap.source.JmapClient = functools.partial(JmapClient, sleep=lambda seconds: None)  # type: ignore[misc]
    schemas: dict[str, Mapping[str, Any]] = {}

    def schema(stream: JmapStream) -> Mapping[str, Any]:
        if stream.name not in schemas:
            schemas[stream.name] = original_schema(stream)
        return copy.deepcopy(schemas[stream.name])

    JmapStream.get_json_schema = schema  # type: ignore[method-assign]
    try:
        yield
    finally:
        source_jmap.source.JmapClient = original_client  # type: ignore[misc]
        JmapStream.get_json_schema = original_schema  # type: ignore[method-assign]
        downloads.MISSING_BLOB_WAIT_SECONDS = original_blob_wait


def play(seed: str, open_holes: bool = True, shrunk: Shrink | None = None) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="jmap-sim-") as staging:
        previous = files_directory.AIRBYTE_STAGING_DIRECTORY
        files_directory.AIRBYTE_STAGING_DIRECTORY = staging
        patch = without_waiting()
        next(patch)
        try:
            return History(seed, Path(staging), open_holes, shrunk).play()
        finally:
            files_directory.AIRBYTE_STAGING_DIRECTORY = previous
            next(patch, None)
