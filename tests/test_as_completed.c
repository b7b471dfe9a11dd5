/*
 * cf_as_completed_*: the iterator over futures as they complete. Already-done
 * futures come first, the others in completion order, each distinct future
 * once; CF_STOP at the end; the timeout counts from cf_as_completed_new and
 * its error reads "N (of M) futures unfinished"; yielded futures are new
 * references.
 *
 * Futures are hand-made (cf_future_new), so the test thread decides when
 * each completes, except where a pool or a second thread is the point.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

/* ---- helpers ----------------------------------------------------------- */

static cf_as_completed *iter_new(cf_future *const *fs, size_t n,
                                 double timeout) {
    cf_as_completed *it = NULL;
    ASSERT_OK(cf_as_completed_new(fs, n, timeout, &it));
    ASSERT_NOT_NULL(it);
    return it;
}

/* Checks the next future is want (and releases the reference it gave). */
static void expect_next_(const char *file, int line, cf_as_completed *it,
                         cf_future *want) {
    cf_future *got = NULL;
    cf_status s = cf_as_completed_next(it, &got, NULL);
    if (s != CF_OK)
        test_fail(file, line, "next = %s, want CF_OK", cf_status_name(s));
    if (got != want)
        test_fail(file, line, "next gave another future than expected");
    if (!cf_future_done(got))
        test_fail(file, line, "next gave a future that is not done");
    if (cf_future_release(got) != CF_OK)
        test_fail(file, line, "releasing the yielded future failed");
}
#define expect_next(it, want) expect_next_(__FILE__, __LINE__, it, want)

/* Takes the next future, which must be one of a or b; returns it. */
static cf_future *next_one_of(cf_as_completed *it, cf_future *a,
                              cf_future *b) {
    cf_future *got = NULL;
    ASSERT_OK(cf_as_completed_next(it, &got, NULL));
    ASSERT_TRUE(got == a || got == b);
    ASSERT_OK(cf_future_release(got));
    return got;
}

static void expect_stop(cf_as_completed *it) {
    cf_future *got = (cf_future *)&got;
    const cf_error *e = NULL;
    ASSERT_STATUS(cf_as_completed_next(it, &got, &e), CF_STOP);
    ASSERT_TRUE(got == (cf_future *)&got);
}

/* Checks the next call times out with "<n> (of <m>) futures unfinished",
 * within LONG / 2. */
static void expect_timeout(cf_as_completed *it, int n, int m) {
    cf_future *got = NULL;
    const cf_error *e = NULL;
    char want[64];
    double t0 = test_now();
    ASSERT_STATUS(cf_as_completed_next(it, &got, &e), CF_TIMEOUT);
    ASSERT_TRUE(test_now() - t0 < LONG / 2);
    ASSERT_NULL(got);
    snprintf(want, sizeof want, "%d (of %d) futures unfinished", n, m);
    check_error(e, CF_TIMEOUT, "TimeoutError", want);
}

/* ---- order ------------------------------------------------------------- */

/* as-completed.already-done-first: futures done before the call are yielded
 * before any that completes later, even one completed before the first
 * next. */
TEST(as_completed_yields_already_done_futures_first) {
    cf_future *fs[4] = {pending_future(), finished_future(1), pending_future(),
                        finished_future(3)};
    cf_as_completed *it = iter_new(fs, 4, CF_FOREVER);
    finish_future(fs[2], 2);
    cf_future *first = next_one_of(it, fs[1], fs[3]);
    cf_future *other = first == fs[1] ? fs[3] : fs[1];
    next_one_of(it, other, other);
    expect_next(it, fs[2]);
    finish_future(fs[0], 0);
    expect_next(it, fs[0]);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 4);
}

/* as-completed.already-done-input-order: the futures already done are
 * yielded in the order they are listed. (The header does not say so; CPython
 * takes them from a set, in no set order.) */
TEST(as_completed_yields_already_done_futures_in_input_order) {
    cf_future *fs[4] = {finished_future(0), pending_future(),
                        finished_future(2), finished_future(3)};
    cf_as_completed *it = iter_new(fs, 4, 0);
    expect_next(it, fs[0]);
    expect_next(it, fs[2]);
    expect_next(it, fs[3]);
    expect_timeout(it, 1, 4);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 4);
}

/* as-completed.completion-order: futures completing after the call are
 * yielded in the order they complete (2, 0, 1 here), even when all three
 * complete before the first next. */
TEST(as_completed_yields_in_completion_order) {
    cf_future *fs[3] = {pending_future(), pending_future(), pending_future()};
    cf_as_completed *it = iter_new(fs, 3, CF_FOREVER);
    finish_future(fs[2], 2);
    finish_future(fs[0], 0);
    finish_future(fs[1], 1);
    expect_next(it, fs[2]);
    expect_next(it, fs[0]);
    expect_next(it, fs[1]);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 3);
}

/* as-completed.blocks-until-completion: next blocks until another thread
 * completes a future, then yields it. */
TEST(as_completed_next_blocks_until_a_future_completes) {
    cf_future *fs[2] = {pending_future(), pending_future()};
    step_completer c = {.steps = {{STEP_RESULT, fs[1], NULL}}, .nsteps = 1};
    cf_as_completed *it = iter_new(fs, 2, CF_FOREVER);
    step_completer_start(&c);
    expect_next(it, fs[1]);
    step_completer_join(&c);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 2);
}

/* as-completed.pool-futures: futures of a pool are yielded in the order the
 * pool finishes them. */
POOL_TEST(as_completed_yields_pool_futures_as_they_finish) {
    cf_executor *ex = pool_new(3);
    gate g[3];
    cf_future *fs[3];
    for (int i = 0; i < 3; i++) {
        gate_init(&g[i]);
        fs[i] = submit_gated(ex, NULL, &g[i], i);
    }
    cf_as_completed *it = iter_new(fs, 3, CF_FOREVER);
    int order[3] = {1, 2, 0};
    for (int i = 0; i < 3; i++) {
        gate_open(&g[order[i]]);
        expect_next(it, fs[order[i]]);
    }
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 3);
    ASSERT_OK(cf_executor_free(ex));
    for (int i = 0; i < 3; i++)
        gate_destroy(&g[i]);
}

/* as-completed.duplicates-once: a future listed several times is yielded
 * once. */
TEST(as_completed_yields_duplicates_once) {
    cf_future *a = finished_future(1), *b = pending_future();
    cf_future *fs[5] = {a, b, a, b, a};
    cf_as_completed *it = iter_new(fs, 5, 0);
    expect_next(it, a);
    expect_timeout(it, 1, 2);
    ASSERT_OK(cf_as_completed_free(it));
    it = iter_new(fs, 5, CF_FOREVER);
    expect_next(it, a);
    finish_future(b, 2);
    expect_next(it, b);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(a));
    ASSERT_OK(cf_future_release(b));
}

/* as-completed.stop-at-end: once every future is yielded, next returns
 * CF_STOP, and keeps doing so. */
TEST(as_completed_stops_at_the_end) {
    cf_future *f = finished_future(1);
    cf_as_completed *it = iter_new(&f, 1, CF_FOREVER);
    expect_next(it, f);
    expect_stop(it);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}

/* as-completed.empty-stops-at-once: n == 0 (fs NULL or not) gives an
 * iterator that stops at once, even with a zero timeout. */
TEST(as_completed_empty_stops_at_once) {
    cf_future *f = pending_future();
    cf_as_completed *it = iter_new(NULL, 0, CF_FOREVER);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    it = iter_new(&f, 0, 0);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}

/* ---- cancelled futures ------------------------------------------------- */

/* as-completed.cancelled-yielded (deliberate difference, gh-92001): a call
 * cancelled while queued in a pool is yielded at once. */
POOL_TEST(as_completed_yields_cancelled_queued_call_at_once) {
    busy_pool b;
    busy_pool_start(&b, 1);
    cf_future *queued = submit_gated(b.ex, NULL, NULL, 2);
    ASSERT_TRUE(cf_future_cancel(queued));
    cf_future *fs[2] = {b.running, queued};
    cf_as_completed *it = iter_new(fs, 2, 0);
    expect_next(it, queued);
    expect_timeout(it, 1, 2);
    ASSERT_OK(cf_as_completed_free(it));
    gate_open(&b.proceed);
    ASSERT_OK(cf_future_result(b.running, LONG, NULL));
    release_all(fs, 2);
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* as-completed.cancel-completes: a future another thread cancels while next
 * waits is yielded. */
TEST(as_completed_yields_future_cancelled_while_waiting) {
    cf_future *fs[2] = {pending_future(), pending_future()};
    step_completer c = {.steps = {{STEP_CANCEL, fs[0], NULL}}, .nsteps = 1};
    cf_as_completed *it = iter_new(fs, 2, CF_FOREVER);
    step_completer_start(&c);
    expect_next(it, fs[0]);
    step_completer_join(&c);
    ASSERT_TRUE(cf_future_cancelled(fs[0]));
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 2);
}

/* ---- timeouts ---------------------------------------------------------- */

/* as-completed.timeout-from-creation (deliberate difference, rule 41): the
 * timeout counts from cf_as_completed_new, so a first next made after it
 * expired times out without waiting again. */
TEST(as_completed_timeout_counts_from_creation) {
    cf_future *f = pending_future();
    double timeout = 2 * SHORT;
    double t0 = test_now();
    cf_as_completed *it = iter_new(&f, 1, timeout);
    let_time_pass(t0, timeout);
    double t1 = test_now();
    expect_timeout(it, 1, 1);
    ASSERT_TRUE(test_now() - t1 < timeout);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}

/* as-completed.timeout-no-earlier: a next that times out returns no earlier
 * than the iterator's deadline. */
TEST(as_completed_timeout_returns_no_earlier_than_deadline) {
    cf_future *fs[2] = {pending_future(), finished_future(1)};
    double t0 = test_now();
    cf_as_completed *it = iter_new(fs, 2, SHORT);
    expect_next(it, fs[1]);
    expect_timeout(it, 1, 2);
    ASSERT_TRUE(test_now() - t0 >= SHORT);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 2);
}

/* as-completed.timeout-message: with [cancelled, pending, running,
 * finished] and timeout 0, the two done futures are yielded, then
 * TimeoutError "2 (of 4) futures unfinished". */
TEST(as_completed_timeout_message_counts_unfinished_futures) {
    cf_future *fs[4] = {pending_future(), pending_future(), pending_future(),
                        finished_future(3)};
    ASSERT_TRUE(cf_future_cancel(fs[0]));
    ASSERT_OK(cf_future_set_running_or_notify_cancel(fs[2]));
    cf_as_completed *it = iter_new(fs, 4, 0);
    cf_future *first = next_one_of(it, fs[0], fs[3]);
    cf_future *other = first == fs[0] ? fs[3] : fs[0];
    next_one_of(it, other, other);
    expect_timeout(it, 2, 4);
    ASSERT_OK(cf_as_completed_free(it));
    release_all(fs, 4);
}

/* as-completed.usable-after-timeout: after CF_TIMEOUT the iterator stays
 * usable: it times out again while nothing completes, then yields a future
 * that completed since, then stops. */
TEST(as_completed_usable_after_timeout) {
    cf_future *f = pending_future();
    cf_as_completed *it = iter_new(&f, 1, 0);
    expect_timeout(it, 1, 1);
    expect_timeout(it, 1, 1);
    finish_future(f, 1);
    expect_next(it, f);
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}

/* as-completed.timeout-error-optional: error may be NULL on CF_TIMEOUT. */
TEST(as_completed_timeout_with_null_error) {
    cf_future *f = pending_future(), *got = NULL;
    cf_as_completed *it = iter_new(&f, 1, 0);
    ASSERT_STATUS(cf_as_completed_next(it, &got, NULL), CF_TIMEOUT);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}

/* ---- references -------------------------------------------------------- */

/* as-completed.yields-new-references: each yielded future is a new
 * reference, released by the caller, while the caller's own stays valid. */
TEST(as_completed_yielded_futures_are_new_references) {
    cf_future *f = finished_future(5), *got = NULL;
    cf_value want = cf_int(5);
    cf_as_completed *it = iter_new(&f, 1, CF_FOREVER);
    ASSERT_OK(cf_as_completed_next(it, &got, NULL));
    ASSERT_TRUE(got == f);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(got));
    check_value(f, &want);
    ASSERT_OK(cf_future_release(f));
}

/* as-completed.holds-own-references: the iterator takes its own references,
 * so the caller may release its futures before iterating. */
TEST(as_completed_holds_its_own_references) {
    cf_future *a = finished_future(1), *b = pending_future(), *got = NULL;
    cf_future *fs[2] = {a, b};
    cf_value want = cf_int(2);
    cf_as_completed *it = iter_new(fs, 2, CF_FOREVER);
    ASSERT_OK(cf_future_release(a));
    finish_future(b, 2);
    ASSERT_OK(cf_future_release(b));
    expect_next(it, a);
    ASSERT_OK(cf_as_completed_next(it, &got, NULL));
    check_value(got, &want);
    ASSERT_OK(cf_future_release(got));
    expect_stop(it);
    ASSERT_OK(cf_as_completed_free(it));
}

/* as-completed.free-before-end: freeing an iterator that has not yielded
 * everything drops its references and leaves the futures usable. */
TEST(as_completed_free_before_the_end) {
    cf_future *fs[3] = {finished_future(1), pending_future(),
                        pending_future()};
    cf_value want = cf_int(7);
    cf_as_completed *it = iter_new(fs, 3, CF_FOREVER);
    expect_next(it, fs[0]);
    ASSERT_OK(cf_as_completed_free(it));
    finish_future(fs[1], 7);
    check_value(fs[1], &want);
    release_all(fs, 3);
}

/* ---- arguments --------------------------------------------------------- */

/* as-completed.new-argument-checks: NaN timeout, NULL out, NULL fs with
 * n > 0 and a NULL element are CF_EINVAL, and out is left alone. */
TEST(as_completed_new_rejects_bad_arguments) {
    cf_future *fs[2] = {finished_future(1), NULL};
    cf_as_completed *it = (cf_as_completed *)&fs;
    ASSERT_STATUS(cf_as_completed_new(fs, 1, NAN, &it), CF_EINVAL);
    ASSERT_STATUS(cf_as_completed_new(fs, 1, 0, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_as_completed_new(NULL, 1, 0, &it), CF_EINVAL);
    ASSERT_STATUS(cf_as_completed_new(fs, 2, 0, &it), CF_EINVAL);
    ASSERT_TRUE(it == (cf_as_completed *)&fs);
    ASSERT_OK(cf_future_release(fs[0]));
}

/* as-completed.next-argument-checks: next on a NULL iterator or with a NULL
 * out is CF_EINVAL; free of NULL is CF_EINVAL. */
TEST(as_completed_next_and_free_reject_null) {
    cf_future *f = finished_future(1), *got = NULL;
    cf_as_completed *it = iter_new(&f, 1, CF_FOREVER);
    ASSERT_STATUS(cf_as_completed_next(NULL, &got, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_as_completed_next(it, NULL, NULL), CF_EINVAL);
    ASSERT_NULL(got);
    expect_next(it, f);
    ASSERT_STATUS(cf_as_completed_free(NULL), CF_EINVAL);
    ASSERT_OK(cf_as_completed_free(it));
    ASSERT_OK(cf_future_release(f));
}
