"""HTTP authentication for JMAP: Basic (username/password) or Bearer (API token)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote, quote_plus

import requests
from requests.auth import AuthBase


def printed_forms(secret: str) -> list[str]:
    """The secret as a message may show it: as it is, escaped by repr() of a str or of bytes (http.client's
    errors), escaped in JSON, or URL-encoded."""
    forms = [
        secret, repr(secret)[1:-1], repr(secret.encode())[2:-1],
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""), quote(secret), quote_plus(secret),
    ]
    return list(dict.fromkeys(forms))


@dataclass(frozen=True, repr=False)
class BasicCredentials(AuthBase):
    scheme: ClassVar[str] = "Basic"
    username: str
    password: str

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Basic {self.encoded}"
        return request

    @property
    def encoded(self) -> str:
        """UTF-8 inside Base64 (RFC 7617 section 2.1, charset="UTF-8"): any username and password can travel."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    @property
    def description(self) -> str:
        return f"Basic auth as user '{self.username}'"

    @property
    def secrets(self) -> list[str]:
        """Every form in which the password could leak into output."""
        return printed_forms(self.password) + printed_forms(self.encoded)

    @property
    def check_hint(self) -> str:
        return "check the username and password (an app password where the provider requires one)"

    def __repr__(self) -> str:
        return f"BasicCredentials(username={self.username!r}, password=****)"


@dataclass(frozen=True, repr=False)
class BearerCredentials(AuthBase):
    scheme: ClassVar[str] = "Bearer"
    api_token: str

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # As typed: an RFC 6750 b64token is ASCII, and the config refuses any other character (config.py).
        request.headers["Authorization"] = f"Bearer {self.api_token}"
        return request

    @property
    def description(self) -> str:
        return "Bearer token auth"

    @property
    def secrets(self) -> list[str]:
        """Every form in which the token could leak into output."""
        return printed_forms(self.api_token)

    @property
    def check_hint(self) -> str:
        return "check that the API token is valid, not expired or revoked, and has the mail scope"

    def __repr__(self) -> str:
        return "BearerCredentials(api_token=****)"


Credentials = BasicCredentials | BearerCredentials
