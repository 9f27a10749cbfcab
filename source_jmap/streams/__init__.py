from .attachments import AttachmentStream
from .calendars import CalendarEventStream, CalendarStream
from .contacts import AddressBookStream, ContactGroupStream, ContactStream
from .dialects import offered
from .emails import EmailStream
from .identities import IdentityStream
from .mailboxes import MailboxStream
from .quotas import QuotaStream
from .raw_messages import RawMessageStream
from .selection import EmailSelection
from .sieve_scripts import SieveScriptStream
from .threads import ThreadStream

__all__ = [
    "AddressBookStream",
    "AttachmentStream",
    "CalendarEventStream",
    "CalendarStream",
    "ContactGroupStream",
    "ContactStream",
    "EmailSelection",
    "EmailStream",
    "IdentityStream",
    "MailboxStream",
    "QuotaStream",
    "RawMessageStream",
    "SieveScriptStream",
    "ThreadStream",
    "offered",
]
