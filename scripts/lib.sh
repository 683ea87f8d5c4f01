# Shared helpers for scripts/test, scripts/local-demo and scripts/api-conformance. Sourced, not executed.

# What a run builds and installs lives outside the clone, so a new clone on the same machine (CI's)
# starts warm: AFTERCARE_CACHE (default ~/.cache/aftercare) holds the cargo target directory, one per
# toolchain (cargo's own fingerprints decide what a changed Cargo.lock or source rebuilds; keying the
# directory by the lock file too would throw the whole cache away for one bumped crate), and the
# Python virtualenvs, one per Python version (their stamps below say which pinned tools they hold).
# The clone reaches them through the links ./target, ./.venv and ./.venv-deploy, so every path in the
# scripts and docs stays as it was; a real directory of that name is used as it is. Crates and wheels
# are cached by cargo (~/.cargo/registry) and pip (~/.cache/pip) themselves.
AFTERCARE_CACHE="${AFTERCARE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aftercare}"

# Points ./NAME at DIR (created), unless ./NAME is a real directory already.
link_cached() { # name dir
  mkdir -p "$2"
  if [[ -L "$1" || ! -e "$1" ]]; then
    ln -sfn "$2" "$1"
  fi
}

cache_links() {
  local toolchain python
  toolchain="$(rustc -vV 2>/dev/null | sha256sum | cut -c1-12)"
  python="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
  if [[ -z "${CARGO_TARGET_DIR:-}" ]]; then
    link_cached target "$AFTERCARE_CACHE/target-$toolchain"
  fi
  if [[ -z "${AFTERCARE_VENV:-}" ]]; then
    link_cached .venv "$AFTERCARE_CACHE/venv-py$python"
    link_cached .venv-deploy "$AFTERCARE_CACHE/venv-deploy-py$python"
  fi
}
cache_links

VENV="${AFTERCARE_VENV:-$PWD/.venv}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
RUN_DIR="${AFTERCARE_RUN_DIR:-$PWD/.local/run}"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SELENIUM_VERSION="4.51.0"
TZDATA_VERSION="2026.6"
SCHEMATHESIS_VERSION="4.32.5"
mkdir -p "$RUN_DIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# A project-local virtualenv with moto server, boto3 (for the emulator), cfn-lint, Selenium (the
# demo's headless-browser step; it drives Debian's chromium, see scripts/browser_survey.py) and
# tzdata (the demo's local times, on machines without /usr/share/zoneinfo), pinned.
ensure_venv() {
  local stamp="$VENV/.aftercare-$MOTO_VERSION-$CFN_LINT_VERSION-selenium-$SELENIUM_VERSION-tzdata-$TZDATA_VERSION"
  if [[ ! -f "$stamp" ]]; then
    step "installing moto[server]==$MOTO_VERSION, cfn-lint==$CFN_LINT_VERSION, selenium==$SELENIUM_VERSION and tzdata into $VENV"
    # The real path: the scripts pip writes name their interpreter by it, and it outlives this clone.
    python3 -m venv "$(realpath "$VENV")"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" \
      "selenium==$SELENIUM_VERSION" "tzdata==$TZDATA_VERSION" pyyaml
    touch "$stamp"
  fi
}

# Schemathesis (scripts/api-conformance), pinned, into the same virtualenv; only that script needs it.
ensure_schemathesis() {
  ensure_venv
  local stamp="$VENV/.aftercare-schemathesis-$SCHEMATHESIS_VERSION"
  if [[ ! -f "$stamp" ]]; then
    step "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    touch "$stamp"
  fi
}

# Debian's headless browser and its WebDriver, for the demo's survey step in a real browser. Installs
# them with apt-get when missing and we are root; otherwise says what is missing (returns 1).
CHROMIUM_BIN="/usr/bin/chromium"
CHROMEDRIVER_BIN="/usr/bin/chromedriver"
ensure_chromium() {
  if [[ -x "$CHROMIUM_BIN" && -x "$CHROMEDRIVER_BIN" ]]; then
    return 0
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "$CHROMIUM_BIN or $CHROMEDRIVER_BIN is missing: install Debian's chromium and chromium-driver" >&2
    return 1
  fi
  step "installing chromium and chromium-driver (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

# Builds the debug binaries of these packages, unless AFTERCARE_PREBUILT=1 says the caller built the
# whole workspace already (the test command builds every target once, tests included, and the
# demo, the gallery and the conformance run use those binaries: building a subset of packages would
# resolve the SDK crates' features without the tests' and compile them a second time).
build_debug() { # package...
  if [[ "${AFTERCARE_PREBUILT:-}" == 1 ]]; then
    return 0
  fi
  local packages=() p
  for p in "$@"; do packages+=(-p "$p"); done
  step "building ${*}"
  cargo build --quiet --locked "${packages[@]}"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url, seconds
  local url="$1" deadline=$((SECONDS + ${2:-30}))
  until "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "timed out waiting for $url" >&2; return 1; fi
    sleep 0.2
  done
}

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Starts moto server (requests handled atomically, see scripts/moto_server.py) on a free loopback
# port; sets MOTO_ENDPOINT.
start_moto() { # [log file name under $RUN_DIR, default moto.log]
  local port
  port="$(free_port)"
  "$VENV/bin/python" scripts/moto_server.py 127.0.0.1 "$port" >"$RUN_DIR/${1:-moto.log}" 2>&1 &
  PIDS+=($!)
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  wait_http "$MOTO_ENDPOINT/moto-api/" 60
  echo "moto server on $MOTO_ENDPOINT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
}

# The local stack of README command 1 (./scripts/local-demo), shared with scripts/api-conformance:
# builds the functions and the operator tool (debug), starts moto server, creates the table, the
# sender identity, the merchant of examples/merchant.json, its catalogue (examples/products.jsonl)
# and an API key (labelled $1) with
# aftercare-admin, then runs the real function binaries under the Lambda emulator, which plays API
# Gateway (HTTP API, payload v2, routes from infra/template.yaml) and EventBridge. Sets BIN,
# MOTO_ENDPOINT, AWS_ENDPOINT_URL, AFTERCARE_TABLE, MERCHANT_ID, SENDER_DOMAIN, API_KEY, API (the
# emulator's base URL) and CLOCK_FILE (the virtual clock: seconds added to every function's clock).
start_local_stack() {
  local label="${1:-local-demo}"
  build_debug order-placed shipment-update survey-sender renewal-checker billing-alert email-events aftercare-admin
  BIN="$TARGET_DIR/debug"

  start_moto
  export AWS_ENDPOINT_URL="$MOTO_ENDPOINT"
  export AFTERCARE_TABLE="aftercare-local"

  step "creating the table, the sender identity, the merchant, its catalogue and an API key"
  "$BIN/aftercare-admin" table create >/dev/null
  MERCHANT_ID="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' examples/merchant.json)"
  SENDER_DOMAIN="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sender"]["from_email"].split("@")[1])' examples/merchant.json)"
  "$BIN/aftercare-admin" identity create "$SENDER_DOMAIN" >/dev/null
  "$BIN/aftercare-admin" merchant put --file examples/merchant.json >/dev/null
  "$BIN/aftercare-admin" products import examples/products.jsonl --merchant "$MERCHANT_ID" >/dev/null
  API_KEY="$("$BIN/aftercare-admin" key issue --merchant "$MERCHANT_ID" --label "$label" 2>/dev/null | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')"
  echo "merchant $MERCHANT_ID, sender domain $SENDER_DOMAIN, API key ${API_KEY:0:10}…"

  step "starting the real function binaries under the Lambda emulator"
  # Links in emails point at the emulator, so its port is chosen before the functions start. Every
  # function reads its clock as the system clock plus the seconds in the virtual clock file (absent: 0).
  local ready_file="$RUN_DIR/emulator.port" port attempt emulator_pid
  local signing_key="local-demo-signing-key-not-a-secret-0123456789"
  CLOCK_FILE="$RUN_DIR/virtual-clock"
  rm -f "$CLOCK_FILE"
  for attempt in 1 2 3; do
    port="$(free_port)"
    rm -f "$ready_file"
    "$VENV/bin/python" scripts/lambda_emulator.py \
      --function "order-placed=$BIN/order-placed" \
      --function "shipment-update=$BIN/shipment-update" \
      --function "survey-sender=$BIN/survey-sender" \
      --function "renewal-checker=$BIN/renewal-checker" \
      --function "billing-alert=$BIN/billing-alert" \
      --function "email-events=$BIN/email-events" \
      --routes-from-template infra/template.yaml \
      --http-port "$port" --ready-file "$ready_file" \
      --env "AFTERCARE_TABLE=$AFTERCARE_TABLE" --env "AWS_ENDPOINT_URL=$MOTO_ENDPOINT" \
      --env "AFTERCARE_PUBLIC_BASE_URL=http://127.0.0.1:$port" \
      --env "AFTERCARE_SIGNING_KEY=$signing_key" \
      --env "AFTERCARE_EVENT_BUS=default" \
      --env "AFTERCARE_VIRTUAL_CLOCK_FILE=$CLOCK_FILE" >"$RUN_DIR/emulator.log" 2>&1 &
    emulator_pid=$!
    PIDS+=($emulator_pid)
    for _ in $(seq 1 300); do
      [[ -s "$ready_file" ]] && break
      kill -0 "$emulator_pid" 2>/dev/null || break
      sleep 0.1
    done
    [[ -s "$ready_file" ]] && break
    # The port was taken between choosing and binding it: try another one.
    if ! kill -0 "$emulator_pid" 2>/dev/null && grep -q "Address already in use" "$RUN_DIR/emulator.log" && (( attempt < 3 )); then
      continue
    fi
    echo "the emulator did not become ready; see $RUN_DIR/emulator.log" >&2
    tail -n 20 "$RUN_DIR/emulator.log" >&2
    return 1
  done
  API="http://127.0.0.1:$port"
  [[ "$(cat "$ready_file")" == "$port" ]] || { echo "the emulator listens on $(cat "$ready_file"), not $port" >&2; return 1; }
  if ! grep -q "GET /v1/survey/{token}" "$RUN_DIR/emulator.log"; then
    echo "infra/template.yaml routes nothing to survey-sender; see $RUN_DIR/emulator.log" >&2
    return 1
  fi
  echo "API Gateway (HTTP API) emulated at $API: order-placed, shipment-update, survey-sender, renewal-checker, billing-alert, email-events"
}
