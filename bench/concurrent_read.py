"""Whole first syncs on the Cyrus with extensions, for issue 19's concurrency targets (item 5).

    python bench/concurrent_read.py --scenario a [--delay-ms 0 50] [--workers N] [--connector DIR] [--floor]
    python bench/concurrent_read.py --scenario b [--delay-ms 0 50] [--workers N] [--connector DIR]

(a) one account of --messages emails (10,000; plus the sample contacts, calendars and sieve script of
    scripts/seed_account.py), every discovered stream selected, raw_messages and attachments in file mode
    (include_files), include_raw_message on: a first sync.
(b) --accounts accounts (50) of 200 emails each, every mailbox of each shared by IMAP SETACL (rights `lrs`)
    to one reader, who reads them all with `read_all_accounts` (its session lists them as accounts: checked),
    the same streams as (a).

Runs against the ext test instance (scripts/cyrus.sh, CYRUS_PROFILE=ext: 127.0.0.1:18081, IMAP 11144), which
integration tests share; it never starts, stops or resets it. Seeding is idempotent: the bench users
(bench-a-<N>@example.com; bench-b-reader@example.com and bench-b-<NN>@example.com) are seeded once, when their
mail is missing, and found seeded on later runs.

Each run goes through bench/raw_paths.py's counting loopback proxy, holding every request --delay-ms before it
goes upstream (a remote server; 0 = the proxy alone), and with --direct once more straight to Cyrus first
(HTTP requests not counted): the proxy's own upstream reads wait on Cyrus's delayed ACKs (bench/README.md),
which the 0 ms row pays and the connector alone does not. One markdown row per run: wall time, HTTP requests,
peak RSS (GNU time), records, files written, and the 1-minute load average just before the run (the
machine is shared). --workers N passes `workers: N` in the config, only when the connector's spec has it.
--connector DIR runs another checkout's main.py (e.g. a worktree of 0.2.0) with this interpreter.

--floor (scenario a): the `emails` stream's full read against bench/floor.py, as bench/README.md defines it:
work = wall - start-up (`connector spec` for the connector, `python -c pass` for the floor), ratio =
connector work / floor work, medians of --rounds interleaved rounds, straight against Cyrus (no proxy).
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # this checkout's source_jmap (for the floor's arguments), not the installed one
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "scripts"))

import seed_account  # noqa: E402
import seed_mail  # noqa: E402
from measure import Measurement, check_gnu_time, run_measured  # noqa: E402
from raw_paths import SERVERS, DelayingProxy  # noqa: E402

HTTP_PORT, IMAP_PORT, EXT_ENV = SERVERS["ext"]
ORIGIN = f"http://127.0.0.1:{HTTP_PORT}"  # ignore-https-check: the test Cyrus, on loopback
PASSWORD = "bench-password-1"
READER = "bench-b-reader@example.com"
B_EMAILS = 200
SHARED_RIGHTS = "lrs"  # lookup, read, keep \Seen: what a JMAP reader of the mailbox needs
FILE_STREAMS = ("raw_messages", "attachments")
# Issue 19 item 4's setting for the number of workers, which does not exist yet: rename here if it lands as another.
WORKERS_SETTING = "num_workers"
CORE, MAIL = "urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"


def b_owner(number: int) -> str:
    return f"bench-b-{number:02d}@example.com"


def _session(user: str) -> dict[str, Any]:
    answer = requests.get(f"{ORIGIN}/jmap/", auth=(user, PASSWORD), timeout=60)
    answer.raise_for_status()
    session: dict[str, Any] = answer.json()
    return session


def _email_count(user: str) -> int:
    """Emails in `user`'s own account, 0 for a user that does not exist yet."""
    try:
        seed_mail.open_imap("127.0.0.1", IMAP_PORT, user, PASSWORD).logout()
    except imaplib.IMAP4.error:
        subprocess.run([str(ROOT / "scripts" / "cyrus.sh"), "adduser", user, PASSWORD], check=True,
                       capture_output=True, env={**os.environ, **EXT_ENV})
        return 0
    body = {"using": [CORE, MAIL], "methodCalls": [["Email/query", {"accountId": user, "limit": 1,
                                                                     "calculateTotal": True}, "q"]]}
    answer = requests.post(f"{ORIGIN}/jmap/", json=body, auth=(user, PASSWORD), timeout=60)
    answer.raise_for_status()
    return int(answer.json()["methodResponses"][0][1]["total"])


def _seed_mail(user: str, emails: int, extras: bool = False) -> None:
    """`emails` emails in `user` (and with `extras` the contacts, calendars and sieve script), unless there already."""
    count = _email_count(user)
    if count == emails:
        return
    if count:
        raise SystemExit(f"{user} holds {count} emails, not {emails} (an interrupted seeding?): remove the user's "
                         "mail or pick another size")
    if extras:  # before the mail: the mail count is what says "seeded" on the next run
        seed_account.seed(ORIGIN, user, PASSWORD)
    seed_mail.seed("127.0.0.1", IMAP_PORT, user, PASSWORD, bulk=emails - len(seed_mail.sample_messages()))
    # Counted over JMAP as the owner, which also makes Cyrus create the owner's calendar ("personal"), which
    # the reader of (b) then reads by Calendar/get: without it, (b)'s first run read 3 calendars, later runs 51.
    if (count := _email_count(user)) != emails:
        raise SystemExit(f"{user} holds {count} emails after seeding, not {emails}")
    print(f"seeded {user} with {emails} emails", flush=True)


def _share_with_reader(owner: str) -> None:
    """SETACL every mailbox of `owner` for the reader (idempotent: the same rights again)."""
    imap = seed_mail.open_imap("127.0.0.1", IMAP_PORT, owner, PASSWORD)
    try:
        _, listing = imap.list()
        for line in listing:
            name = line.decode().rsplit(' "/" ', 1)[-1] if isinstance(line, bytes) else ""
            if name:
                status, data = imap.setacl(name, READER, SHARED_RIGHTS)
                if status != "OK":
                    raise SystemExit(f"SETACL {name} of {owner} failed: {data}")
    finally:
        imap.logout()


def seed(scenario: str, messages: int, accounts: int) -> tuple[str, list[str]]:
    """The user who reads, and the mail accounts it must see."""
    if scenario == "a":
        user = f"bench-a-{messages}@example.com"
        _seed_mail(user, messages, extras=True)
        return user, [user]
    _email_count(READER)  # creates the reader
    owners = [b_owner(number) for number in range(1, accounts + 1)]
    for owner in owners:
        _seed_mail(owner, B_EMAILS)
        _share_with_reader(owner)
    return READER, [READER, *owners]


def check_accounts(user: str, expected: list[str]) -> int:
    session = _session(user)
    mail = sorted(account for account, value in session["accounts"].items() if MAIL in value["accountCapabilities"])
    if not set(expected) <= set(mail):
        raise SystemExit(f"{user}'s session lists {len(mail)} mail accounts, not the {len(expected)} expected")
    return len(session["accounts"])


def spec_properties(connector: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "main.py", "spec"], cwd=connector, capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith('{"type":"SPEC"'):
            properties: dict[str, Any] = json.loads(line)["spec"]["connectionSpecification"]["properties"]
            return properties
    raise SystemExit(f"{connector}/main.py spec printed no SPEC")


def connector_config(user: str, port: int, scenario: str, workers: int | None) -> dict[str, Any]:
    return {"session_url": f"http://127.0.0.1:{port}/jmap/",  # ignore-https-check: loopback
            "credentials": {"auth_type": "basic", "username": user, "password": PASSWORD},
            "exclude_mailboxes": [], "include_raw_message": True,
            **({"read_all_accounts": True} if scenario == "b" else {}),
            **({WORKERS_SETTING: workers} if workers is not None else {})}


def every_stream(connector: Path, config: Path) -> dict[str, Any]:
    """Every discovered stream, incremental where it can be, the file streams with include_files."""
    out = subprocess.run([sys.executable, "main.py", "discover", "--config", str(config)], cwd=connector,
                         capture_output=True, text=True, check=True).stdout
    [discovered] = [json.loads(line)["catalog"] for line in out.splitlines() if line.startswith('{"type":"CATALOG"')]
    streams = []
    for stream in discovered["streams"]:
        incremental = "incremental" in stream.get("supported_sync_modes", [])
        streams.append({"stream": stream, "sync_mode": "incremental" if incremental else "full_refresh",
                        "destination_sync_mode": "append_dedup" if incremental else "overwrite",
                        "cursor_field": stream.get("default_cursor_field", []),
                        "primary_key": stream.get("source_defined_primary_key"),
                        **({"include_files": True} if stream["name"] in FILE_STREAMS else {})})
    return {"streams": streams}


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def first_sync(work: Path, connector: Path, user: str, scenario: str, delay_ms: float | None,
               workers: int | None) -> dict[str, Any]:
    """One first sync through the delaying proxy, or straight to Cyrus when `delay_ms` is None."""
    directory = Path(tempfile.mkdtemp(prefix=f"{scenario}-{delay_ms}ms-", dir=work))
    staging = directory / "staging"
    staging.mkdir()
    straight = directory / "config-straight.json"
    straight.write_text(json.dumps(connector_config(user, HTTP_PORT, scenario, workers)))
    (directory / "catalog.json").write_text(json.dumps(every_stream(connector, straight)))
    argv = [sys.executable, "main.py", "read", "--config", str(directory / "config.json"),
            "--catalog", str(directory / "catalog.json")]
    env = {**os.environ, "AIRBYTE_STAGING_DIRECTORY": str(staging)}
    requests_made: int | None = None
    if delay_ms is None:  # straight to Cyrus: no proxy, no count
        shutil.copy(straight, directory / "config.json")
        load = load_average()
        subprocess.run(["uptime"], check=False)
        measured = run_measured(argv, connector, env, stdout=directory / "stdout", stderr=directory / "stderr")
    else:
        with DelayingProxy(HTTP_PORT, delay_ms / 1000) as relay:
            (directory / "config.json").write_text(json.dumps(connector_config(user, relay.port, scenario, workers)))
            load = load_average()
            subprocess.run(["uptime"], check=False)
            measured = run_measured(argv, connector, env, stdout=directory / "stdout", stderr=directory / "stderr")
            requests_made = relay.counts().requests
    records: dict[str, int] = {}
    with open(directory / "stdout", "rb") as lines:
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                stream = json.loads(line)["record"]["stream"]
                records[stream] = records.get(stream, 0) + 1
            elif line.startswith(b'{"type":"TRACE"') and b'"error"' in line:
                raise SystemExit(f"the read failed: {json.loads(line)['trace']['error']['message']}")
    files = sum(1 for path in staging.rglob("*") if path.is_file())
    shutil.rmtree(directory)
    return {"scenario": scenario, "connector": connector.name, "workers": workers, "delay_ms": delay_ms,
            "wall_s": round(measured.wall, 2), "requests": requests_made, "peak_rss_mb": round(measured.max_rss_mb),
            "records": sum(records.values()), "records_per_stream": records, "files": files, "load": load}


def emails_against_floor(work: Path, connector: Path, user: str, rounds: int) -> dict[str, float]:
    """bench/README.md's ratio for the `emails` full read: connector work / floor work, medians of `rounds`."""
    from bench import email_get_arguments

    config = connector_config(user, HTTP_PORT, "a", None)
    (work / "config.json").write_text(json.dumps(config))
    (work / "get-arguments.json").write_text(json.dumps(email_get_arguments(config)))
    catalog = every_stream(connector, work / "config.json")
    [emails] = [stream for stream in catalog["streams"] if stream["stream"]["name"] == "emails"]
    emails.update(sync_mode="full_refresh", destination_sync_mode="overwrite")
    (work / "catalog-emails.json").write_text(json.dumps({"streams": [emails]}))
    python = sys.executable
    runs: dict[str, list[tuple[list[str], Path]]] = {
        "python -c pass": [([python, "-c", "pass"], ROOT)],
        "floor": [([python, str(BENCH / "floor.py"), "--session-url", config["session_url"], "--user", user,
                    "--get-arguments", str(work / "get-arguments.json")], ROOT)],
        "connector spec": [([python, "main.py", "spec"], connector)],
        "connector emails full refresh": [([python, "main.py", "read", "--config", str(work / "config.json"),
                                            "--catalog", str(work / "catalog-emails.json")], connector)],
    }
    walls: dict[str, list[Measurement]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, [(argv, cwd)] in runs.items():
            walls[name].append(run_measured(argv, cwd, {**os.environ, "FLOOR_PASSWORD": PASSWORD}))
    median = {name: statistics.median(run.wall for run in measured) for name, measured in walls.items()}
    floor_work = median["floor"] - median["python -c pass"]
    connector_work = median["connector emails full refresh"] - median["connector spec"]
    for name in runs:
        print(f"| {name} | {median[name]:.2f} s | {' '.join(f'{run.wall:.2f}' for run in walls[name])} | "
              f"{max(run.max_rss_mb for run in walls[name]):.0f} MB |")
    print(f"emails full read: connector work {connector_work:.2f} s / floor work {floor_work:.2f} s = "
          f"{connector_work / floor_work:.2f}")
    return {**median, "ratio": connector_work / floor_work}


def label(connector: Path) -> str:
    """The checkout's folder name and commit, to tell rows apart."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=connector, capture_output=True,
                            text=True, check=False).stdout.strip()
    return f"{connector.name} ({commit})" if commit else connector.name


def print_row(row: dict[str, Any]) -> None:
    print(f"| {row['scenario']} | {row['connector']} | {row['workers'] or '-'} | {row['delay']} | "
          f"{row['wall_s']:.2f} s | {row['requests'] or '-'} | {row['peak_rss_mb']} MB | {row['records']} | "
          f"{row['files']} | {row['load']} |", flush=True)


def print_medians(rows: list[dict[str, Any]], rounds: int) -> None:
    print(f"\n| scenario | connector | workers | added delay | wall (median of {rounds}) | runs | HTTP requests "
          "| peak RSS (largest) | records | files |\n" + "|---" * 10 + "|")
    for key in dict.fromkeys((row["connector"], row["delay"], row["workers"]) for row in rows):
        mine = [row for row in rows if (row["connector"], row["delay"], row["workers"]) == key]
        first = mine[0]
        print(f"| {first['scenario']} | {first['connector']} | {first['workers'] or '-'} | {first['delay']} | "
              f"{statistics.median(row['wall_s'] for row in mine):.2f} s | "
              f"{' '.join(format(row['wall_s'], '.2f') for row in mine)} | {first['requests'] or '-'} | "
              f"{max(row['peak_rss_mb'] for row in mine)} MB | {first['records']} | {first['files']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("a", "b"), required=True)
    parser.add_argument("--delay-ms", type=float, nargs="+", default=[0.0, 50.0])
    parser.add_argument("--direct", action="store_true", help="also runs straight to Cyrus (no proxy, no count)")
    parser.add_argument("--workers", type=int, nargs="+", default=[None],
                        help=f"`{WORKERS_SETTING}` in the config (needs the setting); several: interleaved each round")
    parser.add_argument("--connector", type=Path, nargs="+", default=[ROOT],
                        help="the checkouts whose main.py runs (this one by default), interleaved in each round")
    parser.add_argument("--messages", type=int, default=10_000, help="scenario a: emails in the account")
    parser.add_argument("--accounts", type=int, default=50, help=f"scenario b: accounts of {B_EMAILS} emails")
    parser.add_argument("--floor", action="store_true", help="scenario a: the emails full read against the floor "
                        "(of the first --connector)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every run, its order turned each round")
    parser.add_argument("--work", default=None, help="where staged files go (a temporary directory in it)")
    args = parser.parse_args()
    check_gnu_time()
    connectors = [path.resolve() for path in args.connector]
    for connector in connectors:
        if args.workers != [None] and WORKERS_SETTING not in spec_properties(connector):
            raise SystemExit(f"the connector at {connector} has no `{WORKERS_SETTING}` setting")
    user, expected = seed(args.scenario, args.messages, args.accounts)
    print(f"{user}: session lists {check_accounts(user, expected)} accounts", flush=True)
    delays: list[float | None] = [*([None] if args.direct else []), *args.delay_ms]
    runs = [(connector, delay_ms, workers)
            for delay_ms in delays for connector in connectors for workers in args.workers]
    labels = {connector: label(connector) for connector in connectors}  # once: a commit made mid-run splits no group
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-concurrent-", dir=args.work) as work:
        if args.floor and args.scenario == "a":
            print("| run | wall (median) | runs | peak RSS |\n|---|---|---|---|", flush=True)
            emails_against_floor(Path(work), connectors[0], user, args.rounds)
        print("| scenario | connector | workers | added delay | wall | HTTP requests | peak RSS | records | files "
              "| load (1 min) |\n" + "|---" * 10 + "|", flush=True)
        for round_ in range(args.rounds):
            turned = runs[round_ % len(runs):] + runs[:round_ % len(runs)]  # none always first
            for connector, delay_ms, workers in turned:
                row = first_sync(Path(work), connector, user, args.scenario, delay_ms, workers)
                row.update(connector=labels[connector], delay="no proxy" if delay_ms is None else f"{delay_ms:g} ms")
                print_row(row)
                print(f"<!-- records per stream: {json.dumps(row['records_per_stream'], sort_keys=True)} -->")
                rows.append(row)
    print_medians(rows, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
