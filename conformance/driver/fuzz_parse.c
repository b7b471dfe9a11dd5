/*
 * fuzz_parse.c -- a libFuzzer target for the scenario parser: any input
 * either parses (and is freed) or gives one error of the form
 * "NAME:LINE:COL: message"; anything else aborts. Built with CF_FUZZ=ON
 * (clang, -fsanitize=fuzzer,address,undefined), so that ASan also checks
 * every path of the parser for overflows and leaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* True for "fuzz:LINE:COL: message", LINE and COL positive. */
static int well_formed(const char *e) {
    const char *p;
    long line, col;
    char *end;

    if (strncmp(e, "fuzz:", 5) != 0)
        return 0;
    p = e + 5;
    line = strtol(p, &end, 10);
    if (end == p || *end != ':' || line < 1)
        return 0;
    p = end + 1;
    col = strtol(p, &end, 10);
    if (end == p || *end != ':' || col < 1)
        return 0;
    return end[1] == ' ' && end[2] != '\0';
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    cf_scenario *sc = NULL;
    char *error = NULL;

    if (cf_scenario_parse("fuzz", (const char *)data, size, &sc, &error) ==
        0) {
        if (!sc || error)
            abort();
        cf_scenario_free(sc);
        return 0;
    }
    if (sc || !error || !well_formed(error)) {
        fprintf(stderr, "bad error: %s\n", error ? error : "(none)");
        abort();
    }
    free(error);
    return 0;
}
