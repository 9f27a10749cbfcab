from .emails import EmailStream
from .identities import IdentityStream
from .mailboxes import MailboxStream
from .selection import EmailSelection
from .threads import ThreadStream

__all__ = ["EmailSelection", "EmailStream", "IdentityStream", "MailboxStream", "ThreadStream"]
