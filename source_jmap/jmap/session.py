"""The JMAP session object (RFC 8620 section 2), parsed leniently.

Servers differ: Cyrus uses old draft names in the mail capability and names
capabilities in `primaryAccounts` that it does not list. Only what a sync
client needs is typed; everything else is accepted and ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import JmapServerError

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"


class CoreLimits(BaseModel):
    """Server limits from the core capability.

    The defaults are RFC 8620's recommended minimums, used only when a server
    omits a field; a server that publishes its limits is always taken at its word.
    """

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    max_size_request: int = Field(10_000_000, alias="maxSizeRequest", gt=0)
    max_concurrent_requests: int = Field(4, alias="maxConcurrentRequests", gt=0)
    max_calls_in_request: int = Field(16, alias="maxCallsInRequest", gt=0)
    max_objects_in_get: int = Field(500, alias="maxObjectsInGet", gt=0)


class JmapAccount(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    name: str = ""
    account_capabilities: dict[str, Any] = Field(default_factory=dict, alias="accountCapabilities")

    def has(self, capability: str) -> bool:
        return capability in self.account_capabilities


class JmapSession(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    capabilities: dict[str, Any]
    accounts: dict[str, JmapAccount]
    primary_accounts: dict[str, str] = Field(default_factory=dict, alias="primaryAccounts")
    username: str = ""
    api_url: str = Field(alias="apiUrl")
    download_url: str = Field("", alias="downloadUrl")
    upload_url: str = Field("", alias="uploadUrl")  # never used, but the credentials would go there too
    state: str = ""

    @classmethod
    def from_json(cls, document: dict[str, Any], session_url: str) -> JmapSession:
        """Parse a session document; relative URLs are resolved against `session_url`.

        A member of the wrong type (accounts that are not an object, a maxObjectsInGet of 0) is the
        server's fault: a JmapServerError that names the member.
        """
        try:
            session = cls.model_validate(document)
            session.limits  # noqa: B018 - the limits are checked now, not at the first request
        except ValidationError as error:
            raise JmapServerError(f"The JMAP session at {session_url} is malformed: {_first_problem(error)}") from None
        if (problem := _download_url_problem(session.download_url)) is not None:
            raise JmapServerError(f"The JMAP session at {session_url} is malformed: {problem}")
        session.api_url = urljoin(session_url, session.api_url)
        if session.download_url:
            session.download_url = urljoin(session_url, session.download_url)
        if session.upload_url:
            session.upload_url = urljoin(session_url, session.upload_url)
        return session

    @property
    def limits(self) -> CoreLimits:
        return CoreLimits.model_validate(self.capabilities.get(CORE) or {})

    def mail_account_ids(self) -> list[str]:
        """Accounts with mail capability, the primary mail account first."""
        with_mail = [account_id for account_id, account in self.accounts.items() if account.has(MAIL)]
        primary = self.primary_accounts.get(MAIL)
        if primary in with_mail:
            with_mail.remove(primary)
            with_mail.insert(0, primary)
        return with_mail


# The variables of downloadUrl (RFC 8620 section 2) without which no download can work, and why. The RFC
# requires {type} and {name} too, but without them a download still fetches the right blob (the server guesses
# the media type; the name is cosmetic): those are accepted. A downloadUrl without {blobId} was seen answering
# the same bytes for each of 25 emails at exit 0 (issue 18). uploadUrl and eventSourceUrl are never used here.
DOWNLOAD_URL_VARIABLES = {
    "{accountId}": "the server could not tell which account a blob is downloaded from",
    "{blobId}": "every blob would be downloaded from the same URL",
}


def _download_url_problem(template: str) -> str | None:
    """What makes a published downloadUrl unusable, in words; None for a usable one or none at all (a session
    without one is refused where a blob is downloaded, `blobs.blob_url`: a sync of emails alone needs none)."""
    if not template:
        return None
    for variable, consequence in DOWNLOAD_URL_VARIABLES.items():
        if variable not in template:
            return f"downloadUrl has no {variable}, which RFC 8620 section 2 requires: {consequence}"
    return None


def looks_like_session(document: Any) -> bool:
    """A JSON document is a session when it has the members every session must have (of any type: a
    member of the wrong type makes a malformed session, the server's fault, not another document)."""
    return isinstance(document, dict) and all(key in document for key in ("capabilities", "accounts", "apiUrl"))


# What each kind of pydantic refusal means for a member of the session, in words.
_PROBLEMS = {
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "string_type": "is not a string",
    "int_type": "is not an integer",
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "greater_than": "is not a positive integer",
    "missing": "is missing",
}


def _first_problem(error: ValidationError) -> str:
    """'capabilities/urn:ietf:params:jmap:core/maxObjectsInGet is not a positive integer': where, then what."""
    first = error.errors(include_url=False, include_input=False)[0]
    location = [str(part) for part in first["loc"]]
    if error.title == CoreLimits.__name__:
        location = ["capabilities", CORE, *location]
    where = "/".join(part for part in location if part != "[key]") or "the document"
    return f"{where} {_PROBLEMS.get(first['type'], first['msg'].lower())}"
