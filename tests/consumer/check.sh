#!/usr/bin/env bash
# usage: check.sh BUILD_DIR [CMAKE [CC]]
#
# The CTest test install.consumer: installs the build in BUILD_DIR into a
# fresh temporary prefix, then builds and runs the outside project beside
# this script against that prefix twice -- with find_package(cfutures)
# (shared and static) and with `cc $(pkg-config --cflags --libs cfutures)`.
# Removes its temporary folder however it ends; any failure exits non-zero
# and names the command that failed.
set -euo pipefail

if [[ $# -lt 1 || $1 == --help ]]; then
    sed -n '2,8s/^# \{0,1\}//p' "$0"
    exit 2
fi
build=$(cd "$1" && pwd)
cmake=${2:-cmake}
cc=${3:-cc}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfutures-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'echo "install.consumer: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
prefix=$tmp/prefix

step() { echo "== install.consumer: $*"; }

step "install into $prefix"
"$cmake" --install "$build" --prefix "$prefix"

step "find_package(cfutures): configure, build, run"
"$cmake" -S "$here" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc"
"$cmake" --build "$tmp/cmake-build"
# CMake puts the prefix's lib folder in the build RPATH: no LD_LIBRARY_PATH.
env -u LD_LIBRARY_PATH "$tmp/cmake-build/consumer"
"$tmp/cmake-build/consumer_static"

step "pkg-config: compile, run"
pc=$(find "$prefix" -name cfutures.pc)
[[ -n $pc ]] || { echo "install.consumer: no cfutures.pc installed" >&2; exit 1; }
export PKG_CONFIG_PATH=${pc%/*}
libdir=$(pkg-config --variable=libdir cfutures)
echo "cfutures $(pkg-config --modversion cfutures)," \
    "cflags: $(pkg-config --cflags cfutures)," \
    "libs: $(pkg-config --libs cfutures)"
# shellcheck disable=SC2046 # the flags are meant to split into words
"$cc" $(pkg-config --cflags cfutures) "$here/main.c" \
    -o "$tmp/consumer-pkg-config" $(pkg-config --libs cfutures)
LD_LIBRARY_PATH=$libdir "$tmp/consumer-pkg-config"

step "passed"
