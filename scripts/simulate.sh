#!/usr/bin/env bash
# Plays seeded histories of a mailbox changing under a sync that is killed, faulted and resumed, against the
# model JMAP server in unit_tests/simulation/, and judges each with the oracle (destination == server).
#
#   scripts/simulate.sh --histories N [--seed S] [--without-open-holes] [--verbose]
#   scripts/simulate.sh --one SEED          # one history (as printed), with its story
#
# The last line is `N histories: X lost, Y left over, Z hung, W unclear`. Exit 0 when all four are 0.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ ! -x .venv/bin/python ]]; then
    scripts/setup.sh >&2
fi
exec .venv/bin/python -m unit_tests.simulation "$@"
