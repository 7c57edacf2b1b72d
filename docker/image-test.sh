#!/usr/bin/env bash
# The image test: build the kfp-mlops image for real and run it as a cluster would.
#
#   docker/image-test.sh            (as root, on Debian 12 "bookworm"; .ci/run runs it)
#
# On a machine of the kind CI runs on (root, Debian bookworm, no container registry
# reachable, HTTPS through a TLS-intercepting proxy, hybrid cgroups) it:
#   1. apt-get installs podman, runc and mmdebstrap if missing;
#   2. writes a containers.conf for this host (below) and uses it through CONTAINERS_CONF;
#   3. builds a Python base from the Debian mirror with mmdebstrap (no registry needed)
#      plus a layer with a venv whose python and pip come first on PATH (bookworm's
#      Python is externally managed); kept between runs (KFP_MLOPS_REBUILD_BASE=1 redoes it);
#   4. builds the image from the Dockerfile with --build-arg BASE_IMAGE=that base and the
#      host CA bundle mounted for pip (never in a layer);
#   5. starts Podman's Docker-compatible service and runs the training pipeline on bundled
#      data with `kfp-mlops run --runner docker --image IMAGE`: every task in its own
#      container, as uid 1000, read-only root, the IR's limits; it must publish;
#   6. runs the real-engine tests (tests/pipelines/test_containers_engine.py);
#   7. serves the published model from the image's ENTRYPOINT, --read-only, as uid 1000,
#      all capabilities dropped, and checks one V1 and one V2 prediction over HTTP;
#   8. runs one failing task (a data file that does not exist): exit 1, the file named.
# Then it prints how long each step took. Idempotent: run it again and it reuses what
# is there (packages, base, image layers). Settings (environment):
#   KFP_MLOPS_IMAGE_TEST_DIR   work folder (default /tmp/kfp-mlops-image-test)
#   KFP_MLOPS_TEST_IMAGE       tag to build (default localhost/kfp-mlops:image-test)
#   KFP_MLOPS_CA_BUNDLE        CA bundle for pip in the build (default the host's)
#   KFP_MLOPS_DEBIAN_MIRROR    mirror for mmdebstrap (default: the host's apt sources)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${KFP_MLOPS_IMAGE_TEST_DIR:-/tmp/kfp-mlops-image-test}
IMAGE=${KFP_MLOPS_TEST_IMAGE:-localhost/kfp-mlops:image-test}
BASE=localhost/kfp-mlops-base:bookworm
CA=${KFP_MLOPS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PY=$ROOT/.venv/bin/python
mkdir -p "$WORK"
STARTED=$SECONDS
declare -A TOOK
step() { echo; echo "== image test: $*"; }
# timed NAME COMMAND...: run it and keep its seconds in TOOK[NAME]. Never call it (or
# any function) left of || or &&: bash then ignores set -e inside it.
timed() { local name=$1 t0=$SECONDS; shift; "$@"; TOOK[$name]=$((SECONDS - t0)); }
fail() { echo "image test FAILED: $*" >&2; exit 1; }
trap 'echo "image test FAILED: line $LINENO exited $?" >&2' ERR

step "packages (podman, runc, mmdebstrap)"
missing=()
for pkg in podman runc mmdebstrap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || fail "installing ${missing[*]} needs root"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" uidmap ca-certificates
fi
podman --version

step "containers.conf"
# What podman's defaults get wrong here: root's default ulimits need CAP_SYS_RESOURCE
# ("setrlimit RLIMIT_NOFILE: Operation not permitted"); crun refuses this host's hybrid
# cgroups (runc with cgroupfs does not); there is no journald for events.
cat > "$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$WORK/containers.conf

build_base() {
  local mirror=()
  [ -n "${KFP_MLOPS_DEBIAN_MIRROR:-}" ] && mirror=("$KFP_MLOPS_DEBIAN_MIRROR")
  rm -f "$WORK/base.tar"
  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    --aptopt='Acquire::Retries "3"' bookworm "$WORK/base.tar" "${mirror[@]}"
  podman import --change 'CMD ["/bin/bash"]' "$WORK/base.tar" "$BASE-os"
  rm -f "$WORK/base.tar"
  cat > "$WORK/Containerfile.base" <<EOF
FROM $BASE-os
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8
EOF
  podman build -q -f "$WORK/Containerfile.base" -t "$BASE" "$WORK"
}
step "base image $BASE (mmdebstrap, Debian bookworm)"
if [ "${KFP_MLOPS_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE"; then
  timed base build_base
else
  echo "kept from an earlier run (KFP_MLOPS_REBUILD_BASE=1 rebuilds it)"
  TOOK[base]=0
fi
podman run --rm "$BASE" python --version

step "image $IMAGE (Dockerfile, BASE_IMAGE=$BASE)"
# The CA bundle as a build volume at the path the Dockerfile's build secret has
# (/run/secrets/ca-bundle), not as --secret: podman 4.3 never caches a RUN that mounts a
# secret (the pinned-dependency layer was rebuilt every time, 123 s), a RUN with a volume
# it does. Neither writes the bundle to a layer (a volume leaves an empty mount point:
# checked below).
ca=()
[ -s "$CA" ] && ca=(-v "$CA:/run/secrets/ca-bundle:ro")
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
timed image podman build --build-arg "BASE_IMAGE=$BASE" --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$REVISION" "${ca[@]}" -t "$IMAGE" .
podman run --rm --entrypoint '' "$IMAGE" sh -c '! test -s /run/secrets/ca-bundle' \
  || fail "the CA bundle is in the image"
podman image inspect "$IMAGE" --format \
  'labels: version={{index .Labels "org.opencontainers.image.version"}} revision={{index .Labels "org.opencontainers.image.revision"}} base={{index .Labels "org.opencontainers.image.base.name"}}'

step "host environment (.venv with the docker extra)"
if [ ! -x "$PY" ]; then python3 -m venv .venv; fi
"$PY" -c "import docker, kfp_mlops" 2>/dev/null || .venv/bin/pip install -q -e '.[serving,docker]'

step "Podman's Docker-compatible service"
SOCK=$WORK/podman.sock
rm -f "$SOCK"
podman system service --time=0 "unix://$SOCK" > "$WORK/podman-service.log" 2>&1 &
SERVICE=$!
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && podman rm -f "$SERVER" > /dev/null 2>&1
  kill "$SERVICE" 2> /dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.2; done
export DOCKER_HOST=unix://$SOCK

step "training pipeline, each task in a container: kfp-mlops run --runner docker"
RUN=$WORK/run
rm -rf "$RUN"  # a fresh store, so the run must publish version 1
mkdir -p "$RUN"
cd "$RUN"
# Progress on stderr as it runs; the summary (stdout) is printed and checked after.
timed train "$ROOT/.venv/bin/kfp-mlops" run --runner docker --image "$IMAGE" \
  --store "$RUN/store" > "$RUN/summary.txt"
cat "$RUN/summary.txt"
grep -q "^Published: penguins version 1 -> $RUN/store/models/penguins/1$" "$RUN/summary.txt" \
  || fail "the training run did not publish penguins version 1"
cd "$ROOT"

step "real-engine tests (tests/pipelines/test_containers_engine.py)"
KFP_MLOPS_TEST_IMAGE=$IMAGE timed engine_tests .venv/bin/pytest -q -p no:cacheprovider \
  tests/pipelines/test_containers_engine.py

step "serving the published model from the image's ENTRYPOINT, read-only, uid 1000"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MODEL=$RUN/store/models/penguins/1
SERVER=$(podman run -d --read-only --read-only-tmpfs=false --user 1000:1000 --cap-drop=ALL \
  --security-opt=no-new-privileges --network=host -v "$MODEL:/mnt/models:ro" "$IMAGE" \
  --model_name=penguins --model_dir=/mnt/models --http_port="$PORT")
"$PY" - "$PORT" <<'EOF' || { podman logs "$SERVER" | tail -20; fail "serving failed"; }
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"

def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")

for _ in range(240):  # the server imports KServe first
    try:
        call("/v2/models/penguins/ready")
        break
    except OSError:
        time.sleep(0.5)
v1 = call("/v1/models/penguins:predict", {"instances": [
    {"island": "Biscoe", "bill_length_mm": 45.2, "bill_depth_mm": 15.8,
     "flipper_length_mm": 215, "body_mass_g": 5300, "sex": "male", "year": 2008}]})
assert v1["predictions"] == ["Gentoo"], v1
columns = {"island": ("BYTES", "Torgersen"), "bill_length_mm": ("FP64", 39.1),
           "bill_depth_mm": ("FP64", 18.7), "flipper_length_mm": ("FP64", 181.0),
           "body_mass_g": ("FP64", 3750.0), "sex": ("BYTES", "male"), "year": ("INT64", 2007)}
v2 = call("/v2/models/penguins/infer", {
    "parameters": {"content_type": "pd"},
    "inputs": [{"name": n, "shape": [1], "datatype": t, "data": [v]}
               for n, (t, v) in columns.items()]})
[predictions] = [o for o in v2["outputs"] if o["name"] == "predictions"]
assert predictions["data"] == ["Adelie"], v2
print(f"V1 predict: {v1['predictions']}  V2 infer: {predictions['data']}")
EOF
[ "$(podman exec "$SERVER" id -u)" = 1000 ] || fail "the server does not run as uid 1000"
if podman exec "$SERVER" touch /probe 2> /dev/null; then fail "the server's root is writable"; fi
echo "server: uid 1000, read-only root"
podman rm -f "$SERVER" > /dev/null
SERVER=""

step "a failing task: a data file that does not exist"
MISSING=$RUN/no-such-file.csv
status=0
(cd "$RUN" && "$ROOT/.venv/bin/kfp-mlops" run --runner docker --image "$IMAGE" \
  --store "$RUN/store" --data "$MISSING" --target species) > "$WORK/failing.out" 2>&1 \
  || status=$?
cat "$WORK/failing.out"
[ "$status" = 1 ] || fail "the failing run exited $status, not 1"
grep -q "failed in task ingest: .*$MISSING" "$WORK/failing.out" \
  || fail "the failing run did not name $MISSING"

TOOK[total]=$((SECONDS - STARTED))
step "passed; seconds: base ${TOOK[base]}, image build ${TOOK[image]}, training run ${TOOK[train]}, engine tests ${TOOK[engine_tests]}, whole script ${TOOK[total]} (load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
