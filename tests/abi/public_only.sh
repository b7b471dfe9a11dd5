#!/usr/bin/env bash
# usage: tests/abi/public_only.sh OBJECT... HEADER
#
# Checks that code written outside the library (CTest: abi.outside_executor,
# on examples/small_pool_executor.c) calls only the public API: every cf_
# symbol the OBJECTs use is a function HEADER declares CF_EXTERN, and none
# is an internal cf__ one.
set -euo pipefail
if [[ $# -lt 2 ]]; then
    sed -n '2,7s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
header=${*: -1}
objects=("${@:1:$#-1}")
failed=0

mapfile -t declared < <(sed -n 's/^CF_EXTERN .*\<\(cf_[a-z0-9_]*\)(.*/\1/p' "$header" |
    sort -u)
mapfile -t used < <(nm -u "${objects[@]}" | awk 'NF {print $NF}' | grep '^cf_' |
    sort -u)
[[ ${#used[@]} -gt 0 ]] || { echo "public_only: ${objects[*]} use no cf_ symbol" >&2; exit 1; }
for sym in "${used[@]}"; do
    if [[ $sym == cf__* ]]; then
        echo "public_only: uses $sym, an internal symbol" >&2
        failed=1
    elif ! printf '%s\n' "${declared[@]}" | grep -qx "$sym"; then
        echo "public_only: uses $sym, which $header does not declare CF_EXTERN" >&2
        failed=1
    fi
done
if [[ $failed -eq 0 ]]; then
    echo "public_only: ${#used[@]} cf_ functions used, all public"
fi
exit $failed
