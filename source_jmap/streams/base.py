"""One state-keyed stream for every JMAP object type.

Full import:  `Foo/get ids:[]` (captures the state first), then pages of `Foo/query`
              with `Foo/get` in the same HTTP request through a back-reference.
Incremental:  `Foo/changes` with `Foo/get` of created and updated ids in the same
              request, until `hasMoreChanges` is false; destroyed ids become records
              with `_ab_cdc_deleted_at` set.
Each page moves the account's state forward once its records are out, so a killed
sync resumes after the last page it emitted.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from airbyte_cdk.models import AirbyteMessage, SyncMode
from airbyte_cdk.sources.streams import CheckpointMixin, Stream
from airbyte_cdk.sources.streams.checkpoint import Cursor
from airbyte_cdk.sources.types import StreamSlice

from ..errors import config_error, traced
from ..jmap.client import JmapClient, MethodCall, MethodResponses, ResultReference
from ..jmap.errors import JmapError, JmapMethodError, JmapServerError
from ..jmap.session import MAIL
from .progress import ImportProgress
from .state import AccountState, AccountStates, InvalidStreamState

UPDATED_AT = "_ab_cdc_updated_at"
DELETED_AT = "_ab_cdc_deleted_at"

Record = dict[str, Any]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JmapStream(Stream, CheckpointMixin):
    """A JMAP object type as an Airbyte stream; subclasses declare what differs."""

    jmap_type: ClassVar[str]
    using: ClassVar[tuple[str, ...]] = (MAIL,)
    properties: list[str] | None = None
    # Types without a /query method are read whole with `Foo/get ids: null`.
    queryable: ClassVar[bool] = True

    primary_key: ClassVar[list[str]] = ["accountId", "id"]
    # The time the connector read this version of the object. Destinations that
    # deduplicate keep the row with the greatest cursor, so a later update or
    # deletion always wins over an earlier read of the same object.
    cursor_field = UPDATED_AT
    # How much JSON one page may bring: what a read holds in memory at once (see _fitting_page_size).
    page_bytes_budget: ClassVar[int] = 64_000_000
    # The CDK asks for a checkpoint after every record but emits one only when the
    # state changed, which happens once per page.
    state_checkpoint_interval = 1

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]]) -> None:
        self._client = client
        self._accounts = accounts
        self._states = AccountStates()
        self._estimated_rows = 0

    @property
    def source_defined_cursor(self) -> bool:
        return True

    @property
    def state(self) -> Mapping[str, Any]:
        return self._states.get_stream_state()

    @state.setter
    def state(self, value: Mapping[str, Any]) -> None:
        try:
            self._states.set_initial_state(value)
        except InvalidStreamState as error:
            raise config_error(
                f"The saved state of stream '{self.name}' was not written by this connector ({error}); "
                "reset the stream to import it again"
            ) from None

    def get_cursor(self) -> Cursor:
        return self._states

    def stream_slices(self, **kwargs: Any) -> Iterable[StreamSlice]:
        try:
            account_ids = self._accounts()
        except JmapError as error:
            raise traced(error) from None
        for gone in sorted(set(self._states.account_ids()) - set(account_ids)):
            self.logger.warning(
                "%s: account %s has a saved state but is not read now (gone, no longer shared, without mail "
                "capability, or not selected); its state is kept and its rows stay in the destination",
                self.name, gone,
            )
        for account_id in account_ids:
            yield StreamSlice(partition={"account_id": account_id}, cursor_slice={})

    def read_records(
        self,
        sync_mode: SyncMode,
        cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None,
        stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Record | AirbyteMessage]:
        account_id = (stream_slice or {})["account_id"]
        saved = self._states.get(account_id) if sync_mode == SyncMode.incremental else None
        try:
            if self.supports_account(account_id):
                yield from self._read_account(account_id, saved)
        except JmapError as error:
            raise traced(error) from None

    def supports_account(self, account_id: str) -> bool:
        """Whether the account can serve this stream; one that cannot yields nothing and says why."""
        return True

    def _read_account(self, account_id: str, saved: AccountState | None) -> Iterator[Record | AirbyteMessage]:
        self.restore_memo(account_id, saved.memo if saved else None)
        if saved is not None and saved.import_progress is None:
            try:
                yield from self._read_changes(account_id, saved.state)
                return
            except JmapMethodError as error:
                if error.error_type == "unknownMethod":
                    # Cyrus has no Identity/changes: such small types are read whole every time, and
                    # a destroyed object cannot be told apart from one never seen.
                    self.logger.info("%s: the server has no %s/changes; reading it whole", self.name, self.jmap_type)
                elif error.is_state_rejected:
                    self.logger.warning(
                        "%s: the server cannot calculate changes for account %s since state %s (%s); "
                        "importing the whole stream again",
                        self.name, account_id, saved.state, error.error_type,
                    )
                else:
                    raise
                saved = None
                self.restore_memo(account_id, None)
        yield from self._read_import(account_id, saved)

    # --- full import --------------------------------------------------------------------

    def _read_import(self, account_id: str, resume: AccountState | None) -> Iterator[Record | AirbyteMessage]:
        if not self.queryable:
            yield from self._read_all(account_id)
            return
        captured = resume.state if resume else None
        progress = (resume.import_progress if resume else None) or {}
        ceiling = page_size = self._client.session.limits.max_objects_in_get
        meter = ImportProgress(self.name, account_id, self.logger)
        if resume:
            self.logger.info("%s: resuming the import of account %s at %s", self.name, account_id, progress)
        while True:
            responses, passed = self._client.call_shrinking_to_fit(
                functools.partial(self._import_calls, account_id, captured is None, progress, meter),
                page_size, self.using,
            )
            if passed < page_size:  # the server refused a bigger page: never ask it for more again
                ceiling = passed
            if captured is None:
                captured = responses["state"]["state"]
            try:
                query = responses["query"]
            except JmapMethodError as error:
                if error.error_type != "anchorNotFound":
                    raise
                progress = self.restart_point(progress)
                self.logger.info("%s: the last imported object is gone; going on from %s", self.name, progress)
                continue
            if meter.total is None and "total" in query:
                self._estimated_rows += query["total"]
                yield meter.estimate(query["total"], self._estimated_rows)
            fetched_at = utc_now()
            ids, objects = self.page_ids(responses), responses["get"]["list"]
            done = len(query["ids"]) < (query.get("limit") or passed)
            if query["ids"]:
                progress = self.resume_point(query["ids"], objects.last_of(ids))
            # Objects are decoded one at a time as they become records: the page stays bytes.
            records = self.page_records(account_id, objects.in_order(ids), fetched_at)
            yield from self._emit(account_id, records, captured, None if done else progress)
            meter.advance(len(query["ids"]))
            if done:
                return
            page_size = self._fitting_page_size(len(query["ids"]), responses.size, ceiling, page_size)
            # Let this page go before the next one is fetched: peak memory is one page, not two.
            del responses, query, ids, objects, records

    def _import_calls(
        self, account_id: str, capture_state: bool, progress: Mapping[str, Any], meter: ImportProgress, size: int
    ) -> list[MethodCall]:
        calls = [self._get_call(account_id, [], "state")] if capture_state else []
        return calls + self.page_calls(account_id, self._query_arguments(account_id, progress, size, meter))

    def _read_all(self, account_id: str) -> Iterator[Record]:
        """Types without /query (Identity) are few per account: one `Foo/get` with `ids: null`."""
        response = self._client.call([self._get_call(account_id, None, "get")], self.using)["get"]
        fetched_at = utc_now()
        records = self.page_records(account_id, response["list"], fetched_at)
        yield from self._emit(account_id, records, response["state"])

    def page_calls(self, account_id: str, query_arguments: dict[str, Any]) -> list[MethodCall]:
        """One import page: the query (call id "query") and the get whose list becomes records ("get")."""
        query = MethodCall(f"{self.jmap_type}/query", query_arguments, "query")
        return [query, self._get_call(account_id, ResultReference("query", query.name, "/ids"), "get")]

    def page_ids(self, responses: MethodResponses) -> list[str]:
        """The ids of the page's objects in query order (a server may answer `/get` in any order)."""
        return list(responses["query"]["ids"])

    def _query_arguments(
        self, account_id: str, progress: Mapping[str, Any], limit: int, meter: ImportProgress
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {"accountId": account_id, "limit": limit}
        if query_filter := self.query_filter(account_id, progress):
            arguments["filter"] = query_filter
        if sort := self.query_sort():
            arguments["sort"] = sort
        if "anchor" in progress:
            arguments |= {"anchor": progress["anchor"], "anchorOffset": 1}
        else:
            arguments["position"] = 0
        if meter.total is None:
            arguments["calculateTotal"] = True
        return arguments

    def query_filter(self, account_id: str, progress: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def query_sort(self) -> list[dict[str, Any]] | None:
        return None

    def resume_point(self, query_ids: list[str], last_object: Record | None) -> dict[str, Any]:
        """Where the next page starts: right after the last id the query returned.

        `last_object` is the page's last object in query order, if the server sent any.
        """
        return {"anchor": query_ids[-1]}

    def restart_point(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Where to go on when the anchor object was destroyed: from the start, unless a subclass knows better.

        Re-reading is safe; skipping is not.
        """
        return {}

    # --- incremental --------------------------------------------------------------------

    def _read_changes(self, account_id: str, since: str) -> Iterator[Record]:
        ceiling = max_changes = self._client.session.limits.max_objects_in_get
        state = since
        while True:
            responses, passed = self._client.call_shrinking_to_fit(
                functools.partial(self._changes_calls, account_id, state), max_changes, self.using
            )
            if passed < max_changes:
                ceiling = passed
            changes = responses["changes"]
            new_state, has_more = changes["newState"], changes["hasMoreChanges"]
            if has_more and new_state == state:
                raise JmapServerError(
                    f"{self.jmap_type}/changes says more changes follow state {state} but gives no newer state; "
                    "the server is not making progress"
                )
            fetched_at = utc_now()
            # Generators, like an import page: each object is decoded when its record is due.
            created = (obj for obj in responses["created"]["list"] if self.keep_changed(account_id, obj))
            updated = (
                record for obj in responses["updated"]["list"]
                for record in self.updated_records_of(account_id, obj, fetched_at)
            )
            destroyed = (
                record for object_id in changes["destroyed"]
                for record in self.deleted_records_of(account_id, object_id, fetched_at)
            )
            records = itertools.chain(self.page_records(account_id, created, fetched_at), updated, destroyed)
            self.logger.info(
                "%s: account %s: %d created, %d updated, %d destroyed since state %s",
                self.name, account_id, len(changes["created"]), len(changes["updated"]),
                len(changes["destroyed"]), state,
            )
            yield from self._emit(account_id, records, new_state)
            if not has_more:
                return
            state = new_state
            changed = sum(len(changes[kind]) for kind in ("created", "updated", "destroyed"))
            max_changes = self._fitting_page_size(changed, responses.size, ceiling, max_changes)

    def _fitting_page_size(self, objects: int, answer_bytes: int, ceiling: int, current: int) -> int:
        """How many objects the next page asks for: as many as keep its answer within the byte budget.

        A page is held as the JSON the server sent, so its bytes, not its object count, bound the
        memory of a read: long bodies or many headers get smaller pages, and pages grow back, never
        beyond what the server allows, when the objects get smaller.
        """
        if not objects or not answer_bytes:
            return ceiling
        fitting = max(1, min(ceiling, self.page_bytes_budget * objects // answer_bytes))
        if fitting < current:
            self.logger.info(
                "%s: %d objects came to %.1f MB; asking for %d at a time to stay within %d MB a page",
                self.name, objects, answer_bytes / 1e6, fitting, self.page_bytes_budget // 1_000_000,
            )
        return fitting

    def _changes_calls(self, account_id: str, since: str, size: int) -> list[MethodCall]:
        """`Foo/changes` and the `Foo/get` of what it created and updated, in one request."""
        changes = MethodCall(
            f"{self.jmap_type}/changes", {"accountId": account_id, "sinceState": since, "maxChanges": size}, "changes"
        )
        return [
            changes,
            self._get_call(account_id, ResultReference("changes", changes.name, "/created"), "created"),
            self._get_call(account_id, ResultReference("changes", changes.name, "/updated"), "updated"),
        ]

    def keep_changed(self, account_id: str, obj: Record) -> bool:
        """Whether a created or updated object belongs in the stream: filters apply to changes too.

        An updated object that no longer belongs is emitted as deleted.
        """
        return True

    # --- records and state --------------------------------------------------------------

    def _get_call(self, account_id: str, ids: Sequence[str] | ResultReference | None, call_id: str) -> MethodCall:
        arguments: dict[str, Any] = {"accountId": account_id, "ids": ids, **self.get_arguments()}
        if self.properties is not None:
            arguments["properties"] = self.properties
        return MethodCall(f"{self.jmap_type}/get", arguments, call_id)

    def get_arguments(self) -> dict[str, Any]:
        """Extra `Foo/get` arguments."""
        return {}

    def page_records(self, account_id: str, objects: Iterable[Record], fetched_at: str) -> Iterator[Record]:
        """The records of a page of objects read for the first time, in order, as they are iterated."""
        return (record for obj in objects for record in self.records_of(account_id, obj, fetched_at))

    def updated_records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The records for an object `/changes` reports as updated.

        A destination that deduplicates keeps the latest row WHOLE, so an updated object is
        emitted whole; one that left the selection (moved to an excluded mailbox) is emitted
        as deleted, since it is gone from the destination's view.
        """
        if self.keep_changed(account_id, obj):
            return self.records_of(account_id, obj, fetched_at)
        return self.deleted_records_of(account_id, obj["id"], fetched_at)

    def records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """The records for one JMAP object: the object itself, with its account and read time."""
        obj["accountId"] = account_id
        obj[UPDATED_AT] = fetched_at
        return [obj]

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        """The records that tell a destination an object is gone: its keys and `_ab_cdc_deleted_at`."""
        return [{"accountId": account_id, "id": object_id, UPDATED_AT: fetched_at, DELETED_AT: fetched_at}]

    def memo(self, account_id: str) -> dict[str, Any] | None:
        """What the stream remembers for an account besides its state (saved with each checkpoint)."""
        return None

    def restore_memo(self, account_id: str, memo: dict[str, Any] | None) -> None:
        """Take back what `memo` saved; None when the stream starts an account from scratch."""

    def _emit(
        self, account_id: str, records: Iterable[Record], state: str, progress: dict[str, Any] | None = None
    ) -> Iterator[Record]:
        """Yield a page's records and move the account's state past them.

        The state is replaced just before the LAST record is handed over: the CDK
        writes that record first and only then looks at the state, so the STATE
        message always follows every record it covers. Records may be produced
        lazily (raw messages), so the last one is found by holding one back, and
        the memo is taken only once every record was produced.
        """
        held: Record | None = None
        for record in records:
            if held is not None:
                yield held
            held = record
        self._states.put(account_id, AccountState(state=state, import_progress=progress, memo=self.memo(account_id)))
        if held is not None:
            yield held
