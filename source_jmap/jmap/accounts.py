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
        primary = session.primary_accounts.get(MAIL)
        if primary not in available:
            # Without a primary mail account the first account with mail may be someone else's,
            # shared read-only: reading it instead of the user's own would be a silent mistake.
            raise JmapConfigError(
                f"The JMAP server names no primary mail account for user '{session.username}'; set account_ids "
                f"to the accounts to read (accounts with mail: {', '.join(available)}) or turn on read_all_accounts"
            )
        return [primary]
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
