/*
 * map.c -- Executor.map: every call submitted at once, results in input
 * order, one deadline for the whole iteration counted from cf_map.
 *
 * As CPython 3.11+: an error, a cancelled call or the deadline ends the
 * iteration and cancels every call not yet yielded, the one waited for
 * included (gh-95166); closing a started iterator does the same. The
 * iterator drops each future once its result is given out.
 */
#include "internal.h"

#include <stdlib.h>

struct cf_map_iter {
    cf_future **fs;
    size_t n, next;
    cf__deadline deadline;
    bool started, finished;
    cf_future *failed; /* kept while its error is lent out */
    cf_error *timeout_error;
};

static void cancel_from(cf_map_iter *it, size_t from) {
    for (size_t i = from; i < it->n; i++) {
        if (!it->fs[i])
            continue;
        cf_future_cancel(it->fs[i]);
        cf_future_release(it->fs[i]);
        it->fs[i] = NULL;
    }
}

static void map_free(cf_map_iter *it) {
    for (size_t i = 0; i < it->n; i++)
        if (it->fs[i])
            cf_future_release(it->fs[i]);
    if (it->failed)
        cf_future_release(it->failed);
    cf__error_free(it->timeout_error);
    free(it->fs);
    free(it);
}

cf_status cf_map(cf_executor *ex, cf_fn fn, const cf_value *args,
                 size_t nitems, size_t nargs, double timeout, size_t chunksize,
                 cf_map_iter **out) {
    (void)chunksize; /* no executor chunks calls yet: thread pools ignore it */
    if (!ex || !fn || !out || (!args && nitems && nargs) ||
        (nargs && nitems > SIZE_MAX / nargs))
        return CF_EINVAL;
    cf_map_iter *it = calloc(1, sizeof *it);
    if (!it)
        return CF_NOMEM;
    cf_status st = cf__deadline_make(timeout, &it->deadline);
    if (st != CF_OK) {
        free(it);
        return st;
    }
    it->fs = calloc(nitems ? nitems : 1, sizeof *it->fs);
    if (!it->fs) {
        free(it);
        return CF_NOMEM;
    }
    for (; it->n < nitems; it->n++) {
        const cf_value *item = nargs ? args + it->n * nargs : NULL;
        st = cf_submit(ex, fn, item, nargs, &it->fs[it->n]);
        if (st != CF_OK) {
            cancel_from(it, 0);
            map_free(it);
            return st;
        }
    }
    *out = it;
    return CF_OK;
}

/* Ends the iteration after a failure at item i. */
static cf_status fail_at(cf_map_iter *it, size_t i, cf_status st,
                         const cf_error **error) {
    cf_future *f = it->fs[i];
    it->fs[i] = NULL;
    it->finished = true;
    if (st == CF_TIMEOUT) {
        cf_future_cancel(f);
        cf_future_release(f);
        it->timeout_error = cf__error_new(CF_TIMEOUT, "TimeoutError", "");
        if (error)
            *error = it->timeout_error ? it->timeout_error : &cf__nomem_error;
    } else {
        const cf_error *e = NULL;
        cf_future_exception(f, 0, &e);
        it->failed = f;
        if (error)
            *error = e;
    }
    cancel_from(it, i + 1);
    return st;
}

cf_status cf_map_next(cf_map_iter *it, cf_value *out, const cf_error **error) {
    if (!it || !out)
        return CF_EINVAL;
    it->started = true;
    if (it->failed) {
        cf_future_release(it->failed);
        it->failed = NULL;
    }
    if (it->finished || it->next == it->n) {
        it->finished = true;
        return CF_STOP;
    }
    size_t i = it->next;
    cf_status st = cf_future_result(
        it->fs[i], cf__deadline_remaining(&it->deadline), out);
    if (st == CF_NOMEM)
        return st;
    if (st != CF_OK)
        return fail_at(it, i, st, error);
    cf_future_release(it->fs[i]);
    it->fs[i] = NULL;
    it->next++;
    return CF_OK;
}

cf_status cf_map_close(cf_map_iter *it) {
    if (!it)
        return CF_EINVAL;
    if (it->started)
        cancel_from(it, it->next);
    map_free(it);
    return CF_OK;
}
