#!/usr/bin/env bash
# The main job: set everything up, build and publish the demo survey, serve it.
# Pass --rows N to size the demo survey (default 1,000,000 objects).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
exec .venv/bin/sciportal demo --serve "$@"
