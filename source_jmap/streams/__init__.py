from .attachments import AttachmentStream
from .emails import EmailStream
from .identities import IdentityStream
from .mailboxes import MailboxStream
from .raw_messages import RawMessageStream
from .selection import EmailSelection
from .threads import ThreadStream

__all__ = [
    "AttachmentStream",
    "EmailSelection",
    "EmailStream",
    "IdentityStream",
    "MailboxStream",
    "RawMessageStream",
    "ThreadStream",
]
