"""Which JMAP accounts to read."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import JmapConfigError
from .session import MAIL, JmapSession


def select_mail_accounts(session: JmapSession, requested: Sequence[str], every: bool = False) -> list[str]:
    """Every mail account, the requested ones, or the primary mail account when none were requested."""
    available = session.mail_account_ids()
    if not available:
        raise JmapConfigError(
            f"No JMAP account with mail capability found for user '{session.username}' "
            f"(accounts: {', '.join(session.accounts) or 'none'})"
        )
    if every:
        return available
    if not requested:
        return available[:1]
    for account_id in requested:
        if account_id not in session.accounts:
            raise JmapConfigError(
                f"account_ids entry '{account_id}' is not an account of this JMAP user; "
                f"accounts with mail: {', '.join(available)}"
            )
        if not session.accounts[account_id].has(MAIL):
            raise JmapConfigError(
                f"account_ids entry '{account_id}' has no mail capability; accounts with mail: {', '.join(available)}"
            )
    return list(dict.fromkeys(requested))
