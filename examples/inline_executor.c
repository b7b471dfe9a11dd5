/*
 * inline_executor.c -- a third executor, written against cf_executor_new and
 * cf_executor_ops the way a Python program subclasses the abstract Executor
 * (Python 3.2 docs, section 16.4.1: "An abstract class that provides methods
 * to execute calls asynchronously. It should not be used directly, but
 * through its concrete subclasses."):
 *
 *     class InlineExecutor(Executor):
 *         def submit(self, fn, *args):
 *             f = Future()
 *             if f.set_running_or_notify_cancel():
 *                 try:
 *                     f.set_result(fn(*args))
 *                 except Exception as e:
 *                     f.set_exception(e)
 *             return f
 *
 * It runs each call in the caller's thread, inside submit (cf_work_run), in a
 * few dozen lines; the library supplies map, wait, as_completed and the
 * `with` block on top, as Executor does in Python. The program shows:
 *
 *  1. The same code -- submit, map, wait, as_completed -- runs unchanged on
 *     the inline executor and on a thread pool.
 *  2. The teaching contrast: a future from the inline executor is already
 *     done when cf_submit returns, and its call ran in the caller's thread;
 *     a thread pool's future is not done until a worker runs it.
 *  3. The docs' second deadlock example (section 16.4.2):
 *
 *         def wait_on_future():
 *             f = executor.submit(pow, 5, 2)
 *             # This will never complete because there is only one worker
 *             # thread and it is executing this function.
 *             print(f.result())
 *
 *         executor = ThreadPoolExecutor(max_workers=1)
 *         executor.submit(wait_on_future)
 *
 *     does NOT deadlock on the inline executor: the inner submit runs
 *     pow(5, 2) at once, so f.result() is 25 already. That is exactly why a
 *     pool with one worker deadlocks there: its only worker is the one
 *     waiting, so the inner call can never start. The program shows this
 *     with a bounded result() inside the pool's task, which times out (it
 *     cannot do otherwise), instead of hanging as the docs' code does.
 *
 * The program checks every result and exits non-zero if one is wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include "cfutures.h"
#include "common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * The inline executor
 * ====================================================================== */

struct inline_executor {
    pthread_mutex_t lock; /* guards running and shut; the only lock */
    pthread_cond_t idle;  /* broadcast when running drops to 0 */
    size_t running;       /* calls inside submit right now, all threads */
    bool shut;
};

/* The inline calls the current thread is inside, innermost first, so that
 * shutdown(wait) from inside one of its own calls can say CF_DEADLOCK
 * instead of waiting for itself. */
struct inline_frame {
    const struct inline_executor *ex;
    const struct inline_frame *outer;
};
static _Thread_local const struct inline_frame *inline_frames;

/* Runs the call here and now: the future is done when this returns. */
static cf_status inline_submit(void *self, cf_work *work) {
    struct inline_executor *ex = self;
    struct inline_frame frame = {ex, inline_frames};

    pthread_mutex_lock(&ex->lock);
    if (ex->shut) {
        pthread_mutex_unlock(&ex->lock);
        return CF_SHUTDOWN;
    }
    ex->running++;
    pthread_mutex_unlock(&ex->lock);

    inline_frames = &frame;
    cf_work_run(work); /* the call, its outcome and its done callbacks */
    inline_frames = frame.outer;

    pthread_mutex_lock(&ex->lock);
    if (--ex->running == 0)
        pthread_cond_broadcast(&ex->idle);
    pthread_mutex_unlock(&ex->lock);
    return CF_OK;
}

static bool inside_own_call(const struct inline_executor *ex) {
    for (const struct inline_frame *f = inline_frames; f; f = f->outer)
        if (f->ex == ex)
            return true;
    return false;
}

/* Nothing ever waits in a queue, so cancel_futures has nothing to cancel;
 * wait only waits for calls other threads are inside right now. */
static cf_status inline_shutdown(void *self, bool wait, bool cancel_futures) {
    struct inline_executor *ex = self;
    cf_status st = CF_OK;

    (void)cancel_futures;
    pthread_mutex_lock(&ex->lock);
    ex->shut = true;
    if (wait && inside_own_call(ex))
        st = CF_DEADLOCK;
    while (wait && st == CF_OK && ex->running > 0)
        pthread_cond_wait(&ex->idle, &ex->lock);
    pthread_mutex_unlock(&ex->lock);
    return st;
}

static void inline_free(void *self) {
    struct inline_executor *ex = self;

    pthread_cond_destroy(&ex->idle);
    pthread_mutex_destroy(&ex->lock);
    free(ex);
}

static const cf_executor_ops INLINE_OPS = {
    .name = "InlineExecutor",
    .submit = inline_submit,
    .shutdown = inline_shutdown,
    .free = inline_free,
};

/* InlineExecutor(): owned by the caller (cf_executor_free). */
static cf_status inline_executor_new(cf_executor **out) {
    struct inline_executor *ex = calloc(1, sizeof *ex);
    cf_status st = CF_NOMEM;

    if (ex == NULL)
        return CF_NOMEM;
    if (pthread_mutex_init(&ex->lock, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&ex->idle, NULL) != 0)
        goto err_destroy_lock;
    st = cf_executor_new(&INLINE_OPS, ex, out);
    if (st != CF_OK)
        goto err_destroy_idle;
    return CF_OK;

err_destroy_idle:
    pthread_cond_destroy(&ex->idle);
err_destroy_lock:
    pthread_mutex_destroy(&ex->lock);
err_free:
    free(ex);
    return st;
}

/* ======================================================================
 * Task functions
 * ====================================================================== */

/* pow(base, exp) for small ints. */
static void power(cf_call *call) {
    const cf_value *base = cf_arg(call, 0), *exp = cf_arg(call, 1);
    int64_t r = 1;

    if (cf_nargs(call) != 2 || base->type != CF_TYPE_INT ||
        exp->type != CF_TYPE_INT || exp->as.i < 0) {
        cf_raise(call, "TypeError", "power() takes two ints, exp >= 0");
        return;
    }
    for (int64_t i = 0; i < exp->as.i; i++)
        r *= base->as.i;
    cf_return(call, cf_int(r));
}

/* raise ValueError('boom') */
static void boom(cf_call *call) {
    cf_raise(call, "ValueError", "boom");
}

/* A gate a task waits on until the main thread opens it. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t opened;
    bool open;
};

static void gate_open(struct gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->opened);
    pthread_mutex_unlock(&g->lock);
}

static void gate_wait(struct gate *g) {
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->opened, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/*
 * where_am_i(gate): waits for the gate if one is given, then returns the
 * name of the pool thread running it (threading.current_thread().name), or
 * None outside a pool -- here, the main thread.
 */
static void where_am_i(cf_call *call) {
    const cf_value *gate = cf_arg(call, 0);
    const char *name = cf_current_thread_name();
    cf_value v = cf_none();

    if (gate != NULL && gate->type == CF_TYPE_PTR && gate->as.ptr != NULL)
        gate_wait(gate->as.ptr);
    if (name != NULL && cf_value_str(&v, name) != CF_OK) {
        cf_raise(call, "MemoryError", "thread name");
        return;
    }
    cf_return(call, v);
}

/*
 * The docs' wait_on_future(), with the executor and the result() timeout as
 * arguments (the docs use a global executor and timeout=None):
 *     f = executor.submit(pow, 5, 2); return f.result(timeout)
 * A timeout raises TimeoutError, as Python's result() does.
 */
static void wait_on_future(cf_call *call) {
    const cf_value *ex = cf_arg(call, 0), *timeout = cf_arg(call, 1);
    const cf_value args[2] = {cf_int(5), cf_int(2)};
    cf_value result = cf_none();
    cf_future *f;
    cf_status st;

    if (cf_nargs(call) != 2 || ex->type != CF_TYPE_PTR ||
        timeout->type != CF_TYPE_DOUBLE) {
        cf_raise(call, "TypeError", "wait_on_future(executor, timeout)");
        return;
    }
    st = cf_submit(ex->as.ptr, power, args, 2, &f);
    if (st != CF_OK) {
        cf_raise(call, "RuntimeError", "submit: %s", cf_status_name(st));
        return;
    }
    st = cf_future_result(f, timeout->as.d, &result);
    cf_future_release(f);
    if (st == CF_OK)
        cf_return(call, result);
    else if (st == CF_TIMEOUT)
        cf_raise(call, "TimeoutError", "pow(5, 2) did not run within %g s",
                 timeout->as.d);
    else
        cf_raise(call, "RuntimeError", "result: %s", cf_status_name(st));
}

/* ======================================================================
 * Checks
 * ====================================================================== */

/* The future raised an exception of type `type`. */
static bool raised(cf_future *f, const char *type) {
    const cf_error *error = NULL;

    return cf_future_result(f, CF_FOREVER, NULL) == CF_RAISED &&
           cf_future_exception(f, CF_FOREVER, &error) == CF_OK &&
           error != NULL && strcmp(cf_error_type(error), type) == 0;
}

/* ======================================================================
 * 1. The same code on any executor
 * ====================================================================== */

/* executor.submit(pow, 7, 2).result() == 49 */
static void show_submit(cf_executor *ex) {
    const cf_value args[2] = {cf_int(7), cf_int(2)};
    cf_future *f;

    if (!example_must(cf_submit(ex, power, args, 2, &f), "submit"))
        return;
    EXAMPLE_CHECK(example_has_int(f, 49));
    printf("%s: submit(pow, 7, 2).result() = 49\n", cf_executor_name(ex));
    cf_future_release(f);
}

/* list(executor.map(pow, [1, 2, 3, 4, 5], [2, 2, 2, 2, 2])) */
static void show_map(cf_executor *ex) {
    cf_value args[10], v = cf_none();
    cf_map_iter *it;
    int64_t i;

    for (i = 0; i < 5; i++) {
        args[2 * i] = cf_int(i + 1);
        args[2 * i + 1] = cf_int(2);
    }
    if (!example_must(cf_map(ex, power, args, 5, 2, CF_FOREVER, 1, 0, &it),
                      "map"))
        return;
    printf("%s: map(pow, [1, 2, 3, 4, 5], [2, 2, 2, 2, 2]) =",
           cf_executor_name(ex));
    for (i = 1; cf_map_next(it, &v, NULL) == CF_OK; i++) {
        EXAMPLE_CHECK(v.type == CF_TYPE_INT && v.as.i == i * i);
        printf(" %" PRId64, v.as.i);
        cf_value_free(&v);
    }
    printf("\n");
    EXAMPLE_CHECK(i == 6);
    cf_map_close(it);
}

/* Python's repr of the future's outcome: its value, or its exception. */
static void outcome_repr(cf_future *f, char *buf, size_t size) {
    const cf_error *error = NULL;
    cf_value v = cf_none();

    if (cf_future_result(f, CF_FOREVER, &v) == CF_OK)
        cf_value_repr(&v, buf, size);
    else if (cf_future_exception(f, CF_FOREVER, &error) == CF_OK && error)
        snprintf(buf, size, "%s('%s')", cf_error_type(error),
                 cf_error_message(error));
    else
        snprintf(buf, size, "?");
    cf_value_free(&v);
}

/* fs = [submit(pow, 3, 3), submit(boom), submit(pow, 2, 10)]; then wait(fs)
 * and as_completed(fs) over them. */
static void show_wait_and_as_completed(cf_executor *ex) {
    const cf_value a[2] = {cf_int(3), cf_int(3)},
                   b[2] = {cf_int(2), cf_int(10)};
    cf_future *fs[3] = {NULL, NULL, NULL}, *f;
    size_t ndone = 0, nnot_done = 99, yielded = 0;
    cf_as_completed *it;
    char text[64];

    if (!example_must(cf_submit(ex, power, a, 2, &fs[0]), "submit") ||
        !example_must(cf_submit(ex, boom, NULL, 0, &fs[1]), "submit") ||
        !example_must(cf_submit(ex, power, b, 2, &fs[2]), "submit"))
        goto out_release;
    EXAMPLE_CHECK(cf_wait(fs, 3, CF_FOREVER, CF_ALL_COMPLETED, NULL, &ndone,
                          NULL, &nnot_done) == CF_OK);
    EXAMPLE_CHECK(ndone == 3 && nnot_done == 0);
    printf("%s: wait(fs): %zu done, %zu not done\n", cf_executor_name(ex),
           ndone, nnot_done);

    if (!example_must(cf_as_completed_new(fs, 3, CF_FOREVER, &it),
                      "as_completed"))
        goto out_release;
    printf("%s: as_completed(fs) yields", cf_executor_name(ex));
    while (cf_as_completed_next(it, &f, NULL) == CF_OK) {
        outcome_repr(f, text, sizeof text);
        printf("%s %s", yielded++ == 0 ? ":" : ",", text);
        EXAMPLE_CHECK(f == fs[0]   ? example_has_int(f, 27)
                      : f == fs[1] ? raised(f, "ValueError")
                                   : f == fs[2] && example_has_int(f, 1024));
        cf_future_release(f);
    }
    printf("\n");
    EXAMPLE_CHECK(yielded == 3);
    cf_as_completed_free(it);
out_release:
    for (size_t i = 0; i < 3; i++)
        if (fs[i] != NULL)
            cf_future_release(fs[i]);
}

static void show_same_code(cf_executor *ex) {
    show_submit(ex);
    show_map(ex);
    show_wait_and_as_completed(ex);
}

/* ======================================================================
 * 2. Done when submit returns
 * ====================================================================== */

/* Inline: done at once, and the call ran in this (the main) thread. */
static void show_inline_done_at_submit(cf_executor *inline_ex) {
    cf_value where = cf_none();
    cf_future *f;
    bool done;

    if (!example_must(cf_submit(inline_ex, where_am_i, NULL, 0, &f), "submit"))
        return;
    done = cf_future_done(f);
    EXAMPLE_CHECK(done);
    EXAMPLE_CHECK(cf_future_result(f, 0, &where) == CF_OK);
    EXAMPLE_CHECK(where.type == CF_TYPE_NONE);
    printf("InlineExecutor: done() right after submit: %s; ran in the "
           "caller's thread: %s\n",
           done ? "True" : "False",
           where.type == CF_TYPE_NONE ? "True" : "False");
    cf_value_free(&where);
    cf_future_release(f);
}

/* Thread pool: the call waits on a gate, so the future is not done when
 * submit returns; opening the gate lets a worker finish it. */
static void show_pool_not_done_at_submit(cf_executor *pool) {
    struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                        false};
    const cf_value arg = cf_ptr(&gate);
    cf_value where = cf_none();
    cf_future *f;
    bool done;

    if (!example_must(cf_submit(pool, where_am_i, &arg, 1, &f), "submit"))
        goto out_destroy_gate;
    done = cf_future_done(f);
    EXAMPLE_CHECK(!done);
    gate_open(&gate);
    EXAMPLE_CHECK(cf_future_result(f, CF_FOREVER, &where) == CF_OK);
    EXAMPLE_CHECK(where.type == CF_TYPE_STR &&
                  strncmp(where.as.buf.data, "ThreadPoolExecutor-", 19) == 0);
    printf("ThreadPoolExecutor: done() right after submit: %s; ran in "
           "worker %s\n",
           done ? "True" : "False",
           where.type == CF_TYPE_STR ? where.as.buf.data : "?");
    cf_value_free(&where);
    cf_future_release(f);
out_destroy_gate:
    pthread_cond_destroy(&gate.opened);
    pthread_mutex_destroy(&gate.lock);
}

/* ======================================================================
 * 3. The docs' deadlock example 2
 * ====================================================================== */

/* executor.submit(wait_on_future) with result(timeout=None) inside: on the
 * inline executor the inner pow(5, 2) has run before result() is asked. */
static void show_inline_no_deadlock(cf_executor *inline_ex) {
    const cf_value args[2] = {cf_ptr(inline_ex), cf_double(CF_FOREVER)};
    cf_future *f;

    if (!example_must(cf_submit(inline_ex, wait_on_future, args, 2, &f),
                      "submit"))
        return;
    EXAMPLE_CHECK(cf_future_done(f));
    EXAMPLE_CHECK(example_has_int(f, 25));
    printf("InlineExecutor: wait_on_future() -> 25: the inner submit ran "
           "pow(5, 2) at once, no deadlock\n");
    cf_future_release(f);
}

/*
 * The same task on ThreadPoolExecutor(max_workers=1), with a bounded
 * result() so the program ends: the only worker is running wait_on_future,
 * so pow(5, 2) cannot start until it returns, and the wait must time out.
 * With the docs' timeout=None it would wait forever. After the outer call
 * gives up, the worker is free and runs pow(5, 2); freeing the pool waits.
 */
static void show_pool_deadlock(void) {
    cf_thread_pool_options options;
    cf_executor *pool;
    cf_value args[2];
    cf_future *f;

    cf_thread_pool_options_init(&options);
    options.max_workers = 1;
    if (!example_must(cf_thread_pool_new(&options, &pool),
                      "cf_thread_pool_new"))
        return;
    args[0] = cf_ptr(pool);
    args[1] = cf_double(0.1);
    if (!example_must(cf_submit(pool, wait_on_future, args, 2, &f), "submit"))
        goto out_free_pool;
    EXAMPLE_CHECK(raised(f, "TimeoutError"));
    printf("ThreadPoolExecutor(max_workers=1): wait_on_future() -> "
           "TimeoutError after 0.1 s: its only worker is the one waiting; "
           "with timeout=None it deadlocks\n");
    cf_future_release(f);
out_free_pool:
    example_must(cf_executor_free(pool), "cf_executor_free");
}

/* ======================================================================
 * main
 * ====================================================================== */

static int run(void) {
    cf_executor *inline_ex, *pool;

    if (!example_must(inline_executor_new(&inline_ex), "inline_executor_new"))
        return EXIT_FAILURE;
    if (!example_must(cf_thread_pool_new(NULL, &pool), "cf_thread_pool_new"))
        goto out_free_inline;

    show_same_code(inline_ex);
    show_same_code(pool);
    show_inline_done_at_submit(inline_ex);
    show_pool_not_done_at_submit(pool);
    show_inline_no_deadlock(inline_ex);
    show_pool_deadlock();

    example_must(cf_executor_free(pool), "cf_executor_free");
out_free_inline:
    example_must(cf_executor_free(inline_ex), "cf_executor_free");
    return example_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "A third executor written against cf_executor_ops: it runs each\n"
        "call in the caller's thread, inside submit. Shows that submit,\n"
        "map, wait and as_completed work on it as on a thread pool; that\n"
        "its futures are done as soon as submit returns; and that the\n"
        "docs' deadlock example (a task that submits to its own executor\n"
        "and waits) does not deadlock on it, while it does on a thread\n"
        "pool with one worker. Exits 1 if a check fails.\n",
        run);
}
