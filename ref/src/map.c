/*
 * map.c -- Executor.map: results in input order, one deadline for the whole
 * iteration counted from cf_map; every call submitted at once, or with a
 * buffersize (Python 3.14, gh-74028) at most that many ahead of the
 * consumer.
 *
 * As CPython 3.11+: an error, a cancelled call or the deadline ends the
 * iteration and cancels every call not yet yielded, the one waited for
 * included (gh-95166); closing a started iterator does the same. The
 * iterator drops each future once its result is given out.
 *
 * Chunks (an executor marked by cf_executor_set_chunked, i.e. the
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
 *
 * buffersize (as CPython 3.14's Executor.map, which ProcessPoolExecutor.map
 * calls with its chunks, so that buffersize counts calls -- chunks -- not
 * items): cf_map submits the first buffersize calls and keeps its own
 * copies of the arguments of the others. Each time the iterator is about
 * to wait for a call, it first submits the next one still to submit, then
 * waits, so buffersize + 1 calls can be in flight during a next
 * (gh-131466, as CPython); results given out of an already decoded chunk
 * submit nothing. Once the iteration ends (an error, a timeout, a failed
 * submit, a close) nothing more is submitted. CPython holds its executor
 * weakly and stops submitting once it is gone; here ex must outlive the
 * iterator's submits instead.
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
    /* one per call: per chunk (per item when not chunked); NULL before it
     * is submitted and once given out or cancelled */
    cf_future **fs;
    size_t n, next;   /* futures; the next one to wait for */
    size_t submitted; /* futures submitted: fs[0, submitted) */
    size_t nitems;
    size_t chunk; /* items per chunk; 0 when not chunked */
    size_t ahead; /* buffersize; 0: cf_map submitted every call */
    /* the calls still to submit (buffersize): */
    cf_executor *ex;
    cf_fn fn;
    size_t nargs;
    cf_value *rest;   /* copies of the arguments of items [rest_item, ...),
                         each item's set to None once submitted */
    size_t rest_item; /* the first item cf_map did not submit */
    size_t nrest;     /* values in rest */
    cf_value *pack;   /* room for a chunk's arguments, until all are sent */
    cf_value *vals;   /* the current chunk's results not yet given out */
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

/* The copies of the arguments not submitted: none are, from now on. */
static void drop_rest(cf_map_iter *it) {
    cf__values_free(it->rest, it->nrest);
    it->rest = NULL;
    it->nrest = 0;
}

static void map_free(cf_map_iter *it) {
    for (size_t i = 0; it->fs && i < it->n; i++)
        if (it->fs[i])
            cf_future_release(it->fs[i]);
    if (it->failed)
        cf_future_release(it->failed);
    drop_vals(it);
    drop_rest(it);
    cf__error_free(it->own_error);
    free(it->pack);
    free(it->fs);
    free(it);
}

/* Call c's first item and its number of items. */
static size_t call_first(const cf_map_iter *it, size_t c) {
    return it->chunk ? c * it->chunk : c;
}

static size_t call_len(const cf_map_iter *it, size_t c) {
    size_t first = call_first(it, c);
    if (!it->chunk)
        return 1;
    return it->nitems - first < it->chunk ? it->nitems - first : it->chunk;
}

/* Submits call c, the next one: fn over its item, or run_chunk over its
 * chunk. src: the arguments of its first item, followed by those of the
 * chunk's other items. */
static cf_status submit_call(cf_map_iter *it, size_t c, const cf_value *src) {
    size_t len = call_len(it, c), nargs = it->nargs;
    cf_status st;
    if (it->chunk) {
        cf_value *pack = it->pack;
        pack[0] = cf_int((int64_t)(uintptr_t)it->fn);
        pack[1] = cf_int((int64_t)nargs);
        pack[2] = cf_int((int64_t)len);
        if (nargs)
            memcpy(pack + 3, src, len * nargs * sizeof *pack);
        st = cf_submit(it->ex, run_chunk, pack, 3 + len * nargs, &it->fs[c]);
    } else {
        st = cf_submit(it->ex, it->fn, nargs ? src : NULL, nargs, &it->fs[c]);
    }
    if (st != CF_OK)
        return st;
    it->submitted = c + 1;
    if (it->submitted == it->n) {
        free(it->pack);
        it->pack = NULL;
    }
    return CF_OK;
}

/* The error of a submit that failed while iterating: what Python's submit
 * raises, as cf_submit left it in cf_last_error (RuntimeError "cannot
 * schedule new futures after shutdown", the pool's Broken error, ...);
 * NULL when out of memory. */
static cf_error *submit_error(cf_status st) {
    const cf_error *e = cf_last_error();
    if (e && cf_error_status(e) == st)
        return cf__error_new(st, cf_error_type(e), cf_error_message(e));
    return cf__error_new(st, cf_status_python(st), cf_status_message(st));
}

cf_status cf_map(cf_executor *ex, cf_fn fn, const cf_value *args,
                 size_t nitems, size_t nargs, double timeout, size_t chunksize,
                 size_t buffersize, cf_map_iter **out) {
    if (!ex || !fn || !out || (!args && nitems && nargs) ||
        (nargs && nitems > SIZE_MAX / nargs))
        return cf_refuse(CF_EINVAL, "ValueError",
                         "cf_map: a NULL argument, or too many items");
    if (isnan(timeout))
        return cf_refuse(CF_EINVAL, "ValueError", "cf_map: a NaN timeout");
    /* thread pools and executors of users ignore chunksize, as in Python */
    bool chunked = cf__executor_runs_chunks(ex);
    if (chunked && chunksize == 0)
        return cf_refuse(CF_EINVAL, "ValueError", "chunksize must be >= 1.");
    /* Python: ValueError("buffersize must be None or > 0"), for a negative
     * number here; what Python takes is at most sys.maxsize */
    if (buffersize > SIZE_MAX / 2)
        return cf_refuse(CF_EINVAL, "ValueError",
                         "buffersize must be None or > 0");
    chunked = chunked && chunksize > 1 && nitems > 0;
    size_t chunk = chunked ? (chunksize < nitems ? chunksize : nitems) : 1;
    if (chunked && chunk * nargs > SIZE_MAX / sizeof(cf_value) - 3)
        return CF_NOMEM;
    cf_map_iter *it = calloc(1, sizeof *it);
    if (!it)
        return CF_NOMEM;
    size_t n = nitems ? (nitems - 1) / chunk + 1 : 0;
    it->n = n;
    it->nitems = nitems;
    it->chunk = chunked ? chunk : 0;
    it->ahead = buffersize;
    it->ex = ex;
    it->fn = fn;
    it->nargs = nargs;
    /* the deadline first: it counts from this call, as Python's map */
    cf_status st = cf__deadline_make(timeout, &it->deadline);
    if (st == CF_OK) {
        it->fs = calloc(n ? n : 1, sizeof *it->fs);
        st = it->fs ? CF_OK : CF_NOMEM;
    }
    if (st == CF_OK && chunked) {
        it->pack = malloc((3 + chunk * nargs) * sizeof *it->pack);
        st = it->pack ? CF_OK : CF_NOMEM;
    }
    size_t now = buffersize && buffersize < n ? buffersize : n;
    if (st == CF_OK && now < n) {
        /* copies of what is submitted later; none is submitted if they
         * cannot be made */
        it->rest_item = call_first(it, now);
        if (nargs) {
            it->nrest = (nitems - it->rest_item) * nargs;
            st = cf__values_dup(args + it->rest_item * nargs, it->nrest,
                                &it->rest);
            if (st != CF_OK)
                it->nrest = 0;
        }
    }
    for (size_t c = 0; st == CF_OK && c < now; c++) {
        st = submit_call(it, c,
                         nargs ? args + call_first(it, c) * nargs : NULL);
        if (st != CF_OK)
            cancel_from(it, 0);
    }
    if (st != CF_OK) {
        map_free(it);
        return st;
    }
    *out = it;
    return CF_OK;
}

/* buffersize: submits the next call still to submit, unless the one to
 * wait for, it->next, already has buffersize calls submitted after it (a
 * next that failed with CF_NOMEM and is called again submits nothing
 * more). Frees the copies of its arguments once it is submitted. */
static cf_status submit_ahead(cf_map_iter *it) {
    size_t want =
        it->n - it->next > it->ahead ? it->next + it->ahead + 1 : it->n;
    if (!it->ahead || it->submitted >= want)
        return CF_OK;
    size_t c = it->submitted;
    cf_value *src =
        it->nargs ? it->rest + (call_first(it, c) - it->rest_item) * it->nargs
                  : NULL;
    cf_status st = submit_call(it, c, src);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < call_len(it, c) * it->nargs; i++)
        cf_value_free(&src[i]);
    if (it->submitted == it->n)
        drop_rest(it);
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
    drop_rest(it);
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
    size_t len = call_len(it, i);
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
    /* as CPython: the next call is submitted before the wait, even once the
     * deadline has passed */
    cf_status st = submit_ahead(it);
    if (st == CF_NOMEM)
        return st;
    if (st != CF_OK)
        return fail_at(it, i, st, true, submit_error(st), error);
    cf_value v;
    st = cf_future_result(it->fs[i], cf__deadline_remaining(&it->deadline),
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
    /* never advanced: what cf_map submitted still runs; the rest never */
    if (it->started)
        cancel_from(it, it->next);
    map_free(it);
    return CF_OK;
}
