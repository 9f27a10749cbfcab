"""A model JMAP server: one account's mailboxes, emails, threads, identities and blobs, in memory.

It follows RFC 8620/8621 for everything the connector reads: one modification sequence shared by every
type (so a type's state can jump, as on Cyrus), `/changes` with `maxChanges`, `hasMoreChanges` and a
purgeable change log (`cannotCalculateChanges`), `Email/query` sorted by `receivedAt` with `position`,
`anchor`/`anchorOffset` (`anchorNotFound`), `collapseThreads`, `calculateTotal` and a clamped `limit`,
`/get` bounded by `maxObjectsInGet`, threads that grow and shrink with their emails, mailboxes with counts,
blobs by download and by `Blob/get`. `Dialect` switches on quirks of real servers the connector handles.

The server answers through requests-mock; `Faults` decides, per request, whether it fails instead.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import urllib3

from ..fake_jmap import resolve_references

ORIGIN = "https://jmap.sim"
SESSION_URL = f"{ORIGIN}/jmap/session"
API_URL = f"{ORIGIN}/jmap/api/"
DOWNLOAD = re.compile(r"https://jmap\.sim/jmap/download/(?P<account>[^/]+)/(?P<blob>[^/]+)/")
ACCOUNT = "u1"
CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
BLOB = "urn:ietf:params:jmap:blob"
ROLES = ("inbox", "archive", "sent", "trash", "junk")
MAX_CALLS_IN_REQUEST = 16


@dataclass(frozen=True)
class Dialect:
    """Quirks of real servers, each one the connector is meant to handle."""

    max_objects_in_get: int = 500
    max_query_limit: int = 1000  # the server clamps Email/query's limit to this (RFC 8620 5.5)
    blob_get: bool = False  # RFC 9404 Blob/get offered
    identity_changes: bool = True  # Cyrus has no Identity/changes (unknownMethod)
    mailbox_count_changes: bool = True  # Cyrus does not list a mailbox whose counts alone changed
    since_state_invalid_arguments: bool = False  # Cyrus: invalidArguments on sinceState, not cannotCalculateChanges
    refuses_anchor: bool = False  # Apache James: invalidArguments on `anchor`
    # RFC 8620 section 5.2: an object created and destroyed since the old state SHOULD be left out of
    # /changes (and MAY be listed as destroyed): False reports it destroyed.
    omits_created_then_destroyed: bool = True

    @staticmethod
    def draw(rng: random.Random) -> Dialect:
        cyrus = rng.random() < 0.5
        return Dialect(
            max_objects_in_get=rng.choice((1, 2, 3, 5, 7, 10, 25, 50, 97, 200, 500)),
            max_query_limit=rng.choice((3, 10, 50, 1000)),
            blob_get=rng.random() < 0.5,
            identity_changes=not cyrus,
            mailbox_count_changes=not cyrus,
            since_state_invalid_arguments=cyrus,
            refuses_anchor=rng.random() < 0.1,
            omits_created_then_destroyed=rng.random() < 0.5,
        )


class Hung(BaseException):
    """The connector sent more requests in one run than any correct sync of this mailbox needs.

    A BaseException, so that no `except Exception` in the connector can take it for a server failure."""


@dataclass
class Faults:
    """Per request: fail it (HTTP 429/503, a timeout, a dropped connection, a cut or garbled answer, a
    method-level serverUnavailable, a 404 for a blob that exists) with probability `rate`."""

    rng: random.Random
    rate: float = 0.0

    def api_fault(self) -> str | None:
        if self.rate == 0.0 or self.rng.random() >= self.rate:
            return None
        return self.rng.choice(("429", "429-retry-after", "503", "503-retry-after", "timeout", "reset",
                                "truncated", "garbled", "serverUnavailable"))

    def download_fault(self, rng: random.Random) -> str | None:
        """`rng` is the download's own (its blob and attempt): downloads run in parallel, and drawing from the
        shared one in the order threads reach it gave one seed different histories (3-30 lost M62, then M76)."""
        if self.rate == 0.0 or rng.random() >= self.rate:
            return None
        return rng.choice(("429", "503", "timeout", "reset", "truncated", "404"))


@dataclass
class Change:
    seq: int
    kind: str  # created, updated, destroyed
    id: str


@dataclass
class Model:
    dialect: Dialect = field(default_factory=Dialect)
    seq: int = 0
    mailboxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    logs: dict[str, list[Change]] = field(default_factory=dict)
    purged: dict[str, int] = field(default_factory=dict)  # /changes since a state below this: cannot calculate
    states: dict[str, int] = field(default_factory=dict)
    next_id: int = 0
    clock: int = 0  # receivedAt of the next email, in minutes after 2020-01-01, mostly increasing

    # --- mutations -------------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self.next_id += 1
        return f"{prefix}{self.next_id}"

    def _log(self, jmap_type: str, kind: str, object_id: str) -> None:
        self.seq += 1
        self.logs.setdefault(jmap_type, []).append(Change(self.seq, kind, object_id))
        self.states[jmap_type] = self.seq

    def state(self, jmap_type: str) -> str:
        return str(self.states.get(jmap_type, 0))

    def add_mailbox(self, name: str, role: str | None = None, parent_id: str | None = None) -> str:
        mailbox_id = self._id("mb")
        self.mailboxes[mailbox_id] = {"id": mailbox_id, "name": name, "role": role, "parentId": parent_id,
                                      "sortOrder": 0}
        self._log("Mailbox", "created", mailbox_id)
        return mailbox_id

    def rename_mailbox(self, mailbox_id: str, name: str) -> None:
        self.mailboxes[mailbox_id]["name"] = name
        self._log("Mailbox", "updated", mailbox_id)

    def destroy_mailbox(self, mailbox_id: str) -> None:
        """Its emails move to the inbox first (a client's Email/set before Mailbox/set), then it goes."""
        inbox = self.role("inbox")
        for email in list(self.emails.values()):
            if mailbox_id in email["mailboxIds"]:
                self.set_mailboxes(email["id"], {**{k: True for k in email["mailboxIds"] if k != mailbox_id},
                                                 inbox: True})
        del self.mailboxes[mailbox_id]
        self._log("Mailbox", "destroyed", mailbox_id)

    def role(self, role: str) -> str:
        return next(mailbox_id for mailbox_id, mailbox in self.mailboxes.items() if mailbox["role"] == role)

    def add_email(self, rng: random.Random, mailbox_id: str, thread_id: str | None = None,
                  content: bytes | None = None, attachments: int | None = None) -> str:
        email_id, blob_id = self._id("M"), self._id("G")
        thread_id = thread_id or self._id("T")
        self.clock += rng.choice((0, 1, 1, 2, 30))  # equal receivedAt happen: a page boundary may split them
        # Mail delivered late keeps an older date (imports, delayed delivery): not every new email is the newest.
        received = max(0, self.clock - rng.randint(1, 500)) if rng.random() < 0.1 else self.clock
        content = content if content is not None else rng.randbytes(rng.choice((0, 1, 20, 300, 2000)))
        self.blobs[blob_id] = content
        parts = []
        for number in range(attachments if attachments is not None else rng.choice((0, 0, 0, 1, 2))):
            part_blob = self._id("G")
            self.blobs[part_blob] = rng.randbytes(rng.choice((0, 5, 100)))
            parts.append({"partId": str(number + 2), "blobId": part_blob, "name": f"file{number}.bin",
                          "type": "application/octet-stream", "size": len(self.blobs[part_blob]),
                          "disposition": "attachment", "cid": None})
        email = {"id": email_id, "blobId": blob_id, "threadId": thread_id, "mailboxIds": {mailbox_id: True},
                 "keywords": {}, "size": len(content), "receivedAt": _utc(received),
                 "subject": f"message {email_id}", "messageId": [f"{email_id}@sim"], "attachments": parts,
                 "hasAttachment": bool(parts)}
        new_thread = not any(other["threadId"] == thread_id for other in self.emails.values())
        self.emails[email_id] = email
        self._log("Email", "created", email_id)
        self._log("Thread", "created" if new_thread else "updated", thread_id)
        self._counts_changed({mailbox_id})
        return email_id

    def destroy_email(self, email_id: str) -> None:
        email = self.emails.pop(email_id)
        self._log("Email", "destroyed", email_id)
        left = any(other["threadId"] == email["threadId"] for other in self.emails.values())
        self._log("Thread", "updated" if left else "destroyed", email["threadId"])
        self._counts_changed(set(email["mailboxIds"]))
        # The blob goes with its last email (every email has blobs of its own here).
        self.blobs.pop(email["blobId"], None)
        for part in email["attachments"]:
            self.blobs.pop(part["blobId"], None)

    def set_mailboxes(self, email_id: str, mailbox_ids: dict[str, bool]) -> None:
        email = self.emails[email_id]
        before = set(email["mailboxIds"])
        email["mailboxIds"] = dict(mailbox_ids)
        self._log("Email", "updated", email_id)
        self._counts_changed(before | set(mailbox_ids))

    def flip_keyword(self, email_id: str, keyword: str) -> None:
        keywords = self.emails[email_id]["keywords"]
        if keywords.pop(keyword, None) is None:
            keywords[keyword] = True
        self._log("Email", "updated", email_id)
        self._counts_changed(set(self.emails[email_id]["mailboxIds"]))

    def rethread(self, rng: random.Random, email_id: str) -> str:
        """What servers do when threads merge or split: the email is destroyed and comes back with a new id
        (and here a new thread), its content the same (RFC 8621 section 3, jmap-client-rules)."""
        email = self.emails[email_id]
        content = self.blobs[email["blobId"]]
        mailbox_id = next(iter(email["mailboxIds"]))
        self.destroy_email(email_id)
        return self.add_email(rng, mailbox_id, content=content, attachments=0)

    def add_identity(self) -> str:
        identity_id = self._id("I")
        self.identities[identity_id] = {"id": identity_id, "name": "Alice", "email": f"{identity_id}@sim",
                                        "mayDelete": True}
        self._log("Identity", "created", identity_id)
        return identity_id

    def destroy_identity(self, identity_id: str) -> None:
        del self.identities[identity_id]
        self._log("Identity", "destroyed", identity_id)

    def purge_changes(self) -> None:
        """The server forgets its change log: every state before now can no longer be calculated from."""
        for jmap_type in self.logs:
            self.purged[jmap_type] = self.states.get(jmap_type, 0)

    def _counts_changed(self, mailbox_ids: set[str]) -> None:
        if self.dialect.mailbox_count_changes:
            for mailbox_id in sorted(mailbox_ids):
                if mailbox_id in self.mailboxes:
                    self._log("Mailbox", "updated", mailbox_id)

    # --- views -----------------------------------------------------------------------------------------

    def threads(self) -> dict[str, list[str]]:
        threads: dict[str, list[str]] = {}
        for email in sorted(self.emails.values(), key=lambda e: (e["receivedAt"], e["id"])):
            threads.setdefault(email["threadId"], []).append(email["id"])
        return threads

    def mailbox(self, mailbox_id: str) -> dict[str, Any]:
        inside = [email for email in self.emails.values() if mailbox_id in email["mailboxIds"]]
        unread = [email for email in inside if "$seen" not in email["keywords"]]
        return {**self.mailboxes[mailbox_id], "totalEmails": len(inside), "unreadEmails": len(unread),
                "totalThreads": len({email["threadId"] for email in inside}),
                "unreadThreads": len({email["threadId"] for email in unread}),
                "myRights": {"mayReadItems": True}, "isSubscribed": True}

    # --- the wire ----------------------------------------------------------------------------------------

    def session(self) -> dict[str, Any]:
        capabilities: dict[str, Any] = {MAIL: {}, SUBMISSION: {}}
        if self.dialect.blob_get:
            capabilities[BLOB] = {}
        return {
            "capabilities": {
                CORE: {"maxSizeRequest": 10_000_000, "maxConcurrentRequests": 4,
                       "maxCallsInRequest": MAX_CALLS_IN_REQUEST, "maxObjectsInGet": self.dialect.max_objects_in_get,
                       "maxSizeUpload": 10_000_000, "maxObjectsInSet": 500, "collationAlgorithms": []},
                **capabilities,
            },
            "accounts": {ACCOUNT: {"name": "alice@sim", "isPersonal": True, "isReadOnly": False,
                                   "accountCapabilities": capabilities}},
            "primaryAccounts": {MAIL: ACCOUNT},
            "username": "alice@sim",
            "apiUrl": "/jmap/api/",
            "downloadUrl": "/jmap/download/{accountId}/{blobId}/{name}?accept={type}",
            "uploadUrl": "/jmap/upload/{accountId}/",
            "eventSourceUrl": "/jmap/events/?types={types}&closeafter={closeafter}&ping={ping}",
            "state": "session-1",
        }

    def api(self, body: dict[str, Any], between: Callable[[], None]) -> dict[str, Any]:
        """Answer one request; `between` runs before each method call (mutations mid-request are real: each
        method sees the store as it is then, RFC 8620 section 3.10)."""
        calls = body["methodCalls"]
        if len(calls) > MAX_CALLS_IN_REQUEST:
            raise ProtocolViolation(f"{len(calls)} method calls in one request, more than maxCallsInRequest")
        results: dict[str, list[Any]] = {}
        responses = []
        for name, arguments, call_id in calls:
            between()
            try:
                resolved = resolve_references(arguments, results)
            except LookupError:
                response = ["error", {"type": "invalidResultReference"}]
            else:
                response = self._dispatch(name, resolved)
            results[call_id] = response
            responses.append([response[0], response[1], call_id])
        return {"methodResponses": responses, "sessionState": "session-1"}

    def _dispatch(self, name: str, arguments: dict[str, Any]) -> list[Any]:
        if arguments.get("accountId") != ACCOUNT:
            return ["error", {"type": "accountNotFound"}]
        jmap_type, method = name.split("/")
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "Email/get": self._email_get, "Email/query": self._email_query, "Thread/get": self._thread_get,
            "Mailbox/get": self._mailbox_get, "Mailbox/query": self._mailbox_query,
            "Identity/get": self._identity_get, "Blob/get": self._blob_get,
        }
        try:
            if method == "changes" and jmap_type in ("Email", "Thread", "Mailbox", "Identity"):
                if jmap_type == "Identity" and not self.dialect.identity_changes:
                    raise MethodError("unknownMethod")
                return [name, self._changes(jmap_type, arguments)]
            if name not in handlers:
                raise MethodError("unknownMethod")
            return [name, handlers[name](arguments)]
        except MethodError as error:
            return ["error", {"type": error.type, **error.extra}]

    def _ids(self, arguments: dict[str, Any], every: Iterator[str]) -> list[str]:
        ids = arguments.get("ids")
        if ids is None:  # every object: Cyrus and Fastmail answer it whatever maxObjectsInGet says
            return list(every)
        if len(ids) > self.dialect.max_objects_in_get:
            raise MethodError("requestTooLarge")
        return list(ids)

    def _got(self, jmap_type: str, ids: list[str], objects: dict[str, dict[str, Any]],
             properties: list[str] | None) -> dict[str, Any]:
        found = []
        for object_id in ids:
            if object_id in objects:
                obj = objects[object_id]
                found.append({key: json.loads(json.dumps(value)) for key, value in obj.items()
                              if properties is None or key in properties or key == "id"})
        return {"accountId": ACCOUNT, "state": self.state(jmap_type), "list": found,
                "notFound": [object_id for object_id in ids if object_id not in objects]}

    def _email_get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        ids = self._ids(arguments, iter(self.emails))
        return self._got("Email", ids, self.emails, arguments.get("properties"))

    def _thread_get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        threads = {thread_id: {"id": thread_id, "emailIds": email_ids}
                   for thread_id, email_ids in self.threads().items()}
        return self._got("Thread", self._ids(arguments, iter(threads)), threads, None)

    def _mailbox_get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        mailboxes = {mailbox_id: self.mailbox(mailbox_id) for mailbox_id in self.mailboxes}
        return self._got("Mailbox", self._ids(arguments, iter(mailboxes)), mailboxes, arguments.get("properties"))

    def _identity_get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._got("Identity", self._ids(arguments, iter(self.identities)), self.identities,
                         arguments.get("properties"))

    def _blob_get(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not self.dialect.blob_get:
            raise MethodError("unknownMethod")
        ids = list(arguments.get("ids") or [])
        length = arguments.get("length")
        found, not_found = [], []
        for blob_id in ids:
            if blob_id not in self.blobs:
                not_found.append(blob_id)
                continue
            data = self.blobs[blob_id]
            cut = data if length is None else data[:length]
            found.append({"id": blob_id, "data:asBase64": base64.b64encode(cut).decode(), "size": len(data),
                          **({"isTruncated": True} if len(cut) < len(data) else {})})
        return {"accountId": ACCOUNT, "list": found, "notFound": not_found}

    def _changes(self, jmap_type: str, arguments: dict[str, Any]) -> dict[str, Any]:
        since = arguments.get("sinceState")
        current = self.states.get(jmap_type, 0)
        if not isinstance(since, str) or not since.isdigit() or int(since) > self.seq:
            raise self._cannot_calculate()
        if int(since) < self.purged.get(jmap_type, 0):
            raise self._cannot_calculate()
        most = arguments.get("maxChanges") or 10_000
        kinds: dict[str, tuple[str, str]] = {}  # id -> (first kind, last kind) in the window
        new_state = current
        pending = [change for change in self.logs.get(jmap_type, []) if change.seq > int(since)]
        taken = 0
        for change in pending:
            if change.id not in kinds and len(kinds) >= most:
                new_state = pending[taken - 1].seq
                break
            first = kinds.get(change.id, (change.kind, change.kind))[0]
            kinds[change.id] = (first, change.kind)
            taken += 1
        has_more = taken < len(pending)
        created, updated, destroyed = [], [], []
        for object_id, (first, last) in kinds.items():
            if first == "created" and last == "destroyed":
                if not self.dialect.omits_created_then_destroyed:
                    destroyed.append(object_id)
                continue
            (created if first == "created" else destroyed if last == "destroyed" else updated).append(object_id)
        return {"accountId": ACCOUNT, "oldState": since, "newState": str(new_state), "hasMoreChanges": has_more,
                "created": created, "updated": updated, "destroyed": destroyed}

    def _cannot_calculate(self) -> MethodError:
        if self.dialect.since_state_invalid_arguments:
            return MethodError("invalidArguments", arguments=["sinceState"])
        return MethodError("cannotCalculateChanges")

    def _email_query(self, arguments: dict[str, Any]) -> dict[str, Any]:
        emails = [email for email in self.emails.values() if _matches(email, arguments.get("filter"))]
        emails.sort(key=lambda email: (email["receivedAt"], email["id"]))
        if arguments.get("collapseThreads"):
            seen: set[str] = set()
            emails = [email for email in emails if not (email["threadId"] in seen or seen.add(email["threadId"]))]
        return self._page([email["id"] for email in emails], arguments, self.state("Email"))

    def _mailbox_query(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._page(sorted(self.mailboxes), arguments, self.state("Mailbox"))

    def _page(self, ids: list[str], arguments: dict[str, Any], query_state: str) -> dict[str, Any]:
        position = arguments.get("position", 0)
        if "anchor" in arguments and arguments["anchor"] is not None:
            if self.dialect.refuses_anchor:
                raise MethodError("invalidArguments", arguments=["anchor"],
                                  description="The following parameter anchor is syntactically valid, but is "
                                              "not supported by the server.")
            if arguments["anchor"] not in ids:
                raise MethodError("anchorNotFound")
            position = ids.index(arguments["anchor"]) + arguments.get("anchorOffset", 0)
        if position < 0:
            position = max(0, len(ids) + position)
        limit = min(arguments.get("limit") or self.dialect.max_query_limit, self.dialect.max_query_limit)
        answer = {"accountId": ACCOUNT, "queryState": query_state, "canCalculateChanges": False,
                  "position": position, "ids": ids[position:position + limit], "limit": limit}
        if arguments.get("calculateTotal"):
            answer["total"] = len(ids)
        return answer


class MethodError(Exception):
    def __init__(self, error_type: str, **extra: Any) -> None:
        super().__init__(error_type)
        self.type = error_type
        self.extra = extra


class Body(io.BytesIO):
    """A body as http.client reads it: closed once read to its end (urllib3 streams until then), and one that
    ends before the length its head declared raises IncompleteRead, as when the connection closes early."""

    def __init__(self, data: bytes, declared: int) -> None:
        super().__init__(data)
        self.declared = declared

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            return b""
        chunk = super().read(size)
        whole = size is None or size < 0
        if (whole or not chunk) and len(self.getvalue()) < self.declared:
            raise http.client.IncompleteRead(chunk, self.declared - len(self.getvalue()))
        if not chunk:
            self.close()
        return chunk


def http_answer(status: int, body: bytes, declared: int | None = None) -> urllib3.HTTPResponse:
    """An HTTP answer as the wire brings it: a Content-Length (the blob's length, as Cyrus declares it), and
    a body that may break off before it (`declared`), which urllib3 reports as the real stack does."""
    length = len(body) if declared is None else declared
    return urllib3.HTTPResponse(
        body=Body(body, length), status=status,
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
        preload_content=False, decode_content=False, enforce_content_length=True,
    )


class ProtocolViolation(BaseException):
    """The connector broke a rule of RFC 8620 (a limit of the session): a bug of the connector's."""


def _utc(minutes: int) -> str:
    day, minute = divmod(minutes, 24 * 60)
    return f"2020-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T{minute // 60:02d}:{minute % 60:02d}:00Z"


def _matches(email: dict[str, Any], condition: dict[str, Any] | None) -> bool:
    if not condition:
        return True
    if "operator" in condition:
        results = [_matches(email, inner) for inner in condition["conditions"]]
        return {"AND": all, "OR": any, "NOT": lambda r: not any(r)}[condition["operator"]](results)
    mailboxes = set(email["mailboxIds"])
    return (
        ("after" not in condition or email["receivedAt"] >= condition["after"])
        and ("before" not in condition or email["receivedAt"] < condition["before"])
        and ("inMailbox" not in condition or condition["inMailbox"] in mailboxes)
        and ("inMailboxOtherThan" not in condition or bool(mailboxes - set(condition["inMailboxOtherThan"])))
    )


def blob_of_download(url: str) -> tuple[str, str]:
    match = DOWNLOAD.match(url)
    if match is None:
        raise ProtocolViolation(f"a download of {url}, which the session's downloadUrl cannot make")
    return unquote(match["account"]), unquote(match["blob"])
