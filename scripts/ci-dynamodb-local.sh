#!/usr/bin/env bash
# The suites that get their DynamoDB from the test support (tests/support/dynalite.ts, tests/support/stack.ts)
# against Amazon's DynamoDB Local 1.25.1 instead of dynalite, on Node 22 (the Lambda runtime): the pairing
# production runs. Needs root (network namespaces), Java 17+ and `npm ci` first.
#
# DynamoDB Local binds every interface and has no host flag, so it runs only inside a network namespace of its
# own that has nothing but loopback; the tests run inside the same namespace and reach it on 127.0.0.1.
# The JVM is stopped and the namespace deleted on every exit, failures and Ctrl-C included.
#
# Extra arguments go to jest instead of the default selection (e.g. one test file).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ci-tools.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-dynamodb-local: needs root to create a network namespace (ip netns)" >&2
  exit 1
fi
command -v java >/dev/null || { echo "ci-dynamodb-local: java not found (Java 17+ needed)" >&2; exit 1; }

node22=$(ci_node22)
emulator=$(ci_dynamodb_local)
port=8000
ns="otp-ddb-$$"
work=$(mktemp -d "${TMPDIR:-/tmp}/ci-ddb.XXXXXX")
jvm=""
tests=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Interrupted mid-run: the tests first (their workers exit with them), then the JVM.
  if [ -n "$tests" ] && kill -0 "$tests" 2>/dev/null; then
    kill -TERM "$tests" 2>/dev/null || true
    wait "$tests" 2>/dev/null || true
  fi
  if [ -n "$jvm" ] && kill -0 "$jvm" 2>/dev/null; then
    kill -TERM "$jvm" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$jvm" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$jvm" 2>/dev/null || true
    wait "$jvm" 2>/dev/null || true
  fi
  ip netns del "$ns" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && [ -s "$work/dynamodb-local.log" ]; then
    echo "ci-dynamodb-local: DynamoDB Local's log:" >&2
    tail -n 40 "$work/dynamodb-local.log" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# Nothing but loopback, or refuse to start the JVM.
links=$(ip netns exec "$ns" ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
if [ "$links" != "lo " ]; then
  echo "ci-dynamodb-local: namespace $ns has links other than lo: $links" >&2
  exit 1
fi

# `ip netns exec` execs java, so $! is the JVM's own pid.
(cd "$emulator" && exec ip netns exec "$ns" java -Xmx1g -Djava.library.path=./DynamoDBLocal_lib \
  -jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry -port "$port") >"$work/dynamodb-local.log" 2>&1 &
jvm=$!

started=$(date +%s)
until ip netns exec "$ns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; do
  if ! kill -0 "$jvm" 2>/dev/null; then echo "ci-dynamodb-local: DynamoDB Local exited while starting" >&2; exit 1; fi
  if [ $(( $(date +%s) - started )) -ge 60 ]; then echo "ci-dynamodb-local: DynamoDB Local did not listen within 60 s" >&2; exit 1; fi
  sleep 0.2
done
version=$(sed -n 's/^Version:[[:space:]]*//p' "$work/dynamodb-local.log" | head -n 1)
if [ "$version" != "$DDB_VERSION" ]; then
  echo "ci-dynamodb-local: expected DynamoDB Local $DDB_VERSION, it says '$version'" >&2
  exit 1
fi
echo "ci-dynamodb-local: DynamoDB Local $version in network namespace $ns (loopback only), up in $(( $(date +%s) - started )) s"

if [ $# -eq 0 ]; then
  # Every unit/integration suite whose DynamoDB comes from the shared test support runs here too, so a new
  # store-backed suite is covered without editing this list. (local-pieces tests dynalite itself: not here.)
  mapfile -t suites < <(grep -lE "from '\.\./support/(dynalite|stack)'" tests/unit/*.test.ts tests/integration/*.test.ts | sort)
  if [ ${#suites[@]} -eq 0 ]; then echo "ci-dynamodb-local: no suite found" >&2; exit 1; fi
  set -- "${suites[@]}"
fi
echo "ci-dynamodb-local: node $("$node22" -v), $# suite(s): $*"

# In the background and waited for, so that a signal runs the cleanup at once rather than after the tests.
# Dummy credentials of letters and digits only: DynamoDB Local answers UnrecognizedClientException to any other
# access key id (e.g. "ci-dummy"), which the handlers would turn into 503s. Never anyone's real keys.
ip netns exec "$ns" env -u AWS_SESSION_TOKEN -u AWS_PROFILE TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port" PATH="$(dirname "$node22"):$PATH" \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
  "$node22" node_modules/jest/bin/jest.js "$@" &
tests=$!
wait "$tests"
