/*
 * common.h -- what the example programs share, so that each of them can
 * keep to its own part of the Python docs: the command line (no argument,
 * or --help), the message for a cfutures call that failed, and, for the
 * examples that work on files, a private folder and Python's OSError for a
 * failed system call.
 */
#ifndef CF_EXAMPLE_COMMON_H
#define CF_EXAMPLE_COMMON_H

#include "cfutures.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The whole of an example's main(). Without arguments it returns run().
 * With --help (or -h) it prints "usage: <program> [--help]", a blank line
 * and `about` to stdout and returns 0; any other argument is an error: it
 * says so and prints the same usage to stderr, and returns 2.
 */
int example_main(int argc, char **argv, const char *about, int (*run)(void));

/* True if st is CF_OK; otherwise prints "<what>: <status name>" to stderr
 * and returns false. */
bool example_ok(cf_status st, const char *what);

/* ---- Checks, for the examples that check what they show ---------------- */

/* Failed checks so far; such an example's run() ends with
 * `return example_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;`. */
extern int example_failures;

/* Counts a failure and says where, if cond is false. */
#define EXAMPLE_CHECK(cond)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
            example_failures++;                                               \
        }                                                                     \
    } while (0)

/* example_ok, counting a failure. */
bool example_must(cf_status st, const char *what);

/* The future finished with the int want (waits for it). */
bool example_has_int(cf_future *f, int64_t want);

/* ---- A private folder for the examples that work on files -------------- */

#define EXAMPLE_PATH_SIZE 4096

/* dir/name into out (EXAMPLE_PATH_SIZE octets). Returns false, and says so,
 * if it does not fit. */
bool example_join(char *out, const char *dir, const char *name);

/* Makes a new private folder $TMPDIR/cfutures-<name>-XXXXXX (/tmp without
 * $TMPDIR) with mkdtemp, its path into dir (EXAMPLE_PATH_SIZE octets).
 * Returns false, and says why, if it cannot. */
bool example_make_folder(char *dir, const char *name);

/* Removes the folder and every file in it. Returns false, and says why, if
 * anything is left. */
bool example_remove_folder(const char *dir);

/*
 * Raises in call what Python raises for a system call that failed with
 * errno err on path (a str value): the OSError subclass for err, with
 * Python's message, e.g.
 * FileNotFoundError("[Errno 2] No such file or directory: 'src1.txt'").
 */
void example_raise_oserror(cf_call *call, int err, const cf_value *path);

#endif
