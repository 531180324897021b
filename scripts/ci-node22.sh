#!/usr/bin/env bash
# The unit and integration suites on Node 22, the Lambda runtime (nodejs22.x), against dynalite.
# `npm test` covers Node 20 (the engines floor); this covers what production runs.
# Extra arguments go to jest (e.g. a single test file). Needs `npm ci` first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci-tools.sh

node22=$(ci_node22)
version=$("$node22" -v)
case "$version" in
  v22.*) ;;
  *) echo "ci-node22: expected Node 22, got $version" >&2; exit 1 ;;
esac
echo "ci-node22: jest on node $version"
# Node 22 first on PATH as well, so anything a test starts by name (node, tsx) is Node 22 too;
# jest's workers already run on the jest process's own binary.
export PATH="$(dirname "$node22"):$PATH"
if [ $# -eq 0 ]; then set -- tests/unit tests/integration; fi
exec "$node22" node_modules/jest/bin/jest.js "$@"
