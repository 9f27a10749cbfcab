from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import BodyValues
from ..jmap import JmapClient
from .base import JmapStream
from .dialects import Dialect
from .selection import EmailSelection

METADATA_PROPERTIES = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt",
    "messageId", "inReplyTo", "references", "sender", "from", "to", "cc", "bcc", "replyTo",
    "subject", "sentAt", "hasAttachment", "preview",
)
BODY_PROPERTIES = ("textBody", "htmlBody", "attachments", "bodyValues")
BODY_VALUE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "none": {},
    "text": {"fetchTextBodyValues": True},
    "html": {"fetchHTMLBodyValues": True},
    "all": {"fetchAllBodyValues": True},
}


class EmailStream(JmapStream):
    """Email objects (RFC 8621 section 4): metadata, body structure and body values."""

    name = "emails"

    def __init__(
        self, client: JmapClient, accounts: Callable[[], list[str]], selection: EmailSelection,
        body_values: BodyValues, max_body_value_bytes: int, include_headers: bool,
    ) -> None:
        super().__init__(client, accounts)
        self._selection = selection
        self._get_arguments = dict(BODY_VALUE_ARGUMENTS[body_values])
        if self._get_arguments:
            self._get_arguments["maxBodyValueBytes"] = max_body_value_bytes
        self._properties = METADATA_PROPERTIES + BODY_PROPERTIES + (("headers",) if include_headers else ())

    def dialects_of(self, account_id: str) -> tuple[Dialect, ...]:
        return (self._selection.email_dialect(account_id, self._properties, self._get_arguments),)

    def fingerprint(self) -> dict[str, Any] | None:
        return self._selection.describe()
