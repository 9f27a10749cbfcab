from __future__ import annotations

from ..jmap import MAIL, DataType
from .base import JmapStream


class MailboxStream(JmapStream):
    """Mailbox objects (RFC 8621 section 2), every property the server has."""

    name = "mailboxes"

    def data_type(self, account_id: str) -> DataType:
        return DataType("Mailbox", (MAIL,))
