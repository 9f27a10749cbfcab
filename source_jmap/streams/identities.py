from __future__ import annotations

from ..jmap.session import MAIL, SUBMISSION
from .base import JmapStream


class IdentityStream(JmapStream):
    """Identity objects (RFC 8621 section 6): the addresses the user sends as."""

    name = "identities"
    jmap_type = "Identity"
    using = (MAIL, SUBMISSION)
    queryable = False

    def supports_account(self, account_id: str) -> bool:
        account = self._client.session.accounts.get(account_id)
        if account is not None and account.has(SUBMISSION):
            return True
        self.logger.info("identities: account %s has no %s capability; no identities to read", account_id, SUBMISSION)
        return False
