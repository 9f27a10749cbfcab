#!/usr/bin/env bash
# Sets everything up, starts the local Cyrus JMAP server with sample mail, and runs the main job:
# the connector's check, discover, a full and an incremental read as Airbyte runs them, then the
# same through PyAirbyte into a DuckDB file, with a summary of what each sync brought.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
EXTRAS=dev,warehouse scripts/setup.sh
scripts/cyrus.sh start
CYRUS_PROFILE=ext scripts/cyrus.sh start  # the second Cyrus: contacts, calendars, quota, sieve
.venv/bin/python scripts/demo.py
CYRUS_PROFILE=ext .venv/bin/python scripts/warehouse_demo.py --http-port 18081 --imap-port 11144 --account-data
