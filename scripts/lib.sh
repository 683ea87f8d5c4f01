# Shared helpers for scripts/test and scripts/local-demo. Sourced, not executed.

VENV="${AFTERCARE_VENV:-$PWD/.venv}"
RUN_DIR="${AFTERCARE_RUN_DIR:-$PWD/.local/run}"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SELENIUM_VERSION="4.51.0"
TZDATA_VERSION="2026.6"
mkdir -p "$RUN_DIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# A project-local virtualenv with moto server, boto3 (for the emulator), cfn-lint, Selenium (the
# demo's headless-browser step; it drives Debian's chromium, see scripts/browser_survey.py) and
# tzdata (the demo's local times, on machines without /usr/share/zoneinfo), pinned.
ensure_venv() {
  local stamp="$VENV/.aftercare-$MOTO_VERSION-$CFN_LINT_VERSION-selenium-$SELENIUM_VERSION-tzdata-$TZDATA_VERSION"
  if [[ ! -f "$stamp" ]]; then
    step "installing moto[server]==$MOTO_VERSION, cfn-lint==$CFN_LINT_VERSION, selenium==$SELENIUM_VERSION and tzdata into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" \
      "selenium==$SELENIUM_VERSION" "tzdata==$TZDATA_VERSION" pyyaml
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
start_moto() {
  local port
  port="$(free_port)"
  "$VENV/bin/python" scripts/moto_server.py 127.0.0.1 "$port" >"$RUN_DIR/moto.log" 2>&1 &
  PIDS+=($!)
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  wait_http "$MOTO_ENDPOINT/moto-api/" 60
  echo "moto server on $MOTO_ENDPOINT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
}
