from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..jmap.client import JmapClient
from .base import JmapStream, Record
from .selection import EmailSelection

METADATA_PROPERTIES = [
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt", "hasAttachment", "preview",
]
BODY_PROPERTIES = ["textBody", "htmlBody", "attachments", "bodyValues"]
BODY_VALUE_ARGUMENTS = {
    "none": {},
    "text": {"fetchTextBodyValues": True},
    "html": {"fetchHTMLBodyValues": True},
    "all": {"fetchAllBodyValues": True},
}
# Text bodies are what analysts search; 256 KB keeps every ordinary message whole
# while a pathological one cannot blow up a page (the server then sets isTruncated).
DEFAULT_MAX_BODY_VALUE_BYTES = 256 * 1024


class EmailStream(JmapStream):
    """Email objects (RFC 8621 section 4): metadata, body structure and body values."""

    name = "emails"
    jmap_type = "Email"

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection,
        body_values: str = "text", max_body_value_bytes: int = DEFAULT_MAX_BODY_VALUE_BYTES,
        include_headers: bool = False,
    ) -> None:
        super().__init__(client, accounts)
        self._selection = selection
        self._body_arguments = dict(BODY_VALUE_ARGUMENTS[body_values])
        if self._body_arguments:
            self._body_arguments["maxBodyValueBytes"] = max_body_value_bytes
        self.properties = METADATA_PROPERTIES + BODY_PROPERTIES + (["headers"] if include_headers else [])

    def get_arguments(self) -> dict[str, Any]:
        return self._body_arguments

    def query_sort(self) -> list[dict[str, Any]]:
        return [{"property": "receivedAt", "isAscending": True}]

    def query_filter(self, account_id: str, progress: Mapping[str, Any]) -> dict[str, Any] | None:
        return self._selection.query_filter(account_id, after=progress.get("after"))

    def resume_point(self, query_ids: list[str], last_object: Record | None) -> dict[str, Any]:
        point = {"anchor": query_ids[-1]}
        if last_object:
            point["receivedAt"] = last_object["receivedAt"]
        return point

    def restart_point(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """Go on from the last imported email's receivedAt: `after` includes equal times, so nothing is skipped."""
        return {"after": progress["receivedAt"]} if "receivedAt" in progress else {}

    def keep_changed(self, account_id: str, obj: Record) -> bool:
        return self._selection.matches(account_id, obj)
