"""An import read by several workers asks Cyrus for its pages by anchor two at once (source_jmap/jmap/pairs.py), the
second starting at the first's last email, and uses the second only where that email is where it should be."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unit_tests.helpers import wait_for

from .conftest import HTTP_PORT, MailAccount
from .connector import run_connector
from .fault_proxy import FaultProxy, announcing_max_objects_in_get, running
from .test_resume import bulk_account

MAIL = "urn:ietf:params:jmap:mail"
OLDEST_FIRST = [{"property": "receivedAt", "isAscending": True}]  # the connector's own order
PAGE = 100  # the session's maxObjectsInGet, rewritten by the proxy: pages of 100
EMAILS = 600


def email_queries(bodies: list[bytes]) -> list[dict[str, Any]]:
    """The arguments of the Email/query calls in these request bodies, in their order."""
    return [arguments for body in bodies for name, arguments, _ in json.loads(body)["methodCalls"]
            if name == "Email/query"]


def every_id(account: MailAccount) -> list[str]:
    [[_, listed, _]] = account.jmap([MAIL], [["Email/query", {"accountId": account.user, "sort": OLDEST_FIRST},
                                              "all"]])
    ids: list[str] = listed["ids"]
    return ids


def read_emails(proxy: FaultProxy, account: MailAccount, tmp_path: Path) -> list[str]:
    with running(proxy) as origin:
        config = {**account.config(exclude_mailboxes=[]), "session_url": f"{origin}/jmap/", "num_workers": 4}
        run = run_connector("read", tmp_path, config, ["emails"], sync_mode="full_refresh")
    assert run.returncode == 0, run.stdout[-2000:]
    return [record["id"] for record in run.records("emails")]


def test_an_import_from_cyrus_in_pairs_brings_every_email_once_in_query_order(cyrus: None, tmp_path: Path) -> None:
    account = bulk_account(EMAILS)
    proxy = FaultProxy(HTTP_PORT, rewrite_session=announcing_max_objects_in_get(PAGE))
    assert read_emails(proxy, account, tmp_path) == every_id(account)
    seconds = [query for query in email_queries(proxy.answered) if query.get("anchorOffset", 1) > 1]
    assert len(seconds) >= 2  # a pair each round after the first page, but the last


def test_a_second_page_moved_by_an_email_destroyed_meanwhile_is_thrown_away_and_asked_for_again(
    cyrus: None, tmp_path: Path,
) -> None:
    """The first page of a pair is answered, then an email in it is destroyed, then the second is answered: it
    starts one email later than the first ended, so the import asks for the page after the first itself."""
    account = bulk_account(EMAILS)
    before = every_id(account)
    moved: list[dict[str, Any]] = []

    def destroy_within_the_first_page(body: bytes) -> None:
        [query] = email_queries([body])
        if query.get("anchorOffset", 1) == 1 or moved:
            return
        moved.append(query)
        anchor = query["anchor"]
        wait_for(lambda: any(first.get("anchor") == anchor for first in email_queries(proxy.answered)),
                 "the first page of the pair was never answered")
        account.jmap([MAIL], [["Email/set", {"accountId": account.user,
                                              "destroy": [before[before.index(anchor) + 1]]}, "destroy"]])

    proxy = FaultProxy(HTTP_PORT, rewrite_session=announcing_max_objects_in_get(PAGE),
                       before_forward=destroy_within_the_first_page)
    arrived = read_emails(proxy, account, tmp_path)
    assert arrived == before  # the destroyed email too: the first page brought it before it went
    [second] = moved
    first_last = before[before.index(second["anchor"]) + second["anchorOffset"]]
    assert any(query.get("anchor") == first_last and query["anchorOffset"] == 1
               for query in email_queries(proxy.answered)), "the page after the first was never asked for"
