from __future__ import annotations

from ..jmap import MAIL, DataType
from .base import JmapStream


class MailboxStream(JmapStream):
    """Mailbox objects (RFC 8621 section 2), every property the server has.

    A mailbox's counts (totalThreads, unreadThreads, unreadEmails) change when mail of its threads
    changes in another mailbox, and Cyrus's Mailbox/changes does not always list it: every incremental
    sync ends with the mailboxes read whole (they are few: one request), so the destination's rows
    equal the server's.
    """

    name = "mailboxes"

    def data_type(self, account_id: str) -> DataType:
        return DataType("Mailbox", (MAIL,), reread_after_changes=True, read_whole_if_query_refused=True)
