#!/usr/bin/env sh
# Generates the Python gRPC stubs of switchboard.v1 from proto/ with grpcio-tools.
#
#   ./generate.sh [OUT_DIR]        default OUT_DIR: _generated/ next to this script (gitignored)
#
# PYTHON picks the interpreter that has grpcio-tools (default: python3). The output is generated
# code: never edit it, regenerate it. Stale files are removed first.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PROTO_DIR=${SWITCHBOARD_PROTO_DIR:-"$HERE/../../proto"}
OUT=${1:-"$HERE/_generated"}
PYTHON=${PYTHON:-python3}

rm -rf "$OUT/switchboard"
mkdir -p "$OUT"
"$PYTHON" -m grpc_tools.protoc -I "$PROTO_DIR" \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  "$PROTO_DIR"/switchboard/v1/*.proto
echo "generated switchboard.v1 stubs in $OUT"
