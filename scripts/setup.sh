#!/usr/bin/env bash
# Installs what the connector, its tests and its demo need: a virtualenv in .venv with the
# package and the extras named in $EXTRAS (default "dev"; the demo adds "warehouse", i.e.
# PyAirbyte and DuckDB), and Debian's Cyrus IMAP as the local JMAP server. Idempotent.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev}
cd "$ROOT"

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup.sh: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
    exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        echo "setup.sh: installing python3-venv"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    "$PYTHON" -m venv .venv
fi
# The distribution was called source-jmap before it took Airbyte's PyPI name: a venv made then still has it.
if .venv/bin/python -m pip show --quiet source-jmap >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall --quiet --yes source-jmap >/dev/null
fi
echo "setup.sh: installing airbyte-source-jmap with [$EXTRAS] into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]" >.venv/pip-install.log 2>&1 || {
    cat .venv/pip-install.log >&2
    echo "setup.sh: pip could not install airbyte-source-jmap with [$EXTRAS] (log above)" >&2
    exit 1
}
scripts/cyrus.sh install
