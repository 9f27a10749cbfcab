"""The JMAP session object (RFC 8620 section 2), parsed leniently.

Servers differ: Cyrus uses old draft names in the mail capability and names
capabilities in `primaryAccounts` that it does not list. Only what a sync
client needs is typed; everything else is accepted and ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field

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
        """Parse a session document; relative URLs are resolved against `session_url`."""
        session = cls.model_validate(document)
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


def looks_like_session(document: Any) -> bool:
    """A JSON document is a session when it has the members every session must have."""
    return isinstance(document, dict) and all(
        isinstance(document.get(key), expected)
        for key, expected in (("capabilities", dict), ("accounts", dict), ("apiUrl", str))
    )
