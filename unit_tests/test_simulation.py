"""The simulation's slice for CI: seeded histories of a mailbox changing under syncs that are killed, faulted
and resumed (unit_tests/simulation/), each judged by the oracle. `scripts/simulate.sh` plays any number."""

from __future__ import annotations

import logging

import pytest
from airbyte_cdk.models import SyncMode

from source_jmap.jmap.importing import Import

from .simulation import history
from .simulation.history import Shrink, play

# About 0.25 s of CPU a history: 250 take about a minute of CI's 15.
CI_HISTORIES = 250
# With several workers, records run ahead of the output and pages ahead of their records (handoff.py,
# jmap/ahead.py); a history then is not replayed exactly, but judged all the same (600: 91 s).
CI_HISTORIES_SEVERAL_WORKERS = 100


@pytest.fixture(autouse=True)
def quiet() -> None:
    logging.disable(logging.CRITICAL)  # thousands of log lines a history, read by no one
    yield
    logging.disable(logging.NOTSET)


def test_every_history_ends_with_the_destination_equal_to_the_server() -> None:
    failing = [outcome.summary() for outcome in (play(f"ci-{number}", open_holes=False)
                                                for number in range(CI_HISTORIES)) if not outcome.ok]
    assert failing == [], f"{len(failing)} of {CI_HISTORIES} histories failed; replay one with " \
                          f"scripts/simulate.sh --one SEED --without-open-holes:\n" + "\n".join(failing)


def test_every_history_read_by_several_workers_ends_with_the_destination_equal_to_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(history, "WORKERS", 4)
    failing = [outcome.summary() for outcome in (play(f"ci-w4-{number}", open_holes=False)
                                                for number in range(CI_HISTORIES_SEVERAL_WORKERS)) if not outcome.ok]
    assert failing == [], f"{len(failing)} of {CI_HISTORIES_SEVERAL_WORKERS} histories failed; replay one with " \
                          f"JMAP_SIMULATION_WORKERS=4 scripts/simulate.sh --one SEED --without-open-holes:\n" + \
                          "\n".join(failing)


# Histories that found a bug, kept as they are: each failed before its fix (the commit names it).
FOUND_BUGS = {
    "s1-946": "Mailbox/changes with pages of 1 listing one mailbox again and again was taken for a server going round",
    "s1-624": "the same, on another history",
    "big-6453": "a /changes page without records moved the state, which the CDK emitted after the next page's "
                "first record: an attachment row committed under a state that did not cover it was never deleted",
    "wa-89": "attachments of a first import page, emitted by a killed run before any STATE and kept by the "
             "destination, their email destroyed before the next run: the import then started afresh from a state "
             "taken after the destruction, so no deletion ever came (the import's state is now saved first)",
    "wa-190": "the same for raw_messages",
    "ci-61": "emails created after the saved state, emitted by a /changes page of a killed run after its last STATE, "
             "then destroyed, on a server that leaves created-then-destroyed ids out of /changes: never deleted "
             "(their ids are now saved ahead of the page, and checked by the next run)",
    "wa2-221": "the part ids of a killed first page of attachments were not in the state saved before it: its "
               "email destroyed, no part id to delete its rows by",
    "wa2-1849": "the same, another history",
    "wa2-1077": "an email written ahead, emitted, found by the next run, then moved to Trash before its /changes, "
                "which list it as created: a created email out of the selection had no record",
    "issue18-2413": "the run after a killed one deleted a written-ahead email the server no longer had and dropped "
                    "the other pending ids with that STATE; killed before its /changes, the next run did not know "
                    "that an email moved to Trash since might be in the destination",
    "issue18-3013": "an email created after an import's state, seen by a page's query and get, destroyed before the "
                    "page's Email/changes: listed by no /changes, ever (the page's ids are now asked again)",
    "issue18-2393": "the same for a thread",
    "many8-1583": "an identity written ahead and found by the next run's check, destroyed before the whole read "
                  "that followed: nothing deleted what that full read did not bring",
    "merged1-183": "a mailbox of an import page that a killed run emitted after its last STATE, destroyed before the "
                   "next run: the ids the state held did not list it, so its deletion was left out as of a mailbox "
                   "the destination never had (no deletion /changes reports is skipped now, and the page's ids are "
                   "held from the state written ahead of it)",
    "final-2896": "the oracle's bug: changes before one method call in five without end, pages of one object, and each "
                  "stream's /changes catching up with the changes made while the streams before it ran took more "
                  "requests than the run's bound (15,000), the connector converging all the while",
}


@pytest.mark.parametrize("seed", FOUND_BUGS)
def test_a_history_that_found_a_bug_ends_with_the_destination_equal_to_the_server(seed: str) -> None:
    outcome = play(seed, open_holes=False)
    assert outcome.ok, outcome.summary()


def test_a_connector_that_never_ends_an_import_is_hung_under_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound grows with the changes a run may see, and those are capped: an endless loop still ends as hung."""
    monkeypatch.setattr(Import, "_last_page", staticmethod(lambda query, follows: False))
    outcome = play("endless", open_holes=False, shrunk=Shrink(
        plan={"runs": 1, "emails": 3, "fault_rate": 0.0, "mid_request_changes": 0.2,
              "streams": {"emails": (SyncMode.incremental, False)}},
        dialect={"max_objects_in_get": 1}))
    assert outcome.hung, outcome.summary()
