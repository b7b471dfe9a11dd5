/*
 * Done callbacks (cf_future_add_done_callback) and the log hook
 * (cf_set_log_hook), on futures made with cf_future_new; then two stress
 * tests: callbacks added while several threads race set_result, and
 * set_result racing cancel.
 *
 * A future is completed in a plain pthread (a "completer") whenever the
 * test must not hang if the library deadlocks: the main thread waits for
 * it through a gate, which fails the test after LONG.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <stdatomic.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* How a test completes a future. */
typedef enum outcome { BY_RESULT, BY_EXCEPTION, BY_CANCEL } outcome;

static const outcome all_outcomes[] = {BY_RESULT, BY_EXCEPTION, BY_CANCEL};

/* Completes f; true if this call completed it. */
static bool complete(cf_future *f, outcome how) {
    cf_value v = cf_int(100);
    switch (how) {
    case BY_RESULT:
        return cf_future_set_result(f, &v) == CF_OK;
    case BY_EXCEPTION:
        return cf_future_set_exception(f, "ValueError", "cb") == CF_OK;
    case BY_CANCEL:
        return cf_future_cancel(f);
    }
    return false;
}

/* An order log that callbacks append to. */
typedef struct order_log {
    pthread_mutex_t lock;
    int n;
    int items[32];
} order_log;

static void order_log_init(order_log *l) {
    pthread_mutex_init(&l->lock, NULL);
    l->n = 0;
}

static void order_log_add(order_log *l, int item) {
    pthread_mutex_lock(&l->lock);
    if (l->n < 32)
        l->items[l->n] = item;
    l->n++;
    pthread_mutex_unlock(&l->lock);
}

typedef struct order_entry {
    order_log *log;
    int id;
    cf_status ret;
} order_entry;

static cf_status order_cb(cf_future *f, void *ctx) {
    order_entry *e = ctx;
    (void)f;
    order_log_add(e->log, e->id);
    return e->ret;
}

static void assert_order_(const char *file, int line, order_log *l,
                          const int *want, int n) {
    if (l->n != n)
        test_fail(file, line, "%d callbacks ran, want %d", l->n, n);
    for (int k = 0; k < n; k++)
        if (l->items[k] != want[k])
            test_fail(file, line, "callback #%d was %d, want %d", k,
                      l->items[k], want[k]);
}
#define assert_order(l, want, n) assert_order_(__FILE__, __LINE__, l, want, n)

/* A thread that completes a future; the main thread waits for it with a
 * LONG bound, so a deadlock inside completion fails instead of hanging. */
typedef struct completer {
    pthread_t thread;
    cf_future *f;
    outcome how;
    bool completed;
    gate finished;
} completer;

static void *completer_main(void *arg) {
    completer *c = arg;
    c->completed = complete(c->f, c->how);
    gate_open(&c->finished);
    return NULL;
}

static void completer_start(completer *c, cf_future *f, outcome how) {
    c->f = f;
    c->how = how;
    c->completed = false;
    gate_init(&c->finished);
    ASSERT_EQ(pthread_create(&c->thread, NULL, completer_main, c), 0);
}

static void completer_finish(completer *c) {
    gate_wait(&c->finished);
    pthread_join(c->thread, NULL);
    gate_destroy(&c->finished);
    ASSERT_TRUE(c->completed);
}

/* A log hook that records what it is given. */
typedef struct log_record {
    pthread_mutex_t lock;
    int count;
    cf_log_level level;
    char message[512];
    void *ctx;
} log_record;

static log_record records = {PTHREAD_MUTEX_INITIALIZER, 0, CF_LOG_CRITICAL, "",
                             NULL};

static void record_hook(cf_log_level level, const char *message, void *ctx) {
    pthread_mutex_lock(&records.lock);
    records.count++;
    records.level = level;
    snprintf(records.message, sizeof records.message, "%s",
             message ? message : "(null)");
    records.ctx = ctx;
    pthread_mutex_unlock(&records.lock);
}

static int records_count(void) {
    pthread_mutex_lock(&records.lock);
    int n = records.count;
    pthread_mutex_unlock(&records.lock);
    return n;
}

static void assert_callback_logged_(const char *file, int line, int count) {
    pthread_mutex_lock(&records.lock);
    int n = records.count;
    cf_log_level level = records.level;
    bool has = strstr(records.message, "exception calling callback") != NULL;
    pthread_mutex_unlock(&records.lock);
    if (n != count)
        test_fail(file, line, "%d log records, want %d", n, count);
    if (count > 0 && (level != CF_LOG_ERROR || !has))
        test_fail(file, line,
                  "logged level %d \"%s\", want CF_LOG_ERROR "
                  "\"exception calling callback ...\"",
                  (int)level, records.message);
}
#define assert_callback_logged(count)                                         \
    assert_callback_logged_(__FILE__, __LINE__, count)

static cf_status failing_cb(cf_future *f, void *ctx) {
    counter *c = ctx;
    (void)f;
    if (c)
        atomic_fetch_add(&c->calls, 1);
    return CF_RAISED;
}

/* ---- order and count ---------------------------------------------------- */

/* Callbacks run in the order they were added.
 * clause: future.callback.order */
TEST(callback_runs_in_order_added) {
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future();
        order_log log;
        order_entry e[6];
        int want[6] = {0, 1, 2, 3, 4, 5};
        order_log_init(&log);
        for (int i = 0; i < 6; i++) {
            e[i] = (order_entry){&log, i, CF_OK};
            ASSERT_OK(cf_future_add_done_callback(f, order_cb, &e[i]));
        }
        ASSERT_EQ(log.n, 0);
        ASSERT_TRUE(complete(f, all_outcomes[k]));
        assert_order(&log, want, 6);
        ASSERT_OK(cf_future_release(f));
        pthread_mutex_destroy(&log.lock);
    }
}

/* The same function with the same ctx added twice is called twice.
 * clause: future.callback.same-fn-twice */
TEST(callback_added_twice_runs_twice) {
    cf_future *f = pending_future();
    counter c = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    cf_value v = cf_none();
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_EQ(calls_of(&c), 2);
    ASSERT_OK(cf_future_release(f));
}

/* Each callback runs exactly once, whatever is called on the future after
 * it completed (by result, exception or cancel).
 * clause: future.callback.exactly-once */
TEST(callback_runs_exactly_once) {
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future();
        counter c = {0};
        cf_value v = cf_int(1);
        ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
        ASSERT_TRUE(complete(f, all_outcomes[k]));
        ASSERT_EQ(calls_of(&c), 1);
        for (size_t j = 0; j < 3; j++)
            (void)complete(f, all_outcomes[j]);
        (void)cf_future_set_running_or_notify_cancel(f);
        (void)cf_future_set_running_or_notify_cancel(f);
        ASSERT_STATUS(cf_future_set_result(f, &v), CF_INVALID_STATE);
        (void)cf_future_result(f, 0, NULL);
        ASSERT_EQ(calls_of(&c), 1);
        ASSERT_OK(cf_future_release(f));
        ASSERT_EQ(calls_of(&c), 1);
    }
}

/* A callback is called with the future it was added to and its ctx.
 * clause: future.callback.arguments */
TEST(callback_receives_future_and_ctx) {
    cf_future *f = pending_future(), *g = pending_future();
    counter a = {0}, b = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &a));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_TRUE(cf_future_cancel(g));
    ASSERT_OK(cf_future_add_done_callback(g, count_cb, &b));
    ASSERT_TRUE(a.future == f);
    ASSERT_TRUE(b.future == g);
    ASSERT_EQ(calls_of(&a), 1);
    ASSERT_EQ(calls_of(&b), 1);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(g));
}

/* ---- which thread ------------------------------------------------------- */

/* On a future already done (finished, raised or cancelled) the callback
 * runs in the adding thread before add_done_callback returns.
 * clause: future.callback.already-done */
TEST(callback_on_done_future_runs_before_add_returns) {
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future();
        counter c = {0};
        ASSERT_TRUE(complete(f, all_outcomes[k]));
        ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
        ASSERT_EQ(calls_of(&c), 1);
        ASSERT_TRUE(pthread_equal(c.thread, pthread_self()));
        ASSERT_OK(cf_future_release(f));
    }
}

/* Callbacks run in the thread that completes the future (set_result,
 * set_exception or cancel in another thread), before that call returns.
 * clause: future.callback.thread */
static void check_runs_in_completing_thread(outcome how) {
    cf_future *f = pending_future();
    counter a = {0}, b = {0};
    completer c;
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &a));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &b));
    completer_start(&c, f, how);
    pthread_t completing = c.thread;
    completer_finish(&c);
    ASSERT_EQ(calls_of(&a), 1);
    ASSERT_EQ(calls_of(&b), 1);
    ASSERT_TRUE(pthread_equal(a.thread, completing));
    ASSERT_TRUE(pthread_equal(b.thread, completing));
    ASSERT_FALSE(pthread_equal(a.thread, pthread_self()));
    ASSERT_OK(cf_future_release(f));
}

/* Callbacks run in the thread calling set_result, before it returns.
 * clause: future.callback.thread */
TEST(callback_runs_in_thread_calling_set_result) {
    check_runs_in_completing_thread(BY_RESULT);
}

/* Callbacks run in the thread calling set_exception, before it returns.
 * clause: future.callback.thread */
TEST(callback_runs_in_thread_calling_set_exception) {
    check_runs_in_completing_thread(BY_EXCEPTION);
}

/* Callbacks run in the thread calling cancel, before it returns.
 * clause: future.callback.thread */
TEST(callback_runs_in_thread_calling_cancel) {
    check_runs_in_completing_thread(BY_CANCEL);
}

/* ---- the future inside the callback ------------------------------------ */

typedef struct inside {
    outcome how;
    int calls;
    bool done, running, cancelled;
    cf_status result, exception;
    cf_value value;
    const cf_error *error;
    double result_took;
} inside;

static cf_status inspect_cb(cf_future *f, void *ctx) {
    inside *in = ctx;
    in->calls++;
    in->done = cf_future_done(f);
    in->running = cf_future_running(f);
    in->cancelled = cf_future_cancelled(f);
    double t0 = test_now();
    in->result = cf_future_result(f, CF_FOREVER, &in->value);
    in->result_took = test_now() - t0;
    in->exception = cf_future_exception(f, 0, &in->error);
    return CF_OK;
}

/* Inside its callback the future is done, and result() returns its outcome
 * at once (value, CF_RAISED or CF_CANCELLED).
 * clause: future.callback.done-inside */
TEST(callback_sees_future_done) {
    cf_status want_result[] = {CF_OK, CF_RAISED, CF_CANCELLED};
    cf_status want_exception[] = {CF_OK, CF_OK, CF_CANCELLED};
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future();
        inside in = {.how = all_outcomes[k], .value = cf_none()};
        completer c;
        ASSERT_OK(cf_future_add_done_callback(f, inspect_cb, &in));
        completer_start(&c, f, all_outcomes[k]);
        completer_finish(&c);
        ASSERT_EQ(in.calls, 1);
        ASSERT_TRUE(in.done);
        ASSERT_FALSE(in.running);
        ASSERT_EQ(in.cancelled, all_outcomes[k] == BY_CANCEL);
        ASSERT_STATUS(in.result, want_result[k]);
        ASSERT_STATUS(in.exception, want_exception[k]);
        ASSERT_DBL_OP(in.result_took, <, LONG / 2);
        if (all_outcomes[k] == BY_RESULT) {
            cf_value want = cf_int(100);
            ASSERT_TRUE(cf_value_equal(&in.value, &want));
            ASSERT_NULL(in.error);
        }
        if (all_outcomes[k] == BY_EXCEPTION)
            ASSERT_STREQ(cf_error_type(in.error), "ValueError");
        cf_value_free(&in.value);
        ASSERT_OK(cf_future_release(f));
    }
}

typedef struct reentry {
    int calls;
    bool cancel_ret;
    cf_status set_result, set_exception, set_running, retain, release;
    counter inner;
} reentry;

static cf_status reenter_cb(cf_future *f, void *ctx) {
    reentry *r = ctx;
    cf_value v = cf_int(-5);
    r->calls++;
    r->cancel_ret = cf_future_cancel(f);
    r->set_result = cf_future_set_result(f, &v);
    r->set_exception = cf_future_set_exception(f, "ValueError", "again");
    r->set_running = cf_future_set_running_or_notify_cancel(f);
    r->retain = cf_future_retain(f);
    r->release = cf_future_release(f);
    return CF_OK;
}

/* A callback may call the future's own functions (cancel, set_*, retain,
 * release): the finished future refuses a second outcome and nothing
 * deadlocks.
 * clause: future.callback.reentrant */
TEST(callback_may_call_functions_on_same_future) {
    cf_future *f = pending_future();
    reentry r = {0};
    completer c;
    ASSERT_OK(cf_future_add_done_callback(f, reenter_cb, &r));
    completer_start(&c, f, BY_RESULT);
    completer_finish(&c);
    ASSERT_EQ(r.calls, 1);
    ASSERT_FALSE(r.cancel_ret);
    ASSERT_STATUS(r.set_result, CF_INVALID_STATE);
    ASSERT_STATUS(r.set_exception, CF_INVALID_STATE);
    ASSERT_STATUS(r.set_running, CF_INVALID_STATE);
    ASSERT_OK(r.retain);
    ASSERT_OK(r.release);
    cf_value want = cf_int(100);
    check_value(f, &want);
    ASSERT_OK(cf_future_release(f));
}

/* A callback of a cancelled future may call cancel() on it again, which
 * returns true without running the callbacks again.
 * clause: future.callback.reentrant */
TEST(callback_may_cancel_its_cancelled_future) {
    cf_future *f = pending_future();
    reentry r = {0};
    counter n = {0};
    completer c;
    ASSERT_OK(cf_future_add_done_callback(f, reenter_cb, &r));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &n));
    completer_start(&c, f, BY_CANCEL);
    completer_finish(&c);
    ASSERT_EQ(r.calls, 1);
    ASSERT_TRUE(r.cancel_ret);
    ASSERT_STATUS(r.set_result, CF_INVALID_STATE);
    ASSERT_EQ(calls_of(&n), 1);
    check_cancelled(f);
    ASSERT_OK(cf_future_release(f));
}

typedef struct nested {
    order_log log;
    order_entry inner;
    cf_status add_status;
    pthread_t inner_thread_expected;
} nested;

static cf_status outer_cb(cf_future *f, void *ctx) {
    nested *n = ctx;
    order_log_add(&n->log, 1);
    n->add_status = cf_future_add_done_callback(f, order_cb, &n->inner);
    order_log_add(&n->log, 3);
    return CF_OK;
}

/* A callback that adds another callback to its own (done) future sees the
 * new one run at once, inside the add call.
 * clause: future.callback.add-inside-callback */
TEST(callback_adding_callback_runs_it_at_once) {
    cf_future *f = pending_future();
    nested n;
    order_entry last;
    completer c;
    int want[] = {1, 2, 3, 4};
    order_log_init(&n.log);
    n.inner = (order_entry){&n.log, 2, CF_OK};
    last = (order_entry){&n.log, 4, CF_OK};
    ASSERT_OK(cf_future_add_done_callback(f, outer_cb, &n));
    ASSERT_OK(cf_future_add_done_callback(f, order_cb, &last));
    completer_start(&c, f, BY_RESULT);
    completer_finish(&c);
    ASSERT_OK(n.add_status);
    assert_order(&n.log, want, 4);
    ASSERT_OK(cf_future_release(f));
    pthread_mutex_destroy(&n.log.lock);
}

typedef struct blocker {
    gate in_callback, proceed;
} blocker;

static cf_status block_cb(cf_future *f, void *ctx) {
    blocker *b = ctx;
    (void)f;
    gate_open(&b->in_callback);
    gate_wait(&b->proceed);
    return CF_OK;
}

/* Callbacks run outside every cfutures lock: while one is blocked, another
 * thread can query, wait on, add a callback to, and cancel the same future,
 * and use other futures.
 * clause: future.callback.outside-locks */
TEST(callback_runs_outside_future_lock) {
    cf_future *f = pending_future(), *g = NULL;
    blocker b;
    completer c;
    counter late = {0};
    cf_value out = cf_none(), v = cf_int(3);
    const cf_error *e = (const cf_error *)&e;
    gate_init(&b.in_callback);
    gate_init(&b.proceed);
    ASSERT_OK(cf_future_add_done_callback(f, block_cb, &b));
    completer_start(&c, f, BY_RESULT);
    gate_wait(&b.in_callback);
    ASSERT_TRUE(cf_future_done(f));
    ASSERT_FALSE(cf_future_running(f));
    ASSERT_OK(cf_future_result(f, 0, &out));
    ASSERT_OK(cf_future_result(f, CF_FOREVER, NULL));
    ASSERT_OK(cf_future_exception(f, 0, &e));
    ASSERT_NULL(e);
    ASSERT_FALSE(cf_future_cancel(f));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &late));
    ASSERT_EQ(calls_of(&late), 1);
    ASSERT_TRUE(pthread_equal(late.thread, pthread_self()));
    ASSERT_OK(cf_future_new(&g));
    ASSERT_OK(cf_future_set_result(g, &v));
    ASSERT_OK(cf_future_release(g));
    gate_open(&b.proceed);
    completer_finish(&c);
    gate_destroy(&b.in_callback);
    gate_destroy(&b.proceed);
    ASSERT_OK(cf_future_release(f));
}

typedef struct after_waiters {
    gate *returned;
    int calls;
} after_waiters;

static cf_status wait_for_waiter_cb(cf_future *f, void *ctx) {
    after_waiters *a = ctx;
    (void)f;
    gate_wait(a->returned);
    a->calls++;
    return CF_OK;
}

typedef struct blocked_waiter {
    cf_future *f;
    gate waiting, returned;
    cf_status status;
} blocked_waiter;

static void *blocked_waiter_main(void *arg) {
    blocked_waiter *w = arg;
    gate_open(&w->waiting);
    w->status = cf_future_result(w->f, CF_FOREVER, NULL);
    gate_open(&w->returned);
    return NULL;
}

/* result() waiters are woken before the callbacks run: a callback that
 * waits for a blocked result() caller to return does not deadlock.
 * clause: future.callback.after-waiters */
TEST(callback_runs_after_waiters_woken) {
    cf_future *f = pending_future();
    blocked_waiter w = {.f = f, .status = CF__STATUS_COUNT};
    after_waiters a = {.returned = &w.returned};
    pthread_t t;
    gate_init(&w.waiting);
    gate_init(&w.returned);
    ASSERT_OK(cf_future_add_done_callback(f, wait_for_waiter_cb, &a));
    ASSERT_EQ(pthread_create(&t, NULL, blocked_waiter_main, &w), 0);
    gate_wait(&w.waiting);
    double t0 = test_now();
    ASSERT_STATUS(cf_future_result(f, SHORT, NULL), CF_TIMEOUT);
    ASSERT_DBL_OP(test_now() - t0, >=, SHORT);
    ASSERT_FALSE(gate_is_open(&w.returned));
    cf_value v = cf_int(1);
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_EQ(a.calls, 1);
    pthread_join(t, NULL);
    ASSERT_OK(w.status);
    gate_destroy(&w.waiting);
    gate_destroy(&w.returned);
    ASSERT_OK(cf_future_release(f));
}

/* ---- failing callbacks and the log hook -------------------------------- */

/* A callback returning a status other than CF_OK is logged at CF_LOG_ERROR
 * ("exception calling callback ...") and the callbacks after it still run.
 * clause: future.callback.failure-logged */
TEST(callback_failure_is_logged_and_later_callbacks_run) {
    cf_future *f = pending_future();
    order_log log;
    order_entry e[3];
    int want[] = {0, 1, 2};
    int hook_ctx;
    order_log_init(&log);
    ASSERT_OK(cf_set_log_hook(record_hook, &hook_ctx));
    e[0] = (order_entry){&log, 0, CF_OK};
    e[1] = (order_entry){&log, 1, CF_RAISED};
    e[2] = (order_entry){&log, 2, CF_OK};
    for (int i = 0; i < 3; i++)
        ASSERT_OK(cf_future_add_done_callback(f, order_cb, &e[i]));
    cf_value v = cf_int(1);
    ASSERT_OK(cf_future_set_result(f, &v));
    assert_order(&log, want, 3);
    assert_callback_logged(1);
    ASSERT_TRUE(records.ctx == &hook_ctx);
    check_value(f, &v);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_release(f));
    pthread_mutex_destroy(&log.lock);
}

/* Every failing callback is logged once: two failures give two records,
 * whatever non-OK status each returns.
 * clause: future.callback.failure-logged */
TEST(callback_each_failure_is_logged) {
    cf_future *f = pending_future();
    counter a = {0}, b = {0};
    ASSERT_OK(cf_set_log_hook(record_hook, NULL));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, &a));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, &b));
    ASSERT_OK(cf_future_set_exception(f, "ValueError", "x"));
    ASSERT_EQ(calls_of(&a), 1);
    ASSERT_EQ(calls_of(&b), 1);
    assert_callback_logged(2);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_release(f));
}

/* A failing callback on an already-done future is logged too, and
 * add_done_callback still returns CF_OK (the status is ignored).
 * clause: future.callback.failure-logged */
TEST(callback_failure_on_done_future_is_logged) {
    cf_future *f = pending_future();
    counter a = {0};
    ASSERT_OK(cf_set_log_hook(record_hook, NULL));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, &a));
    ASSERT_EQ(calls_of(&a), 1);
    assert_callback_logged(1);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_release(f));
}

/* A failing callback run by cancel() is logged and cancel still returns
 * true.
 * clause: future.callback.failure-logged */
TEST(callback_failure_on_cancel_is_logged) {
    cf_future *f = pending_future();
    counter a = {0}, after = {0};
    ASSERT_OK(cf_set_log_hook(record_hook, NULL));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, &a));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &after));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_EQ(calls_of(&a), 1);
    ASSERT_EQ(calls_of(&after), 1);
    assert_callback_logged(1);
    check_cancelled(f);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_release(f));
}

/* A callback returning CF_OK is not logged.
 * clause: future.callback.failure-logged */
TEST(callback_success_is_not_logged) {
    cf_future *f = pending_future();
    counter a = {0};
    ASSERT_OK(cf_set_log_hook(record_hook, NULL));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &a));
    ASSERT_TRUE(cf_future_cancel(f));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &a));
    ASSERT_EQ(calls_of(&a), 2);
    assert_callback_logged(0);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_release(f));
}

/* cf_set_log_hook(NULL) restores the default, which writes "cfutures:
 * <message>\n" to stderr; the old hook is no longer called.
 * clause: log.hook.default */
TEST(log_hook_null_restores_default) {
    cf_future *f = pending_future();
    char out[1024] = "";
    ASSERT_OK(cf_set_log_hook(record_hook, NULL));
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, NULL));

    fflush(stderr);
    FILE *tmp = tmpfile();
    ASSERT_NOT_NULL(tmp);
    int saved = dup(2);
    ASSERT_GE(saved, 0);
    ASSERT_GE(dup2(fileno(tmp), 2), 0);
    bool cancelled = cf_future_cancel(f);
    fflush(stderr);
    ASSERT_GE(dup2(saved, 2), 0);
    close(saved);

    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    ASSERT_TRUE(cancelled);
    ASSERT_EQ(records_count(), 0);
    ASSERT_EQ(strncmp(out, "cfutures: ", 10), 0);
    ASSERT_NOT_NULL(strstr(out, "exception calling callback"));
    ASSERT_TRUE(n > 0 && strchr(out, '\n') == out + n - 1);
    ASSERT_OK(cf_future_release(f));
}

typedef struct hook_probe {
    cf_future *f;
    gate in_hook, proceed;
    int calls;
} hook_probe;

static void blocking_hook(cf_log_level level, const char *message, void *ctx) {
    hook_probe *p = ctx;
    (void)level;
    (void)message;
    p->calls++;
    gate_open(&p->in_hook);
    gate_wait(&p->proceed);
}

/* The log hook is called with no cfutures lock held: while it is blocked,
 * another thread can use the future whose callback failed.
 * clause: log.hook.outside-locks */
TEST(log_hook_called_outside_locks) {
    cf_future *f = pending_future(), *g = NULL;
    hook_probe p = {.f = f};
    completer c;
    counter late = {0};
    cf_value v = cf_int(2);
    gate_init(&p.in_hook);
    gate_init(&p.proceed);
    ASSERT_OK(cf_set_log_hook(blocking_hook, &p));
    ASSERT_OK(cf_future_add_done_callback(f, failing_cb, NULL));
    completer_start(&c, f, BY_EXCEPTION);
    gate_wait(&p.in_hook);
    ASSERT_TRUE(cf_future_done(f));
    ASSERT_STATUS(cf_future_result(f, 0, NULL), CF_RAISED);
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &late));
    ASSERT_EQ(calls_of(&late), 1);
    ASSERT_OK(cf_future_new(&g));
    ASSERT_OK(cf_future_set_result(g, &v));
    ASSERT_OK(cf_future_release(g));
    ASSERT_OK(cf_set_log_hook(blocking_hook, &p));
    gate_open(&p.proceed);
    completer_finish(&c);
    ASSERT_EQ(p.calls, 1);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    gate_destroy(&p.in_hook);
    gate_destroy(&p.proceed);
    ASSERT_OK(cf_future_release(f));
}

/* ---- references and argument checks ------------------------------------ */

typedef struct releaser {
    int calls;
    bool done_after_release;
} releaser;

static cf_status release_cb(cf_future *f, void *ctx) {
    releaser *r = ctx;
    r->calls++;
    if (cf_future_release(f) != CF_OK)
        test_fail(__FILE__, __LINE__, "release inside the callback failed");
    r->done_after_release = cf_future_done(f);
    return CF_OK;
}

/* A callback may release a reference it owns to its future; the future,
 * still held by the completing thread, stays valid for the later callbacks
 * (the ASan build checks the memory).
 * clause: future.callback.release-inside */
TEST(callback_releasing_its_reference_is_safe) {
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future();
        releaser r = {0};
        counter after = {0};
        ASSERT_OK(cf_future_retain(f)); /* the callback's reference */
        ASSERT_OK(cf_future_add_done_callback(f, release_cb, &r));
        ASSERT_OK(cf_future_add_done_callback(f, count_cb, &after));
        ASSERT_TRUE(complete(f, all_outcomes[k]));
        ASSERT_EQ(r.calls, 1);
        ASSERT_TRUE(r.done_after_release);
        ASSERT_EQ(calls_of(&after), 1);
        ASSERT_TRUE(after.future == f);
        ASSERT_TRUE(cf_future_done(f));
        ASSERT_OK(cf_future_release(f));
    }
}

/* A callback may release the only reference there is -- the one the thread
 * completing the future handed it: the completer keeps the future alive
 * until its last callback has run (the ASan build checks the memory).
 * clause: future.callback.release-inside */
TEST(callback_releasing_the_last_reference_is_safe) {
    for (size_t k = 0; k < 3; k++) {
        cf_future *f = pending_future(); /* handed to release_cb below */
        releaser r = {0};
        counter after = {0};
        ASSERT_OK(cf_future_add_done_callback(f, release_cb, &r));
        ASSERT_OK(cf_future_add_done_callback(f, count_cb, &after));
        ASSERT_TRUE(complete(f, all_outcomes[k]));
        ASSERT_EQ(r.calls, 1);
        ASSERT_TRUE(r.done_after_release);
        ASSERT_EQ(calls_of(&after), 1);
        ASSERT_TRUE(after.future == f); /* compared, never touched */
    }
}

/* A callback added to a done future may release a reference it owns.
 * clause: future.callback.release-inside */
TEST(callback_on_done_future_releasing_its_reference_is_safe) {
    cf_future *f = pending_future();
    releaser r = {0};
    cf_value v = cf_int(4);
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_OK(cf_future_retain(f));
    ASSERT_OK(cf_future_add_done_callback(f, release_cb, &r));
    ASSERT_EQ(r.calls, 1);
    check_value(f, &v);
    ASSERT_OK(cf_future_release(f));
}

/* add_done_callback with a NULL fn returns CF_EINVAL and registers
 * nothing: completing the future later calls only the real callbacks.
 * clause: future.callback.rejects-null */
TEST(callback_null_fn_is_einval) {
    cf_future *f = pending_future(), *d = pending_future();
    counter before = {0}, after = {0};
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &before));
    ASSERT_STATUS(cf_future_add_done_callback(f, NULL, &before), CF_EINVAL);
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &after));
    cf_value v = cf_int(1);
    ASSERT_OK(cf_future_set_result(f, &v));
    ASSERT_EQ(calls_of(&before), 1);
    ASSERT_EQ(calls_of(&after), 1);
    ASSERT_TRUE(cf_future_cancel(d));
    ASSERT_STATUS(cf_future_add_done_callback(d, NULL, NULL), CF_EINVAL);
    check_cancelled(d);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_future_release(d));
}

/* Callbacks of a future that never completes are never called, and
 * releasing the future frees them (the ASan+LSan build reports a leak).
 * clause: future.callback.freed-unrun */
TEST(callback_never_called_is_freed_on_release) {
    cf_future *f = pending_future();
    counter c = {0};
    for (int i = 0; i < 100; i++)
        ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c));
    ASSERT_OK(cf_future_set_running_or_notify_cancel(f));
    ASSERT_OK(cf_future_release(f));
    ASSERT_EQ(calls_of(&c), 0);
}

/* ---- stress ------------------------------------------------------------- */

enum { ADDERS = 3, PER_ADDER = 3, SETTERS = 2 };

typedef struct slot {
    atomic_int calls;
    atomic_int done_inside;
    pthread_t thread;
} slot;

typedef struct race {
    long rounds;
    pthread_barrier_t start, end;
    cf_future *f;
    slot slots[ADDERS][PER_ADDER];
    cf_status set_status[SETTERS];
    pthread_t adders[ADDERS], setters[SETTERS];
    atomic_int late_add_not_run;
} race;

typedef struct race_arg {
    race *r;
    int id;
} race_arg;

static cf_status slot_cb(cf_future *f, void *ctx) {
    slot *s = ctx;
    s->thread = pthread_self();
    if (cf_future_done(f))
        atomic_fetch_add(&s->done_inside, 1);
    atomic_fetch_add(&s->calls, 1);
    return CF_OK;
}

static void *adder_main(void *arg) {
    race_arg *a = arg;
    race *r = a->r;
    for (long n = 0; n < r->rounds; n++) {
        pthread_barrier_wait(&r->start);
        for (int k = 0; k < PER_ADDER; k++) {
            slot *s = &r->slots[a->id][k];
            bool done_before = cf_future_done(r->f);
            if (cf_future_add_done_callback(r->f, slot_cb, s) != CF_OK)
                test_fail(__FILE__, __LINE__, "add_done_callback failed");
            if (done_before && atomic_load(&s->calls) != 1)
                atomic_fetch_add(&r->late_add_not_run, 1);
        }
        pthread_barrier_wait(&r->end);
    }
    return NULL;
}

static void *setter_main(void *arg) {
    race_arg *a = arg;
    race *r = a->r;
    for (long n = 0; n < r->rounds; n++) {
        pthread_barrier_wait(&r->start);
        cf_value v = cf_int(a->id);
        r->set_status[a->id] = cf_future_set_result(r->f, &v);
        pthread_barrier_wait(&r->end);
    }
    return NULL;
}

/* Checks one round: one setter won, every callback ran exactly once, in the
 * winning setter's thread or in its adder's thread, with the future done. */
static void check_race_round(race *r, long n) {
    int winner = -1;
    for (int s = 0; s < SETTERS; s++) {
        if (r->set_status[s] == CF_OK) {
            if (winner >= 0)
                test_fail(__FILE__, __LINE__,
                          "round %ld: two set_result calls succeeded", n);
            winner = s;
        } else if (r->set_status[s] != CF_INVALID_STATE) {
            test_fail(__FILE__, __LINE__, "round %ld: set_result = %s", n,
                      cf_status_name(r->set_status[s]));
        }
    }
    if (winner < 0)
        test_fail(__FILE__, __LINE__, "round %ld: no set_result won", n);
    cf_value got = cf_none();
    ASSERT_OK(cf_future_result(r->f, 0, &got));
    ASSERT_EQ(got.as.i, winner);
    for (int a = 0; a < ADDERS; a++) {
        for (int k = 0; k < PER_ADDER; k++) {
            slot *s = &r->slots[a][k];
            if (atomic_load(&s->calls) != 1 ||
                atomic_load(&s->done_inside) != 1)
                test_fail(__FILE__, __LINE__,
                          "round %ld: callback %d.%d ran %d times "
                          "(%d with the future done)",
                          n, a, k, atomic_load(&s->calls),
                          atomic_load(&s->done_inside));
            if (!pthread_equal(s->thread, r->setters[winner]) &&
                !pthread_equal(s->thread, r->adders[a]))
                test_fail(__FILE__, __LINE__,
                          "round %ld: callback %d.%d ran "
                          "in neither the completing nor the adding thread",
                          n, a, k);
        }
    }
}

/* Callbacks added from several threads while several others race
 * set_result each run exactly once, in the completing thread or (if the
 * future was already done) in the adding thread before add returns; exactly
 * one set_result wins.
 * clause: future.callback.exactly-once */
TEST(callback_stress_add_racing_set_result) {
    static race r;
    race_arg args[ADDERS + SETTERS];
    r.rounds = test_repeats(20000);
    atomic_init(&r.late_add_not_run, 0);
    ASSERT_EQ(pthread_barrier_init(&r.start, NULL, ADDERS + SETTERS + 1), 0);
    ASSERT_EQ(pthread_barrier_init(&r.end, NULL, ADDERS + SETTERS + 1), 0);
    for (int i = 0; i < ADDERS; i++) {
        args[i] = (race_arg){&r, i};
        ASSERT_EQ(pthread_create(&r.adders[i], NULL, adder_main, &args[i]), 0);
    }
    for (int i = 0; i < SETTERS; i++) {
        args[ADDERS + i] = (race_arg){&r, i};
        ASSERT_EQ(pthread_create(&r.setters[i], NULL, setter_main,
                                 &args[ADDERS + i]),
                  0);
    }
    for (long n = 0; n < r.rounds; n++) {
        ASSERT_OK(cf_future_new(&r.f));
        for (int a = 0; a < ADDERS; a++)
            for (int k = 0; k < PER_ADDER; k++) {
                atomic_init(&r.slots[a][k].calls, 0);
                atomic_init(&r.slots[a][k].done_inside, 0);
            }
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.end);
        check_race_round(&r, n);
        int late_not_run = atomic_load(&r.late_add_not_run);
        ASSERT_EQ(late_not_run, 0);
        ASSERT_OK(cf_future_release(r.f));
    }
    for (int i = 0; i < ADDERS; i++)
        pthread_join(r.adders[i], NULL);
    for (int i = 0; i < SETTERS; i++)
        pthread_join(r.setters[i], NULL);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.end);
}

typedef struct duel {
    long rounds;
    pthread_barrier_t start, end;
    cf_future *f;
    bool cancel_ret;
    cf_status set_status;
} duel;

static void *duel_canceller(void *arg) {
    duel *d = arg;
    for (long n = 0; n < d->rounds; n++) {
        pthread_barrier_wait(&d->start);
        d->cancel_ret = cf_future_cancel(d->f);
        pthread_barrier_wait(&d->end);
    }
    return NULL;
}

static void *duel_setter(void *arg) {
    duel *d = arg;
    for (long n = 0; n < d->rounds; n++) {
        pthread_barrier_wait(&d->start);
        cf_value v = cf_int(n);
        d->set_status = cf_future_set_result(d->f, &v);
        pthread_barrier_wait(&d->end);
    }
    return NULL;
}

typedef struct duel_seen {
    atomic_int calls;
    atomic_bool cancelled;
} duel_seen;

static cf_status duel_cb(cf_future *f, void *ctx) {
    duel_seen *s = ctx;
    atomic_store(&s->cancelled, cf_future_cancelled(f));
    atomic_fetch_add(&s->calls, 1);
    return CF_OK;
}

/* set_result racing cancel from two threads: exactly one wins (cancel true
 * xor set_result CF_OK), the final state agrees with the winner, and the
 * callback runs once and sees that state.
 * clause: future.cancel.race-set-result */
TEST(future_stress_set_result_racing_cancel) {
    static duel d;
    pthread_t canceller, setter;
    d.rounds = test_repeats(100000);
    ASSERT_EQ(pthread_barrier_init(&d.start, NULL, 3), 0);
    ASSERT_EQ(pthread_barrier_init(&d.end, NULL, 3), 0);
    ASSERT_EQ(pthread_create(&canceller, NULL, duel_canceller, &d), 0);
    ASSERT_EQ(pthread_create(&setter, NULL, duel_setter, &d), 0);
    for (long n = 0; n < d.rounds; n++) {
        duel_seen seen;
        atomic_init(&seen.calls, 0);
        atomic_init(&seen.cancelled, false);
        ASSERT_OK(cf_future_new(&d.f));
        ASSERT_OK(cf_future_add_done_callback(d.f, duel_cb, &seen));
        pthread_barrier_wait(&d.start);
        pthread_barrier_wait(&d.end);
        bool cancel_won = d.cancel_ret;
        bool set_won = d.set_status == CF_OK;
        if (cancel_won == set_won)
            test_fail(__FILE__, __LINE__,
                      "round %ld: cancel %d, set_result "
                      "%s",
                      n, cancel_won, cf_status_name(d.set_status));
        if (!set_won)
            ASSERT_STATUS(d.set_status, CF_INVALID_STATE);
        ASSERT_TRUE(cf_future_done(d.f));
        ASSERT_EQ(cf_future_cancelled(d.f), cancel_won);
        ASSERT_FALSE(cf_future_running(d.f));
        cf_value got = cf_none();
        cf_status s = cf_future_result(d.f, 0, &got);
        if (cancel_won) {
            ASSERT_STATUS(s, CF_CANCELLED);
        } else {
            ASSERT_OK(s);
            ASSERT_EQ(got.as.i, n);
        }
        int seen_calls = atomic_load(&seen.calls);
        bool seen_cancelled = atomic_load(&seen.cancelled);
        ASSERT_EQ(seen_calls, 1);
        ASSERT_EQ(seen_cancelled, cancel_won);
        ASSERT_OK(cf_future_release(d.f));
    }
    pthread_join(canceller, NULL);
    pthread_join(setter, NULL);
    pthread_barrier_destroy(&d.start);
    pthread_barrier_destroy(&d.end);
}
