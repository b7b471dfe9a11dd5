/*
 * Stress: races between the test and the pools, repeated many times.
 * Repeat counts go through test_repeats() so that sanitizer builds can scale
 * them down (CF_TEST_STRESS_SCALE). Each test checks an invariant that must
 * hold whichever side wins each race: a future ends exactly once, every
 * accepted call completes, nothing hangs, no thread is left behind.
 *
 * Every test is a POOL_TEST; tasks count their runs in the arena. On a
 * process pool each pool costs a fork server and its workers, so the tests
 * that make many pools run fewer rounds there (pool_repeats).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <stdatomic.h>

/* ---- helpers ----------------------------------------------------------- */

/* test_repeats(n) on a thread pool, test_repeats(n / process_divisor) on a
 * process pool. */
static long pool_repeats(long n, long process_divisor) {
    return test_repeats(test_process_pool() ? n / process_divisor : n);
}

/* arg0: atomic_int in the arena, to bump; returns arg1. */
static void task_bump(cf_call *call) {
    atomic_int *runs = arena_arg(call, 0);
    atomic_fetch_add(runs, 1);
    cf_return(call, cf_int(cf_arg(call, 1)->as.i));
}

static atomic_int *runs_new(void) {
    return arena_alloc(sizeof(atomic_int));
}

/* ---- cancel racing the worker ------------------------------------------ */

/* stress.cancel-races-pickup: futures cancelled right after submit, while
 * two workers race to pick them up, each end exactly one way (cancelled, or
 * finished with the value), cancel()'s answer agrees, and the task ran once
 * per finished future. */
POOL_TEST(stress_cancel_races_worker_pickup) {
    long n = test_repeats(100000);
    cf_executor *ex = pool_new(2);
    cf_future **fs = malloc((size_t)n * sizeof *fs);
    bool *cancel_said = malloc((size_t)n);
    atomic_int *runs = runs_new();
    long finished = 0, cancelled = 0;
    ASSERT_TRUE(fs && cancel_said);
    for (long i = 0; i < n; i++) {
        cf_value args[2] = {arena_value(runs), cf_int(i)};
        ASSERT_OK(cf_submit(ex, task_bump, args, 2, &fs[i]));
        cancel_said[i] = cf_future_cancel(fs[i]);
    }
    ASSERT_OK(cf_executor_free(ex));
    for (long i = 0; i < n; i++) {
        cf_value v = cf_none();
        ASSERT_TRUE(cf_future_done(fs[i]));
        ASSERT_FALSE(cf_future_running(fs[i]));
        if (cf_future_cancelled(fs[i])) {
            ASSERT_TRUE(cancel_said[i]);
            ASSERT_STATUS(cf_future_result(fs[i], 0, &v), CF_CANCELLED);
            cancelled++;
        } else {
            ASSERT_FALSE(cancel_said[i]);
            ASSERT_OK(cf_future_result(fs[i], 0, &v));
            ASSERT_EQ(v.type, CF_TYPE_INT);
            ASSERT_EQ(v.as.i, i);
            finished++;
        }
        ASSERT_OK(cf_future_release(fs[i]));
    }
    ASSERT_EQ(finished + cancelled, n);
    ASSERT_EQ(atomic_load(runs), finished);
    free(fs);
    free(cancel_said);
    arena_free(runs);
}

/* ---- shutdown racing submit -------------------------------------------- */

enum { SUBMITTERS = 4 };

typedef struct race {
    cf_executor *ex;
    pthread_barrier_t start;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long accepted;    /* CF_OK submits so far, all threads */
    atomic_int *runs; /* in the arena */
} race;

typedef struct submitter {
    pthread_t thread;
    race *r;
    int id;
    cf_future **fs; /* the futures of CF_OK submits */
    long n, cap;
    cf_status bad; /* a status other than CF_OK / CF_SHUTDOWN, if any */
} submitter;

/* Submits until the executor says CF_SHUTDOWN. */
static void *submitter_main(void *arg) {
    submitter *s = (submitter *)arg;
    race *r = s->r;
    pthread_barrier_wait(&r->start);
    for (long i = 0;; i++) {
        cf_value args[2] = {arena_value(r->runs),
                            cf_int(s->id * 1000000L + i)};
        cf_future *f = NULL;
        cf_status st = cf_submit(r->ex, task_bump, args, 2, &f);
        if (st == CF_SHUTDOWN)
            break;
        if (st != CF_OK) {
            s->bad = st;
            break;
        }
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->fs = realloc(s->fs, (size_t)s->cap * sizeof *s->fs);
            ASSERT_NOT_NULL(s->fs);
        }
        s->fs[s->n++] = f;
        pthread_mutex_lock(&r->lock);
        r->accepted++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

/* Waits until the submitters have had `n` submits accepted. */
static void race_wait_accepted(race *r, long n) {
    wait_count(&r->lock, &r->cond, &r->accepted, n, "submits accepted");
}

/* stress.shutdown-races-submit: while four threads submit, shutdown(wait)
 * makes every later submit CF_SHUTDOWN; every submit returns CF_OK or
 * CF_SHUTDOWN, and every accepted call is done when shutdown returns. */
POOL_TEST(stress_shutdown_races_submit) {
    long rounds = pool_repeats(100, 2);
    for (long round = 0; round < rounds; round++) {
        race r;
        submitter s[SUBMITTERS];
        long total = 0;
        memset(&r, 0, sizeof r);
        memset(s, 0, sizeof s);
        r.ex = pool_new(2);
        r.runs = runs_new();
        pthread_mutex_init(&r.lock, NULL);
        pthread_cond_init(&r.cond, NULL);
        ASSERT_EQ(pthread_barrier_init(&r.start, NULL, SUBMITTERS + 1), 0);
        for (int i = 0; i < SUBMITTERS; i++) {
            s[i].r = &r;
            s[i].id = i;
            ASSERT_EQ(
                pthread_create(&s[i].thread, NULL, submitter_main, &s[i]), 0);
        }
        pthread_barrier_wait(&r.start);
        race_wait_accepted(&r, (round % 8) * 4);
        ASSERT_OK(cf_executor_shutdown(r.ex, true, round % 3 == 0));
        bool cancel_futures = round % 3 == 0;
        for (int i = 0; i < SUBMITTERS; i++) {
            ASSERT_EQ(pthread_join(s[i].thread, NULL), 0);
            if (s[i].bad != CF_OK)
                test_fail(__FILE__, __LINE__, "submit returned %s",
                          cf_status_name(s[i].bad));
            for (long k = 0; k < s[i].n; k++) {
                cf_value v = cf_none();
                cf_status st = cf_future_result(s[i].fs[k], 0, &v);
                if (!(st == CF_OK || (cancel_futures && st == CF_CANCELLED)))
                    test_fail(__FILE__, __LINE__,
                              "an accepted call is %s after shutdown",
                              cf_status_name(st));
                if (st == CF_OK)
                    ASSERT_EQ(v.as.i, i * 1000000L + k);
                total += st == CF_OK;
                ASSERT_OK(cf_future_release(s[i].fs[k]));
            }
            free(s[i].fs);
        }
        ASSERT_EQ(atomic_load(r.runs), total);
        ASSERT_OK(cf_executor_free(r.ex));
        arena_free(r.runs);
        pthread_barrier_destroy(&r.start);
        pthread_cond_destroy(&r.cond);
        pthread_mutex_destroy(&r.lock);
    }
}

/* ---- map closed while running ------------------------------------------ */

enum { MAP_ITEMS = 32 };

/* arg0: index, arg1: atomic_int runs[MAP_ITEMS] in the arena; counts,
 * returns 2 * i. */
static void task_map_item(cf_call *call) {
    int64_t i = cf_arg(call, 0)->as.i;
    atomic_int *runs = arena_arg(call, 1);
    atomic_fetch_add(&runs[i], 1);
    cf_return(call, cf_int(2 * i));
}

/* stress.map-close-while-running: closing a map iterator while its calls
 * run, after 0 to 3 results, runs each call at most once, every call when
 * never advanced, and the yielded results are right. */
POOL_TEST(stress_map_closed_while_running) {
    long rounds = pool_repeats(500, 5);
    for (long round = 0; round < rounds; round++) {
        atomic_int *runs = arena_alloc(MAP_ITEMS * sizeof *runs);
        cf_value args[2 * MAP_ITEMS];
        cf_executor *ex = pool_new(3);
        cf_map_iter *it = NULL;
        int advance = (int)(round % 4);
        for (int i = 0; i < MAP_ITEMS; i++) {
            args[2 * i] = cf_int(i);
            args[2 * i + 1] = arena_value(runs);
        }
        ASSERT_OK(cf_map(ex, task_map_item, args, MAP_ITEMS, 2, CF_FOREVER, 1,
                         0, &it));
        for (int i = 0; i < advance; i++) {
            cf_value v = cf_none();
            ASSERT_OK(cf_map_next(it, &v, NULL));
            ASSERT_EQ(v.as.i, 2 * i);
        }
        ASSERT_OK(cf_map_close(it));
        ASSERT_OK(cf_executor_free(ex));
        for (int i = 0; i < MAP_ITEMS; i++) {
            int n = atomic_load(&runs[i]);
            ASSERT_LE(n, 1);
            if (advance == 0 || i < advance)
                ASSERT_EQ(n, 1);
        }
        arena_free(runs);
    }
}

/* ---- as_completed racing completion ------------------------------------ */

/* stress.as-completed-races-completion: as_completed over calls a pool
 * finishes concurrently yields each exactly once. */
POOL_TEST(stress_as_completed_races_completion) {
    long rounds = test_repeats(50);
    enum { N = 200 };
    for (long round = 0; round < rounds; round++) {
        cf_executor *ex = pool_new(4);
        cf_future *fs[N];
        bool seen[N] = {false};
        atomic_int *runs = runs_new();
        cf_as_completed *it = NULL;
        cf_future *got = NULL;
        for (int i = 0; i < N; i++) {
            cf_value args[2] = {arena_value(runs), cf_int(i)};
            ASSERT_OK(cf_submit(ex, task_bump, args, 2, &fs[i]));
        }
        ASSERT_OK(cf_as_completed_new(fs, N, LONG, &it));
        for (int k = 0; k < N; k++) {
            cf_value v = cf_none();
            ASSERT_OK(cf_as_completed_next(it, &got, NULL));
            ASSERT_OK(cf_future_result(got, 0, &v));
            ASSERT_FALSE(seen[v.as.i]);
            ASSERT_TRUE(fs[v.as.i] == got);
            seen[v.as.i] = true;
            ASSERT_OK(cf_future_release(got));
        }
        ASSERT_STATUS(cf_as_completed_next(it, &got, NULL), CF_STOP);
        ASSERT_OK(cf_as_completed_free(it));
        for (int i = 0; i < N; i++)
            ASSERT_OK(cf_future_release(fs[i]));
        ASSERT_OK(cf_executor_free(ex));
        ASSERT_EQ(atomic_load(runs), N);
        arena_free(runs);
    }
}

/* ---- pools made and freed ---------------------------------------------- */

/* stress.pools-free-threads: making, using and freeing many pools leaves no
 * thread behind (memory: the ASan/LSan build checks it). */
POOL_TEST(stress_pools_created_and_freed_leave_no_thread) {
    long rounds = pool_repeats(200, 2);
    settle_runtime_threads();
    int before = count_threads();
    atomic_int *runs = runs_new();
    for (long round = 0; round < rounds; round++) {
        cf_executor *ex = pool_new(4);
        cf_future *fs[8];
        for (int i = 0; i < 8; i++) {
            cf_value args[2] = {arena_value(runs), cf_int(i)};
            ASSERT_OK(cf_submit(ex, task_bump, args, 2, &fs[i]));
        }
        if (round % 2)
            ASSERT_OK(cf_executor_shutdown(ex, false, false));
        for (int i = 0; i < 8; i++) {
            ASSERT_OK(cf_future_result(fs[i], LONG, NULL));
            ASSERT_OK(cf_future_release(fs[i]));
        }
        ASSERT_OK(cf_executor_free(ex));
    }
    ASSERT_EQ(atomic_load(runs), 8 * rounds);
    wait_thread_count(before);
    arena_free(runs);
}
