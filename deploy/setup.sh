#!/usr/bin/env bash
# Set up sciportal on a fresh Debian/Ubuntu machine: system packages, a
# virtual environment in .venv with sciportal and its test tools.
# Idempotent: re-running it only fills in what is missing.
# SCIPORTAL_SKIP_APT=1 skips the Debian packages (no root, or already there).
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests="${1:-}"

apt_install() {
    [ "${SCIPORTAL_SKIP_APT:-0}" = 1 ] && return 0
    command -v apt-get >/dev/null || return 0
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "sciportal needs Python 3.11 or newer as python3 (Debian 12, Ubuntu 24.04); found: $(python3 --version 2>&1)" >&2
    exit 1
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv python3-pip
if [ "$want_tests" = "--tests" ]; then
    # STILTS (taplint, votlint, tapquery) is the VO's own validator and TOPCAT's engine.
    apt_install stilts postgresql-15-pgsphere
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# One stamp per set of extras, so a later --tests run still adds the test tools.
extras="client"
[ "$want_tests" = "--tests" ] && extras="client,test"
stamp=".venv/.sciportal-installed-${extras/,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extras]"
    touch "$stamp" .venv/.sciportal-installed-client
fi
exit 0
