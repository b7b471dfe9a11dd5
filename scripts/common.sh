# shellcheck shell=bash
# Shared by scripts/run and scripts/test (sourced, not run).

# Prints seconds as 1m05s.
fmt_time() {
    printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

# Reads a CTest JUnit file and sets junit_passed, junit_failed and
# junit_skipped (all 0 when the file does not exist).
# shellcheck disable=SC2034 # the caller reads them
junit_counts() {
    local tests=0 failures=0 skipped=0 disabled=0 key value
    junit_passed=0 junit_failed=0 junit_skipped=0
    [[ -f $1 ]] || return 0
    while IFS='=' read -r key value; do
        value=${value//\"/}
        case $key in
            tests) tests=$value ;;
            failures) failures=$value ;;
            skipped) skipped=$value ;;
            disabled) disabled=$value ;;
        esac
    done < <(tr '\n' ' ' <"$1" | grep -o '<testsuite [^>]*>' | head -1 |
        grep -Eo '\<(tests|failures|skipped|disabled)="[0-9]+"')
    junit_failed=$failures
    junit_skipped=$((skipped + disabled))
    junit_passed=$((tests - failures - skipped - disabled))
}
