from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ..jmap.client import JmapClient
from .base import DELETED_AT, UPDATED_AT, Record
from .emails import EmailStream
from .selection import EmailSelection

ATTACHMENT_FIELDS = ("partId", "blobId", "name", "type", "size", "disposition", "cid")


class AttachmentStream(EmailStream):
    """One record per attachment body part of every email, from the Email's `attachments` property.

    It pages emails exactly like the emails stream (same selection, same resume points) but asks
    only for the properties it needs, and downloads nothing. A destroyed email cannot be fetched,
    so the stream remembers, per account, the partIds of the emails that have attachments
    ({emailId: [partId, ...]}, saved in the state) to emit a deletion for each of them.
    """

    name = "attachments"
    primary_key: ClassVar[list[str]] = ["accountId", "emailId", "partId"]

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection) -> None:
        super().__init__(client, accounts, selection, body_values="none")
        self.properties = ["id", "receivedAt", "mailboxIds", "attachments"]
        self._parts: dict[str, dict[str, list[str]]] = {}

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
        if self.keep_changed(account_id, obj):
            return [] if known else self.records_of(account_id, obj, fetched_at)
        return self.deleted_records_of(account_id, obj["id"], fetched_at)

    def deleted_records_of(self, account_id: str, object_id: str, fetched_at: str) -> list[Record]:
        part_ids = self._parts.get(account_id, {}).pop(object_id, [])
        return [
            {"accountId": account_id, "emailId": object_id, "partId": part_id, UPDATED_AT: fetched_at,
             DELETED_AT: fetched_at}
            for part_id in part_ids
        ]

    def memo(self, account_id: str) -> dict[str, Any] | None:
        return {"parts": dict(self._parts.get(account_id, {}))}

    def restore_memo(self, account_id: str, memo: dict[str, Any] | None) -> None:
        self._parts[account_id] = dict((memo or {}).get("parts", {}))
