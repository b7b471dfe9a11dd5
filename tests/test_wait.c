/*
 * cf_wait: the three return conditions with futures already done and with
 * futures a second thread completes later, timeouts, duplicates, output
 * order, argument checks, futures from several executors, and large inputs.
 *
 * Most futures here are hand-made (cf_future_new) so that the test decides
 * when each completes. A "completer" thread (the harness's step_completer)
 * completes them one by one once the test thread is about to wait; before
 * each completion it checks for SHORT that the wait has not returned yet, so
 * a wait that returns too early fails the test.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

/* ---- helpers ----------------------------------------------------------- */

/* Hand-made futures that raised ValueError("bad"), or were cancelled. */
static cf_future *raised_future(void) {
    cf_future *f = pending_future();
    ASSERT_OK(cf_future_set_exception(f, "ValueError", "bad"));
    return f;
}

static cf_future *cancelled_future(void) {
    cf_future *f = pending_future();
    ASSERT_TRUE(cf_future_cancel(f));
    return f;
}

/* The outcome of one cf_wait call. */
typedef struct outcome {
    cf_status status;
    cf_future *done[16], *not_done[16];
    size_t ndone, nnot_done;
    double seconds;
} outcome;

static outcome wait_for(cf_future *const *fs, size_t n, double timeout,
                        cf_return_when when) {
    outcome o;
    memset(&o, 0, sizeof o);
    ASSERT_LE(n, 16);
    o.ndone = o.nnot_done = 99;
    double t0 = test_now();
    o.status = cf_wait(fs, n, timeout, when, o.done, &o.ndone, o.not_done,
                       &o.nnot_done);
    o.seconds = test_now() - t0;
    return o;
}

/* Checks got[0..ngot) is exactly want[0..nwant), in order. */
static void check_list_(const char *file, int line, const char *what,
                        cf_future *const *got, size_t ngot,
                        cf_future *const *want, size_t nwant) {
    if (ngot != nwant)
        test_fail(file, line, "%s has %zu futures, want %zu", what, ngot,
                  nwant);
    for (size_t i = 0; i < ngot; i++)
        if (got[i] != want[i])
            test_fail(file, line, "%s[%zu] is not the future expected", what,
                      i);
}

/* Checks a wait returned CF_OK with exactly these done / not_done lists. */
#define check_outcome(o, want_done, nd, want_not_done, nn)                    \
    do {                                                                      \
        ASSERT_OK((o).status);                                                \
        check_list_(__FILE__, __LINE__, "done", (o).done, (o).ndone,          \
                    want_done, nd);                                           \
        check_list_(__FILE__, __LINE__, "not_done", (o).not_done,             \
                    (o).nnot_done, want_not_done, nn);                        \
    } while (0)

#define NONE ((cf_future *const *)NULL)

/* Waits with the completer running its steps. */
static outcome wait_with(step_completer *c, cf_future *const *fs, size_t n,
                         double timeout, cf_return_when when) {
    step_completer_start(c);
    outcome o = wait_for(fs, n, timeout, when);
    step_completer_join(c);
    return o;
}

static const cf_return_when all_modes[3] = {
    CF_FIRST_COMPLETED, CF_FIRST_EXCEPTION, CF_ALL_COMPLETED};

/* ---- FIRST_COMPLETED --------------------------------------------------- */

/* wait.first-completed.already-done-returns-at-once: with a future already
 * done, FIRST_COMPLETED returns at once although others are pending. */
TEST(wait_first_completed_returns_at_once_if_one_is_done) {
    cf_future *fs[3] = {pending_future(), finished_future(1),
                        pending_future()};
    outcome o = wait_for(fs, 3, CF_FOREVER, CF_FIRST_COMPLETED);
    cf_future *d[] = {fs[1]}, *nd[] = {fs[0], fs[2]};
    check_outcome(o, d, 1, nd, 2);
    ASSERT_TRUE(o.seconds < LONG / 2);
    release_all(fs, 3);
}

/* wait.first-completed.returns-when-one-completes: FIRST_COMPLETED blocks
 * until another thread completes one future, then reports it done. */
TEST(wait_first_completed_returns_when_one_completes) {
    cf_future *fs[2] = {pending_future(), pending_future()};
    step_completer c = {.steps = {{STEP_RESULT, fs[1], NULL}}, .nsteps = 1};
    outcome o = wait_with(&c, fs, 2, CF_FOREVER, CF_FIRST_COMPLETED);
    cf_future *d[] = {fs[1]}, *nd[] = {fs[0]};
    check_outcome(o, d, 1, nd, 1);
    release_all(fs, 2);
}

/* wait.first-completed.cancel-completes: a future cancelled by another
 * thread completes a FIRST_COMPLETED wait. */
TEST(wait_first_completed_returns_when_one_is_cancelled) {
    cf_future *fs[2] = {pending_future(), pending_future()};
    step_completer c = {.steps = {{STEP_CANCEL, fs[0], NULL}}, .nsteps = 1};
    outcome o = wait_with(&c, fs, 2, CF_FOREVER, CF_FIRST_COMPLETED);
    cf_future *d[] = {fs[0]}, *nd[] = {fs[1]};
    check_outcome(o, d, 1, nd, 1);
    release_all(fs, 2);
}

/* ---- FIRST_EXCEPTION --------------------------------------------------- */

/* wait.first-exception.already-raised-returns-at-once: with a future that
 * already raised, FIRST_EXCEPTION returns at once, listing every done
 * future. */
TEST(wait_first_exception_returns_at_once_if_one_raised) {
    cf_future *fs[3] = {pending_future(), raised_future(), finished_future(2)};
    outcome o = wait_for(fs, 3, CF_FOREVER, CF_FIRST_EXCEPTION);
    cf_future *d[] = {fs[1], fs[2]}, *nd[] = {fs[0]};
    check_outcome(o, d, 2, nd, 1);
    ASSERT_TRUE(o.seconds < LONG / 2);
    release_all(fs, 3);
}

/* wait.first-exception.returns-when-one-raises: FIRST_EXCEPTION returns once
 * another thread makes a future raise, although others are pending. */
TEST(wait_first_exception_returns_when_one_raises) {
    cf_future *fs[3] = {pending_future(), finished_future(1),
                        pending_future()};
    step_completer c = {.steps = {{STEP_EXCEPTION, fs[2], NULL}}, .nsteps = 1};
    outcome o = wait_with(&c, fs, 3, CF_FOREVER, CF_FIRST_EXCEPTION);
    cf_future *d[] = {fs[1], fs[2]}, *nd[] = {fs[0]};
    check_outcome(o, d, 2, nd, 1);
    release_all(fs, 3);
}

/* wait.first-exception.cancelled-is-not-exception: a cancelled future does
 * not end a FIRST_EXCEPTION wait while another is pending. */
TEST(wait_first_exception_cancelled_future_is_not_an_exception) {
    cf_future *fs[2] = {cancelled_future(), pending_future()};
    outcome o = wait_for(fs, 2, SHORT, CF_FIRST_EXCEPTION);
    cf_future *d[] = {fs[0]}, *nd[] = {fs[1]};
    check_outcome(o, d, 1, nd, 1);
    ASSERT_TRUE(o.seconds >= SHORT);
    release_all(fs, 2);
}

/* wait.first-exception.none-raised-is-all-completed: when no future raises,
 * FIRST_EXCEPTION waits for all of them, as ALL_COMPLETED. */
TEST(wait_first_exception_none_raised_is_all_completed) {
    cf_future *fs[3] = {pending_future(), pending_future(), pending_future()};
    step_completer c = {.steps = {{STEP_RESULT, fs[0], NULL},
                                  {STEP_CANCEL, fs[2], NULL},
                                  {STEP_RESULT, fs[1], NULL}},
                        .nsteps = 3};
    outcome o = wait_with(&c, fs, 3, CF_FOREVER, CF_FIRST_EXCEPTION);
    check_outcome(o, fs, 3, NONE, 0);
    release_all(fs, 3);
}

/* wait.first-exception.all-done-returns-at-once: when every future is
 * already done and none raised, FIRST_EXCEPTION returns at once. */
TEST(wait_first_exception_returns_at_once_if_all_done) {
    cf_future *fs[2] = {finished_future(1), cancelled_future()};
    outcome o = wait_for(fs, 2, CF_FOREVER, CF_FIRST_EXCEPTION);
    check_outcome(o, fs, 2, NONE, 0);
    ASSERT_TRUE(o.seconds < LONG / 2);
    release_all(fs, 2);
}

/* ---- ALL_COMPLETED ----------------------------------------------------- */

/* wait.all-completed.already-done-returns-at-once: with every future done
 * (finished, raised or cancelled) ALL_COMPLETED returns at once. */
TEST(wait_all_completed_returns_at_once_if_all_done) {
    cf_future *fs[3] = {finished_future(1), raised_future(),
                        cancelled_future()};
    outcome o = wait_for(fs, 3, CF_FOREVER, CF_ALL_COMPLETED);
    check_outcome(o, fs, 3, NONE, 0);
    ASSERT_TRUE(o.seconds < LONG / 2);
    release_all(fs, 3);
}

/* wait.all-completed.waits-for-every-future: ALL_COMPLETED returns only
 * after another thread has completed the last pending future, whatever the
 * way each completes. */
TEST(wait_all_completed_returns_when_the_last_completes) {
    cf_future *fs[4] = {pending_future(), finished_future(0), pending_future(),
                        pending_future()};
    step_completer c = {.steps = {{STEP_EXCEPTION, fs[3], NULL},
                                  {STEP_CANCEL, fs[0], NULL},
                                  {STEP_RESULT, fs[2], NULL}},
                        .nsteps = 3};
    outcome o = wait_with(&c, fs, 4, CF_FOREVER, CF_ALL_COMPLETED);
    check_outcome(o, fs, 4, NONE, 0);
    release_all(fs, 4);
}

/* wait.all-completed.pending-calls-race (bpo-14406): 100 calls that a pool
 * finishes concurrently while ALL_COMPLETED waits are all reported done. */
POOL_TEST(wait_all_completed_pending_calls_race) {
    enum { N = 100 };
    cf_executor *ex = pool_new(8);
    cf_future *fs[N], *done[N], *not_done[N];
    size_t ndone = 0, nnot_done = 99;
    gate proceed;
    gate_init(&proceed);
    for (int i = 0; i < N; i++)
        fs[i] = submit_gated(ex, NULL, &proceed, i);
    gate_open(&proceed);
    ASSERT_OK(cf_wait(fs, N, CF_FOREVER, CF_ALL_COMPLETED, done, &ndone,
                      not_done, &nnot_done));
    ASSERT_EQ(ndone, N);
    ASSERT_EQ(nnot_done, 0);
    for (int i = 0; i < N; i++) {
        ASSERT_TRUE(done[i] == fs[i]);
        ASSERT_TRUE(cf_future_done(fs[i]));
    }
    release_all(fs, N);
    ASSERT_OK(cf_executor_free(ex));
    gate_destroy(&proceed);
}

/* ---- timeouts ---------------------------------------------------------- */

/* wait.timeout.zero-polls: a timeout of 0 (or below) returns the current
 * partition at once, for every return_when. */
TEST(wait_timeout_zero_returns_partition_at_once) {
    cf_future *fs[3] = {pending_future(), finished_future(1),
                        running_future()};
    cf_future *d[] = {fs[1]}, *nd[] = {fs[0], fs[2]};
    double timeouts[] = {0, -1, -INFINITY};
    for (int m = 0; m < 3; m++) {
        for (int t = 0; t < 3; t++) {
            outcome o = wait_for(fs, 3, timeouts[t], all_modes[m]);
            check_outcome(o, d, 1, nd, 2);
            ASSERT_TRUE(o.seconds < LONG / 2);
        }
    }
    release_all(fs, 3);
}

/* wait.timeout.short-returns-no-earlier: a wait that times out returns
 * CF_OK no earlier than its timeout, with the partition unchanged. */
TEST(wait_timeout_returns_no_earlier_with_partition_unchanged) {
    cf_future *fs[3] = {pending_future(), cancelled_future(),
                        running_future()};
    for (int m = 0; m < 3; m++) {
        outcome o;
        if (all_modes[m] == CF_FIRST_COMPLETED) {
            /* a done future would end it at once: wait on the others */
            cf_future *two[2] = {fs[0], fs[2]};
            o = wait_for(two, 2, SHORT, all_modes[m]);
            check_outcome(o, NONE, 0, two, 2);
        } else {
            cf_future *d[] = {fs[1]}, *nd[] = {fs[0], fs[2]};
            o = wait_for(fs, 3, SHORT, all_modes[m]);
            check_outcome(o, d, 1, nd, 2);
        }
        ASSERT_TRUE(o.seconds >= SHORT);
        ASSERT_TRUE(o.seconds < LONG / 2);
    }
    check_pending(fs[0]);
    check_running(fs[2]);
    release_all(fs, 3);
}

/* wait.timeout.nan-is-einval: a NaN timeout is CF_EINVAL and writes
 * nothing. */
TEST(wait_timeout_nan_is_einval) {
    cf_future *fs[2] = {finished_future(1), pending_future()};
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(fs, 2, NAN, all_modes[m]);
        ASSERT_STATUS(o.status, CF_EINVAL);
        ASSERT_EQ(o.ndone, 99);
        ASSERT_EQ(o.nnot_done, 99);
    }
    release_all(fs, 2);
}

/* ---- cancelled futures, duplicates, order ------------------------------ */

/* wait.cancelled-is-done-at-once (deliberate difference, gh-92001): a call
 * cancelled while queued in a pool is done for wait at once, before the pool
 * ever dequeues it. */
POOL_TEST(wait_cancelled_queued_call_is_done_at_once) {
    busy_pool b;
    busy_pool_start(&b, 1);
    cf_future *queued = submit_gated(b.ex, NULL, NULL, 2);
    ASSERT_TRUE(cf_future_cancel(queued));
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(&queued, 1, CF_FOREVER, all_modes[m]);
        check_outcome(o, &queued, 1, NONE, 0);
        ASSERT_TRUE(o.seconds < LONG / 2);
    }
    cf_future *both[2] = {b.running, queued};
    outcome o = wait_for(both, 2, CF_FOREVER, CF_FIRST_COMPLETED);
    check_outcome(o, &queued, 1, &b.running, 1);
    gate_open(&b.proceed);
    ASSERT_OK(cf_future_result(b.running, LONG, NULL));
    release_all(both, 2);
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* wait.duplicates-counted-once: a future listed several times is counted
 * and listed once, in done or in not_done. */
TEST(wait_duplicates_counted_and_listed_once) {
    cf_future *a = finished_future(1), *b = pending_future();
    cf_future *fs[5] = {a, b, a, a, b};
    cf_future *d[] = {a}, *nd[] = {b};
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(fs, 5, 0, all_modes[m]);
        check_outcome(o, d, 1, nd, 1);
    }
    ASSERT_OK(cf_future_release(a));
    ASSERT_OK(cf_future_release(b));
}

/* wait.duplicates-all-completed (bpo-20369): ALL_COMPLETED over a pending
 * future listed twice returns once that future completes. */
TEST(wait_all_completed_with_duplicated_pending_future_returns) {
    cf_future *a = pending_future();
    cf_future *fs[3] = {a, a, a};
    step_completer c = {.steps = {{STEP_RESULT, a, NULL}}, .nsteps = 1};
    outcome o = wait_with(&c, fs, 3, CF_FOREVER, CF_ALL_COMPLETED);
    check_outcome(o, &a, 1, NONE, 0);
    ASSERT_OK(cf_future_release(a));
}

/* wait.output-order-first-listed: done and not_done list the futures in the
 * order they are first listed in fs. */
TEST(wait_lists_futures_in_first_listed_order) {
    cf_future *d3 = finished_future(3), *d1 = raised_future(),
              *d2 = cancelled_future();
    cf_future *p2 = pending_future(), *p1 = running_future();
    cf_future *fs[7] = {d3, p2, d1, p2, d2, p1, d3};
    cf_future *d[] = {d3, d1, d2}, *nd[] = {p2, p1};
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(fs, 7, 0, all_modes[m]);
        check_outcome(o, d, 3, nd, 2);
    }
    cf_future *all[5] = {d3, d1, d2, p2, p1};
    release_all(all, 5);
}

/* ---- optional outputs and arguments ------------------------------------ */

/* wait.outputs-optional: done, not_done and the counts may each be NULL;
 * the counts given are still written. */
TEST(wait_null_outputs_allowed) {
    cf_future *fs[3] = {finished_future(1), pending_future(),
                        finished_future(2)};
    cf_future *done[3];
    size_t ndone = 99, nnot_done = 99;
    ASSERT_OK(
        cf_wait(fs, 3, 0, CF_ALL_COMPLETED, NULL, &ndone, NULL, &nnot_done));
    ASSERT_EQ(ndone, 2);
    ASSERT_EQ(nnot_done, 1);
    ASSERT_OK(cf_wait(fs, 3, 0, CF_ALL_COMPLETED, NULL, NULL, NULL, NULL));
    ndone = 99;
    ASSERT_OK(cf_wait(fs, 3, 0, CF_FIRST_COMPLETED, done, &ndone, NULL, NULL));
    ASSERT_EQ(ndone, 2);
    ASSERT_TRUE(done[0] == fs[0] && done[1] == fs[2]);
    nnot_done = 99;
    ASSERT_OK(
        cf_wait(fs, 3, 0, CF_FIRST_EXCEPTION, NULL, NULL, done, &nnot_done));
    ASSERT_EQ(nnot_done, 1);
    ASSERT_TRUE(done[0] == fs[1]);
    release_all(fs, 3);
}

/* wait.empty-returns-at-once: n == 0 returns CF_OK at once with nothing,
 * fs NULL or not, for every return_when. */
TEST(wait_empty_returns_nothing_at_once) {
    cf_future *f = pending_future();
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(NULL, 0, CF_FOREVER, all_modes[m]);
        check_outcome(o, NONE, 0, NONE, 0);
        o = wait_for(&f, 0, CF_FOREVER, all_modes[m]);
        check_outcome(o, NONE, 0, NONE, 0);
        ASSERT_TRUE(o.seconds < LONG / 2);
    }
    ASSERT_OK(cf_future_release(f));
}

/* wait.null-fs-is-einval: fs NULL with n > 0 is CF_EINVAL. */
TEST(wait_null_fs_is_einval) {
    outcome o = wait_for(NULL, 2, 0, CF_ALL_COMPLETED);
    ASSERT_STATUS(o.status, CF_EINVAL);
    ASSERT_EQ(o.ndone, 99);
    ASSERT_EQ(o.nnot_done, 99);
}

/* wait.null-element-is-einval: a NULL future in fs is CF_EINVAL, also after
 * a done one. */
TEST(wait_null_element_is_einval) {
    cf_future *fs[3] = {finished_future(1), NULL, pending_future()};
    for (int m = 0; m < 3; m++) {
        outcome o = wait_for(fs, 3, 0, all_modes[m]);
        ASSERT_STATUS(o.status, CF_EINVAL);
        ASSERT_EQ(o.ndone, 99);
    }
    ASSERT_OK(cf_future_release(fs[0]));
    ASSERT_OK(cf_future_release(fs[2]));
}

/* wait.invalid-return-when-is-einval (deliberate difference): an unknown
 * return_when is CF_EINVAL even when every future is already done. */
TEST(wait_invalid_return_when_is_einval) {
    cf_future *fs[2] = {finished_future(1), finished_future(2)};
    int bad[] = {0, 4, -1, 100};
    for (int i = 0; i < 4; i++) {
        outcome o = wait_for(fs, 2, 0, (cf_return_when)bad[i]);
        ASSERT_STATUS(o.status, CF_EINVAL);
        ASSERT_EQ(o.ndone, 99);
        o = wait_for(NULL, 0, 0, (cf_return_when)bad[i]);
        ASSERT_STATUS(o.status, CF_EINVAL);
    }
    release_all(fs, 2);
}

/* ---- several executors, many futures ----------------------------------- */

/* wait.mixed-executors: futures from two pools and a hand-made one may be
 * waited on together. */
POOL_TEST(wait_mixes_futures_of_two_executors_and_hand_made) {
    cf_executor *one = pool_new(1), *two = pool_new(2);
    gate g1, g2;
    gate_init(&g1);
    gate_init(&g2);
    cf_future *fs[3] = {submit_gated(one, NULL, &g1, 1), pending_future(),
                        submit_gated(two, NULL, &g2, 2)};
    step_completer c = {.steps = {{STEP_OPEN_GATE, NULL, &g2},
                                  {STEP_RESULT, fs[1], NULL},
                                  {STEP_OPEN_GATE, NULL, &g1}},
                        .nsteps = 3};
    outcome o = wait_with(&c, fs, 3, CF_FOREVER, CF_ALL_COMPLETED);
    check_outcome(o, fs, 3, NONE, 0);
    release_all(fs, 3);
    ASSERT_OK(cf_executor_free(one));
    ASSERT_OK(cf_executor_free(two));
    gate_destroy(&g1);
    gate_destroy(&g2);
}

/* wait.many-futures: a wait over 100 000 distinct done futures lists every
 * one, in order (its cost is measured by the benchmarks). */
TEST(wait_over_many_done_futures) {
    enum { N = 100000 };
    cf_future **fs = malloc(N * sizeof *fs), **done = malloc(N * sizeof *fs);
    size_t ndone = 0, nnot_done = 99;
    ASSERT_TRUE(fs && done);
    for (size_t i = 0; i < N; i++)
        fs[i] = i % 3 == 0 ? cancelled_future() : finished_future((int64_t)i);
    for (int m = 0; m < 3; m++) {
        ASSERT_OK(cf_wait(fs, N, CF_FOREVER, all_modes[m], done, &ndone, NULL,
                          &nnot_done));
        ASSERT_EQ(ndone, N);
        ASSERT_EQ(nnot_done, 0);
        for (size_t i = 0; i < N; i++)
            ASSERT_TRUE(done[i] == fs[i]);
    }
    release_all(fs, N);
    free(fs);
    free(done);
}

/* wait.many-duplicates: a wait over 100 000 entries naming 1000 futures,
 * half done, lists each future once in first-listed order. */
TEST(wait_over_many_duplicated_futures) {
    enum { N = 100000, DISTINCT = 1000 };
    cf_future *distinct[DISTINCT];
    cf_future **fs = malloc(N * sizeof *fs), **done = malloc(N * sizeof *fs),
              **not_done = malloc(N * sizeof *fs);
    size_t ndone = 0, nnot_done = 0;
    ASSERT_TRUE(fs && done && not_done);
    for (size_t i = 0; i < DISTINCT; i++)
        distinct[i] = i % 2 ? pending_future() : finished_future((int64_t)i);
    for (size_t i = 0; i < N; i++)
        fs[i] = distinct[(i * 7) % DISTINCT];
    ASSERT_OK(cf_wait(fs, N, 0, CF_ALL_COMPLETED, done, &ndone, not_done,
                      &nnot_done));
    ASSERT_EQ(ndone, DISTINCT / 2);
    ASSERT_EQ(nnot_done, DISTINCT / 2);
    /* first-listed order: fs[0..DISTINCT) names each future once */
    size_t d = 0, nd = 0;
    for (size_t i = 0; i < DISTINCT; i++) {
        if (cf_future_done(fs[i]))
            ASSERT_TRUE(done[d++] == fs[i]);
        else
            ASSERT_TRUE(not_done[nd++] == fs[i]);
    }
    release_all(distinct, DISTINCT);
    free(fs);
    free(done);
    free(not_done);
}
