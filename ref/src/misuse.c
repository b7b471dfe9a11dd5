/*
 * misuse.c -- how the library reports an executor that breaks the contract
 * of the header's "Writing an executor": one CF_LOG_CRITICAL line through
 * the log hook, then abort() if the policy says so. The policy is read
 * from CF_MISUSE once, at the first misuse: "abort" or "log"; anything
 * else (or nothing) means abort in a debug build -- the library compiled
 * without NDEBUG -- and log in a release build.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t policy_once = PTHREAD_ONCE_INIT;
static bool abort_on_misuse;

static void read_policy(void) {
    const char *policy = getenv("CF_MISUSE");
#ifdef NDEBUG
    abort_on_misuse = false;
#else
    abort_on_misuse = true;
#endif
    if (policy && strcmp(policy, "abort") == 0)
        abort_on_misuse = true;
    else if (policy && strcmp(policy, "log") == 0)
        abort_on_misuse = false;
}

void cf__misuse(const char *fmt, ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cf__log(CF_LOG_CRITICAL, "executor misuse: %s", message);
    pthread_once(&policy_once, read_policy);
    if (abort_on_misuse)
        abort();
}
