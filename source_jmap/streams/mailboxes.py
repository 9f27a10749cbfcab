from __future__ import annotations

from .base import JmapStream


class MailboxStream(JmapStream):
    """Mailbox objects (RFC 8621 section 2), every property the server has."""

    name = "mailboxes"
    jmap_type = "Mailbox"
