from __future__ import annotations

from ..jmap import MAIL, DataType
from .base import JmapStream
from .dialects import Dialect
from .ledger import HeldIds


class MailboxStream(JmapStream):
    """Mailbox objects (RFC 8621 section 2), every property the server has.

    A mailbox's counts (totalThreads, unreadThreads, unreadEmails) change when mail of its threads
    changes in another mailbox, and Cyrus's Mailbox/changes does not always list it: every incremental
    sync ends with the mailboxes read whole (they are few: one request), so the destination's rows
    equal the server's. That read also finds the mailboxes gone (the ids held, ledger.py): one created after the
    state of the changes and destroyed before the next sync is in no server's /changes that leaves out
    created-then-destroyed ids (RFC 8620 section 5.2; simulation seed 6-192).
    """

    name = "mailboxes"
    ledger = HeldIds
    dialects = (Dialect(MAIL, DataType("Mailbox", (MAIL,), reread_after_changes=True,
                                       read_whole_if_query_refused=True), unserved_is_absent=False),)
