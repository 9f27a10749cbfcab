"""A JMAP (RFC 8620/8621) client and sync engine, free of the connector framework (see docs/architecture.md).

config -> session (discovery, session) -> client (wire, transport, retry, responses) -> sync engine
(sync, importing, page, resume, paging): the streams use what is exported here.
"""

from .accounts import select_mail_accounts
from .auth import BasicCredentials, BearerCredentials, Credentials
from .blobs import (
    BLOB_GET_BATCH_BYTES,
    BLOB_GET_LARGEST_BLOB,
    RFC822,
    Blobs,
    blob_get_capability,
    blob_url,
    existing_emails,
    fetch_blobs,
)
from .client import JmapClient
from .datatype import DataType, Query
from .discovery import validate_session_url
from .errors import (
    JmapBlobNotFoundError,
    JmapCancelled,
    JmapConfigError,
    JmapError,
    JmapMethodError,
    JmapRequestError,
    JmapServerError,
    JmapTransportError,
)
from .page import ChangesPage, ImportPage, Page, WholePage
from .paging import PAGE_BYTES_BUDGET
from .responses import JsonObject, MethodResponses
from .resume import InvalidResumePoint, ResumePoint
from .session import MAIL, SUBMISSION, JmapSession
from .sync import Sync, read_all
from .wire import MethodCall, ResultReference

__all__ = [
    "BLOB_GET_BATCH_BYTES",
    "BLOB_GET_LARGEST_BLOB",
    "MAIL",
    "PAGE_BYTES_BUDGET",
    "RFC822",
    "SUBMISSION",
    "BasicCredentials",
    "BearerCredentials",
    "Blobs",
    "ChangesPage",
    "Credentials",
    "DataType",
    "ImportPage",
    "InvalidResumePoint",
    "JmapBlobNotFoundError",
    "JmapCancelled",
    "JmapClient",
    "JmapConfigError",
    "JmapError",
    "JmapMethodError",
    "JmapRequestError",
    "JmapServerError",
    "JmapSession",
    "JmapTransportError",
    "JsonObject",
    "MethodCall",
    "MethodResponses",
    "Page",
    "Query",
    "ResultReference",
    "ResumePoint",
    "Sync",
    "WholePage",
    "blob_get_capability",
    "blob_url",
    "existing_emails",
    "fetch_blobs",
    "read_all",
    "select_mail_accounts",
    "validate_session_url",
]
