"""attachments in file mode against the real Cyrus: each file is the decoded content of the attachment sent."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from unit_tests.helpers import path_name
from unit_tests.platform_files import platform_file_record

from .conftest import MailAccount
from .connector import run_connector, staging_environment


def seeded_attachments(account: MailAccount) -> dict[tuple[str, str], bytes]:
    """(Message-ID, file name) -> the decoded content of every attachment the seed sent: the seed's own
    bytes, parsed back by Python's email package, independently of Cyrus and of the connector."""
    expected: dict[tuple[str, str], bytes] = {}
    for sample in account.seeded:
        message = cast(EmailMessage, email.message_from_bytes(sample.raw, policy=email.policy.default))
        for part in message.iter_attachments():
            expected[sample.message_id.strip("<>"), str(part.get_filename())] = part.get_payload(decode=True)
    return expected


def test_in_file_mode_each_attachment_file_holds_the_decoded_content_of_the_attachment_sent(
    account: MailAccount, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    run = run_connector("read", tmp_path, account.config(exclude_mailboxes=[]), ["attachments", "emails"],
                        files=["attachments"], env=staging_environment(staging))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    message_ids = {e["id"]: e["messageId"][0] for e in run.records("emails")}
    delivered: dict[tuple[str, str], bytes] = {}
    for line in run.lines_of("attachments"):
        record = platform_file_record(line, staging)  # the contract, and sha256 is the file's
        reference, data = record.file_reference, record.data
        assert reference is not None and reference.source_file_relative_path is not None
        path = staging / reference.source_file_relative_path
        _, month, email_id, part_id, _ = reference.source_file_relative_path.split("/")
        assert re.fullmatch(r"\d{4}-\d{2}", month)
        assert (email_id, part_id) == (path_name(data["emailId"]), path_name(data["partId"]))
        assert reference.file_size_bytes == data["size"]
        delivered[message_ids[data["emailId"]], data["name"]] = path.read_bytes()
    expected = seeded_attachments(account)
    assert len(expected) >= 8  # the seed's attachments: text, PDF and PNG, names in Cyrillic, German, French
    assert delivered == expected
