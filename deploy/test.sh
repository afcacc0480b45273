#!/usr/bin/env bash
# The whole test suite: lint, types, and pytest against a live server with real clients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh --tests
.venv/bin/ruff check sciportal tests bench
.venv/bin/ruff format --check sciportal tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -ra "$@"
