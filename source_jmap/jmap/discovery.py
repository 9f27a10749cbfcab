"""Finding the JMAP session (RFC 8620 section 2.2): the URL the user entered, or `/.well-known/jmap` of its origin.

The user may enter the session URL itself or just the server's origin; an URL that answers with
something else than a session is tried once more through `/.well-known/jmap`, which usually
redirects, possibly to another host. Plain http to anything but loopback is warned about once per host; an https
session that names plain http URLs elsewhere is refused, since it would send the credentials unencrypted.
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit, urlunsplit

import msgspec

from .errors import JmapConfigError, JmapNotASessionError
from .responses import describe_response, json_or_none, refuse_broken_json
from .session import JmapSession, looks_like_session
from .transport import HttpResponse, HttpTransport

logger = logging.getLogger("source_jmap.jmap")

EXAMPLE_SESSION_URL = "https://api.fastmail.com/jmap/session"


def validate_session_url(url: str) -> str:
    """Reject URLs we cannot use, with a message that says what to enter instead."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise JmapConfigError(
            f"session_url must be an http:// or https:// URL such as {EXAMPLE_SESSION_URL} "  # ignore-https-check
            "or https://mail.example.com"
        )
    if parts.username or parts.password:
        raise JmapConfigError("session_url must not contain credentials; enter them under Authentication")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise JmapConfigError(f"session_url has an invalid port: {parts.netloc}") from None
    return url.strip()


def well_known_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/.well-known/jmap", "", ""))


def _is_bare_origin(url: str) -> bool:
    return urlsplit(url).path in ("", "/")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_plain_http_elsewhere(url: str) -> bool:
    """Plain http to another machine: what travels there can be read on the way."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not _is_loopback(parts.hostname or "")


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class SessionDiscovery:
    """Fetches the session document; once found, its URL is asked directly every later time."""

    def __init__(self, url: str, transport: HttpTransport) -> None:
        self._url = validate_session_url(url)
        self._transport = transport
        self._session_url: str | None = None
        self._warned_hosts: set[str] = set()
        self._warn_if_unencrypted(self._url, "session_url")

    def session(self) -> JmapSession:
        if self._session_url:
            return self._fetch_session(self._session_url)
        if _is_bare_origin(self._url):
            return self._fetch_session_via_well_known(self._url)
        try:
            return self._fetch_session(self._url)
        except JmapNotASessionError as direct_failure:
            try:
                return self._fetch_session_via_well_known(self._url)
            except JmapNotASessionError as well_known_failure:
                raise JmapNotASessionError(
                    f"{direct_failure.args[0]}, and {well_known_failure.args[0]}. Enter the JMAP session URL "
                    f"(such as {EXAMPLE_SESSION_URL}) or just the server's origin"
                ) from None

    def _fetch_session_via_well_known(self, url: str) -> JmapSession:
        """Follow /.well-known/jmap without credentials: it usually redirects, possibly to another host."""
        probe = self._transport.exchange("GET", well_known_url(url), refuse_broken_json, authenticate=False)
        if probe.status_code == 200 and looks_like_session(json_or_none(probe)):
            return self._session_from(probe)
        return self._fetch_session(probe.url)

    def _fetch_session(self, url: str) -> JmapSession:
        response = self._transport.exchange(
            "GET", url, self._read_session_response, headers={"Accept": "application/json"}
        )
        if response.status_code != 200 or not looks_like_session(json_or_none(response)):
            raise JmapNotASessionError(f"{url} answered with {describe_response(response)}, not a JMAP session")
        return self._session_from(response)

    def _read_session_response(self, response: HttpResponse) -> HttpResponse:
        self._transport.raise_for_auth(response)
        return refuse_broken_json(response)

    def _session_from(self, response: HttpResponse) -> JmapSession:
        session = JmapSession.from_json(msgspec.json.decode(response.content), response.url)
        self._refuse_downgrade(response.url, session)
        self._session_url = response.url
        logger.info(
            "JMAP session at %s: accounts %s, API %s", response.url, ", ".join(session.accounts), session.api_url
        )
        self._warn_if_unencrypted(response.url, "The JMAP session")
        self._warn_if_unencrypted(session.api_url, "The JMAP apiUrl")
        if session.download_url:
            self._warn_if_unencrypted(session.download_url, "The JMAP downloadUrl")
        return session

    def _refuse_downgrade(self, session_url: str, session: JmapSession) -> None:
        """An https session whose API, download or upload URL is plain http elsewhere: refused, not warned about.

        (A plain http session is warned about instead: the credentials already travel unencrypted to fetch it.)
        """
        if urlsplit(session_url).scheme.lower() != "https":
            return
        for name, url in (("apiUrl", session.api_url), ("downloadUrl", session.download_url),
                          ("uploadUrl", session.upload_url)):
            if _is_plain_http_elsewhere(url):
                raise JmapConfigError(
                    f"The JMAP session at {_without_query(session_url)} is https, but its {name} {_without_query(url)} "
                    f"is plain http: the credentials ({self._transport.credentials.description}) would travel "
                    f"unencrypted to {urlsplit(url).hostname}. The server must publish https:// URLs "
                    "(behind a TLS proxy: tell the server its public URL is https)"
                )

    def _warn_if_unencrypted(self, url: str, what: str) -> None:
        host = urlsplit(url).hostname or ""
        if not _is_plain_http_elsewhere(url) or host in self._warned_hosts:
            return
        self._warned_hosts.add(host)
        logger.warning(
            "%s %s is plain http: the credentials (%s) and every email travel unencrypted to %s; use https://",
            what, _without_query(url), self._transport.credentials.description, host,
        )
