#!/usr/bin/env bash
# Runs Airbyte's own connector QA checks (PyPI airbyte-internal-ops, airbyte_ops_mcp.connector_qa, every
# check of its ENABLED_CHECKS) on a copy of this connector laid out as in Airbyte's monorepo:
#
#   <tmp>/airbyte-integrations/connectors/source-jmap/   the project's files (git ls-files, as committed or not)
#   <tmp>/docs/integrations/sources/jmap.md              the docs page
#
# The checks' network look-ups are answered as for a connector never released (scripts/qa_checks.py says
# which), so the result does not depend on a network. Each check's result is printed, then one line:
#   N checks: P passed, F failed (only the three Poetry checks), S skipped, 0 crashed
# The three Poetry checks fail by design (the project keeps setup.py: README, More commands); exit 0 when
# nothing else fails or crashes, 1 otherwise.
#
# Not part of scripts/test.sh: the install is heavy (220 packages; 25 min on a busy 2-core machine, then
# 77 s a run), kept in a venv of its own in .local/qa-venv (QA_VENV to use another), reused while its
# version matches.
#
#   scripts/qa.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
QA_OPS_VERSION=0.132.0
QA_VENV=${QA_VENV:-$ROOT/.local/qa-venv}
PYTHON=${PYTHON:-python3}

installed=$("$QA_VENV/bin/python" -m pip show airbyte-internal-ops 2>/dev/null | awk '/^Version:/ {print $2}' || true)
if [[ $installed != "$QA_OPS_VERSION" ]]; then
    echo "qa.sh: installing airbyte-internal-ops $QA_OPS_VERSION into $QA_VENV (a few minutes)" >&2
    rm -rf "$QA_VENV"
    "$PYTHON" -m venv "$QA_VENV"
    "$QA_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "airbyte-internal-ops==$QA_OPS_VERSION"
fi

MONOREPO=$(mktemp -d)
trap 'rm -rf "$MONOREPO"' EXIT
CONNECTOR=$MONOREPO/airbyte-integrations/connectors/source-jmap
mkdir -p "$CONNECTOR" "$MONOREPO/docs/integrations/sources"
# Tracked and new files, not ignored ones (.venv, .local, caches): what a pull request to Airbyte would hold.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
    [[ -e $file ]] || continue  # deleted in the work tree, not yet committed
    case $file in
        docs/integrations/*) target=$MONOREPO/$file ;;
        *) target=$CONNECTOR/$file ;;
    esac
    mkdir -p "$(dirname "$target")"
    cp -p "$file" "$target"
done

export PYTHONWARNINGS=ignore::FutureWarning  # google-cloud libraries of the QA tools warn about Python 3.11 on import
cd "$MONOREPO"  # the checks read ./airbyte-integrations/connectors/<name> and ./docs from the working directory
"$QA_VENV/bin/python" "$ROOT/scripts/qa_checks.py" source-jmap
