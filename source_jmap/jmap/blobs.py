"""Blob downloads through the session's downloadUrl template (RFC 8620 section 6.2)."""

from __future__ import annotations

from urllib.parse import quote

RFC822 = "message/rfc822"


def blob_url(template: str, account_id: str, blob_id: str, media_type: str, name: str) -> str:
    """Expand the RFC 6570 level-1 template: every value percent-encoded, including '/'.

    Cyrus answers with the Content-Type of `{type}`; leaving it empty makes the server guess.
    """
    values = {"accountId": account_id, "blobId": blob_id, "type": media_type, "name": name}
    url = template
    for key, value in values.items():
        url = url.replace("{" + key + "}", quote(value, safe=""))
    return url
