#!/usr/bin/env bash
# Sets everything up, starts the local Cyrus JMAP server with sample mail, and runs the
# connector's check, discover, a full read, some changes and an incremental read.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/setup.sh
scripts/cyrus.sh start
.venv/bin/python scripts/demo.py "$@"
