from .attachments import AttachmentStream
from .emails import EmailStream
from .identities import IdentityStream
from .mailboxes import MailboxStream
from .selection import EmailSelection
from .threads import ThreadStream

__all__ = ["AttachmentStream", "EmailSelection", "EmailStream", "IdentityStream", "MailboxStream", "ThreadStream"]
