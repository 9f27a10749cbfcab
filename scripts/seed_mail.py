#!/usr/bin/env python3
# ruff: noqa: RUF001  (the sample mail is deliberately full of Cyrillic and other non-ASCII text)
"""Seed an IMAP account (the local Cyrus from scripts/cyrus.sh) with deterministic sample mail.

The same bytes are produced on every run (fixed dates, Message-IDs and MIME boundaries), so the
content-derived JMAP Email and Thread ids of Cyrus are stable across resets. Mailbox ids are not.

Seeding an account twice is refused: when the mailbox "Archive" already exists the CLI exits with
status 3 and a message, or silently with status 0 when --if-empty is given. `seed()` raises
AlreadySeededError in that case.

Opt-in extras: `bulk` generated messages, and the large message (`large`, 17 MB: above the 16 MB a
destination row can hold) that raw message tests and the demo's file mode need.

Importable API: open_imap, encode_mailbox_name, quote_mailbox, SAMPLE_MAILBOXES, SampleMessage,
sample_messages, bulk_messages, large_message, seed, AlreadySeededError (and the steps of seed:
mailbox_exists, create_mailboxes, append_pipelined).
"""

import argparse
import base64
import contextlib
import imaplib
import os
import socket
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

# Mailboxes in display form, parents before children ("/" is the hierarchy separator with
# altnamespace + unixhierarchysep). INBOX exists already (autocreated at first login).
SAMPLE_MAILBOXES = ["INBOX", "Archive", "Archive/2023", "Reçus", "Reçus/Factures", "Sent", "Drafts", "Trash", "Junk"]
SPECIAL_USE = {"Archive": "\\Archive", "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}
SEEDED_MARKER = "Archive"

# 7-bit output: non-ASCII headers become RFC 2047 words, parameters RFC 2231, bodies QP/base64.
POLICY = policy.SMTP.clone(cte_type="7bit")
DOMAIN = "source-jmap.example"
CET = timezone(timedelta(hours=1))
CEST = timezone(timedelta(hours=2))
JST = timezone(timedelta(hours=9))
MSK = timezone(timedelta(hours=3))

ALICE = "Alice Example <alice@example.com>"
BOB = "Bob Builder <bob@example.com>"
JOSE = "José Müller <jose.mueller@example.de>"
TANAKA = "田中 太郎 <tanaka@example.jp>"
IVAN = "Иван Петров <ivan.petrov@example.ru>"
BILLING = "Facturation Énergie <factures@energie.example.fr>"
OPS = "Ops Team <ops@example.com>"
NEWS = "Weekly Digest <digest@news.example.org>"
SPAMMER = "Prize Department <winner@lottery.example.net>"


class AlreadySeededError(RuntimeError):
    """The account already contains the seeded mailboxes."""


@dataclass(frozen=True)
class SampleMessage:
    mailbox: str  # display form, e.g. "Reçus/Factures"
    flags: tuple[str, ...]
    internal_date: datetime  # timezone-aware; the IMAP internal date (JMAP receivedAt)
    raw: bytes  # RFC 5322 bytes with CRLF line endings
    message_id: str  # with angle brackets
    subject: str  # decoded
    has_attachment: bool


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str
    data: bytes


# ----------------------------------------------------------------------------- IMAP helpers


def open_imap(host: str, port: int, user: str, password: str) -> imaplib.IMAP4:
    """Return a logged-in (plain-text, loopback) IMAP connection."""
    imap = imaplib.IMAP4(host, port, timeout=30)
    imap.login(user, password)
    return imap


def encode_mailbox_name(name: str) -> str:
    """Encode a mailbox name in IMAP modified UTF-7 (RFC 3501 section 5.1.3). Not quoted."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if " " <= char <= "~":
            out.append(_encode_utf7_run(pending))
            pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    out.append(_encode_utf7_run(pending))
    return "".join(out)


def _encode_utf7_run(chars: Sequence[str]) -> str:
    if not chars:
        return ""
    encoded = base64.b64encode("".join(chars).encode("utf-16-be")).decode("ascii")
    return "&" + encoded.rstrip("=").replace("/", ",") + "-"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_mailbox(name: str) -> str:
    """Modified-UTF-7 encode and quote a display-form mailbox name for an IMAP command."""
    return _quote(encode_mailbox_name(name))


def _check(response: tuple[str, list[Any]], what: str) -> None:
    status, data = response
    if status != "OK":
        raise imaplib.IMAP4.error(f"{what} failed: {status} {data}")


def mailbox_exists(imap: imaplib.IMAP4, name: str) -> bool:
    status, data = imap.list('""', quote_mailbox(name))
    return status == "OK" and any(data)


def create_mailboxes(imap: imaplib.IMAP4) -> None:
    """Create the missing SAMPLE_MAILBOXES, with RFC 6154 special-use attributes where supported."""
    _, data = imap.capability()
    special_use = "CREATE-SPECIAL-USE" in data[0].decode().upper().split()
    for name in SAMPLE_MAILBOXES:
        if name == "INBOX" or mailbox_exists(imap, name):
            continue
        if special_use and name in SPECIAL_USE:
            _check(imap.xatom("CREATE", quote_mailbox(name), f"(USE ({SPECIAL_USE[name]}))"), f"CREATE {name}")
        else:
            _check(imap.create(quote_mailbox(name)), f"CREATE {name}")


# ----------------------------------------------------------------------------- pipelined APPEND


def _append_command(tag: str, mailbox: str, messages: Sequence[SampleMessage]) -> bytes:
    """One APPEND of several messages to one mailbox (MULTIAPPEND, RFC 3502) with LITERAL+ literals."""
    parts = [f"{tag} APPEND {quote_mailbox(mailbox)}".encode("ascii")]
    for message in messages:
        flags = f" ({' '.join(message.flags)})" if message.flags else ""
        date = imaplib.Time2Internaldate(message.internal_date)
        parts.append(f"{flags} {date} {{{len(message.raw)}+}}\r\n".encode("ascii") + message.raw)
    parts.append(b"\r\n")
    return b"".join(parts)


def _batches(messages: Sequence[SampleMessage], size: int) -> list[tuple[str, list[SampleMessage]]]:
    """Split into (mailbox, at most `size` messages) keeping the order of messages within each mailbox."""
    by_mailbox: dict[str, list[SampleMessage]] = {}
    for message in messages:
        by_mailbox.setdefault(message.mailbox, []).append(message)
    return [(box, group[i : i + size]) for box, group in by_mailbox.items() for i in range(0, len(group), size)]


class _RawImap:
    """Just enough of an IMAP client to pipeline APPENDs with LITERAL+ (RFC 7888)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=120)
        self.reader = self.sock.makefile("rb")
        self.counter = 0
        greeting = self.reader.readline()
        if not greeting.startswith(b"* OK"):
            raise imaplib.IMAP4.error(f"unexpected greeting: {greeting!r}")

    def next_tag(self) -> str:
        self.counter += 1
        return f"P{self.counter}"

    def run(self, commands: list[tuple[str, bytes]]) -> list[bytes]:
        """Send all commands at once, wait for every tagged reply; raise if any is not OK."""
        self.sock.sendall(b"".join(command for _, command in commands))
        pending = {tag for tag, _ in commands}
        failures = []
        untagged = []
        while pending:
            line = self.reader.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed by server")
            tag, _, rest = line.partition(b" ")
            if tag == b"*":
                untagged.append(rest)
            elif tag == b"+":
                raise imaplib.IMAP4.error("server asked for a synchronizing literal (no LITERAL+?)")
            elif tag.decode() in pending:
                pending.discard(tag.decode())
                if not rest.startswith(b"OK"):
                    failures.append(line.decode(errors="replace").strip())
        if failures:
            raise imaplib.IMAP4.error(f"{len(failures)} command(s) failed, first: {failures[0]}")
        return untagged

    def command(self, text: str) -> list[bytes]:
        tag = self.next_tag()
        return self.run([(tag, f"{tag} {text}\r\n".encode())])

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.abort):
            self.command("LOGOUT")
        self.reader.close()
        self.sock.close()


def append_pipelined(
    host: str,
    port: int,
    user: str,
    password: str,
    messages: Sequence[SampleMessage],
    batch_size: int = 250,
    in_flight: int = 4,
) -> None:
    """APPEND all messages over one connection: MULTIAPPEND batches of `batch_size` messages
    (single-message APPENDs if the server lacks MULTIAPPEND), `in_flight` commands pipelined at a time.
    Raises imaplib.IMAP4.error if any command is not answered OK."""
    client = _RawImap(host, port)
    try:
        client.command(f"LOGIN {_quote(user)} {_quote(password)}")
        capabilities = b" ".join(client.command("CAPABILITY")).upper().split()
        if b"LITERAL+" not in capabilities:
            raise imaplib.IMAP4.error("server lacks LITERAL+; cannot pipeline APPEND")
        batches = _batches(messages, batch_size if b"MULTIAPPEND" in capabilities else 1)
        for start in range(0, len(batches), in_flight):
            window = batches[start : start + in_flight]
            client.run([(tag := client.next_tag(), _append_command(tag, box, group)) for box, group in window])
    finally:
        client.close()


# ----------------------------------------------------------------------------- sample content


def _message_id(number: int) -> str:
    return f"<sample-{number:03d}@{DOMAIN}>"


def _text_cte(text: str) -> str:
    return "7bit" if text.isascii() else "quoted-printable"


def _fake_pdf(title: str) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"% " + title.encode() + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, solid-colour RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * height, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _build(
    number: int,
    mailbox: str,
    flags: tuple[str, ...],
    sent: datetime,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    references: tuple[int, ...] = (),
) -> SampleMessage:
    """Build one sample message; `references` are the numbers of its ancestors, oldest first."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = _message_id(number)
    if references:
        msg["In-Reply-To"] = _message_id(references[-1])
        msg["References"] = " ".join(_message_id(ref) for ref in references)
    msg.set_content(text, cte=_text_cte(text))
    if html is not None:
        msg.add_alternative(html, subtype="html", cte=_text_cte(html))
    for attachment in attachments:
        maintype, subtype = attachment.mime_type.split("/")
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename)
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_sample-{number:03d}-{index}")
    received = sent if mailbox in ("Sent", "Drafts") else sent + timedelta(minutes=2)
    return SampleMessage(
        mailbox=mailbox,
        flags=flags,
        internal_date=received,
        raw=msg.as_bytes(policy=POLICY),
        message_id=_message_id(number),
        subject=subject,
        has_attachment=bool(attachments),
    )


SEEN = ("\\Seen",)


def _threads() -> list[SampleMessage]:
    """Conversations spanning INBOX and Sent."""
    kickoff = "Project kickoff meeting"
    gruesse = "Grüße aus München"
    lunch = "Lunch on Friday?"
    return [
        _build(2, "INBOX", ("\\Seen", "\\Answered"), datetime(2023, 2, 1, 9, 30, tzinfo=CET), BOB, ALICE, kickoff,
               "Hi Alice,\n\ncan we meet on Monday at 10:00 to kick off the project?\n\nBob\n"),
        _build(3, "Sent", SEEN, datetime(2023, 2, 1, 11, 5, tzinfo=CET), ALICE, BOB, f"Re: {kickoff}",
               "Monday 10:00 works for me. I will book the small room.\n\nAlice\n", references=(2,)),
        _build(4, "INBOX", ("\\Seen", "\\Flagged", "\\Answered"), datetime(2023, 2, 1, 14, 45, tzinfo=CET), BOB,
               ALICE, f"Re: {kickoff}", "Great, see you there. I'll bring the draft plan.\n", references=(2, 3)),
        _build(5, "Sent", SEEN, datetime(2023, 2, 2, 8, 15, tzinfo=CET), ALICE, BOB, f"Re: {kickoff}",
               "Thanks! Please also invite José.\n", references=(2, 3, 4)),
        _build(6, "INBOX", ("\\Seen", "\\Answered"), datetime(2023, 3, 14, 18, 2, tzinfo=CET), JOSE, ALICE, gruesse,
               "Liebe Alice,\n\nviele Grüße aus München! Das Wetter ist schön.\n\nJosé\n",
               html="<html><body><p>Liebe Alice,</p><p>viele <b>Grüße</b> aus München!"
                    " Das Wetter ist schön.</p><p>José</p></body></html>\n"),
        _build(7, "Sent", SEEN, datetime(2023, 3, 15, 7, 40, tzinfo=CET), ALICE, JOSE, f"Re: {gruesse}",
               "Hallo José,\n\ndanke für die Grüße! Bis bald.\n\nAlice\n", references=(6,)),
        _build(8, "INBOX", (), datetime(2023, 3, 15, 20, 11, tzinfo=CET), JOSE, ALICE, f"Re: {gruesse}",
               "Bis bald, und schöne Grüße an Bob.\n", references=(6, 7)),
        _build(9, "Sent", SEEN, datetime(2024, 5, 29, 12, 0, tzinfo=CEST), ALICE, BOB, lunch,
               "Shall we try the new ramen place on Friday?\n"),
        _build(10, "INBOX", SEEN, datetime(2024, 5, 29, 12, 20, tzinfo=CEST), BOB, ALICE, f"Re: {lunch}",
               "Yes! 12:30 at the entrance.\n", references=(9,)),
    ]


def _inbox() -> list[SampleMessage]:
    report = "Отчёт за квартал"
    return [
        _build(1, "INBOX", SEEN, datetime(2023, 1, 9, 9, 15, tzinfo=CET), BOB, ALICE, "Welcome to the team",
               "Hi Alice,\n\nwelcome aboard! Your laptop is on your desk.\n\nCheers,\nBob\n"),
        _build(11, "INBOX", SEEN, datetime(2023, 4, 3, 10, 0, tzinfo=JST), TANAKA, ALICE, "会議の議事録",
               "アリスさん\n\n昨日の会議の議事録を送ります。\n\n田中\n"),
        _build(12, "INBOX", ("\\Seen", "$Forwarded"), datetime(2023, 4, 20, 16, 30, tzinfo=MSK), IVAN, ALICE,
               report, "Добрый день!\n\nОтчёт во вложении.\n\nИван\n",
               attachments=(Attachment("Отчёт Q1.txt", "text/plain",
                                       "Выручка: 100\nРасходы: 80\n".encode()),)),
        _build(13, "Sent", SEEN, datetime(2023, 4, 21, 9, 0, tzinfo=CEST), ALICE, BOB, f"Fwd: {report}",
               "Bob, see Ivan's report below.\n\n---------- Forwarded message ----------\nОтчёт во вложении.\n"),
        _build(14, "INBOX", ("\\Seen", "\\Flagged"), datetime(2023, 6, 30, 17, 45, tzinfo=CEST), BOB, ALICE,
               "Quarterly figures", "Hi Alice,\n\nattached is the overview for 2023 so far.\n\nBob\n",
               attachments=(Attachment("Übersicht 2023.pdf", "application/pdf", _fake_pdf("Übersicht 2023")),)),
        _build(15, "INBOX", (), datetime(2023, 9, 18, 8, 5, tzinfo=CEST), BOB, ALICE, "Photo from the offsite",
               "Here is the group photo from the offsite.\n",
               html="<html><body><p>Here is the <i>group photo</i> from the offsite.</p></body></html>\n",
               attachments=(Attachment("offsite.png", "image/png", _png(16, 8, (30, 120, 200))),)),
        _build(16, "INBOX", SEEN, datetime(2023, 11, 6, 6, 0, tzinfo=UTC), NEWS, ALICE, "Your weekly digest #45",
               "Top stories this week:\n\n1. JMAP adoption grows\n2. IMAP turns 35\n",
               html="<html><body><h1>Weekly digest</h1><ol><li>JMAP adoption grows</li>"
                    "<li>IMAP turns 35</li></ol></body></html>\n"),
        _build(17, "INBOX", SEEN, datetime(2024, 1, 15, 22, 0, tzinfo=UTC), OPS, ALICE, "Server maintenance window",
               "The mail cluster will be upgraded on Saturday between 02:00 and 04:00 UTC.\n"),
        _build(18, "INBOX", (), datetime(2024, 3, 4, 13, 37, tzinfo=CET), OPS, ALICE, "Build logs for release 2.4",
               "Logs of the failed build are attached.\n",
               attachments=(Attachment("build.log", "text/plain", b"step 1 ok\nstep 2 ok\nstep 3 FAILED\n"),
                            Attachment("build-status.png", "image/png", _png(4, 4, (200, 30, 30))))),
        _build(19, "INBOX", ("\\Flagged",), datetime(2024, 11, 28, 9, 10, tzinfo=CET), JOSE, ALICE,
               "Termin für nächste Woche", "Hallo Alice, passt dir Dienstag um 14 Uhr?\n"),
    ]


def _folders() -> list[SampleMessage]:
    old_plan = "Roadmap 2023 draft"
    return [
        _build(20, "Archive", SEEN, datetime(2023, 1, 20, 15, 0, tzinfo=CET), BOB, ALICE, "Meeting notes 2022-12",
               "Notes are attached.\n",
               attachments=(Attachment("notes.txt", "text/plain", b"- ship v1\n- hire two people\n"),)),
        _build(21, "Archive", SEEN, datetime(2024, 2, 2, 10, 0, tzinfo=CET), OPS, ALICE, "Password policy update",
               "Passwords now need 14 characters.\n"),
        _build(22, "Archive/2023", SEEN, datetime(2023, 5, 5, 9, 0, tzinfo=CEST), BOB, ALICE, old_plan,
               "First draft of the roadmap, comments welcome.\n"),
        _build(23, "Archive/2023", ("\\Seen", "\\Answered"), datetime(2023, 5, 5, 11, 30, tzinfo=CEST), JOSE, ALICE,
               f"Re: {old_plan}", "Looks good, but Q3 is too ambitious.\n", references=(22,)),
        _build(24, "Archive/2023", SEEN, datetime(2023, 8, 1, 12, 0, tzinfo=CEST), NEWS, ALICE,
               "Your weekly digest #31", "Nothing happened this week.\n"),
        _build(25, "Reçus/Factures", SEEN, datetime(2023, 10, 2, 7, 0, tzinfo=CEST), BILLING, ALICE,
               "Facture n° 2023-0042", "Bonjour,\n\nveuillez trouver ci-joint votre facture.\n\nCordialement\n",
               attachments=(Attachment("Facture 2023-0042.pdf", "application/pdf", _fake_pdf("Facture 2023-0042")),)),
        _build(26, "Reçus/Factures", (), datetime(2024, 1, 3, 7, 0, tzinfo=CET), BILLING, ALICE,
               "Facture n° 2024-0007", "Bonjour,\n\nvotre facture de décembre est disponible.\n",
               attachments=(Attachment("Facture décembre.pdf", "application/pdf", _fake_pdf("Facture 2024-0007")),)),
        _build(27, "Drafts", ("\\Draft", "\\Seen"), datetime(2024, 6, 10, 16, 0, tzinfo=CEST), ALICE, BOB,
               "Proposal: move stand-up to 9:45", "Hi team,\n\nwhat about moving the stand-up to 9:45?\n\n(draft)\n"),
        _build(28, "Trash", SEEN, datetime(2023, 7, 7, 7, 7, tzinfo=CEST), NEWS, ALICE, "Your weekly digest #27",
               "Old news.\n"),
        _build(29, "Trash", SEEN, datetime(2024, 4, 1, 10, 0, tzinfo=CEST), BOB, ALICE, "Cancelled: team lunch",
               "The lunch is cancelled.\n"),
        _build(30, "Junk", ("$Junk",), datetime(2024, 8, 8, 3, 33, tzinfo=UTC), SPAMMER, ALICE,
               "YOU HAVE WON 1.000.000 €!!!", "Send us your bank details to claim your prize.\n"),
        _build(31, "Junk", (), datetime(2024, 9, 9, 4, 44, tzinfo=UTC), SPAMMER, ALICE, "Cheap watches",
               "Best prices.\n", html="<html><body><p style='color:red'>Best prices.</p></body></html>\n"),
    ]


def sample_messages() -> list[SampleMessage]:
    """The hand-built sample messages (31), ordered by their Message-ID number."""
    return sorted(_inbox() + _threads() + _folders(), key=lambda message: message.message_id)


# ----------------------------------------------------------------------------- bulk content

BULK_START = datetime(2023, 1, 1, tzinfo=UTC)
BULK_SPAN_MINUTES = 731 * 24 * 60  # 2023-01-01 .. 2024-12-31
WORDS = [
    *("jmap", "imap", "mailbox", "thread", "keyword", "query", "changes", "state", "blob", "session"),
    *("account", "sync", "stream", "cursor", "record", "schema", "server", "client", "message", "header"),
    *("body", "attachment", "invoice", "meeting", "report"),
]


def _filler_lines() -> list[str]:
    """Deterministic pseudo-text, 400 lines of about 70 characters."""
    lines = []
    for row in range(400):
        words = [WORDS[(row * 7 + col * 13 + row * col) % len(WORDS)] for col in range(10)]
        lines.append(" ".join(words).capitalize() + ".")
    return lines


def _bulk_one(index: int, filler: list[str]) -> SampleMessage:
    thread, position = divmod(index, 3)
    subject = f"{'Re: ' if position else ''}Bulk thread {thread}"
    message_id = f"<bulk-{index:06d}@{DOMAIN}>"
    date = BULK_START + timedelta(minutes=(index * 97) % BULK_SPAN_MINUTES)
    headers = [
        f"From: Sender {index % 37} <sender{index % 37}@bulk.example>",
        "To: Alice Example <alice@example.com>",
        f"Subject: {subject}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    if position:
        ancestors = [f"<bulk-{ancestor:06d}@{DOMAIN}>" for ancestor in range(index - position, index)]
        headers += [f"In-Reply-To: {ancestors[-1]}", f"References: {' '.join(ancestors)}"]
    line_count = 12 + (index * 37) % 100  # roughly 1 to 8 KB
    first = (index * 11) % (len(filler) - line_count)
    text = f"Message {index} of the bulk set.\r\n\r\n" + "\r\n".join(filler[first : first + line_count]) + "\r\n"
    has_attachment = index % 10 == 7
    if has_attachment:
        boundary = f"=_bulk-{index:06d}"
        csv = "".join(f"{row},{(row * index) % 1000}\n" for row in range(20)).encode()
        headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        body = (
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
            f"--{boundary}\r\nContent-Type: text/csv\r\nContent-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="report-{index}.csv"\r\n\r\n'
            f"{base64.encodebytes(csv).decode().replace(chr(10), chr(13) + chr(10))}"
            f"--{boundary}--\r\n"
        )
    else:
        headers.append("Content-Type: text/plain; charset=us-ascii")
        body = text
    flags = tuple(flag for flag, wanted in (("\\Seen", index % 3 != 0), ("\\Flagged", index % 50 == 0)) if wanted)
    return SampleMessage(
        mailbox="Archive" if thread % 4 == 3 else "INBOX",
        flags=flags,
        internal_date=date + timedelta(minutes=1),
        raw=("\r\n".join(headers) + "\r\n\r\n" + body).encode("ascii"),
        message_id=message_id,
        subject=subject,
        has_attachment=has_attachment,
    )


def bulk_messages(count: int) -> list[SampleMessage]:
    """`count` generated messages for INBOX and Archive: threads of 3 consecutive messages (each thread in
    one mailbox), every 10th with a small CSV attachment, sizes about 1 to 8 KB."""
    filler = _filler_lines()
    return [_bulk_one(index, filler) for index in range(count)]


# ----------------------------------------------------------------------------- the large message

LARGE_MESSAGE_BYTES = 17_000_000
LARGE_MESSAGE_ID = f"<large-17mb@{DOMAIN}>"


def large_message(size: int = LARGE_MESSAGE_BYTES) -> SampleMessage:
    """A scanned contract of about `size` bytes (17 MB by default) in INBOX (received 2024-01-02): above the
    16 MB a destination row can hold, above the 1 MB a Blob/get asks of a blob, and so downloaded whole, to
    a file in file mode.

    One base64 body part of a fixed 76-character line repeated: the same bytes on every run, so the
    same JMAP id, and built in milliseconds.
    """
    line = base64.b64encode(bytes(range(256)) * 3)[:76] + b"\r\n"
    headers = (
        "From: Scanner <scanner@example.com>",
        "To: Alice Example <alice@example.com>",
        "Subject: Scanned contract",
        f"Message-ID: {LARGE_MESSAGE_ID}",
        "Date: Tue, 02 Jan 2024 10:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: application/pdf",
        'Content-Disposition: attachment; filename="contract.pdf"',
        "Content-Transfer-Encoding: base64",
    )
    raw = "\r\n".join(headers).encode("ascii") + b"\r\n\r\n" + line * (size // len(line))
    return SampleMessage("INBOX", SEEN, datetime(2024, 1, 2, 10, 0, tzinfo=UTC), raw, LARGE_MESSAGE_ID,
                         "Scanned contract", True)


# ----------------------------------------------------------------------------- seeding


def seed(host: str, port: int, user: str, password: str, bulk: int = 0, large: bool = False) -> list[SampleMessage]:
    """Create SAMPLE_MAILBOXES and append the samples, `bulk` generated messages, and the large message
    (`large_message()`) when `large`.

    Returns every appended message (samples first, then the bulk ones, then the large one). Raises
    AlreadySeededError when the account already has the "Archive" mailbox.
    """
    imap = open_imap(host, port, user, password)
    try:
        if mailbox_exists(imap, SEEDED_MARKER):
            raise AlreadySeededError(f"{user} already has a mailbox {SEEDED_MARKER!r}: already seeded")
        create_mailboxes(imap)
    finally:
        imap.logout()
    messages = sample_messages() + bulk_messages(bulk) + ([large_message()] if large else [])
    append_pipelined(host, port, user, password, messages)
    return messages


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seed an IMAP account with deterministic sample mail (same bytes on every run, so the JMAP "
        "Email and Thread ids of Cyrus are stable). "
        f"Creates {', '.join(SAMPLE_MAILBOXES[1:])} and appends {len(sample_messages())} messages. "
        "An account that already has the 'Archive' mailbox counts as seeded: exits with status 3, "
        "or 0 with --if-empty."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--imap-port", type=int, default=int(os.environ.get("CYRUS_IMAP_PORT", "11143")))
    parser.add_argument("--user", required=True, help="e.g. alice@example.com")
    parser.add_argument("--password", required=True)
    parser.add_argument("--bulk", type=int, default=0, metavar="N", help="also append N generated messages")
    parser.add_argument("--large", action="store_true",
                        help=f"also append a message of {LARGE_MESSAGE_BYTES // 1_000_000} MB to INBOX")
    parser.add_argument("--if-empty", action="store_true", help="skip silently (exit 0) when already seeded")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.monotonic()
    try:
        messages = seed(args.host, args.imap_port, args.user, args.password, bulk=args.bulk, large=args.large)
    except AlreadySeededError as error:
        if args.if_empty:
            return 0
        print(f"seed_mail: {error}; reset the server or use --if-empty", file=sys.stderr)
        return 3
    if not args.quiet:
        counts = Counter(message.mailbox for message in messages)
        print(f"seeded {args.user} at {args.host}:{args.imap_port} in {time.monotonic() - started:.1f} s")
        print(f"mailboxes: {', '.join(SAMPLE_MAILBOXES)} (special-use: {', '.join(SPECIAL_USE)})")
        print(f"appended {len(messages)} messages: " + ", ".join(f"{box} {counts[box]}" for box in SAMPLE_MAILBOXES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
