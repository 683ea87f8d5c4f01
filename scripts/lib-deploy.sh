# Deploy-side tools, kept apart from the test virtualenv (checkov pins its own versions of libraries
# that moto and cfn-lint also use): cargo-lambda (with Zig, the arm64 cross linker) and checkov.
# Source after scripts/lib.sh.

CARGO_LAMBDA_VERSION="1.9.2"
CHECKOV_VERSION="3.3.30"
DEPLOY_VENV="$PWD/.venv-deploy"

ensure_deploy_tools() {
  local stamp="$DEPLOY_VENV/.aftercare-cargo-lambda-$CARGO_LAMBDA_VERSION-checkov-$CHECKOV_VERSION"
  if [[ ! -f "$stamp" ]]; then
    step "installing cargo-lambda==$CARGO_LAMBDA_VERSION and checkov==$CHECKOV_VERSION into $DEPLOY_VENV"
    python3 -m venv "$(realpath "$DEPLOY_VENV")"
    "$DEPLOY_VENV/bin/pip" install --quiet --disable-pip-version-check \
      "cargo-lambda==$CARGO_LAMBDA_VERSION" "checkov==$CHECKOV_VERSION"
    touch "$stamp"
  fi
}
