#!/usr/bin/env bash
# tests/codegen/test_generator_errors.sh PYTHON — the generator refuses specs
# it cannot honour, naming the problem, and writes nothing.
set -u
py=$1
here=$(cd "$(dirname "$0")" && pwd)
gen=$here/../../codegen/anvil_codegen.py
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fails=0 checks=0
expect() { # spec, expected message fragment
    checks=$((checks + 1))
    msg=$("$py" "$gen" --spec "$here/bad/$1" --out "$out/gen" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] || ! grep -qF -- "$2" <<<"$msg" || [ -e "$out/gen" ]; then
        echo "FAIL $1: rc=$rc, expected message containing: $2"; echo "  got: $msg"
        fails=$((fails + 1))
    fi
}
expect unknown_scope.yaml "x-smithers-required-scope 'a:write' is not a declared scope"
expect allof.yaml "keyword 'allOf' is not supported"
expect duplicate_key.yaml "found duplicate key 'openapi'"
expect dotted_collision.yaml "methods frames.list and framesList both map to the C name frames_list"
expect method_name.yaml "method name 'frames..list' must be camelCase parts joined by dots"
expect recursive_array.yaml "schema 'Nest' refers to itself; only an object schema with properties may"
expect utility_is_method.yaml "x-smithers-utility-scopes lists frames.list, which is a method"
expect ws_subscribes_member.yaml "x: x-anvil-subscribes-run names payload.runId, which is not a string member of O"
expect ws_event_schema.yaml "x-anvil-websocket.events.tick.payload: 'Missing' is not a schema under components/schemas"
echo "$((checks - fails)) passed, $fails failed"
[ $fails -eq 0 ]
