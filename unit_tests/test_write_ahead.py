"""What a killed run may leave in the destination after its last STATE is still deleted when it goes away.

Airbyte delivers at least once: the records after a killed run's last STATE may stay. The state written ahead of a
page (source_jmap/streams/base.py `_written_ahead_of`) carries what deleting them will need."""

from __future__ import annotations

from typing import Any

from .fake_jmap import SESSION_URL, FakeJmap, email
from .helpers import final_state, last_state_before_the_first_record, read_stream
from .test_attachment_state import keys, mailboxes, with_attachments
from .test_streams import _session_with_submission, serve_identities_without_identity_changes


def deleted(output: Any, key: str = "id") -> list[str]:
    return [m.record.data[key] for m in output.records if "_ab_cdc_deleted_at" in m.record.data]


def test_the_parts_of_a_killed_first_page_are_deleted_with_their_email(fake: FakeJmap, config: dict[str, Any]) -> None:
    """Simulation seed wa2-221: the part ids the state knows were those of pages whose STATE came, none here."""
    fake.create("Email", with_attachments(1, "2", "1.2"))
    killed = last_state_before_the_first_record(read_stream(config, "attachments"))
    assert killed["accounts"]["acc1"]["memo"] == {"partIds": {"1.2": 1, "2": 1}}
    fake.destroy("Email", "M0001")
    resumed = read_stream(config, "attachments", state=killed)
    later = read_stream(config, "attachments", state=final_state(resumed))
    assert sorted(keys(later)) == [("M0001", "1.2", True), ("M0001", "2", True)]


def test_an_email_a_killed_run_emitted_then_moved_out_of_the_selection_is_deleted(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Simulation seed wa2-1077: moved to Trash after the next run found it still there and before its /changes,
    which list it as created since the saved state; a created email out of the selection had no record, and the
    destination kept the one the killed run emitted."""
    mailboxes(fake)
    config["exclude_mailboxes"] = ["trash"]
    state = final_state(read_stream(config, "emails"))
    fake.create("Email", email(1))
    killed = last_state_before_the_first_record(read_stream(config, "emails", state=state))
    assert killed["accounts"]["acc1"]["pending"] == ["M0001"]

    def move_to_trash(name: str, arguments: dict[str, Any]) -> None:
        if name == "Email/changes" and fake.store("Email").objects["M0001"]["mailboxIds"] != {"mb-trash": True}:
            fake.update("Email", "M0001", mailboxIds={"mb-trash": True})

    fake.override = move_to_trash
    assert deleted(read_stream(config, "emails", state=killed)) == ["M0001"]


def test_a_created_email_out_of_the_selection_that_no_run_emitted_has_no_record(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    mailboxes(fake)
    config["exclude_mailboxes"] = ["trash"]
    state = final_state(read_stream(config, "emails"))
    fake.create("Email", {**email(1), "mailboxIds": {"mb-trash": True}})
    assert read_stream(config, "emails", state=state).records == []


def test_an_identity_a_killed_whole_read_had_not_seen_yet_is_deleted_by_the_next_one(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Simulation seed ci-185: the state written ahead of a whole read holds, as unseen, what the destination held
    before it; the next whole read started its unseen set from the ids seen so far (none) and lost I1's deletion."""
    serve_identities_without_identity_changes(fake, 1, 2)
    first = read_stream(config, "identities")
    fake.destroy("Identity", "I1")
    killed = last_state_before_the_first_record(read_stream(config, "identities", state=final_state(first)))
    # I2, on the page about to go out, is held ahead of its record (seed merged1-183); still unseen until it comes
    assert killed["accounts"]["acc1"]["memo"] == {"ids": ["I2"], "unseen": ["I1", "I2"]}
    assert deleted(read_stream(config, "identities", state=killed)) == ["I1"]


def test_written_ahead_ids_stay_pending_until_the_changes_list_them(fake: FakeJmap, config: dict[str, Any]) -> None:
    """Simulation seed issue18-2413: the run after a killed one deleted a written-ahead email the server no longer
    had, and its STATE dropped the other pending ids; killed then, before its /changes, the next run no longer knew
    that M0001 (moved to Trash since, listed as created and out of the selection) might be in the destination."""
    mailboxes(fake)
    config["exclude_mailboxes"] = ["trash"]
    state = final_state(read_stream(config, "emails"))
    fake.create("Email", email(1))
    fake.create("Email", email(2))
    killed = last_state_before_the_first_record(read_stream(config, "emails", state=state))
    fake.destroy("Email", "M0002")
    checked = read_stream(config, "emails", state=killed)
    assert deleted(checked)[:1] == ["M0002"]
    killed_again = state_after_the_first_record(checked)
    assert killed_again["accounts"]["acc1"]["pending"] == ["M0001"]
    fake.update("Email", "M0001", mailboxIds={"mb-trash": True})
    # once as created out of the selection, once more as updated (moved) by the page of the move
    assert set(deleted(read_stream(config, "emails", state=killed_again))) == {"M0001"}


def state_after_the_first_record(output: Any) -> dict[str, Any]:
    """What a run killed right after the STATE that follows its first record leaves for the next one."""
    messages = output.records_and_state_messages
    first = next(n for n, message in enumerate(messages) if message.type.value == "RECORD")
    state = next(message.state for message in messages[first:] if message.type.value == "STATE")
    return dict(state.stream.stream_state.__dict__)


def test_a_written_ahead_object_found_then_gone_before_the_full_read_is_deleted_at_its_end(
    fake: FakeJmap, config: dict[str, Any]
) -> None:
    """Simulation seed many8-1583: the check found I1, the whole read that followed no longer did; the rows of a
    killed run's page stayed, as nothing deleted what the full read did not bring."""
    fake.mocker.get(SESSION_URL, json=_session_with_submission())
    fake.create("Identity", {"id": "I1", "name": "Alice", "email": "alice1@jmap.test"})
    killed = last_state_before_the_first_record(read_stream(config, "identities"))
    assert killed["accounts"]["acc1"]["pending"] == ["I1"]

    def destroy_before_the_whole_read(name: str, arguments: dict[str, Any]) -> None:
        if name == "Identity/get" and arguments["ids"] is None and "I1" in fake.store("Identity").objects:
            fake.destroy("Identity", "I1")

    fake.override = destroy_before_the_whole_read
    assert deleted(read_stream(config, "identities", state=killed)) == ["I1"]
