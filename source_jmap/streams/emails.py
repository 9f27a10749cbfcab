from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..jmap.client import JmapClient
from .base import JmapStream, Record

METADATA_PROPERTIES = [
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt", "hasAttachment", "preview",
]
BODY_PROPERTIES = ["textBody", "htmlBody", "attachments", "bodyValues"]
# Text bodies are what analysts search; 256 KB keeps every ordinary message whole
# while a pathological one cannot blow up a page (the server then sets isTruncated).
MAX_BODY_VALUE_BYTES = 256 * 1024


def to_utc_date(moment: datetime) -> str:
    """JMAP UTCDate: RFC 3339 in UTC with a 'Z' (RFC 8620 section 1.4)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc_date(text: str) -> datetime:
    return datetime.fromisoformat(text)


class EmailStream(JmapStream):
    """Email objects (RFC 8621 section 4): metadata, body structure and text body values."""

    name = "emails"
    jmap_type = "Email"
    properties = METADATA_PROPERTIES + BODY_PROPERTIES

    def __init__(self, client: JmapClient, accounts: Callable[[], list[str]], start_date: datetime | None) -> None:
        super().__init__(client, accounts)
        self._start_date = start_date

    def get_arguments(self) -> dict[str, Any]:
        return {"fetchTextBodyValues": True, "maxBodyValueBytes": MAX_BODY_VALUE_BYTES}

    def query_sort(self) -> list[dict[str, Any]]:
        return [{"property": "receivedAt", "isAscending": True}]

    def query_filter(self, progress: Mapping[str, Any]) -> dict[str, Any] | None:
        bounds = [self._start_date] if self._start_date else []
        if "after" in progress:
            bounds.append(parse_utc_date(progress["after"]))
        return {"after": to_utc_date(max(bounds))} if bounds else None

    def resume_point(self, last_record: Record) -> dict[str, Any]:
        return {"anchor": last_record["id"], "receivedAt": last_record["receivedAt"]}

    def restart_point(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Go on from the last imported email's receivedAt: `after` includes equal times, so nothing is skipped."""
        return {"after": progress["receivedAt"]} if "receivedAt" in progress else {}

    def keep_changed(self, obj: Record) -> bool:
        return self._start_date is None or parse_utc_date(obj["receivedAt"]) >= self._start_date
