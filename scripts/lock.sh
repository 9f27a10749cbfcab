#!/usr/bin/env bash
# Regenerates the lock files the container image installs from (see Containerfile). setup.py stays the
# package's source of truth: these files are only the exact versions, with their hashes, that its
# install_requires resolve to today.
#
#   requirements.lock        every runtime dependency of setup.py's install_requires (not the extras),
#                            pinned and hashed, for CPython 3.11 on Linux (the base image's Python)
#   requirements-build.lock  the build backend (setuptools) the image's builder stage makes the wheel with
#
# Run it after changing install_requires (unit_tests/test_lock_file.py fails until you do) or to take
# newer versions of the dependencies; commit the lock files with the change. It uses uv's resolver
# (`uv pip compile`), installed into a throwaway venv in .local/lock-tools; it needs PyPI.
#
#   scripts/lock.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
UV_VERSION=0.13.9
TOOLS=$ROOT/.local/lock-tools
PYTHON=${PYTHON:-python3}

if [[ ! -x $TOOLS/bin/uv ]] || [[ $("$TOOLS/bin/uv" --version | awk '{print $2}') != "$UV_VERSION" ]]; then
    rm -rf "$TOOLS"
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

compile() {  # compile <output> <inputs...>
    local output=$1
    shift
    # --no-header: uv's header names the machine's paths; ours says how to regenerate instead.
    UV_CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$TOOLS/bin/uv" pip compile --quiet \
        --python-version 3.11 --python-platform linux --generate-hashes --no-strip-markers \
        --index-url https://pypi.org/simple --output-file "$output" "$@"
}

compile requirements.lock setup.py
BUILD_INPUT=$(mktemp)
trap 'rm -f "$BUILD_INPUT"' EXIT
echo "setuptools>=70.1  # bdist_wheel built in: no separate wheel package" >"$BUILD_INPUT"
compile requirements-build.lock "$BUILD_INPUT"
# The temporary input's name would differ on every run: name the input the way a reader can act on.
sed -i "s|$BUILD_INPUT|setuptools>=70.1 (scripts/lock.sh)|" requirements-build.lock

echo "lock.sh: $(grep -c '==' requirements.lock) runtime packages in requirements.lock," \
     "$(grep -c '==' requirements-build.lock) in requirements-build.lock"
