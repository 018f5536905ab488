#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and explains the example world
# in examples/demo.yaml offline: no cluster, no kernel state.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
palisade=bin/palisade
echo "== Connectivity on TCP port 8080 between every pair of pods in examples/demo.yaml"
$palisade explain -f examples/demo.yaml --port 8080 --protocol TCP -o table
echo
echo "== Why may shop/frontend reach shop/api on port 8080?"
$palisade explain -f examples/demo.yaml --from shop/frontend --to shop/api --port 8080 --protocol TCP
echo
echo "== Why may shop/frontend not reach shop/db on port 5432?"
$palisade explain -f examples/demo.yaml --from shop/frontend --to shop/db --port 5432 --protocol TCP
