from __future__ import annotations

from ..jmap import MAIL, SUBMISSION, DataType
from .held_ids import HeldIdsStream


class IdentityStream(HeldIdsStream):
    """Identity objects (RFC 8621 section 6): the addresses the user sends as. There is no Identity/query.

    Cyrus has no Identity/changes: every sync reads them whole, and an identity destroyed meanwhile is
    known only by its absence from that read; the ids the destination holds say which (held_ids.py).
    """

    name = "identities"

    def data_type(self, account_id: str) -> DataType:
        return DataType("Identity", (MAIL, SUBMISSION), query=None)

    def supports_account(self, account_id: str) -> bool:
        account = self._client.session.accounts.get(account_id)
        if account is not None and account.has(SUBMISSION):
            return True
        self.logger.info("identities: account %s has no %s capability; no identities to read", account_id, SUBMISSION)
        return False
