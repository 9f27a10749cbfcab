"""The connector's configuration, typed; spec.json at the repository root describes it to users."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .jmap import BasicCredentials, BearerCredentials, Credentials, JmapConfigError, validate_session_url
from .jmap.transport import DEFAULT_REQUEST_TIMEOUT_SECONDS

BodyValues = Literal["none", "text", "html", "all"]
# RFC 8620 section 1.3: an UnsignedInt is at most 2^53-1, the largest integer a JSON number carries exactly
# (spec.json says the same). Larger counts (2**64, 1e18) went to the server as they were; 1e20 was refused
# as "Unable to parse input string as an integer".
MAX_UNSIGNED_INT = 2**53 - 1
# Emails only in these mailboxes (by role) are left out unless the user says otherwise; spec.json's default says
# the same (a test ties the two). Unlike the user's own entries, these may match no mailbox (streams/selection.py).
DEFAULT_EXCLUDE_MAILBOXES = ("trash", "junk")
# The most partitions read at once (spec.json says the same). The servers we know take 4 to 10 requests at once
# (Fastmail 10, Cyrus 5, Stalwart 4) and the connector never sends more than that, whatever the number of
# workers: more workers than that only wait for a slot, while each holds a page of objects (up to the 64 MB
# page budget, paging.py) and its window of downloads in memory.
MAX_WORKERS = 8


# Whitespace around a credential is a copy-paste artifact, never part of it: it is dropped at parse time.
CREDENTIALS_CONFIG = ConfigDict(str_strip_whitespace=True)
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


def _no_control_character(value: str, info: ValidationInfo) -> str:
    """A control character cannot travel in an HTTP header; the error that says so would print the value escaped,
    a form the masking of the value does not match. Refused without showing it."""
    if CONTROL_CHARACTER.search(value):
        raise JmapConfigError(
            f"credentials.{info.field_name} contains a control character (a line break, tab or the like); "
            "enter it again without it"
        )
    return value


def _ascii_token(value: str, info: ValidationInfo) -> str:
    """An API token goes into the Authorization header as it is typed, and RFC 6750 section 2.1 makes it a
    b64token (ASCII letters, digits and -._~+/=): one with "€" failed deep in http.client ("'latin-1' codec can't
    encode") and `check` exited 1 without a status; one with "é" would go out as a byte no server issued. Such a
    character is a copy-paste artifact (a typographic space or quote), refused without showing the value.

    A username and password are not refused: Basic encodes them as UTF-8 inside Base64 (RFC 7617 section 2.1,
    charset="UTF-8"), so every character can travel, and a password may well hold one beyond ASCII."""
    if not value.isascii():
        raise JmapConfigError(
            f"credentials.{info.field_name} contains a character that is not ASCII (a letter with an accent, a "
            "typographic quote or space, €); an API token is made of ASCII letters, digits and -._~+/=: copy it again"
        )
    return value


class BasicAuth(BaseModel):
    model_config = CREDENTIALS_CONFIG

    auth_type: Literal["basic"]
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)

    _printable = field_validator("username", "password")(_no_control_character)


class BearerAuth(BaseModel):
    model_config = CREDENTIALS_CONFIG

    auth_type: Literal["bearer"]
    api_token: str = Field(min_length=1)

    _printable = field_validator("api_token")(_no_control_character)
    _ascii = field_validator("api_token")(_ascii_token)


class JmapConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    session_url: str
    credentials: Annotated[BasicAuth | BearerAuth, Field(discriminator="auth_type")]
    account_ids: list[str] = Field(default_factory=list)
    read_all_accounts: bool = False
    start_date: datetime | None = None
    mailboxes: list[str] = Field(default_factory=list)
    exclude_mailboxes: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE_MAILBOXES))
    body_values: BodyValues = "text"
    # Text bodies are what analysts search; 256 KB keeps every ordinary message whole
    # while a pathological one cannot blow up a page (the server then sets isTruncated).
    max_body_value_bytes: int = Field(256 * 1024, gt=0)
    include_headers: bool = False
    include_raw_message: bool = False
    # Common destinations cap a row near 16 MB; base64 grows a message by a third.
    max_raw_message_bytes: int = Field(10 * 1024 * 1024, gt=0)
    # A server trickling its answer held a sync forever; the figure and why are in jmap/transport.py.
    request_timeout_seconds: int = Field(DEFAULT_REQUEST_TIMEOUT_SECONDS, gt=0)
    # Partitions (a stream in an account) read side by side; None: the server's maxConcurrentRequests, at most
    # MAX_WORKERS (`workers`).
    num_workers: int | None = None

    @field_validator("max_body_value_bytes", "max_raw_message_bytes", "request_timeout_seconds", mode="before")
    @classmethod
    def _whole_number_in_range(cls, value: Any, info: ValidationInfo) -> int:
        """A count from 1 to MAX_UNSIGNED_INT; a whole float such as 1e3 is that count (JSON tells them not apart)."""
        number = int(value) if isinstance(value, float) and value.is_integer() else value
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_UNSIGNED_INT:
            raise JmapConfigError(f"{info.field_name} must be a whole number from 1 to {MAX_UNSIGNED_INT}")
        return number

    @field_validator("num_workers", mode="before")
    @classmethod
    def _workers_in_range(cls, value: Any) -> int | None:
        number = int(value) if isinstance(value, float) and value.is_integer() else value
        if number is None:
            return None
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_WORKERS:
            raise JmapConfigError(f"num_workers must be a whole number from 1 to {MAX_WORKERS}")
        return number

    def workers(self, max_concurrent_requests: int) -> int:
        """How many partitions are read at once: the setting, or as many as the server takes requests at once."""
        return self.num_workers or min(max_concurrent_requests, MAX_WORKERS)

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
    def _start_date_is_absolute(cls, value: Any) -> datetime | None:
        """Only a moment that is the same wherever and whenever the connector runs: "now" would drop all mail."""
        if value in (None, ""):
            return None
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
        moment = _absolute_moment(value) if isinstance(value, str) else None
        if moment is None:
            raise JmapConfigError(
                f"start_date '{value}' is not an RFC 3339 date-time such as 2024-01-01T00:00:00Z "
                "or a date such as 2024-01-01"
            )
        return moment

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


# RFC 3339 section 5.6 with seconds and an offset, or a full-date; spec.json's start_date pattern says the same
# to users (a unit test ties the two).
ABSOLUTE_MOMENT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # full-date
    r"(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?"  # time with its offset
)


def _absolute_moment(text: str) -> datetime | None:
    """The moment an RFC 3339 date-time names, or the midnight UTC of a date; None for anything else."""
    if not ABSOLUTE_MOMENT.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:  # no day of the calendar, such as 2024-02-30
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


AUTH_TYPES = frozenset(get_args(model.model_fields["auth_type"].annotation)[0] for model in (BasicAuth, BearerAuth))


def _describe(error: ValidationError) -> str:
    """One line that names the field; never the value (it may be a secret), only what kind of value it is."""
    first = error.errors(include_url=False)[0]
    location = list(first["loc"])
    if location[:1] == ["credentials"] and location[1:2] and location[1] in AUTH_TYPES:
        del location[1]  # pydantic names the union's tag (credentials.basic.password); the user knows no such field
    field = ".".join(str(part) for part in location)
    if first["type"] == "string_type":
        return f"Invalid configuration: {field} must be a string (in quotes in JSON), not {_kind_of(first['input'])}"
    return f"Invalid configuration: {field}: {first['msg']}"


def _kind_of(value: object) -> str:
    """What a JSON value is, without showing it."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__
