/*
 * run.c -- runs one parsed scenario on one kind of pool, in the process the
 * watchdog made for it: each statement mapped to the cfutures API, its
 * observation printed as a trace line and checked against its
 * expectation (SCENARIOS.md "Statements", "Expectations", "Trace").
 *
 * Threads: the script runs in this process's main thread; tasks run in the
 * pool's threads (thread pool) and done callbacks in whichever thread
 * completes a future. They share the sc_ctx, whose lock guards the futures
 * table and the callback record.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "lex.h"

/* A slot per future / iterator name. Futures live in ctx->futures. */
typedef struct slot {
    cf_as_completed *ac;
    cf_map_iter *map;
    bool closed;
} slot;

/* What a `callback` statement added: freed at the end of the run. */
typedef struct cb_ctx {
    sc_ctx *ctx;
    struct cb_ctx *next;
    pthread_t adder;
    bool raises;
    char callback[SC_NAME_MAX + 1];
    char future[SC_NAME_MAX + 1];
} cb_ctx;

typedef struct run {
    const cf_scenario *sc;
    const sc_options *opt;
    sc_ctx ctx;
    slot *slots;
    cb_ctx *cbs;
    int fd;
    int failures;
    bool pool_made;
} run;

/* ---- Observations ------------------------------------------------------- */

/* An observation being built: its text, and where it ends with an error
 * the text without the error's message (`short_len`). */
typedef struct obs {
    char *text;
    size_t len, cap;
    bool has_err;
    size_t short_len;
} obs;

static void obs_add(obs *o, const char *fmt, ...) CF_PRINTF(2, 3);
static void obs_add(obs *o, const char *fmt, ...) {
    va_list ap;
    int need;

    va_start(ap, fmt);
    need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    while (o->len + (size_t)need + 2 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 128;
        char *t = realloc(o->text, cap);
        if (!t)
            abort(); /* the driver cannot report without memory */
        o->text = t;
        o->cap = cap;
    }
    if (o->len)
        o->text[o->len++] = ' ';
    va_start(ap, fmt);
    vsnprintf(o->text + o->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)need;
}

/* Adds the repr of a value. */
static void obs_value(obs *o, const cf_value *v) {
    char *r = sc_repr(v);

    obs_add(o, "%s", r ? r : "<a value cf_value_repr refuses>");
    free(r);
}

/* Adds an error `[raises ]TYPE 'MESSAGE'`. */
static void obs_error(obs *o, bool raised, const char *type,
                      const char *message) {
    cf_value v;

    obs_add(o, "%s%s", raised ? "raises " : "", *type ? type : "Exception");
    o->has_err = true;
    o->short_len = o->len;
    if (cf_value_str(&v, message) == CF_OK) {
        obs_value(o, &v);
        cf_value_free(&v);
    } else {
        obs_add(o, "'<a message that is not valid UTF-8>'");
    }
}

/* The error for a status that has no error object. */
static void obs_status(obs *o, bool raised, cf_status st) {
    const char *py = cf_status_python(st);

    obs_error(o, raised, *py ? py : cf_status_name(st), "");
}

/* An error object, or the status's when there is none. */
static void obs_cf_error(obs *o, bool raised, const cf_error *e,
                         cf_status st) {
    if (e)
        obs_error(o, raised, cf_error_type(e), cf_error_message(e));
    else
        obs_status(o, raised, st);
}

/* ---- Helpers ------------------------------------------------------------ */

static cf_future *future_of(run *r, int idx) {
    cf_future *f;

    pthread_mutex_lock(&r->ctx.lock);
    f = r->ctx.futures[idx];
    pthread_mutex_unlock(&r->ctx.lock);
    return f;
}

static void future_set(run *r, int idx, cf_future *f) {
    pthread_mutex_lock(&r->ctx.lock);
    r->ctx.futures[idx] = f;
    pthread_cond_broadcast(&r->ctx.cond);
    pthread_mutex_unlock(&r->ctx.lock);
}

cf_future *sc_ctx_wait_future(sc_ctx *ctx, int idx) {
    cf_future *f;

    pthread_mutex_lock(&ctx->lock);
    while (!ctx->futures[idx])
        pthread_cond_wait(&ctx->cond, &ctx->lock);
    f = ctx->futures[idx];
    cf_future_retain(f);
    pthread_mutex_unlock(&ctx->lock);
    return f;
}

/* Python's NameError for a name whose submit failed. */
static void obs_undefined(obs *o, const char *name) {
    char msg[64];

    snprintf(msg, sizeof msg, "name '%s' is not defined", name);
    obs_error(o, true, "NameError", msg);
}

/* The future of statement s, or NULL after observing a NameError. */
static cf_future *stmt_future(run *r, const sc_stmt *s, obs *o) {
    cf_future *f = future_of(r, s->name);

    if (!f)
        obs_undefined(o, r->sc->names[s->name]);
    return f;
}

/* The name of future f among the scenario's, or "?". */
static const char *future_name(run *r, const cf_future *f) {
    size_t i;

    for (i = 0; i < r->sc->nnames; i++)
        if (r->sc->kinds[i] == SC_KIND_FUTURE && future_of(r, (int)i) == f)
            return r->sc->names[i];
    return "?";
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds {a b}: the names, sorted. */
static void obs_set(obs *o, const char **names, size_t n) {
    size_t i, len = 2;
    char *buf;

    qsort(names, n, sizeof *names, name_cmp);
    for (i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    buf = malloc(len + 1);
    if (!buf)
        abort();
    strcpy(buf, "{");
    for (i = 0; i < n; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, names[i]);
    }
    strcat(buf, "}");
    obs_add(o, "%s", buf);
    free(buf);
}

/* Appends observation end (an error, maybe) to o. */
static void obs_append(obs *o, const obs *end) {
    size_t at = o->len ? o->len + 1 : 0;

    if (!end->text)
        return;
    obs_add(o, "%s", end->text);
    if (end->has_err) {
        o->has_err = true;
        o->short_len = at + end->short_len;
    }
}

/* The args of a task call: program, folder, and on thread pools the ctx. */
static size_t task_args(run *r, const char *program, cf_value *args) {
    args[0].type = CF_TYPE_STR;
    args[0].as.buf.data = (char *)program;
    args[0].as.buf.len = strlen(program);
    args[1].type = CF_TYPE_STR;
    args[1].as.buf.data = (char *)r->ctx.folder;
    args[1].as.buf.len = strlen(r->ctx.folder);
    if (r->ctx.pool == SC_POOLS_THREAD) {
        args[2] = cf_ptr(&r->ctx);
        return 3;
    }
    return 2;
}

static double timeout_of(const sc_stmt *s) {
    return s->has_timeout ? s->timeout : CF_FOREVER;
}

static cf_executor *executor(run *r) {
    cf_executor *ex;

    pthread_mutex_lock(&r->ctx.lock);
    ex = r->ctx.ex;
    pthread_mutex_unlock(&r->ctx.lock);
    return ex;
}

/* ---- The pool ----------------------------------------------------------- */

static int clamp_int(int64_t v) {
    return v > 1000000 ? 1000000 : v < -1 ? -1 : (int)v;
}

static void do_pool(run *r, const sc_stmt *s, obs *o) {
    const sc_pool_opts *po = &s->pool;
    cf_value init[3];
    size_t ninit = po->initializer ? task_args(r, po->initializer, init) : 0;
    cf_executor *ex = NULL;
    cf_status st;

    if (r->ctx.pool == SC_POOLS_THREAD) {
        cf_thread_pool_options to;
        cf_thread_pool_options_init(&to);
        if (po->has_max_workers && !po->max_workers_none)
            to.max_workers = clamp_int(po->max_workers);
        if (po->has_prefix)
            to.thread_name_prefix = po->prefix;
        if (po->initializer) {
            to.initializer = sc_task_init;
            to.initargs = init;
            to.ninitargs = ninit;
        }
        st = cf_thread_pool_new(&to, &ex);
    } else {
        cf_process_pool_options pr;
        cf_process_pool_options_init(&pr);
        if (po->has_max_workers && !po->max_workers_none)
            pr.max_workers = clamp_int(po->max_workers);
        if (po->has_mtpc && !po->mtpc_none)
            pr.max_tasks_per_child = clamp_int(po->mtpc);
        if (po->initializer) {
            pr.initializer = sc_task_init;
            pr.initargs = init;
            pr.ninitargs = ninit;
        }
        st = cf_process_pool_new(&pr, &ex);
        if (st == CF_OK)
            sc_task_shared_set(ex);
    }
    if (st == CF_OK) {
        pthread_mutex_lock(&r->ctx.lock);
        r->ctx.ex = ex;
        pthread_mutex_unlock(&r->ctx.lock);
        obs_add(o, "ok");
    } else if (st == CF_EINVAL && po->has_max_workers &&
               !po->max_workers_none && po->max_workers <= 0) {
        obs_error(o, true, "ValueError", "max_workers must be greater than 0");
    } else if (st == CF_EINVAL && po->has_mtpc && !po->mtpc_none &&
               po->mtpc <= 0) {
        obs_error(o, true, "ValueError", "max_tasks_per_child must be >= 1");
    } else {
        obs_status(o, true, st);
    }
}

/* Python's `ex` is undefined when making the pool raised. */
static cf_executor *need_executor(run *r, obs *o) {
    cf_executor *ex = executor(r);

    if (!ex)
        obs_error(o, true, "NameError", "name 'ex' is not defined");
    return ex;
}

static void do_shutdown(run *r, bool wait, bool cancel, obs *o) {
    cf_executor *ex = need_executor(r, o);
    cf_status st;

    if (!ex)
        return;
    st = cf_executor_shutdown(ex, wait, cancel);
    if (st == CF_OK)
        obs_add(o, "ok");
    else
        obs_status(o, true, st);
}

/* ---- Futures ------------------------------------------------------------ */

static void do_submit(run *r, const sc_stmt *s, obs *o) {
    cf_executor *ex = need_executor(r, o);
    cf_value args[3];
    size_t n;
    cf_future *f;
    cf_status st;

    if (!ex)
        return;
    n = task_args(r, s->program, args);
    st = cf_submit(ex, sc_task, args, n, &f);
    if (st == CF_OK) {
        future_set(r, s->name, f);
        obs_add(o, "ok");
    } else {
        obs_cf_error(o, true, cf_last_error(), st);
    }
}

static void do_new_future(run *r, const sc_stmt *s, obs *o) {
    cf_future *f;
    cf_status st = cf_future_new(&f);

    if (st == CF_OK) {
        future_set(r, s->name, f);
        obs_add(o, "ok");
    } else {
        obs_status(o, true, st);
    }
}

static void do_set(run *r, const sc_stmt *s, obs *o) {
    cf_future *f = stmt_future(r, s, o);
    cf_status st;

    if (!f)
        return;
    if (s->verb == SC_SET_RUNNING) {
        st = cf_future_set_running_or_notify_cancel(f);
        if (st == CF_OK || st == CF_CANCELLED)
            obs_add(o, "%s", st == CF_OK ? "True" : "False");
        else if (st == CF_INVALID_STATE)
            obs_error(o, true, "RuntimeError", "Future in unexpected state");
        else
            obs_status(o, true, st);
        return;
    }
    if (s->verb == SC_SET_RESULT)
        st = cf_future_set_result(f, &s->value);
    else
        st = cf_future_set_exception(f, s->type, s->message);
    if (st == CF_OK)
        obs_add(o, "ok");
    else
        obs_status(o, true, st);
}

static void do_query(run *r, const sc_stmt *s, obs *o) {
    cf_future *f = stmt_future(r, s, o);
    bool b = false;

    if (!f)
        return;
    switch (s->verb) {
    case SC_CANCEL:
        b = cf_future_cancel(f);
        break;
    case SC_CANCELLED:
        b = cf_future_cancelled(f);
        break;
    case SC_RUNNING:
        b = cf_future_running(f);
        break;
    default:
        b = cf_future_done(f);
        break;
    }
    obs_add(o, "%s", b ? "True" : "False");
}

static void do_result(run *r, const sc_stmt *s, obs *o) {
    cf_future *f = stmt_future(r, s, o);
    const cf_error *e = NULL;
    cf_value v = cf_none();
    cf_status st;

    if (!f)
        return;
    if (s->verb == SC_RESULT) {
        st = cf_future_result(f, timeout_of(s), &v);
        if (st == CF_OK) {
            obs_value(o, &v);
            cf_value_free(&v);
        } else if (st == CF_RAISED || st == CF_BROKEN) {
            cf_future_exception(f, 0, &e);
            obs_cf_error(o, true, e, st);
        } else {
            obs_status(o, true, st);
        }
        return;
    }
    st = cf_future_exception(f, timeout_of(s), &e);
    if (st == CF_OK && !e)
        obs_add(o, "None");
    else if (st == CF_OK)
        obs_cf_error(o, false, e, st);
    else
        obs_status(o, true, st);
}

/* ---- Callbacks ---------------------------------------------------------- */

static cf_status record_call(cf_future *f, void *arg) {
    cb_ctx *c = arg;
    sc_ctx *ctx = c->ctx;
    sc_cb_call *call;

    (void)f;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->ncalls == ctx->cap_calls) {
        size_t cap = ctx->cap_calls ? ctx->cap_calls * 2 : 16;
        sc_cb_call *v = realloc(ctx->calls, cap * sizeof *v);
        if (!v)
            abort();
        ctx->calls = v;
        ctx->cap_calls = cap;
    }
    call = &ctx->calls[ctx->ncalls++];
    memcpy(call->callback, c->callback, sizeof call->callback);
    memcpy(call->future, c->future, sizeof call->future);
    call->adder = pthread_equal(pthread_self(), c->adder) != 0;
    pthread_cond_broadcast(&ctx->cond);
    pthread_mutex_unlock(&ctx->lock);
    return c->raises ? CF_RAISED : CF_OK;
}

static void do_callback(run *r, const sc_stmt *s, obs *o) {
    cf_future *f = stmt_future(r, s, o);
    cb_ctx *c;
    cf_status st;

    if (!f)
        return;
    c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->ctx = &r->ctx;
    c->adder = pthread_self();
    c->raises = s->raises;
    memcpy(c->callback, s->callback, sizeof c->callback);
    snprintf(c->future, sizeof c->future, "%s", r->sc->names[s->name]);
    c->next = r->cbs;
    r->cbs = c;
    st = cf_future_add_done_callback(f, record_call, c);
    if (st == CF_OK)
        obs_add(o, "ok");
    else
        obs_status(o, true, st);
}

/* How many calls an expectation of `callbacks` lists. */
static size_t expected_calls(const char *expected) {
    size_t n = 1;

    if (!expected || strcmp(expected, "none") == 0)
        return 0;
    for (; *expected; expected++)
        n += *expected == ',';
    return n;
}

static void do_callbacks(run *r, const sc_stmt *s, obs *o) {
    size_t want = expected_calls(s->expected), i;
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&r->ctx.lock);
    while (r->ctx.ncalls < want &&
           pthread_cond_timedwait(&r->ctx.cond, &r->ctx.lock, &until) !=
               ETIMEDOUT)
        ;
    if (r->ctx.ncalls == 0)
        obs_add(o, "none");
    for (i = 0; i < r->ctx.ncalls; i++) {
        const sc_cb_call *c = &r->ctx.calls[i];
        obs_add(o, "%s(%s) %s%s", c->callback, c->future,
                c->adder ? "adder" : "other",
                i + 1 < r->ctx.ncalls ? "," : "");
    }
    pthread_mutex_unlock(&r->ctx.lock);
}

/* ---- wait and as_completed ---------------------------------------------- */

/* The futures of a list; NULL (a NameError observed) if one is undefined. */
static cf_future **list_futures(run *r, const sc_stmt *s, obs *o) {
    cf_future **fs = calloc(s->nnames + 1, sizeof *fs);
    size_t i;

    if (!fs)
        abort();
    for (i = 0; i < s->nnames; i++) {
        fs[i] = future_of(r, s->names[i]);
        if (!fs[i]) {
            obs_undefined(o, r->sc->names[s->names[i]]);
            free(fs);
            return NULL;
        }
    }
    return fs;
}

static void do_wait(run *r, const sc_stmt *s, obs *o) {
    cf_future **fs = list_futures(r, s, o), **done, **not_done;
    const char **names;
    size_t nd = 0, nn = 0, i;
    cf_status st;

    if (!fs)
        return;
    done = calloc(s->nnames + 1, sizeof *done);
    not_done = calloc(s->nnames + 1, sizeof *not_done);
    names = calloc(s->nnames + 1, sizeof *names);
    if (!done || !not_done || !names)
        abort();
    st = cf_wait(fs, s->nnames, timeout_of(s), s->return_when, done, &nd,
                 not_done, &nn);
    if (st != CF_OK) {
        obs_status(o, true, st);
    } else {
        for (i = 0; i < nd; i++)
            names[i] = future_name(r, done[i]);
        obs_add(o, "done");
        obs_set(o, names, nd);
        for (i = 0; i < nn; i++)
            names[i] = future_name(r, not_done[i]);
        obs_add(o, "not_done");
        obs_set(o, names, nn);
    }
    free(names);
    free(not_done);
    free(done);
    free(fs);
}

static void do_as_completed(run *r, const sc_stmt *s, obs *o) {
    cf_future **fs = list_futures(r, s, o);
    cf_as_completed *it;
    cf_status st;

    if (!fs)
        return;
    st = cf_as_completed_new(fs, s->nnames, timeout_of(s), &it);
    if (st == CF_OK) {
        r->slots[s->name].ac = it;
        obs_add(o, "ok");
    } else {
        obs_status(o, true, st);
    }
    free(fs);
}

/* One next() of an as_completed iterator: true if it gave a future. */
static bool ac_next(run *r, slot *sl, const char **name, obs *o, bool *stop) {
    const cf_error *e = NULL;
    cf_future *f;
    cf_status st;

    *stop = false;
    if (!sl->ac || sl->closed) {
        *stop = true;
        return false;
    }
    st = cf_as_completed_next(sl->ac, &f, &e);
    if (st == CF_OK) {
        *name = future_name(r, f);
        cf_future_release(f);
        return true;
    }
    if (st == CF_STOP)
        *stop = true;
    else
        obs_cf_error(o, true, e, st);
    return false;
}

/* One next() of a map iterator: true if it gave a value (in *v). */
static bool map_next(slot *sl, cf_value *v, obs *o, bool *stop) {
    const cf_error *e = NULL;
    cf_status st;

    *stop = false;
    if (!sl->map || sl->closed) {
        *stop = true;
        return false;
    }
    st = cf_map_next(sl->map, v, &e);
    if (st == CF_OK)
        return true;
    if (st == CF_STOP)
        *stop = true;
    else if (st == CF_CANCELLED || st == CF_TIMEOUT)
        obs_status(o, true, st);
    else
        obs_cf_error(o, true, e, st);
    return false;
}

static void do_next(run *r, const sc_stmt *s, obs *o, bool rest) {
    slot *sl = &r->slots[s->name];
    const char **names = NULL, *name;
    size_t n = 0, cap = 0;
    obs end = {0};
    bool stop, got;

    if (r->sc->kinds[s->name] == SC_KIND_AS_COMPLETED) {
        do {
            got = ac_next(r, sl, &name, &end, &stop);
            if (got && n == cap) {
                cap = cap ? cap * 2 : 8;
                names = realloc(names, cap * sizeof *names);
                if (!names)
                    abort();
            }
            if (got)
                names[n++] = name;
        } while (rest && got);
        if (rest)
            obs_set(o, names, n);
        else if (got)
            obs_add(o, "%s", name);
    } else {
        do {
            cf_value v = cf_none();
            got = map_next(sl, &v, &end, &stop);
            if (got) {
                obs_value(o, &v);
                cf_value_free(&v);
            }
        } while (rest && got);
    }
    if (stop)
        obs_add(o, "stop");
    else
        obs_append(o, &end);
    free(end.text);
    free(names);
}

static void do_map(run *r, const sc_stmt *s, obs *o) {
    cf_executor *ex = need_executor(r, o);
    size_t nargs = r->ctx.pool == SC_POOLS_THREAD ? 3 : 2, i, chunk = 1;
    size_t buffersize = 0;
    cf_value *args;
    cf_map_iter *it;
    cf_status st;

    if (!ex)
        return;
    args = calloc(s->nprograms * nargs + 1, sizeof *args);
    if (!args)
        abort();
    for (i = 0; i < s->nprograms; i++)
        task_args(r, s->programs[i], args + i * nargs);
    if (s->has_chunksize)
        chunk = s->chunksize < 0 ? 0 : (size_t)s->chunksize;
    if (s->has_buffersize && !s->buffersize_none)
        buffersize = s->buffersize > 0 ? (size_t)s->buffersize : (size_t)-1;
    st = cf_map(ex, sc_task, s->nprograms ? args : NULL, s->nprograms, nargs,
                timeout_of(s), chunk, buffersize, &it);
    if (st == CF_OK) {
        r->slots[s->name].map = it;
        obs_add(o, "ok");
    } else {
        obs_cf_error(o, true, cf_last_error(), st);
    }
    free(args);
}

static void do_close(run *r, const sc_stmt *s, obs *o) {
    slot *sl = &r->slots[s->name];

    if (!sl->closed) {
        if (sl->map)
            cf_map_close(sl->map);
        if (sl->ac)
            cf_as_completed_free(sl->ac);
        sl->map = NULL;
        sl->ac = NULL;
        sl->closed = true;
    }
    obs_add(o, "ok");
}

/* ---- Statements --------------------------------------------------------- */

static void observe(run *r, const sc_stmt *s, obs *o) {
    switch (s->verb) {
    case SC_POOL:
    case SC_WITH:
        do_pool(r, s, o);
        break;
    case SC_END:
        do_shutdown(r, true, false, o);
        break;
    case SC_SHUTDOWN:
        do_shutdown(r, s->wait, s->cancel_futures, o);
        break;
    case SC_FUTURE:
        do_new_future(r, s, o);
        break;
    case SC_SET_RUNNING:
    case SC_SET_RESULT:
    case SC_SET_EXCEPTION:
        do_set(r, s, o);
        break;
    case SC_SUBMIT:
        do_submit(r, s, o);
        break;
    case SC_CANCEL:
    case SC_CANCELLED:
    case SC_RUNNING:
    case SC_DONE:
        do_query(r, s, o);
        break;
    case SC_RESULT:
    case SC_EXCEPTION:
        do_result(r, s, o);
        break;
    case SC_CALLBACK:
        do_callback(r, s, o);
        break;
    case SC_CALLBACKS:
        do_callbacks(r, s, o);
        break;
    case SC_WAIT:
        do_wait(r, s, o);
        break;
    case SC_AS_COMPLETED:
        do_as_completed(r, s, o);
        break;
    case SC_NEXT:
    case SC_REST:
        do_next(r, s, o, s->verb == SC_REST);
        break;
    case SC_MAP:
        do_map(r, s, o);
        break;
    case SC_CLOSE:
        do_close(r, s, o);
        break;
    case SC_OPEN:
        sc_gate_open(r->ctx.folder, s->gate);
        obs_add(o, "ok");
        break;
    case SC_AWAIT:
        sc_gate_wait(r->ctx.folder, s->gate);
        obs_add(o, "ok");
        break;
    }
}

static void tell(run *r, int kind, int value) {
    sc_msg m;
    ssize_t n;

    m.kind = kind;
    m.value = value;
    do
        n = write(r->fd, &m, sizeof m);
    while (n < 0 && errno == EINTR);
}

/* Runs statement i: observes, prints, checks. */
static void run_stmt(run *r, size_t i) {
    const sc_stmt *s = &r->sc->stmts[i];
    const char *crash = getenv("CF_SCENARIO_TEST_KILL_LINE");
    const char *shown;
    obs o = {0};
    bool match = true;

    tell(r, SC_MSG_LINE, (int)i);
    if (crash && atoi(crash) == s->line)
        kill(getpid(), SIGKILL); /* a test of the watchdog */
    observe(r, s, &o);
    if (!o.text)
        obs_add(&o, "?");
    shown = o.text;
    if (s->expected) {
        char saved = '\0';
        match = strcmp(s->expected, o.text) == 0;
        if (!match && o.has_err) {
            saved = o.text[o.short_len];
            o.text[o.short_len] = '\0';
            match = strcmp(s->expected, o.text) == 0;
            if (!match)
                o.text[o.short_len] = saved;
        }
    }
    if (!r->opt->quiet) {
        printf("%d: %s => %s\n", s->line, s->text, shown);
        fflush(stdout);
    }
    if (!match && !r->opt->trace_only) {
        fprintf(stderr, "%s:%d: expected %s, got %s\n", r->sc->file, s->line,
                s->expected, o.text);
        fflush(stderr);
        r->failures++;
        tell(r, SC_MSG_FAILED, r->failures);
    }
    free(o.text);
}

/* ---- The end ------------------------------------------------------------ */

static void finish_deadlock(run *r) {
    const cf_scenario *sc = r->sc;
    cf_future **fs = calloc(sc->ndeadlock + 1, sizeof *fs);
    const char **names = calloc(sc->ndeadlock + 1, sizeof *names);
    cf_future **done = calloc(sc->ndeadlock + 1, sizeof *done);
    size_t i, n = 0, nd = 0;
    bool ok = true;
    obs o = {0};

    if (!fs || !names || !done)
        abort();
    for (i = 0; i < sc->ndeadlock; i++) {
        names[i] = sc->names[sc->deadlock[i]];
        fs[n] = future_of(r, sc->deadlock[i]);
        if (!fs[n]) {
            fprintf(stderr,
                    "%s:%d: deadlock not reproduced: '%s' was never "
                    "made\n",
                    sc->file, sc->deadlock_line, names[i]);
            ok = false;
        } else {
            n++;
        }
    }
    if (ok) {
        cf_wait(fs, n, 1.0, CF_ALL_COMPLETED, done, &nd, NULL, NULL);
        for (i = 0; i < nd; i++)
            names[i] = future_name(r, done[i]);
        if (nd) {
            obs_set(&o, names, nd);
            fprintf(stderr, "%s:%d: deadlock not reproduced: %s finished\n",
                    sc->file, sc->deadlock_line, o.text);
            ok = false;
        }
    }
    if (ok) {
        for (i = 0; i < sc->ndeadlock; i++)
            names[i] = sc->names[sc->deadlock[i]];
        obs_set(&o, names, sc->ndeadlock);
        if (!r->opt->quiet)
            printf("# deadlock reproduced %s\n", o.text);
    }
    fflush(stdout);
    fflush(stderr);
    tell(r, SC_MSG_DEADLOCK, ok);
    for (;;)
        pause(); /* the watchdog kills this process group */
}

static void finish(run *r) {
    const cf_scenario *sc = r->sc;
    cf_executor *ex = executor(r);
    size_t i;

    tell(r, SC_MSG_FINISH, 0);
    for (i = 0; i < sc->ngates; i++)
        sc_gate_open(r->ctx.folder, sc->gates[i]);
    for (i = 0; i < sc->nnames; i++) {
        if (r->slots[i].map)
            cf_map_close(r->slots[i].map);
        if (r->slots[i].ac)
            cf_as_completed_free(r->slots[i].ac);
    }
    if (ex && cf_executor_free(ex) != CF_OK)
        fprintf(stderr, "%s: cf_executor_free failed\n", sc->file);
    pthread_mutex_lock(&r->ctx.lock);
    r->ctx.ex = NULL;
    pthread_mutex_unlock(&r->ctx.lock);
    for (i = 0; i < sc->nnames; i++) {
        cf_future *f = future_of(r, (int)i);
        if (f)
            cf_future_release(f);
        future_set(r, (int)i, NULL);
    }
    while (r->cbs) {
        cb_ctx *next = r->cbs->next;
        free(r->cbs);
        r->cbs = next;
    }
    if (!r->opt->quiet)
        printf("# end\n");
    fflush(stdout);
}

static bool ctx_init(run *r, const cf_scenario *sc, sc_pools pool,
                     const char *folder) {
    pthread_condattr_t ca;

    memset(&r->ctx, 0, sizeof r->ctx);
    r->ctx.sc = sc;
    r->ctx.pool = pool;
    r->ctx.folder = folder;
    r->ctx.futures = calloc(sc->nnames + 1, sizeof *r->ctx.futures);
    r->slots = calloc(sc->nnames + 1, sizeof *r->slots);
    if (!r->ctx.futures || !r->slots)
        return false;
    pthread_mutex_init(&r->ctx.lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->ctx.cond, &ca);
    pthread_condattr_destroy(&ca);
    return true;
}

int sc_run(const cf_scenario *sc, sc_pools pool, const char *folder,
           const sc_options *opt, int fd) {
    run r;
    size_t i;

    memset(&r, 0, sizeof r);
    r.sc = sc;
    r.opt = opt;
    r.fd = fd;
    if (!ctx_init(&r, sc, pool, folder) ||
        (pool == SC_POOLS_PROCESS && !sc_task_shared_init())) {
        fprintf(stderr, "%s: cannot set the run up: out of memory\n",
                sc->file);
        return 3;
    }
    if (!opt->quiet) {
        printf("# %s on %s\n", sc->file, sc_pool_name(pool));
        fflush(stdout);
    }
    for (i = 0; i < sc->nstmts; i++)
        run_stmt(&r, i);
    if (sc->ndeadlock)
        finish_deadlock(&r);
    finish(&r);
    pthread_cond_destroy(&r.ctx.cond);
    pthread_mutex_destroy(&r.ctx.lock);
    free(r.ctx.calls);
    free(r.ctx.futures);
    free(r.slots);
    return r.failures ? 1 : 0;
}
