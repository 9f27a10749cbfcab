#!/usr/bin/env bash
# Sets everything up, starts the local Cyrus JMAP server and runs every check and test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
scripts/cyrus.sh start
CYRUS_PROFILE=ext scripts/cyrus.sh start  # contacts, calendars, quota, sieve (integration_tests/test_account_streams.py)
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest unit_tests integration_tests "$@"
