#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and runs every test: lint,
# typecheck, unit tests, and the real-kernel suites. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[[ -x .tools/node/bin/node ]] && export PATH="$PWD/.tools/node/bin:$PATH"
npm test
