/*
 * last_error.c -- why the last cf_submit or cf_map of this thread failed,
 * as the exception Python would have raised (cf_last_error), and how an
 * executor's submit says it (cf_refuse).
 *
 * Each thread has its own error, kept under a pthread key whose destructor
 * frees it when the thread ends; nothing is shared, so no lock is taken.
 */
#include "internal.h"

#include <stdlib.h>

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_made;
/* cf_refuse calls made by this thread, so that cf_submit can tell whether
 * the executor said why it refused. */
static _Thread_local unsigned refusals;

static void free_error(void *e) {
    cf__error_free(e);
}

static void make_key(void) {
    key_made = pthread_key_create(&key, free_error) == 0;
}

/* Makes e (NULL: out of memory) this thread's last error. */
static void set_last(cf_error *e) {
    pthread_once(&key_once, make_key);
    if (!key_made) {
        cf__error_free(e);
        return;
    }
    cf__error_free(pthread_getspecific(key));
    pthread_setspecific(key, e ? e : &cf__nomem_error);
}

const cf_error *cf_last_error(void) {
    pthread_once(&key_once, make_key);
    return key_made ? pthread_getspecific(key) : NULL;
}

cf_status cf_refuse(cf_status status, const char *type, const char *fmt, ...) {
    if (status == CF_OK || !cf__type_name_valid(type) || !fmt)
        return CF_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    set_last(cf__error_vformat(status, type, fmt, ap));
    va_end(ap);
    refusals++;
    return status;
}

unsigned cf__refusals(void) {
    return refusals;
}

cf_status cf__refuse_by_status(cf_status status) {
    switch (status) {
    case CF_SHUTDOWN:
        return cf_refuse(status, "RuntimeError", "%s",
                         cf__exiting() ? "cannot schedule new futures after "
                                         "interpreter shutdown"
                                       : "cannot schedule new futures after "
                                         "shutdown");
    case CF_BROKEN:
        return cf_refuse(status, "BrokenExecutor", "%s",
                         cf_status_message(status));
    case CF_EAGAIN:
        return cf_refuse(status, "RuntimeError", "can't start new thread");
    case CF_NOMEM:
        return cf_refuse(status, "MemoryError", "%s", "");
    default:
        return cf_refuse(status, "ValueError", "%s",
                         cf_status_message(status));
    }
}
