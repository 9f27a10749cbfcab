from .emails import EmailStream
from .mailboxes import MailboxStream

__all__ = ["EmailStream", "MailboxStream"]
