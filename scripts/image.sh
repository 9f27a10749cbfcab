#!/usr/bin/env bash
# Builds the connector image from the Containerfile and proves it against the local Cyrus: spec, check and a
# full read in the container, with the records compared to the same read outside it (ignoring
# _ab_cdc_updated_at, the read time); the container runs as the non-root `airbyte` user; the packages
# installed are exactly requirements.lock's; no sources, build/ or *.egg-info are left in the image.
# Prints the image size and the time of each step.
#
# With a Docker engine (`docker info` answers) it builds the Containerfile as it is, FROM the real
# docker.io/airbyte/python-connector-base pinned by digest. Without one (this project's machines: no
# Docker daemon, no registry reachable) it uses podman (installed from Debian if missing) with a private
# containers.conf and a STAND-IN for that base: Debian bookworm made with debootstrap, with its python3
# (3.11.2) and pip, and an `airbyte` user (uid 1000) and /airbyte directory created the way Airbyte's
# docker-images/Dockerfile.python-connector-base creates them. A stand-in cannot carry the real image's
# digest, so it is tagged under a name of its own and the build uses a copy of the Containerfile whose two
# FROM lines name it (the script prints that difference; nothing else changes). What this proves: the
# Containerfile's steps, the lock file install, the user, the entrypoint and the connector in a container;
# not the exact base image (its Python 3.11.x from python.org, pip 24, poetry).
#
#   scripts/image.sh                    build (reusing the stand-in base once made), spec, check, read, compare
#   scripts/image.sh --cdk-image-tests  also run the Airbyte CDK's image tests (integration_tests/
#                                       test_standard_suite.py -m image_tests) that need no mail server:
#                                       spec and discover. Their check and read run the container on its own
#                                       network, which cannot reach the Cyrus on 127.0.0.1.
#   IMAGE_TAG=... scripts/image.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
IMAGE_TAG=${IMAGE_TAG:-airbyte/source-jmap:dev}
WORK=$ROOT/.local/image
BASE_ROOTFS=${BASE_ROOTFS:-/var/tmp/source-jmap-base-rootfs}
HTTP_PORT=${CYRUS_HTTP_PORT:-18080}
IMAP_PORT=${CYRUS_IMAP_PORT:-11143}
BASE_IMAGE=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' Containerfile | head -n 1)
# The stand-in's own name: the version of the base it stands in for, without the digest it cannot have.
STAND_IN_BASE=localhost/source-jmap-stand-in/python-connector-base:$(sed -n 's/^[^:]*:\([^@]*\)@.*/\1/p' <<<"$BASE_IMAGE")
SCRIPT_STARTED=$SECONDS
CDK_IMAGE_TESTS=0
for argument in "$@"; do
    case $argument in
        --cdk-image-tests) CDK_IMAGE_TESTS=1 ;;
        *) echo "usage: scripts/image.sh [--cdk-image-tests]" >&2; exit 2 ;;
    esac
done

as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
step() { STEP_NAME=$1; STEP_STARTED=$SECONDS; echo; echo "== $1"; }
done_step() { local took=$((SECONDS - STEP_STARTED)); TIMINGS+=("$(printf '%-50s %4d s' "$STEP_NAME" "$took")"); }
TIMINGS=()

mkdir -p "$WORK"
chmod 700 "$WORK"
# What the container mounts at /secrets: the container runs as uid 1000, not root, so this directory and
# its files must be readable by others (a throwaway account on the local Cyrus, and a catalog).
MOUNT=$WORK/mount
mkdir -p "$MOUNT"
chmod 755 "$MOUNT"

use_podman() {
    if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
        echo "image.sh: installing podman, runc and debootstrap from Debian"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
    fi
    # A private podman configuration (nothing in /etc changes): runc (crun fails on hybrid cgroups here),
    # ulimits the sandbox allows, and the public registries blocked so a missing base fails at once.
    local nofile
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited ]] && nofile=1048576
    cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    cat >"$WORK/registries.conf" <<'EOF'
unqualified-search-registries = []
[[registry]]
location = "docker.io"
blocked = true
[[registry]]
location = "quay.io"
blocked = true
EOF
    export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf
    ENGINE=podman
}

make_stand_in_base() {
    local mirror
    mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}
    mirror=${mirror:-http://deb.debian.org/debian}  # ignore-https-check: apt checks the signatures
    echo "image.sh: making $STAND_IN_BASE, a stand-in for $BASE_IMAGE, with debootstrap (bookworm from $mirror)"
    as_root rm -rf "$BASE_ROOTFS"
    as_root debootstrap --variant=minbase \
        --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,netbase,tzdata \
        bookworm "$BASE_ROOTFS" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
    # Like the real base: pip may install system-wide, `python` is on /usr/local/bin, the clock is UTC,
    # and the `airbyte` user (uid 1000, its own group, no home) owns /airbyte, as Airbyte's
    # docker-images/Dockerfile.python-connector-base makes them. It trusts the CAs this machine trusts
    # (pip reaches PyPI through them during the build).
    as_root rm -f "$BASE_ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
    as_root ln -sf /usr/bin/python3 "$BASE_ROOTFS/usr/local/bin/python"
    as_root ln -sf /usr/bin/python3 "$BASE_ROOTFS/usr/local/bin/python3"
    as_root ln -snf /usr/share/zoneinfo/Etc/UTC "$BASE_ROOTFS/etc/localtime"
    as_root chroot "$BASE_ROOTFS" adduser --uid 1000 --system --group --no-create-home airbyte >/dev/null 2>&1
    as_root install -d -m 755 -o 1000 -g 1000 "$BASE_ROOTFS/airbyte"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        as_root cp /usr/local/share/ca-certificates/*.crt "$BASE_ROOTFS/usr/local/share/ca-certificates/"
        as_root chroot "$BASE_ROOTFS" update-ca-certificates >/dev/null 2>&1
    fi
    as_root rm -rf "$BASE_ROOTFS"/var/cache/apt/archives/*.deb "$BASE_ROOTFS"/var/lib/apt/lists/*
    as_root tar -C "$BASE_ROOTFS" -c . | podman import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin' \
        --change 'ENV PYTHONUNBUFFERED=1' --change 'CMD ["python3"]' - "$STAND_IN_BASE" >/dev/null 2>&1
    as_root rm -rf "$BASE_ROOTFS"
}

step "container engine"
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
    echo "image.sh: docker answers; building FROM the real $BASE_IMAGE"
else
    use_podman
    echo "image.sh: no Docker engine; using $(podman --version)"
fi
done_step

if [[ $ENGINE == podman ]]; then
    step "stand-in base image (debootstrap)"
    if podman image exists "$STAND_IN_BASE"; then
        echo "image.sh: $STAND_IN_BASE exists locally (remove it with: podman rmi $STAND_IN_BASE)"
    else
        make_stand_in_base
    fi
    done_step
fi

step "build $IMAGE_TAG"
if [[ $ENGINE == podman ]]; then
    # The Containerfile with the stand-in's name in place of the digest-pinned base; nothing else differs.
    DOCKERFILE=$WORK/Containerfile.stand-in
    sed "s|^FROM $BASE_IMAGE|FROM $STAND_IN_BASE|" Containerfile >"$DOCKERFILE"
    echo "image.sh: building a copy of the Containerfile that differs only in its FROM lines:"
    diff Containerfile "$DOCKERFILE" | sed -n 's/^< /    - /p; s/^> /    + /p' || true
    # buildah reuses a RUN --mount=from step from its cache even when the mounted wheel changed: a digest
    # of what goes into the wheel, as a build argument, makes a change rebuild that step (see Containerfile).
    SOURCE_DIGEST=$(find setup.py spec.json source_jmap -name __pycache__ -prune -o -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 sha256sum | sha256sum | cut -c1-16)
    podman build --pull=never --network host --build-arg "SOURCE_DIGEST=$SOURCE_DIGEST" \
        -f "$DOCKERFILE" -t "$IMAGE_TAG" . >"$WORK/build.log" 2>&1 \
        || { tail -n 30 "$WORK/build.log" >&2; exit 1; }
else
    docker build -f Containerfile -t "$IMAGE_TAG" . >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; exit 1; }
fi
IMAGE_SIZE=$($ENGINE image inspect --format '{{.Size}}' "$IMAGE_TAG" | awk '{printf "%d MB", $1 / 1e6}')
BUILT_FROM=$([[ $ENGINE == podman ]] && echo "$STAND_IN_BASE" || echo "$BASE_IMAGE")
BASE_SIZE=$($ENGINE image inspect --format '{{.Size}}' "$BUILT_FROM" | awk '{printf "%d MB", $1 / 1e6}')
echo "image.sh: built $IMAGE_TAG ($IMAGE_SIZE, of which the base image $BASE_SIZE)"
echo "image.sh: entrypoint $($ENGINE image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE_TAG")," \
     "user $($ENGINE image inspect --format '{{.Config.User}}' "$IMAGE_TAG")," \
     "labels $($ENGINE image inspect --format '{{index .Config.Labels "io.airbyte.name"}}:{{index .Config.Labels "io.airbyte.version"}}' "$IMAGE_TAG")"
done_step

step "user, installed packages and leftovers in the image"
CONTAINER_ID=$($ENGINE run --rm --network none --entrypoint id "$IMAGE_TAG")
echo "id in the container: $CONTAINER_ID"
[[ $CONTAINER_ID == uid=0\(* ]] && { echo "image.sh: the container runs as root" >&2; exit 1; }
$ENGINE run --rm --network none --user root --entrypoint python "$IMAGE_TAG" -m pip list --format json \
    --disable-pip-version-check >"$WORK/pip-list.json"
# What the build could leave: sources, build/, *.egg-info of this package, its wheel.
$ENGINE run --rm --network none --user root --entrypoint find "$IMAGE_TAG" / -xdev \( -name "airbyte_source_jmap*.egg-info" \
    -o -name "source_jmap*.egg-info" -o -name "airbyte_source_jmap-*.whl" -o -path /build -o -path /tmp/wheels \
    -o -path "/airbyte/integration_code/*" ! -path /airbyte/integration_code/requirements.lock \) -print \
    >"$WORK/leftovers.txt"
.venv/bin/python - "$WORK" <<'EOF'
import json, re, sys
from pathlib import Path
work = Path(sys.argv[1])
def normal(name): return re.sub(r"[-_.]+", "-", name).lower()
installed = {normal(p["name"]): p["version"] for p in json.loads((work / "pip-list.json").read_text())}
locked = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", Path("requirements.lock").read_text(), re.M))
locked = {normal(name): version for name, version in locked.items()}
wrong = {name: (version, installed.get(name)) for name, version in locked.items() if installed.get(name) != version}
print(f"requirements.lock: {len(locked)} packages, {len(locked) - len(wrong)} installed at the locked version;"
      f" airbyte-source-jmap {installed.get('airbyte-source-jmap')}")
if wrong:
    sys.exit(f"installed versions differ from requirements.lock (locked, installed): {wrong}")
leftovers = (work / "leftovers.txt").read_text().split()
print(f"build leftovers (sources, build/, egg-info, wheel): {leftovers or 'none'}")
if leftovers:
    sys.exit(f"the image holds what the build left behind: {leftovers}")
EOF
done_step

step "seeded account on the local Cyrus"
scripts/cyrus.sh start >/dev/null
USER_NAME="image-$(date +%s)-$RANDOM@example.com"
PASSWORD="Image-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
scripts/cyrus.sh adduser "$USER_NAME" "$PASSWORD" >/dev/null
.venv/bin/python scripts/seed_mail.py --user "$USER_NAME" --password "$PASSWORD" --imap-port "$IMAP_PORT"
CONFIG=$MOUNT/config.json
SESSION_URL="http://127.0.0.1:$HTTP_PORT/jmap/"  # ignore-https-check: the local Cyrus, on loopback
cat >"$CONFIG" <<EOF
{"session_url": "$SESSION_URL",
 "credentials": {"auth_type": "basic", "username": "$USER_NAME", "password": "$PASSWORD"},
 "include_raw_message": true}
EOF
chmod 644 "$CONFIG"  # a throwaway account; readable by the container's non-root user
done_step

run_in_image() {  # run_in_image <network> <connector arguments...>
    local network=$1
    shift
    $ENGINE run --rm --network "$network" -v "$MOUNT:/secrets:ro" "$IMAGE_TAG" "$@"
}

step "spec, check, discover in the container"
run_in_image none spec >"$WORK/spec.jsonl"
run_in_image host check --config /secrets/config.json >"$WORK/check.jsonl"
run_in_image host discover --config /secrets/config.json >"$WORK/discover.jsonl"
.venv/bin/python - "$WORK" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
def messages(name, kind):
    return [m for m in map(json.loads, (work / name).read_text().splitlines()) if m.get("type") == kind]
[spec] = messages("spec.jsonl", "SPEC")
[status] = messages("check.jsonl", "CONNECTION_STATUS")
[catalog] = messages("discover.jsonl", "CATALOG")
print(f"spec: {len(spec['spec']['connectionSpecification']['properties'])} properties")
print(f"check: {status['connectionStatus']['status']}")
streams = catalog["catalog"]["streams"]
print(f"discover: {', '.join(s['name'] for s in streams)}")
if status["connectionStatus"]["status"] != "SUCCEEDED":
    sys.exit("check did not succeed in the container")
configured = {"streams": [
    {"stream": s, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"} for s in streams
]}
(work / "mount" / "catalog.json").write_text(json.dumps(configured))
EOF
done_step

step "read in the container and outside it"
run_in_image host read --config /secrets/config.json --catalog /secrets/catalog.json >"$WORK/read-image.jsonl"
.venv/bin/source-jmap read --config "$CONFIG" --catalog "$MOUNT/catalog.json" >"$WORK/read-local.jsonl"
.venv/bin/python - "$WORK" <<'EOF'
import collections, json, sys
from pathlib import Path
work = Path(sys.argv[1])
def records(name):
    by_stream = collections.defaultdict(list)
    for message in map(json.loads, (work / name).read_text().splitlines()):
        if message.get("type") == "RECORD":
            data = {k: v for k, v in message["record"]["data"].items() if k != "_ab_cdc_updated_at"}
            by_stream[message["record"]["stream"]].append(json.dumps(data, sort_keys=True))
    return {stream: sorted(rows) for stream, rows in by_stream.items()}
in_image, local = records("read-image.jsonl"), records("read-local.jsonl")
for stream in sorted(set(in_image) | set(local)):
    same = in_image.get(stream) == local.get(stream)
    print(f"{stream:<12} image {len(in_image.get(stream, [])):>3}  local {len(local.get(stream, [])):>3}  "
          f"{'identical' if same else 'DIFFERENT'}")
if in_image != local or not in_image:
    sys.exit("the records read in the container differ from the records read outside it")
print("records identical in and out of the container (ignoring _ab_cdc_updated_at)")
EOF
done_step

if ((CDK_IMAGE_TESTS)); then
    step "Airbyte CDK image tests (spec, discover)"
    command -v docker >/dev/null \
        || { echo "image.sh: the CDK image tests call the docker CLI; install it (it can talk to podman)" >&2; exit 1; }
    if [[ $ENGINE == podman ]]; then
        podman system service --time=0 "unix://$WORK/podman.sock" >"$WORK/podman-service.log" 2>&1 &
        SERVICE_PID=$!
        trap 'kill "$SERVICE_PID" 2>/dev/null || true' EXIT
        export DOCKER_HOST=unix://$WORK/podman.sock
        for _ in $(seq 50); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    SOURCE_JMAP_IMAGE_TESTS=1 .venv/bin/python -m pytest -q -p airbyte_cdk.test.standard_tests.pytest_hooks \
        integration_tests/test_standard_suite.py -m image_tests -k "spec or discover" --connector-image "$IMAGE_TAG"
    done_step
fi

echo
echo "== summary"
echo "image     $IMAGE_TAG, $IMAGE_SIZE (base $BASE_SIZE), built FROM $([[ $ENGINE == podman ]] && echo "the stand-in ")$BUILT_FROM"
echo "user      $CONTAINER_ID"
echo
echo "== timings ($ENGINE)"
printf '%s\n' "${TIMINGS[@]}"
printf '%-50s %4d s\n' "total" "$((SECONDS - SCRIPT_STARTED))"
