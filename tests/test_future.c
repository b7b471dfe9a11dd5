/*
 * Futures made with cf_future_new (no executor): states, cancel,
 * set_running_or_notify_cancel, set_result / set_exception, result() and
 * exception() with every kind of timeout, waiters in other threads,
 * reference counting and argument checks. Executors are tested elsewhere.
 *
 * Threads here are plain pthreads ordered with gates; SHORT only bounds
 * "did not return within", LONG only turns a hang into a failure.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* A value no successful call would produce, to see that a failed call left
 * its out-parameter alone. */
static cf_value sentinel(void) {
    return cf_int(-424242);
}

static bool is_sentinel(const cf_value *v) {
    return v->type == CF_TYPE_INT && v->as.i == -424242;
}

/*
 * A thread blocked in result() or exception(). It opens `waiting` just
 * before the call and `returned` just after, recording what it got.
 */
typedef struct waiter {
    pthread_t thread;
    cf_future *f;
    double timeout;
    bool use_exception;
    gate waiting, returned;
    cf_status status;
    cf_value value;
    const cf_error *error;
    double returned_at;
} waiter;

static void *waiter_main(void *arg) {
    waiter *w = arg;
    gate_open(&w->waiting);
    if (w->use_exception)
        w->status = cf_future_exception(w->f, w->timeout, &w->error);
    else
        w->status = cf_future_result(w->f, w->timeout, &w->value);
    w->returned_at = test_now();
    gate_open(&w->returned);
    return NULL;
}

static void waiter_start(waiter *w, cf_future *f, double timeout,
                         bool use_exception) {
    w->f = f;
    w->timeout = timeout;
    w->use_exception = use_exception;
    w->status = CF__STATUS_COUNT;
    w->value = sentinel();
    w->error = (const cf_error *)&w->error;
    gate_init(&w->waiting);
    gate_init(&w->returned);
    ASSERT_EQ(pthread_create(&w->thread, NULL, waiter_main, w), 0);
    gate_wait(&w->waiting);
}

/* The waiter has not returned although SHORT passed while it was (about to
 * be) blocked, and the future is still not done. */
static void assert_still_waiting_(const char *file, int line, waiter *w) {
    double t0 = test_now();
    cf_status s = cf_future_result(w->f, SHORT, NULL);
    double elapsed = test_now() - t0;
    if (s != CF_TIMEOUT || elapsed < SHORT)
        test_fail(file, line,
                  "result(SHORT) = %s after %.3fs, want "
                  "CF_TIMEOUT after at least %.3fs",
                  cf_status_name(s), elapsed, SHORT);
    if (gate_is_open(&w->returned) || cf_future_done(w->f))
        test_fail(file, line, "the waiter returned before completion");
}
#define assert_still_waiting(w) assert_still_waiting_(__FILE__, __LINE__, w)

/* Starts a waiter on f and checks it is still waiting after SHORT; gives the
 * time to measure its wake-up from, taken just before the test completes
 * f. */
static double waiter_blocked_(const char *file, int line, waiter *w,
                              cf_future *f, double timeout,
                              bool use_exception) {
    waiter_start(w, f, timeout, use_exception);
    assert_still_waiting_(file, line, w);
    return test_now();
}
#define waiter_blocked(w, f, timeout, use_exception)                          \
    waiter_blocked_(__FILE__, __LINE__, w, f, timeout, use_exception)

/* Waits (at most LONG) for the waiter to return, joins it, and checks it
 * returned within LONG/2 of `since`. */
static void waiter_finish_(const char *file, int line, waiter *w,
                           double since) {
    gate_wait(&w->returned);
    pthread_join(w->thread, NULL);
    if (w->returned_at - since >= LONG / 2)
        test_fail(file, line, "the waiter took %.3fs to wake",
                  w->returned_at - since);
    gate_destroy(&w->waiting);
    gate_destroy(&w->returned);
}
#define waiter_finish(w, since) waiter_finish_(__FILE__, __LINE__, w, since)

/* result() (or exception()) with this timeout on a future that is not done
 * returns CF_TIMEOUT, no earlier than the timeout, and promptly. */
static void check_times_out_(const char *file, int line, cf_future *f,
                             double timeout, bool use_exception) {
    cf_value v = sentinel();
    const cf_error *e = (const cf_error *)&e;
    double t0 = test_now();
    cf_status s = use_exception ? cf_future_exception(f, timeout, &e)
                                : cf_future_result(f, timeout, &v);
    double elapsed = test_now() - t0;
    if (s != CF_TIMEOUT)
        test_fail(file, line, "%s(%g) = %s, want CF_TIMEOUT",
                  use_exception ? "exception" : "result", timeout,
                  cf_status_name(s));
    if (timeout > 0 && elapsed < timeout)
        test_fail(file, line, "timeout %g returned early, after %.6fs",
                  timeout, elapsed);
    if (elapsed >= LONG / 2)
        test_fail(file, line, "timeout %g took %.3fs", timeout, elapsed);
    if (!is_sentinel(&v) || e != (const cf_error *)&e)
        test_fail(file, line, "CF_TIMEOUT wrote the out-parameter");
}
#define check_result_times_out(f, t)                                          \
    check_times_out_(__FILE__, __LINE__, f, t, false)
#define check_exception_times_out(f, t)                                       \
    check_times_out_(__FILE__, __LINE__, f, t, true)

/* ---- the initial state -------------------------------------------------- */

/* A new future is PENDING: not running, not cancelled, not done, and
 * result() / exception() time out.
 * clause: future.state.initial-pending */
TEST(future_new_is_pending) {
    cf_future *f = pending_future();
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* cf_future_new rejects a NULL out with CF_EINVAL.
 * clause: future.new.rejects-null */
TEST(future_new_rejects_null_out) {
    ASSERT_STATUS(cf_future_new(NULL), CF_EINVAL);
}

/* ---- cancel ------------------------------------------------------------- */

/* cancel() of a PENDING future returns true and leaves it cancelled: done,
 * not running, result() and exception() give CF_CANCELLED.
 * clause: future.cancel.pending-returns-true */
TEST(future_cancel_pending_returns_true) {
    cf_future *f = pending_future();
    ASSERT_TRUE(cf_future_cancel(f));
    check_cancelled(f);
    ASSERT_OK(cf_future_release(f));
}

/* cancel() of a PENDING future runs its done callbacks in the cancelling
 * thread before it returns.
 * clause: future.cancel.runs-callbacks */
TEST(future_cancel_pending_runs_callbacks_before_returning) {
    cf_future *f = pending_future();
    counter a = {0}, b = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &a));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &b));
    ASSERT_EQ(calls_of(&a), 0);
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_EQ(calls_of(&a), 1);
    ASSERT_EQ(calls_of(&b), 1);
    ASSERT_TRUE(pthread_equal(a.thread, pthread_self()));
    ASSERT_TRUE(pthread_equal(b.thread, pthread_self()));
    ASSERT_OK(cf_future_release(f));
}

/* cancel() of a cancelled future returns true again, changes nothing and
 * does not run the callbacks again.
 * clause: future.cancel.cancelled-returns-true */
TEST(future_cancel_cancelled_returns_true_without_rerunning_callbacks) {
    cf_future *f = pending_future();
    counter c = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_EQ(calls_of(&c), 1);
    check_cancelled(f);
    ASSERT_EQ(calls_of(&c), 1);
    ASSERT_OK(cf_future_release(f));
}

/* cancel() of a RUNNING future returns false, runs no callback and leaves
 * it running.
 * clause: future.cancel.running-returns-false */
TEST(future_cancel_running_returns_false) {
    cf_future *f = running_future();
    counter c = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    ASSERT_FALSE(cf_future_cancel(f));
    ASSERT_EQ(calls_of(&c), 0);
    check_running(f);
    cf_value v = cf_int(3);
    ASSERT_OK(cf_future_set_result(f, &v));
    check_value(f, &v);
    ASSERT_EQ(calls_of(&c), 1);
    ASSERT_OK(cf_future_release(f));
}

/* cancel() of a FINISHED future (a result or an exception) returns false,
 * keeps the outcome and runs no callback again.
 * clause: future.cancel.finished-returns-false */
TEST(future_cancel_finished_returns_false) {
    cf_future *ok = pending_future(), *raised = running_future();
    counter c = {0};
    cf_value v = cf_int(11);
    ASSERT_OK(cf_future_add_done_callback(ok, count_cb, &c));
    ASSERT_OK(cf_future_set_result(ok, &v));
    ASSERT_OK(cf_future_set_exception(raised, "OSError", "disk"));
    ASSERT_EQ(calls_of(&c), 1);
    ASSERT_FALSE(cf_future_cancel(ok));
    ASSERT_FALSE(cf_future_cancel(raised));
    ASSERT_EQ(calls_of(&c), 1);
    check_value(ok, &v);
    check_raised(raised, CF_RAISED, "OSError", "disk");
    ASSERT_OK(cf_future_release(ok));
    ASSERT_OK(cf_future_release(raised));
}

/* cancel() wakes every thread blocked in result() or exception(), each of
 * which gets CF_CANCELLED.
 * clause: future.cancel.wakes-waiters */
TEST(future_cancel_wakes_every_waiter) {
    cf_future *f = pending_future();
    waiter w[3];
    waiter_start(&w[0], f, CF_FOREVER, false);
    waiter_start(&w[1], f, CF_FOREVER, true);
    waiter_start(&w[2], f, LONG, false);
    assert_still_waiting(&w[0]);
    for (int k = 0; k < 3; k++)
        ASSERT_FALSE(gate_is_open(&w[k].returned));
    double t = test_now();
    ASSERT_TRUE(cf_future_cancel(f));
    for (int k = 0; k < 3; k++) {
        waiter_finish(&w[k], t);
        ASSERT_STATUS(w[k].status, CF_CANCELLED);
        ASSERT_TRUE(is_sentinel(&w[k].value));
    }
    ASSERT_TRUE(w[1].error == (const cf_error *)&w[1].error);
    ASSERT_OK(cf_future_release(f));
}

/* ---- set_running_or_notify_cancel -------------------------------------- */

/* set_running_or_notify_cancel() on a PENDING future returns CF_OK and the
 * future is RUNNING: running, not done, not cancellable.
 * clause: future.set-running.pending */
TEST(future_set_running_on_pending_makes_it_running) {
    cf_future *f = pending_future();
    ASSERT_OK(cf_future_set_running_or_notify_cancel(f));
    check_running(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_running_or_notify_cancel() on a cancelled future returns CF_CANCELLED
 * once, then CF_INVALID_STATE; the callbacks, run at cancel, do not run
 * again, and the future stays cancelled.
 * clause: future.set-running.cancelled */
TEST(future_set_running_on_cancelled_returns_cancelled_once) {
    cf_future *f = pending_future();
    counter c = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(f), CF_CANCELLED);
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(f), CF_INVALID_STATE);
    ASSERT_EQ(calls_of(&c), 1);
    check_cancelled(f);
    ASSERT_OK(cf_future_release(f));
}

/* A second set_running_or_notify_cancel() returns CF_INVALID_STATE and the
 * future stays RUNNING.
 * clause: future.set-running.twice */
TEST(future_set_running_twice_is_invalid_state) {
    cf_future *f = running_future();
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(f), CF_INVALID_STATE);
    check_running(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_running_or_notify_cancel() after set_result or set_exception returns
 * CF_INVALID_STATE and the outcome stays.
 * clause: future.set-running.after-set */
TEST(future_set_running_after_set_is_invalid_state) {
    cf_future *ok = pending_future(), *raised = pending_future();
    cf_value v = cf_bool(true);
    ASSERT_OK(cf_future_set_result(ok, &v));
    ASSERT_OK(cf_future_set_exception(raised, "ValueError", "bad"));
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(ok),
                  CF_INVALID_STATE);
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(raised),
                  CF_INVALID_STATE);
    check_value(ok, &v);
    check_raised(raised, CF_RAISED, "ValueError", "bad");
    ASSERT_OK(cf_future_release(ok));
    ASSERT_OK(cf_future_release(raised));
}

/* What the log hook saw, and whether the future stayed usable from another
 * thread while the hook ran (it would not be if a lock were held). */
typedef struct log_capture {
    cf_future *f;
    int count;
    cf_log_level level;
    char message[256];
    bool future_usable;
} log_capture;

typedef struct probe {
    cf_future *f;
    gate done;
} probe;

static void *probe_main(void *arg) {
    probe *p = arg;
    (void)cf_future_running(p->f); /* blocks if its stripe lock is held */
    gate_open(&p->done);
    return NULL;
}

static void capture_hook(cf_log_level level, const char *message, void *ctx) {
    log_capture *c = ctx;
    probe p = {.f = c->f};
    pthread_t t;
    c->count++;
    c->level = level;
    snprintf(c->message, sizeof c->message, "%s", message);
    gate_init(&p.done);
    ASSERT_EQ(pthread_create(&t, NULL, probe_main, &p), 0);
    c->future_usable = gate_wait_for(&p.done, LONG);
    if (!c->future_usable)
        return; /* the probe is stuck: leave it its gate */
    pthread_join(t, NULL);
    gate_destroy(&p.done);
}

/* A set_running_or_notify_cancel in an unexpected state -- RUNNING,
 * FINISHED (by value or by exception), or cancelled and already notified
 * -- logs once at CF_LOG_CRITICAL "Future <id> in unexpected state:
 * <STATE>" as CPython (id() is the address, in decimal; the state in
 * CPython's spelling), with no lock held, before it returns
 * CF_INVALID_STATE; the CF_OK and CF_CANCELLED answers log nothing.
 * clause: future.set-running.unexpected-state-logged */
TEST(future_set_running_in_unexpected_state_logs_critical) {
    static const char *const states[] = {"RUNNING", "FINISHED", "FINISHED",
                                         "CANCELLED_AND_NOTIFIED"};
    cf_future *fs[4] = {pending_future(), pending_future(), pending_future(),
                        pending_future()};
    cf_value v = cf_int(1);
    log_capture c = {0};
    ASSERT_OK(cf_set_log_hook(capture_hook, &c));
    ASSERT_OK(cf_future_set_running_or_notify_cancel(fs[0]));
    ASSERT_OK(cf_future_set_result(fs[1], &v));
    ASSERT_OK(cf_future_set_exception(fs[2], "ValueError", "v"));
    ASSERT_TRUE(cf_future_cancel(fs[3]));
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(fs[3]), CF_CANCELLED);
    ASSERT_EQ(c.count, 0);
    for (int k = 0; k < 4; k++) {
        char want[128];
        snprintf(want, sizeof want,
                 "Future %" PRIuPTR " in unexpected state: %s",
                 (uintptr_t)fs[k], states[k]);
        c.f = fs[k];
        c.future_usable = false;
        ASSERT_STATUS(cf_future_set_running_or_notify_cancel(fs[k]),
                      CF_INVALID_STATE);
        ASSERT_EQ(c.count, k + 1);
        ASSERT_EQ(c.level, CF_LOG_CRITICAL);
        ASSERT_STREQ(c.message, want);
        ASSERT_TRUE(c.future_usable);
    }
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    release_all(fs, 4);
}

/* ---- set_result / set_exception ---------------------------------------- */

/* set_result() on a PENDING future finishes it with the value.
 * clause: future.set-result.from-pending */
TEST(future_set_result_from_pending) {
    cf_future *f = pending_future();
    cf_value v = cf_int(42);
    ASSERT_OK(cf_future_set_result(f, &v));
    check_value(f, &v);
    ASSERT_OK(cf_future_release(f));
}

/* set_result() on a RUNNING future finishes it with the value.
 * clause: future.set-result.from-running */
TEST(future_set_result_from_running) {
    cf_future *f = running_future();
    cf_value v = cf_double(2.5);
    ASSERT_OK(cf_future_set_result(f, &v));
    check_value(f, &v);
    ASSERT_OK(cf_future_release(f));
}

/* set_exception() on a PENDING future finishes it raising: result() gives
 * CF_RAISED and exception() the error.
 * clause: future.set-exception.from-pending */
TEST(future_set_exception_from_pending) {
    cf_future *f = pending_future();
    ASSERT_OK(cf_future_set_exception(f, "ZeroDivisionError", "by zero"));
    check_raised(f, CF_RAISED, "ZeroDivisionError", "by zero");
    ASSERT_OK(cf_future_release(f));
}

/* set_exception() on a RUNNING future finishes it raising.
 * clause: future.set-exception.from-running */
TEST(future_set_exception_from_running) {
    cf_future *f = running_future();
    ASSERT_OK(cf_future_set_exception(f, "RuntimeError", "oops"));
    check_raised(f, CF_RAISED, "RuntimeError", "oops");
    ASSERT_OK(cf_future_release(f));
}

/* After set_result, another set_result or set_exception returns
 * CF_INVALID_STATE and the first value is kept.
 * clause: future.set.second-invalid-state */
TEST(future_second_set_after_result_keeps_first) {
    cf_future *f = pending_future();
    cf_value first = cf_int(1), second = cf_int(2);
    ASSERT_OK(cf_future_set_result(f, &first));
    ASSERT_STATUS(cf_future_set_result(f, &second), CF_INVALID_STATE);
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", "late"),
                  CF_INVALID_STATE);
    check_value(f, &first);
    ASSERT_OK(cf_future_release(f));
}

/* After set_exception, another set_exception or set_result returns
 * CF_INVALID_STATE and the first exception is kept.
 * clause: future.set.second-invalid-state */
TEST(future_second_set_after_exception_keeps_first) {
    cf_future *f = pending_future();
    cf_value v = cf_int(2);
    ASSERT_OK(cf_future_set_exception(f, "KeyError", "first"));
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", "second"),
                  CF_INVALID_STATE);
    ASSERT_STATUS(cf_future_set_result(f, &v), CF_INVALID_STATE);
    check_raised(f, CF_RAISED, "KeyError", "first");
    ASSERT_OK(cf_future_release(f));
}

/* set_result and set_exception on a cancelled future return
 * CF_INVALID_STATE and it stays cancelled.
 * clause: future.set.cancelled-invalid-state */
TEST(future_set_on_cancelled_is_invalid_state) {
    cf_future *f = pending_future();
    cf_value v = cf_int(5);
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_STATUS(cf_future_set_result(f, &v), CF_INVALID_STATE);
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", "x"),
                  CF_INVALID_STATE);
    check_cancelled(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_result with a NULL value or a value of unknown type returns
 * CF_EINVAL and leaves the future PENDING.
 * clause: future.set-result.rejects-invalid */
TEST(future_set_result_rejects_invalid_value) {
    cf_future *f = pending_future();
    cf_value bad = cf_none();
    bad.type = (cf_type)42;
    ASSERT_STATUS(cf_future_set_result(f, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_future_set_result(f, &bad), CF_EINVAL);
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_result stores its own copy: the caller may free its str or bytes
 * value right after and result() still gives the contents.
 * clause: future.set-result.copies */
TEST(future_set_result_stores_a_copy) {
    cf_future *fs = pending_future(), *fb = pending_future();
    cf_value s = cf_none(), b = cf_none(), want_s = cf_none(),
             want_b = cf_none();
    ASSERT_OK(cf_value_str(&s, "kept"));
    ASSERT_OK(cf_value_bytes(&b, "k\0pt", 4));
    ASSERT_OK(cf_value_copy(&want_s, &s));
    ASSERT_OK(cf_value_copy(&want_b, &b));
    ASSERT_OK(cf_future_set_result(fs, &s));
    ASSERT_OK(cf_future_set_result(fb, &b));
    s.as.buf.data[0] = 'X';
    cf_value_free(&s);
    cf_value_free(&b);
    check_value(fs, &want_s);
    check_value(fb, &want_b);
    cf_value_free(&want_s);
    cf_value_free(&want_b);
    ASSERT_OK(cf_future_release(fs));
    ASSERT_OK(cf_future_release(fb));
}

/* set_exception rejects a NULL, empty or non-identifier type with
 * CF_EINVAL and leaves the future PENDING.
 * clause: future.set-exception.type-identifier */
TEST(future_set_exception_rejects_bad_type) {
    cf_future *f = pending_future();
    const char *bad[] = {
        NULL, "", "Value Error", "Bad-Name", "a\nb", "Err\xc3\xa9", "Error!"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        ASSERT_STATUS(cf_future_set_exception(f, bad[k], "m"), CF_EINVAL);
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_exception rejects a NULL message with CF_EINVAL and leaves the
 * future PENDING.
 * clause: future.set-exception.message-not-null */
TEST(future_set_exception_rejects_null_message) {
    cf_future *f = pending_future();
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", NULL), CF_EINVAL);
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* set_exception accepts a dotted type of letters, digits and '_' and an
 * empty message.
 * clause: future.set-exception.type-identifier */
TEST(future_set_exception_accepts_dotted_type_and_empty_message) {
    cf_future *a = pending_future(), *b = pending_future();
    ASSERT_OK(cf_future_set_exception(
        a, "concurrent.futures.process.BrokenProcessPool", ""));
    ASSERT_OK(cf_future_set_exception(b, "_My_Error2", "m"));
    check_raised(a, CF_RAISED, "concurrent.futures.process.BrokenProcessPool",
                 "");
    check_raised(b, CF_RAISED, "_My_Error2", "m");
    ASSERT_OK(cf_future_release(a));
    ASSERT_OK(cf_future_release(b));
}

/* set_exception copies type and message: changing the caller's buffers
 * afterwards does not change the error.
 * clause: future.set-exception.copies */
TEST(future_set_exception_copies_type_and_message) {
    cf_future *f = pending_future();
    char type[] = "ValueError", msg[] = "original";
    ASSERT_OK(cf_future_set_exception(f, type, msg));
    memset(type, 'Q', sizeof type - 1);
    memset(msg, 'Q', sizeof msg - 1);
    check_raised(f, CF_RAISED, "ValueError", "original");
    ASSERT_OK(cf_future_release(f));
}

/* ---- result() timeouts -------------------------------------------------- */

/* result() with timeout 0 on a future not done returns CF_TIMEOUT at once.
 * clause: future.result.timeout-poll */
TEST(future_result_zero_timeout_polls) {
    cf_future *f = pending_future(), *r = running_future();
    check_result_times_out(f, 0);
    check_result_times_out(r, 0.0);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(r));
}

/* result() with a negative timeout (-1, -1e300, -inf) polls: CF_TIMEOUT at
 * once.
 * clause: future.result.timeout-poll */
TEST(future_result_negative_timeout_polls) {
    cf_future *f = pending_future();
    check_result_times_out(f, -1);
    check_result_times_out(f, -1e300);
    check_result_times_out(f, -INFINITY);
    check_result_times_out(f, -DBL_MIN);
    ASSERT_OK(cf_future_release(f));
}

/* result() with a tiny timeout (0.001) returns CF_TIMEOUT, no earlier than
 * the timeout.
 * clause: future.result.timeout-not-early */
TEST(future_result_tiny_timeout_not_early) {
    cf_future *f = pending_future();
    check_result_times_out(f, 0.001);
    check_result_times_out(f, 1e-9);
    ASSERT_OK(cf_future_release(f));
}

/* result(SHORT) on a pending future returns CF_TIMEOUT, no earlier than
 * SHORT, and the future is still not done.
 * clause: future.result.timeout-not-early */
TEST(future_result_short_timeout_not_early) {
    cf_future *f = pending_future();
    check_result_times_out(f, SHORT);
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* result() with a NaN timeout returns CF_EINVAL, whether or not the future
 * is done, and writes nothing.
 * clause: future.result.timeout-nan */
TEST(future_result_nan_timeout_is_einval) {
    cf_future *p = pending_future(), *d = pending_future();
    cf_value v = cf_int(1), out = sentinel();
    ASSERT_OK(cf_future_set_result(d, &v));
    ASSERT_STATUS(cf_future_result(p, NAN, &out), CF_EINVAL);
    ASSERT_STATUS(cf_future_result(d, NAN, &out), CF_EINVAL);
    ASSERT_STATUS(cf_future_result(d, -NAN, NULL), CF_EINVAL);
    ASSERT_TRUE(is_sentinel(&out));
    check_pending(p);
    check_value(d, &v);
    ASSERT_OK(cf_future_release(p));
    ASSERT_OK(cf_future_release(d));
}

/* result() with a huge finite timeout (1e300, DBL_MAX) on a done future
 * returns its outcome at once.
 * clause: future.result.timeout-huge */
TEST(future_result_huge_timeout_on_done_returns_at_once) {
    cf_future *ok = pending_future(), *raised = pending_future(),
              *c = pending_future();
    cf_value v = cf_int(9), out = cf_none();
    ASSERT_OK(cf_future_set_result(ok, &v));
    ASSERT_OK(cf_future_set_exception(raised, "ValueError", "v"));
    ASSERT_TRUE(cf_future_cancel(c));
    double t0 = test_now();
    ASSERT_OK(cf_future_result(ok, 1e300, &out));
    ASSERT_TRUE(cf_value_equal(&out, &v));
    ASSERT_OK(cf_future_result(ok, DBL_MAX, NULL));
    ASSERT_STATUS(cf_future_result(raised, 1e300, NULL), CF_RAISED);
    ASSERT_STATUS(cf_future_result(c, 1e300, NULL), CF_CANCELLED);
    ASSERT_DBL_OP(test_now() - t0, <, LONG / 2);
    ASSERT_OK(cf_future_release(ok));
    ASSERT_OK(cf_future_release(raised));
    ASSERT_OK(cf_future_release(c));
}

/* result() with a huge finite timeout (1e300) on a pending future waits as
 * for CF_FOREVER, and set_result wakes it.
 * clause: future.result.timeout-huge */
TEST(future_result_huge_timeout_on_pending_waits) {
    cf_future *f = pending_future();
    waiter w;
    cf_value v = cf_int(77);
    double t = waiter_blocked(&w, f, 1e300, false);
    ASSERT_OK(cf_future_set_result(f, &v));
    waiter_finish(&w, t);
    ASSERT_OK(w.status);
    ASSERT_TRUE(cf_value_equal(&w.value, &v));
    ASSERT_OK(cf_future_release(f));
}

/* ---- result() woken from another thread -------------------------------- */

/* result(CF_FOREVER) blocked in another thread returns the value once
 * set_result is called, promptly.
 * clause: future.result.wakes-on-set-result */
TEST(future_result_forever_woken_by_set_result) {
    cf_future *f = pending_future();
    waiter w;
    cf_value v = cf_none();
    ASSERT_OK(cf_value_str(&v, "woken"));
    double t = waiter_blocked(&w, f, CF_FOREVER, false);
    ASSERT_OK(cf_future_set_result(f, &v));
    waiter_finish(&w, t);
    ASSERT_OK(w.status);
    ASSERT_TRUE(cf_value_equal(&w.value, &v));
    cf_value_free(&w.value);
    cf_value_free(&v);
    ASSERT_OK(cf_future_release(f));
}

/* result(LONG) blocked in another thread returns the value once set_result
 * is called, long before its timeout.
 * clause: future.result.wakes-on-set-result */
TEST(future_result_timed_woken_by_set_result) {
    cf_future *f = running_future();
    waiter w;
    cf_value v = cf_int(-1);
    double t = waiter_blocked(&w, f, LONG, false);
    ASSERT_OK(cf_future_set_result(f, &v));
    waiter_finish(&w, t);
    ASSERT_OK(w.status);
    ASSERT_TRUE(cf_value_equal(&w.value, &v));
    ASSERT_OK(cf_future_release(f));
}

/* result(CF_FOREVER) blocked in another thread returns CF_RAISED once
 * set_exception is called, and writes no value.
 * clause: future.result.wakes-on-set-exception */
TEST(future_result_forever_woken_by_set_exception) {
    cf_future *f = pending_future();
    waiter w;
    double t = waiter_blocked(&w, f, CF_FOREVER, false);
    ASSERT_OK(cf_future_set_exception(f, "TypeError", "nope"));
    waiter_finish(&w, t);
    ASSERT_STATUS(w.status, CF_RAISED);
    ASSERT_TRUE(is_sentinel(&w.value));
    check_raised(f, CF_RAISED, "TypeError", "nope");
    ASSERT_OK(cf_future_release(f));
}

/* result(CF_FOREVER) blocked in another thread returns CF_CANCELLED once
 * the future is cancelled.
 * clause: future.result.wakes-on-cancel */
TEST(future_result_forever_woken_by_cancel) {
    cf_future *f = pending_future();
    waiter w;
    double t = waiter_blocked(&w, f, CF_FOREVER, false);
    ASSERT_TRUE(cf_future_cancel(f));
    waiter_finish(&w, t);
    ASSERT_STATUS(w.status, CF_CANCELLED);
    ASSERT_TRUE(is_sentinel(&w.value));
    ASSERT_OK(cf_future_release(f));
}

/* ---- result() out-parameter --------------------------------------------- */

/* result() accepts a NULL out and then only waits, returning the status.
 * clause: future.result.out-null */
TEST(future_result_null_out_only_waits) {
    cf_future *f = pending_future();
    cf_value v = cf_none();
    ASSERT_OK(cf_value_str(&v, "ignored"));
    ASSERT_STATUS(cf_future_result(f, 0, NULL), CF_TIMEOUT);
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_OK(cf_future_result(f, 0, NULL));
    ASSERT_OK(cf_future_result(f, CF_FOREVER, NULL));
    check_value(f, &v);
    cf_value_free(&v);
    ASSERT_OK(cf_future_release(f));
}

/* result() gives the caller its own copy of a str or bytes value: freeing
 * it leaves the future's value intact for the next result().
 * clause: future.result.copies */
TEST(future_result_gives_caller_owned_copy) {
    cf_future *f = pending_future(), *g = pending_future();
    cf_value s = cf_none(), b = cf_none(), r1 = cf_none(), r2 = cf_none();
    ASSERT_OK(cf_value_str(&s, "shared?"));
    ASSERT_OK(cf_value_bytes(&b, "\0\1\2", 3));
    ASSERT_OK(cf_future_set_result(f, &s));
    ASSERT_OK(cf_future_set_result(g, &b));
    ASSERT_OK(cf_future_result(f, 0, &r1));
    ASSERT_OK(cf_future_result(f, 0, &r2));
    ASSERT_TRUE(r1.as.buf.data != r2.as.buf.data);
    r1.as.buf.data[0] = 'X';
    cf_value_free(&r1);
    ASSERT_TRUE(cf_value_equal(&r2, &s));
    cf_value_free(&r2);
    ASSERT_OK(cf_future_result(g, 0, &r1));
    r1.as.buf.data[0] = 'X';
    cf_value_free(&r1);
    check_value(f, &s);
    check_value(g, &b);
    cf_value_free(&s);
    cf_value_free(&b);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(g));
}

/* result() writes out only on CF_OK: not on CF_TIMEOUT, CF_CANCELLED,
 * CF_RAISED or CF_EINVAL.
 * clause: api.out-written-only-on-ok */
TEST(future_result_leaves_out_untouched_on_failure) {
    cf_future *p = pending_future(), *c = pending_future(),
              *r = pending_future();
    cf_value out = sentinel();
    ASSERT_TRUE(cf_future_cancel(c));
    ASSERT_OK(cf_future_set_exception(r, "ValueError", "x"));
    ASSERT_STATUS(cf_future_result(p, 0, &out), CF_TIMEOUT);
    ASSERT_STATUS(cf_future_result(p, NAN, &out), CF_EINVAL);
    ASSERT_STATUS(cf_future_result(c, 0, &out), CF_CANCELLED);
    ASSERT_STATUS(cf_future_result(r, 0, &out), CF_RAISED);
    ASSERT_STATUS(cf_future_result(r, CF_FOREVER, &out), CF_RAISED);
    ASSERT_TRUE(is_sentinel(&out));
    ASSERT_OK(cf_future_release(p));
    ASSERT_OK(cf_future_release(c));
    ASSERT_OK(cf_future_release(r));
}

/* ---- exception() -------------------------------------------------------- */

/* exception() with timeout 0 or a negative timeout on a future not done
 * returns CF_TIMEOUT at once.
 * clause: future.exception.timeout-poll */
TEST(future_exception_zero_and_negative_timeout_poll) {
    cf_future *f = pending_future(), *r = running_future();
    check_exception_times_out(f, 0);
    check_exception_times_out(r, 0);
    check_exception_times_out(f, -1);
    check_exception_times_out(f, -INFINITY);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(r));
}

/* exception() with a tiny or SHORT timeout returns CF_TIMEOUT no earlier
 * than the timeout.
 * clause: future.exception.timeout-not-early */
TEST(future_exception_timeout_not_early) {
    cf_future *f = pending_future();
    check_exception_times_out(f, 0.001);
    check_exception_times_out(f, SHORT);
    check_pending(f);
    ASSERT_OK(cf_future_release(f));
}

/* exception() with a NaN timeout returns CF_EINVAL, done or not, and
 * writes nothing.
 * clause: future.exception.timeout-nan */
TEST(future_exception_nan_timeout_is_einval) {
    cf_future *p = pending_future(), *d = pending_future();
    const cf_error *e = (const cf_error *)&e;
    ASSERT_OK(cf_future_set_exception(d, "ValueError", "v"));
    ASSERT_STATUS(cf_future_exception(p, NAN, &e), CF_EINVAL);
    ASSERT_STATUS(cf_future_exception(d, NAN, &e), CF_EINVAL);
    ASSERT_TRUE(e == (const cf_error *)&e);
    ASSERT_OK(cf_future_release(p));
    ASSERT_OK(cf_future_release(d));
}

/* exception() with a huge finite timeout on a done future returns at once.
 * clause: future.exception.timeout-huge */
TEST(future_exception_huge_timeout_on_done_returns_at_once) {
    cf_future *d = pending_future();
    const cf_error *e = NULL;
    ASSERT_OK(cf_future_set_exception(d, "ValueError", "v"));
    double t0 = test_now();
    ASSERT_OK(cf_future_exception(d, 1e300, &e));
    ASSERT_STREQ(cf_error_type(e), "ValueError");
    ASSERT_OK(cf_future_exception(d, DBL_MAX, &e));
    ASSERT_DBL_OP(test_now() - t0, <, LONG / 2);
    ASSERT_OK(cf_future_release(d));
}

/* exception() gives NULL with CF_OK when the call finished without raising.
 * clause: future.exception.null-after-success */
TEST(future_exception_is_null_after_success) {
    cf_future *f = pending_future();
    cf_value v = cf_none();
    const cf_error *e = (const cf_error *)&e;
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_OK(cf_future_exception(f, 0, &e));
    ASSERT_NULL(e);
    e = (const cf_error *)&e;
    ASSERT_OK(cf_future_exception(f, CF_FOREVER, &e));
    ASSERT_NULL(e);
    ASSERT_OK(cf_future_release(f));
}

/* exception() after set_exception gives the error: its type, its message,
 * and cf_error_status CF_RAISED.
 * clause: future.exception.gives-error */
TEST(future_exception_gives_error_after_set_exception) {
    cf_future *f = pending_future();
    const cf_error *e = NULL;
    ASSERT_OK(cf_future_set_exception(f, "ValueError", "bad value 7"));
    ASSERT_OK(cf_future_exception(f, 0, &e));
    check_error(e, CF_RAISED, "ValueError", "bad value 7");
    ASSERT_OK(cf_future_release(f));
}

/* exception() gives CF_CANCELLED on a cancelled future and writes nothing.
 * clause: future.exception.cancelled */
TEST(future_exception_cancelled_returns_cancelled) {
    cf_future *f = pending_future();
    const cf_error *e = (const cf_error *)&e;
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_STATUS(cf_future_exception(f, 0, &e), CF_CANCELLED);
    ASSERT_STATUS(cf_future_exception(f, CF_FOREVER, &e), CF_CANCELLED);
    ASSERT_TRUE(e == (const cf_error *)&e);
    ASSERT_OK(cf_future_release(f));
}

/* exception(CF_FOREVER) blocked in another thread returns the error once
 * set_exception is called.
 * clause: future.exception.wakes-on-set-exception */
TEST(future_exception_forever_woken_by_set_exception) {
    cf_future *f = pending_future();
    waiter w;
    double t = waiter_blocked(&w, f, CF_FOREVER, true);
    ASSERT_OK(cf_future_set_exception(f, "IndexError", "out of range"));
    waiter_finish(&w, t);
    ASSERT_OK(w.status);
    ASSERT_NOT_NULL(w.error);
    ASSERT_STREQ(cf_error_type(w.error), "IndexError");
    ASSERT_STREQ(cf_error_message(w.error), "out of range");
    ASSERT_OK(cf_future_release(f));
}

/* exception(CF_FOREVER) blocked in another thread returns CF_OK with NULL
 * once set_result is called.
 * clause: future.exception.wakes-on-set-result */
TEST(future_exception_forever_woken_by_set_result) {
    cf_future *f = pending_future();
    waiter w;
    cf_value v = cf_int(0);
    double t = waiter_blocked(&w, f, CF_FOREVER, true);
    ASSERT_OK(cf_future_set_result(f, &v));
    waiter_finish(&w, t);
    ASSERT_OK(w.status);
    ASSERT_NULL(w.error);
    ASSERT_OK(cf_future_release(f));
}

/* The error exception() gives stays valid, unchanged, for as long as the
 * caller holds its reference, whatever else is called meanwhile.
 * clause: future.exception.error-lifetime */
TEST(future_exception_error_lives_with_reference) {
    cf_future *f = pending_future();
    const cf_error *e = NULL, *e2 = NULL;
    cf_value v = cf_int(1);
    ASSERT_OK(cf_future_set_exception(f, "LookupError", "kept"));
    ASSERT_OK(cf_future_exception(f, 0, &e));
    ASSERT_OK(cf_future_retain(f));
    ASSERT_OK(cf_future_release(f));
    ASSERT_STATUS(cf_future_result(f, 0, NULL), CF_RAISED);
    ASSERT_STATUS(cf_future_set_result(f, &v), CF_INVALID_STATE);
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", "replaced"),
                  CF_INVALID_STATE);
    ASSERT_FALSE(cf_future_cancel(f));
    ASSERT_OK(cf_future_exception(f, CF_FOREVER, &e2));
    check_error(e, CF_RAISED, "LookupError", "kept");
    ASSERT_STREQ(cf_error_type(e2), "LookupError");
    ASSERT_OK(cf_future_release(f));
}

/* ---- reference counting ------------------------------------------------- */

/* Releasing the last reference frees the future with its value, error and
 * callbacks (the ASan+LSan build reports any leak).
 * clause: future.refcount.release-frees */
TEST(future_release_last_reference_frees) {
    cf_future *a = pending_future(), *b = pending_future(),
              *c = pending_future();
    cf_value s = cf_none();
    counter n = {0};
    ASSERT_OK(cf_value_str(&s, "a result to free with the future"));
    ASSERT_OK(cf_future_set_result(a, &s));
    cf_value_free(&s);
    ASSERT_OK(cf_future_set_exception(b, "ValueError", "an error to free"));
    ASSERT_OK(cf_future_add_done_callback(c, count_cb, &n));
    ASSERT_OK(cf_future_release(a));
    ASSERT_OK(cf_future_release(b));
    ASSERT_OK(cf_future_release(c));
    ASSERT_EQ(calls_of(&n), 0);
}

/* A future retained twice survives two releases of other references and
 * stays fully usable until its last reference goes.
 * clause: future.refcount.retain */
TEST(future_retained_survives_other_releases) {
    cf_future *f = pending_future();
    cf_value v = cf_int(8);
    ASSERT_OK(cf_future_retain(f));
    ASSERT_OK(cf_future_retain(f));
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(f));
    check_pending(f);
    ASSERT_OK(cf_future_set_result(f, &v));
    check_value(f, &v);
    ASSERT_OK(cf_future_release(f));
}

static void *release_after_gate(void *arg) {
    void **args = arg;
    cf_future *f = args[0];
    gate *proceed = args[1];
    cf_value v = cf_int(6);
    gate_wait(proceed);
    ASSERT_OK(cf_future_set_result(f, &v));
    check_value(f, &v);
    ASSERT_OK(cf_future_release(f));
    return NULL;
}

/* Each holder owns its own reference, so either may release first: the
 * other thread's reference keeps the future alive after ours is gone.
 * clause: future.refcount.either-releases-first */
TEST(future_either_holder_may_release_first) {
    cf_future *f = pending_future();
    gate proceed;
    pthread_t t;
    void *args[2] = {f, &proceed};
    gate_init(&proceed);
    ASSERT_OK(cf_future_retain(f));
    ASSERT_EQ(pthread_create(&t, NULL, release_after_gate, args), 0);
    ASSERT_OK(cf_future_release(f));
    gate_open(&proceed);
    pthread_join(t, NULL);
    gate_destroy(&proceed);
}

/* ---- argument checks ---------------------------------------------------- */

/* Calls every future function on f, which is not a future: each must give
 * CF_EINVAL (false for the bool queries), write no out-parameter and call no
 * callback. */
static void check_every_function_rejects(cf_future *f) {
    cf_value v = cf_int(1), out = sentinel();
    const cf_error *e = (const cf_error *)&e;
    counter c = {0};
    ASSERT_STATUS(cf_future_retain(f), CF_EINVAL);
    ASSERT_STATUS(cf_future_release(f), CF_EINVAL);
    ASSERT_FALSE(cf_future_cancel(f));
    ASSERT_FALSE(cf_future_cancelled(f));
    ASSERT_FALSE(cf_future_running(f));
    ASSERT_FALSE(cf_future_done(f));
    ASSERT_STATUS(cf_future_result(f, 0, &out), CF_EINVAL);
    ASSERT_STATUS(cf_future_result(f, CF_FOREVER, &out), CF_EINVAL);
    ASSERT_STATUS(cf_future_exception(f, 0, &e), CF_EINVAL);
    ASSERT_STATUS(cf_future_exception(f, CF_FOREVER, &e), CF_EINVAL);
    ASSERT_STATUS(cf_future_add_done_callback(f, count_cb, &c), CF_EINVAL);
    ASSERT_STATUS(cf_future_set_running_or_notify_cancel(f), CF_EINVAL);
    ASSERT_STATUS(cf_future_set_result(f, &v), CF_EINVAL);
    ASSERT_STATUS(cf_future_set_exception(f, "ValueError", "m"), CF_EINVAL);
    ASSERT_TRUE(is_sentinel(&out));
    ASSERT_TRUE(e == (const cf_error *)&e);
    ASSERT_EQ(calls_of(&c), 0);
}

/* Every future function rejects a NULL future: CF_EINVAL, or false for the
 * bool queries.
 * clause: api.null-arguments */
TEST(future_functions_reject_null) {
    check_every_function_rejects(NULL);
}

/* Every future function rejects a pointer to memory that is not a future
 * (256 zero bytes): CF_EINVAL or false, never calling a callback and never
 * writing the memory.
 * clause: future.foreign-pointer */
TEST(future_functions_reject_foreign_pointer) {
    static union {
        max_align_t align;
        unsigned char bytes[256];
    } fake;
    check_every_function_rejects((cf_future *)(void *)&fake);
    for (size_t k = 0; k < sizeof fake.bytes; k++)
        ASSERT_EQ(fake.bytes[k], 0);
}

/* exception() with a NULL out returns CF_EINVAL (unlike result(), its
 * header does not allow NULL), on a pending and on a done future.
 * clause: api.null-arguments */
TEST(future_exception_rejects_null_out) {
    cf_future *p = pending_future(), *d = pending_future();
    ASSERT_OK(cf_future_set_exception(d, "ValueError", "v"));
    ASSERT_STATUS(cf_future_exception(p, 0, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_future_exception(d, 0, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_future_exception(d, CF_FOREVER, NULL), CF_EINVAL);
    check_pending(p);
    ASSERT_OK(cf_future_release(p));
    ASSERT_OK(cf_future_release(d));
}

/* ---- fork -------------------------------------------------------------- */

/* Threads that keep taking every stripe lock until told to stop. */
typedef struct hammer {
    cf_future *fs[256];
    atomic_bool stop;
} hammer;

static void *hammer_main(void *arg) {
    hammer *h = arg;
    while (!atomic_load(&h->stop))
        for (size_t i = 0; i < 256; i++)
            (void)cf_future_done(h->fs[i]);
    return NULL;
}

/* In the child: futures of its own, kept so that their addresses (and so
 * their stripe locks) all differ; exit 0 if they work. */
static void child_uses_futures(void) {
    static cf_future *mine[256];
    for (int i = 0; i < 256; i++) {
        cf_value v = cf_int(i), got = cf_none();
        if (cf_future_new(&mine[i]) != CF_OK ||
            cf_future_set_result(mine[i], &v) != CF_OK ||
            cf_future_result(mine[i], 0, &got) != CF_OK || got.as.i != i)
            _exit(1);
    }
    _exit(0); /* no exit handlers: the parent's pools are not the child's */
}

/* Waits for the child for at most LONG; a child still running then is
 * hung on a lock: kill it and fail. */
static void expect_child_exits_zero(pid_t pid) {
    double deadline = test_now() + LONG;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && test_now() < deadline)
        poll(NULL, 0, 1); /* a hang watchdog, not an ordering */
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        test_fail(__FILE__, __LINE__, "a forked child hung on a lock");
    }
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A child forked while other threads keep taking the futures' locks can
 * use futures of its own: fork() waits until no lock is held (otherwise a
 * lock held at the fork stays locked in the child forever).
 * clause: future.fork.child-may-use-futures */
TEST(future_fork_while_threads_lock_futures_leaves_child_usable) {
    hammer h;
    pthread_t t[4];
    atomic_init(&h.stop, false);
    for (size_t i = 0; i < 256; i++)
        h.fs[i] = pending_future();
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, hammer_main, &h), 0);
    for (long n = test_repeats(40); n > 0; n--) {
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
            child_uses_futures();
        expect_child_exits_zero(pid);
    }
    atomic_store(&h.stop, true);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    release_all(h.fs, 256);
}
