from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..jmap import MAIL, DataType, JmapClient
from .base import DELETED_AT, UPDATED_AT, JmapStream, Record
from .selection import EmailSelection

ATTACHMENT_FIELDS = ("partId", "blobId", "name", "type", "size", "disposition", "cid")


class AttachmentStream(JmapStream):
    """One record per attachment body part of every email, from the Email's `attachments` property.

    It reads the selected emails as the emails stream does (same query, same resume points) but asks
    only for the properties it needs, and downloads nothing. A destroyed email cannot be fetched,
    so the stream keeps, per account, the partIds of the emails that have attachments
    ({emailId: [partId, ...]}, saved in the state) to emit a deletion for each of them.
    """

    name = "attachments"
    primary_key: ClassVar[list[str]] = ["accountId", "emailId", "partId"]

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection) -> None:
        super().__init__(client, accounts)
        self._selection: EmailSelection = selection
        self._parts: dict[str, dict[str, list[str]]] = {}

    def data_type(self, account_id: str) -> DataType:
        return DataType("Email", (MAIL,), ("id", "receivedAt", "mailboxIds", "attachments"),
                        query=self._selection.query(account_id))

    def selects(self, account_id: str, obj: Record) -> bool:
        return self._selection.matches(account_id, obj)

    def records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        parts = [part for part in obj.get("attachments") or [] if part.get("partId")]
        if parts:
            self._parts.setdefault(account_id, {})[obj["id"]] = [part["partId"] for part in parts]
        return [
            {"accountId": account_id, "emailId": obj["id"], **{key: part.get(key) for key in ATTACHMENT_FIELDS},
             UPDATED_AT: fetched_at}
            for part in parts
        ]

    def updated_records_of(self, account_id: str, obj: Record, fetched_at: str) -> list[Record]:
        """Attachments never change: an update matters only when the email enters or leaves the selection."""
        known = obj["id"] in self._parts.get(account_id, {})
        if self.selects(account_id, obj):
            return [] if known else self.records_of(account_id, obj, fetched_at)
        return self.deleted_records_of(account_id, obj["id"], fetched_at)

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        part_ids = self._parts.get(account_id, {}).pop(object_id, [])
        return [
            {"accountId": account_id, "emailId": object_id, "partId": part_id, UPDATED_AT: fetched_at,
             DELETED_AT: fetched_at}
            for part_id in part_ids
        ]

    def extra_state(self, account_id: str) -> dict[str, Any] | None:
        return {"parts": dict(self._parts.get(account_id, {}))}

    def restore_extra_state(self, account_id: str, extra: dict[str, Any] | None) -> None:
        self._parts[account_id] = dict((extra or {}).get("parts", {}))
