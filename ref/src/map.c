/*
 * map.c -- Executor.map: every call submitted at once, results in input
 * order, one deadline for the whole iteration counted from cf_map.
 *
 * As CPython 3.11+: an error, a cancelled call or the deadline ends the
 * iteration and cancels every call not yet yielded, the one waited for
 * included (gh-95166); closing a started iterator does the same. The
 * iterator drops each future once its result is given out.
 *
 * Chunks (an executor marked by cf__executor_set_runs_chunks, i.e. the
 * process pool, with chunksize > 1): the items are grouped into chunks of
 * chunksize items (the last may be shorter) and each chunk is one call of
 * run_chunk with the arguments [INT fn's address, INT nargs, INT items,
 * the items' arguments]. It runs fn on each item in order and returns
 * their results encoded one after another (ipc.c's value encoding) as one
 * BYTES, or raises the first error an item raised, as Python's
 * _process_chunk. The iterator waits for a chunk when it reaches the
 * chunk's first item, decodes its results and gives them out one by one;
 * a chunk that failed fails at its first item (its other results are
 * lost, as in Python).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define PICKLE_MESSAGE "cannot pickle 'pointer' object"

/* ---- a chunk, in the worker -------------------------------------------- */

/* Raises the error as the chunk's own. */
static void raise_as(cf_call *call, const cf_error *e) {
    cf_raise(call, cf_error_type(e), "%s", cf_error_message(e));
}

static void run_chunk(cf_call *call) {
    size_t n = cf_nargs(call);
    const cf_value *a = cf_arg(call, 0);
    if (n < 3 || a[0].type != CF_TYPE_INT || !a[0].as.i ||
        a[1].type != CF_TYPE_INT || a[2].type != CF_TYPE_INT ||
        a[1].as.i < 0 || a[2].as.i < 0 || (uint64_t)a[1].as.i > n - 3 ||
        (a[1].as.i ? (uint64_t)a[2].as.i != (n - 3) / (uint64_t)a[1].as.i ||
                         (n - 3) % (uint64_t)a[1].as.i
                   : n != 3)) {
        cf_raise(call, "TypeError", "malformed chunk");
        return;
    }
    cf_fn fn = (cf_fn)(uintptr_t)a[0].as.i;
    size_t nargs = (size_t)a[1].as.i, len = (size_t)a[2].as.i;
    struct cf__buf b = {0};
    cf_status unencodable = CF_OK; /* as Python, raised after every item */
    for (size_t i = 0; i < len; i++) {
        cf_value v;
        cf_error *e;
        cf__call_invoke(fn, nargs ? a + 3 + i * nargs : NULL, nargs, &v, &e);
        if (e) {
            raise_as(call, e);
            cf__error_free(e);
            cf_value_free(&v);
            cf__buf_free(&b);
            return;
        }
        if (unencodable == CF_OK)
            unencodable = cf__encode_value(&b, &v);
        cf_value_free(&v);
    }
    cf_value r;
    if (unencodable == CF_EINVAL)
        cf_raise(call, "TypeError", PICKLE_MESSAGE);
    else if (unencodable != CF_OK ||
             cf_value_bytes(&r, b.data, b.len) != CF_OK)
        cf_raise(call, "MemoryError", "the results are too large to send");
    else
        cf_return(call, r);
    cf__buf_free(&b);
}

/* ---- the iterator ------------------------------------------------------- */

struct cf_map_iter {
    cf_future **fs; /* one per chunk (per item when not chunked) */
    size_t n, next; /* futures; the next one to wait for */
    size_t nitems;
    size_t chunk;   /* items per chunk; 0 when not chunked */
    cf_value *vals; /* the current chunk's results not yet given out */
    size_t nvals, nextval;
    cf__deadline deadline;
    bool started, finished;
    cf_future *failed;   /* kept while its error is lent out */
    cf_error *own_error; /* a TimeoutError, or a chunk that did not decode */
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

static void drop_vals(cf_map_iter *it) {
    cf__values_free(it->vals, it->nvals);
    it->vals = NULL;
    it->nvals = it->nextval = 0;
}

static void map_free(cf_map_iter *it) {
    for (size_t i = 0; i < it->n; i++)
        if (it->fs[i])
            cf_future_release(it->fs[i]);
    if (it->failed)
        cf_future_release(it->failed);
    drop_vals(it);
    cf__error_free(it->own_error);
    free(it->fs);
    free(it);
}

/* Submits chunk c: run_chunk over items [c * chunk, ...). */
static cf_status submit_chunk(cf_map_iter *it, cf_executor *ex, cf_fn fn,
                              const cf_value *args, size_t nargs, size_t c,
                              cf_value *pack) {
    size_t first = c * it->chunk;
    size_t len =
        it->nitems - first < it->chunk ? it->nitems - first : it->chunk;
    pack[0] = cf_int((int64_t)(uintptr_t)fn);
    pack[1] = cf_int((int64_t)nargs);
    pack[2] = cf_int((int64_t)len);
    if (nargs)
        memcpy(pack + 3, args + first * nargs, len * nargs * sizeof *pack);
    return cf_submit(ex, run_chunk, pack, 3 + len * nargs, &it->fs[c]);
}

cf_status cf_map(cf_executor *ex, cf_fn fn, const cf_value *args,
                 size_t nitems, size_t nargs, double timeout, size_t chunksize,
                 cf_map_iter **out) {
    if (!ex || !fn || !out || (!args && nitems && nargs) ||
        (nargs && nitems > SIZE_MAX / nargs))
        return CF_EINVAL;
    /* thread pools and executors of users ignore chunksize, as in Python */
    bool chunked = cf__executor_runs_chunks(ex);
    if (chunked && chunksize == 0)
        return CF_EINVAL; /* Python: ValueError("chunksize must be >= 1.") */
    chunked = chunked && chunksize > 1 && nitems > 0;
    size_t chunk = chunked ? (chunksize < nitems ? chunksize : nitems) : 1;
    cf_value *pack = NULL;
    if (chunked) {
        if (chunk * nargs > SIZE_MAX / sizeof *pack - 3)
            return CF_NOMEM;
        pack = malloc((3 + chunk * nargs) * sizeof *pack);
        if (!pack)
            return CF_NOMEM;
    }
    cf_map_iter *it = calloc(1, sizeof *it);
    if (!it) {
        free(pack);
        return CF_NOMEM;
    }
    cf_status st = cf__deadline_make(timeout, &it->deadline);
    size_t n = nitems ? (nitems - 1) / chunk + 1 : 0;
    if (st == CF_OK) {
        it->fs = calloc(n ? n : 1, sizeof *it->fs);
        st = it->fs ? CF_OK : CF_NOMEM;
    }
    if (st != CF_OK) {
        free(pack);
        free(it);
        return st;
    }
    it->nitems = nitems;
    it->chunk = chunked ? chunk : 0;
    for (; it->n < n; it->n++) {
        if (chunked) {
            st = submit_chunk(it, ex, fn, args, nargs, it->n, pack);
        } else {
            const cf_value *item = nargs ? args + it->n * nargs : NULL;
            st = cf_submit(ex, fn, item, nargs, &it->fs[it->n]);
        }
        if (st != CF_OK) {
            cancel_from(it, 0);
            map_free(it);
            free(pack);
            return st;
        }
    }
    free(pack);
    *out = it;
    return CF_OK;
}

/* Ends the iteration after a failure at future i. own: the failure is not
 * the future's (a timeout, a chunk that did not decode); *own_error is then
 * the error (NULL when out of memory), or a TimeoutError is made. */
static cf_status fail_at(cf_map_iter *it, size_t i, cf_status st, bool own,
                         cf_error *own_error, const cf_error **error) {
    cf_future *f = it->fs[i];
    it->fs[i] = NULL;
    it->finished = true;
    if (own) {
        cf_future_cancel(f);
        cf_future_release(f);
        if (st == CF_TIMEOUT)
            own_error = cf__error_new(CF_TIMEOUT, "TimeoutError", "");
        it->own_error = own_error;
        if (error)
            *error = own_error ? own_error : &cf__nomem_error;
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

/* Decodes a chunk's results into it->vals: CF_OK, CF_NOMEM, CF_EINVAL. */
static cf_status unpack(cf_map_iter *it, size_t i, const cf_value *v) {
    size_t first = i * it->chunk;
    size_t len =
        it->nitems - first < it->chunk ? it->nitems - first : it->chunk;
    if (v->type != CF_TYPE_BYTES)
        return CF_EINVAL;
    const unsigned char *data = (const unsigned char *)v->as.buf.data;
    struct cf__reader r = {data, data + v->as.buf.len};
    cf_value *vals;
    cf_status st = cf__decode_values(&r, len, &vals);
    if (st != CF_OK)
        return st;
    it->vals = vals;
    it->nvals = len;
    it->nextval = 0;
    return CF_OK;
}

cf_status cf_map_next(cf_map_iter *it, cf_value *out, const cf_error **error) {
    if (!it || !out)
        return CF_EINVAL;
    it->started = true;
    if (it->failed) {
        cf_future_release(it->failed);
        it->failed = NULL;
    }
    if (it->finished)
        return CF_STOP;
    if (it->nextval < it->nvals) {
        *out = it->vals[it->nextval];
        it->vals[it->nextval++] = cf_none();
        if (it->nextval == it->nvals)
            drop_vals(it);
        return CF_OK;
    }
    if (it->next == it->n) {
        it->finished = true;
        return CF_STOP;
    }
    size_t i = it->next;
    cf_value v;
    cf_status st =
        cf_future_result(it->fs[i], cf__deadline_remaining(&it->deadline),
                         it->chunk ? &v : out);
    if (st == CF_NOMEM)
        return st;
    if (st != CF_OK)
        return fail_at(it, i, st, st == CF_TIMEOUT, NULL, error);
    if (it->chunk) {
        st = unpack(it, i, &v);
        cf_value_free(&v);
        if (st == CF_NOMEM)
            return st;
        if (st != CF_OK)
            return fail_at(it, i, CF_RAISED, true,
                           cf__error_new(CF_RAISED, "RuntimeError",
                                         "a chunk's results did not decode"),
                           error);
    }
    cf_future_release(it->fs[i]);
    it->fs[i] = NULL;
    it->next++;
    if (it->chunk)
        return cf_map_next(it, out, error);
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
