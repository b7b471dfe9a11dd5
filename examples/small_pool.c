/*
 * small_pool.c -- SmallPool in use: an executor written outside the library
 * (small_pool_executor.c, on cfutures.h alone), as a Python program
 * subclasses the abstract Executor with a pool of its own. The program
 * shows:
 *
 *  1. The library's submit, map, wait and as_completed work on it as on
 *     the pools the library brings.
 *
 *  2. shutdown(wait=True, cancel_futures=True) while its only thread is
 *     busy: the running call finishes, the queued ones are cancelled -- and
 *     their done callbacks run in the thread calling shutdown, after the
 *     pool let go of its lock (the header's cancel-at-shutdown pattern) --
 *     and no cancelled call ever runs.
 *
 * The program checks every result and exits non-zero if one is wrong.
 */
#define _POSIX_C_SOURCE 200809L

#include "cfutures.h"
#include "common.h"
#include "small_pool_executor.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* square(n) */
static void square(cf_call *call) {
    const cf_value *n = cf_arg(call, 0);
    if (cf_nargs(call) != 1 || n->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "square() takes one int");
        return;
    }
    cf_return(call, cf_int(n->as.i * n->as.i));
}

/* ---- 1. the library's calls on it --------------------------------------- */

static void show_submit_map_wait(cf_executor *ex) {
    cf_value args[5], v = cf_none();
    cf_future *fs[3] = {NULL, NULL, NULL}, *f;
    cf_map_iter *it;
    cf_as_completed *ac;
    size_t ndone = 0, yielded = 0;

    for (int64_t i = 0; i < 5; i++)
        args[i] = cf_int(i + 1);
    if (!example_must(cf_map(ex, square, args, 5, 1, CF_FOREVER, 1, 0, &it),
                      "map"))
        return;
    printf("SmallPool: map(square, [1, 2, 3, 4, 5]) =");
    for (int64_t i = 1; cf_map_next(it, &v, NULL) == CF_OK; i++) {
        EXAMPLE_CHECK(v.type == CF_TYPE_INT && v.as.i == i * i);
        printf(" %" PRId64, v.as.i);
        cf_value_free(&v);
    }
    printf("\n");
    cf_map_close(it);

    for (int i = 0; i < 3; i++)
        if (!example_must(cf_submit(ex, square, &args[i], 1, &fs[i]),
                          "submit"))
            goto out_release;
    EXAMPLE_CHECK(cf_wait(fs, 3, CF_FOREVER, CF_ALL_COMPLETED, NULL, &ndone,
                          NULL, NULL) == CF_OK &&
                  ndone == 3);
    if (!example_must(cf_as_completed_new(fs, 3, CF_FOREVER, &ac),
                      "as_completed"))
        goto out_release;
    while (cf_as_completed_next(ac, &f, NULL) == CF_OK) {
        yielded++;
        cf_future_release(f);
    }
    cf_as_completed_free(ac);
    EXAMPLE_CHECK(yielded == 3);
    EXAMPLE_CHECK(example_has_int(fs[0], 1) && example_has_int(fs[1], 4) &&
                  example_has_int(fs[2], 9));
    printf("SmallPool: wait(fs) and as_completed(fs) over 3 submits: %zu "
           "done, %zu yielded\n",
           ndone, yielded);
out_release:
    for (int i = 0; i < 3; i++)
        if (fs[i] != NULL)
            cf_future_release(fs[i]);
}

/* ---- 2. cancel_futures while busy ----------------------------------------
 */

/* A gate the busy call waits on until the main thread opens it. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool started, open;
};

/* busy(gate): says it started, waits for the gate, returns 1. */
static void busy(cf_call *call) {
    struct gate *g = cf_arg(call, 0)->as.ptr;
    pthread_mutex_lock(&g->lock);
    g->started = true;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    cf_return(call, cf_int(1));
}

static void gate_open(struct gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* A thread shutting the pool down with wait and cancel_futures, so that
 * main can open the gate while the shutdown waits; it counts the
 * cancelled calls whose done callbacks ran in it. */
struct shutter {
    cf_executor *ex;
    pthread_t self;
    atomic_int cancelled_here;
    cf_status status;
};

static void *shut_down(void *arg) {
    struct shutter *s = arg;
    s->self = pthread_self();
    s->status = cf_executor_shutdown(s->ex, true, true);
    return NULL;
}

static cf_status note_cancel(cf_future *f, void *ctx) {
    struct shutter *s = ctx;
    if (cf_future_cancelled(f) && pthread_equal(pthread_self(), s->self))
        atomic_fetch_add(&s->cancelled_here, 1);
    return CF_OK;
}

static void show_cancel_at_shutdown(void) {
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                     false, false};
    struct shutter s = {NULL, pthread_self(), 0, CF_EINVAL};
    cf_value arg = cf_ptr(&g), three = cf_int(3);
    cf_future *running = NULL, *queued[3] = {NULL, NULL, NULL};
    pthread_t shutter;

    if (!example_must(small_pool_new(1, &s.ex), "small_pool_new"))
        return;
    if (!example_must(cf_submit(s.ex, busy, &arg, 1, &running), "submit"))
        goto out_free;
    pthread_mutex_lock(&g.lock);
    while (!g.started)
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    for (int i = 0; i < 3; i++)
        if (!example_must(cf_submit(s.ex, square, &three, 1, &queued[i]),
                          "submit") ||
            !example_must(
                cf_future_add_done_callback(queued[i], note_cancel, &s),
                "add_done_callback"))
            goto out_free;

    if (pthread_create(&shutter, NULL, shut_down, &s) != 0) {
        example_failures++;
        goto out_free;
    }
    for (int i = 0; i < 3; i++)
        EXAMPLE_CHECK(cf_future_result(queued[i], CF_FOREVER, NULL) ==
                      CF_CANCELLED);
    gate_open(&g);
    pthread_join(shutter, NULL);
    EXAMPLE_CHECK(s.status == CF_OK);
    EXAMPLE_CHECK(example_has_int(running, 1));
    EXAMPLE_CHECK(atomic_load(&s.cancelled_here) == 3);
    printf("SmallPool(1): shutdown(wait=True, cancel_futures=True) while "
           "busy: the running call gave 1, %d queued calls were cancelled, "
           "their callbacks ran in the thread shutting down\n",
           atomic_load(&s.cancelled_here));
out_free:
    gate_open(&g);
    example_must(cf_executor_free(s.ex), "cf_executor_free");
    if (running != NULL)
        cf_future_release(running);
    for (int i = 0; i < 3; i++)
        if (queued[i] != NULL)
            cf_future_release(queued[i]);
}

static int run(void) {
    cf_executor *ex;

    if (!example_must(small_pool_new(2, &ex), "small_pool_new"))
        return EXIT_FAILURE;
    show_submit_map_wait(ex);
    example_must(cf_executor_free(ex), "cf_executor_free");
    show_cancel_at_shutdown();
    return example_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "SmallPool, an executor written outside cfutures on its public\n"
        "header alone: a fixed pool of threads and one FIFO linked through\n"
        "each work's slot. Shows the library's submit, map, wait and\n"
        "as_completed on it, and shutdown with cancel_futures while it is\n"
        "busy. Exits 1 if a check fails.\n",
        run);
}
