#!/usr/bin/env bash
# Benchmark the connector against the raw JMAP floor on the bench's own Cyrus instance
# (/dev/shm/source-jmap-bench, JMAP 127.0.0.1:18180, IMAP 127.0.0.1:11243). See bench/README.md.
#   bench/run.sh [--messages N] [--repeat R] [--raw-repeat R]
#   bench/run.sh --memory-scaling [N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || ./scripts/setup.sh
if [[ ! -x /usr/bin/time ]]; then  # GNU time measures each run's peak RSS
    if [[ $EUID -eq 0 ]]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
exec .venv/bin/python bench/bench.py "$@"
