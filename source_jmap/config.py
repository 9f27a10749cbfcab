"""The connector's configuration, typed; spec.json at the repository root describes it to users."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .jmap import BasicCredentials, BearerCredentials, Credentials, JmapConfigError, validate_session_url

BodyValues = Literal["none", "text", "html", "all"]


class BasicAuth(BaseModel):
    auth_type: Literal["basic"]
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)


class BearerAuth(BaseModel):
    auth_type: Literal["bearer"]
    api_token: str = Field(min_length=1)


class JmapConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    session_url: str
    credentials: Annotated[BasicAuth | BearerAuth, Field(discriminator="auth_type")]
    account_ids: list[str] = Field(default_factory=list)
    read_all_accounts: bool = False
    start_date: datetime | None = None
    mailboxes: list[str] = Field(default_factory=list)
    exclude_mailboxes: list[str] = Field(default_factory=lambda: ["trash", "junk"])
    body_values: BodyValues = "text"
    # Text bodies are what analysts search; 256 KB keeps every ordinary message whole
    # while a pathological one cannot blow up a page (the server then sets isTruncated).
    max_body_value_bytes: int = Field(256 * 1024, gt=0)
    include_headers: bool = False
    include_raw_message: bool = False
    # Common destinations cap a row near 16 MB; base64 grows a message by a third.
    max_raw_message_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @field_validator("session_url")
    @classmethod
    def _usable_url(cls, url: str) -> str:
        return validate_session_url(url)

    @field_validator("mailboxes", "exclude_mailboxes")
    @classmethod
    def _no_blank_entry(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        """A blank entry would match every mailbox without a role (its role reads as ""), so it is refused."""
        for number, entry in enumerate(entries, start=1):
            if not entry.strip():
                raise JmapConfigError(
                    f"{info.field_name} has an empty entry (entry {number}); remove it, "
                    "or enter a mailbox path (Archive/2023) or role (inbox)"
                )
        return entries

    @field_validator("start_date", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            parsed = pendulum.parse(str(value), strict=True)
        except (ValueError, pendulum.parsing.exceptions.ParserError):
            parsed = None
        if not isinstance(parsed, datetime):
            raise JmapConfigError(f"start_date '{value}' is not an RFC 3339 date-time such as 2024-01-01T00:00:00Z")
        return parsed

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> JmapConfig:
        """Validate a config; errors name the field and never echo a value (it may be a secret)."""
        try:
            return cls.model_validate(dict(config))
        except ValidationError as error:  # the validators above raise JmapConfigError, which passes as it is
            raise JmapConfigError(_describe(error)) from None

    def jmap_credentials(self) -> Credentials:
        if isinstance(self.credentials, BasicAuth):
            return BasicCredentials(self.credentials.username, self.credentials.password)
        return BearerCredentials(self.credentials.api_token)


def _describe(error: ValidationError) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"Invalid configuration: {location}: {first['msg']}"
