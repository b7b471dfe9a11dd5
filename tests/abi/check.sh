#!/usr/bin/env bash
# usage: tests/abi/check.sh LIBRARY HEADER
#
# Checks the ABI other implementations build against (CTest: abi.check):
#  - the shared LIBRARY exports only public names (cf_ and a letter), never
#    an internal cf__ one, and every function HEADER declares CF_EXTERN;
#  - every enumerator in HEADER has an explicit value, and so does every
#    status of CF_STATUS_MAP, so inserting one renumbers nothing.
set -euo pipefail
if [[ $# -ne 2 ]]; then
    sed -n '2,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
fi
lib=$1 header=$2
failed=0
fail() { echo "abi: $*" >&2; failed=1; }

# Defined dynamic symbols, without the version node (an absolute symbol).
mapfile -t exported < <(nm -D --defined-only "$lib" | awk '$2 != "A" {print $3}' |
    sed 's/@.*//' | sort -u)
[[ ${#exported[@]} -gt 0 ]] || fail "$lib exports nothing"
for sym in "${exported[@]}"; do
    [[ $sym =~ ^cf_[a-z] ]] || fail "$lib exports $sym, which is not public"
done

mapfile -t declared < <(sed -n 's/^CF_EXTERN .*\<\(cf_[a-z0-9_]*\)(.*/\1/p' "$header" |
    sort -u)
[[ ${#declared[@]} -gt 0 ]] || fail "$header declares nothing CF_EXTERN"
# (sets, not `printf | grep -q`: grep quitting early breaks the pipe)
declare -A is_exported=() is_declared=()
for sym in "${exported[@]}"; do is_exported[$sym]=1; done
for sym in "${declared[@]}"; do is_declared[$sym]=1; done
for sym in "${declared[@]}"; do
    [[ -n ${is_exported[$sym]:-} ]] ||
        fail "$header declares $sym but $lib does not export it"
done
for sym in "${exported[@]}"; do
    [[ -n ${is_declared[$sym]:-} ]] ||
        fail "$lib exports $sym, which $header does not declare CF_EXTERN"
done

# Enumerators: inside `typedef enum ... {` ... `}`, every line that starts
# with a name (not a comment, not the status map's expansion) sets it.
while IFS= read -r line; do
    fail "enumerator without an explicit value: $line"
done < <(awk '/^typedef enum/ {inside = 1; next}
    inside && /^}/ {inside = 0}
    inside && $1 ~ /^CF_[A-Z_]+,?$/ && $1 !~ /^CF__/ && $2 != "=" {print}' "$header")
while IFS= read -r line; do
    fail "status without an explicit value: $line"
done < <(grep -E '^ +XX\(' "$header" | grep -Ev '^ +XX\([A-Z_]+, [0-9]+,')

if [[ $failed -eq 0 ]]; then
    echo "abi: ${#exported[@]} public functions exported, nothing else;" \
        "every enum value explicit"
fi
exit $failed
