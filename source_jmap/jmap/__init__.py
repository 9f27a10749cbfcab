"""A JMAP (RFC 8620/8621) client that knows nothing about Airbyte."""

from .accounts import select_mail_accounts
from .auth import BasicCredentials, BearerCredentials, Credentials
from .client import JmapClient, MethodCall, ResultReference
from .errors import JmapError
from .responses import MethodResponses
from .session import JmapSession

__all__ = [
    "BasicCredentials",
    "BearerCredentials",
    "Credentials",
    "JmapClient",
    "JmapError",
    "JmapSession",
    "MethodCall",
    "MethodResponses",
    "ResultReference",
    "select_mail_accounts",
]
