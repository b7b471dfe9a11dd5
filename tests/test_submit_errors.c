/*
 * Why a submit failed: cf_last_error gives, per thread, the exception
 * Python would have raised from Executor.submit (RuntimeError after
 * shutdown, BrokenThreadPool / BrokenProcessPool from a broken pool,
 * ValueError for a bad argument), and cf_refuse lets an executor's own
 * submit say it.
 */
#include "support.h"

/* The thread's last error is of this status, type and message. */
static void check_last_(const char *file, int line, cf_status status,
                        const char *type, const char *message) {
    check_error_(file, line, cf_last_error(), status, type, message);
}
#define check_last(status, type, message)                                     \
    check_last_(__FILE__, __LINE__, status, type, message)

/* A log hook that drops the initializer's CRITICAL record. */
static void quiet_log(cf_log_level level, const char *message, void *ctx) {
    (void)level;
    (void)message;
    (void)ctx;
}

/* submit.error.after-shutdown: Python's RuntimeError("cannot schedule new
 * futures after shutdown"). */
POOL_TEST(submit_error_after_shutdown) {
    cf_executor *ex = pool_new(1);
    cf_future *f;
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &f), CF_SHUTDOWN);
    check_last(CF_SHUTDOWN, "RuntimeError",
               "cannot schedule new futures after shutdown");
    ASSERT_OK(cf_executor_free(ex));
}

/* submit.error.broken: a submit to a pool broken by its initializer raises
 * the pool's Broken... error with Python's message. */
POOL_TEST(submit_error_broken_pool) {
    gate go;
    cf_future *first, *later;
    gate_init(&go);
    ASSERT_OK(cf_set_log_hook(quiet_log, NULL));
    cf_executor *ex = failing_pool(1, &go);
    ASSERT_OK(cf_submit(ex, task_return_arg, NULL, 0, &first));
    gate_open(&go);
    ASSERT_STATUS(cf_future_result(first, LONG, NULL), CF_BROKEN);
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &later), CF_BROKEN);
    check_last(CF_BROKEN, broken_pool_type(),
               test_process_pool()
                   ? "A child process terminated abruptly, the process pool "
                     "is not usable anymore"
                   : "A thread initializer failed, the thread pool is not "
                     "usable anymore");
    ASSERT_OK(cf_future_release(first));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    gate_destroy(&go);
}

/* submit.error.bad-argument: a NULL fn or an argument cf_value_copy
 * refuses is a ValueError. */
POOL_TEST(submit_error_bad_argument) {
    cf_executor *ex = pool_new(1);
    cf_future *f;
    cf_value bad = hand_made_buffer(CF_TYPE_STR, "\xff", 1);
    ASSERT_STATUS(cf_submit(ex, NULL, NULL, 0, &f), CF_EINVAL);
    check_last(CF_EINVAL, "ValueError", "cf_submit: fn is NULL");
    ASSERT_STATUS(cf_submit(ex, task_return_arg, &bad, 1, &f), CF_EINVAL);
    check_last(CF_EINVAL, "ValueError",
               "cf_submit: an argument is not a valid value");
    cf_value_free(&bad);
    ASSERT_OK(cf_executor_free(ex));
}

/* An executor that refuses every work, saying why or not (self: a
 * status, or NULL for "say why"). */
static cf_status refusing_submit(void *self, cf_work *work) {
    (void)work;
    if (!self)
        return cf_refuse(CF_BROKEN, "BrokenRefuser", "refused: %d", 42);
    return *(cf_status *)self;
}

static cf_status refusing_shutdown(void *self, bool wait, bool cancel) {
    (void)self;
    (void)wait;
    (void)cancel;
    return CF_OK;
}

static const cf_executor_ops refusing_ops = {.name = "Refuser",
                                             .submit = refusing_submit,
                                             .shutdown = refusing_shutdown};

/* submit.error.executor-says-why: an executor's submit refuses with
 * cf_refuse, and cf_submit passes its error on; one that only returns a
 * status gets the exception Python raises for it. */
TEST(submit_error_from_executor) {
    cf_executor *says, *silent;
    cf_future *f;
    cf_status eagain = CF_EAGAIN;
    ASSERT_OK(cf_executor_new(&refusing_ops, NULL, &says));
    ASSERT_OK(cf_executor_new(&refusing_ops, &eagain, &silent));
    ASSERT_STATUS(cf_submit(says, task_return_arg, NULL, 0, &f), CF_BROKEN);
    check_last(CF_BROKEN, "BrokenRefuser", "refused: 42");
    ASSERT_STATUS(cf_submit(silent, task_return_arg, NULL, 0, &f), CF_EAGAIN);
    check_last(CF_EAGAIN, "RuntimeError", "can't start new thread");
    ASSERT_OK(cf_executor_free(says));
    ASSERT_OK(cf_executor_free(silent));
}

/* submit.error.refuse-checks: cf_refuse sets nothing for CF_OK, a bad type
 * or a NULL format. */
TEST(submit_error_refuse_checks_its_arguments) {
    ASSERT_STATUS(cf_refuse(CF_BROKEN, "Broken", "first"), CF_BROKEN);
    ASSERT_STATUS(cf_refuse(CF_OK, "RuntimeError", "x"), CF_EINVAL);
    ASSERT_STATUS(cf_refuse(CF_BROKEN, "not a type", "x"), CF_EINVAL);
    ASSERT_STATUS(cf_refuse(CF_BROKEN, "Broken", NULL), CF_EINVAL);
    check_last(CF_BROKEN, "Broken", "first");
}

static void *fail_a_submit(void *ex) {
    cf_future *f;
    if (cf_submit(ex, task_return_arg, NULL, 0, &f) != CF_SHUTDOWN)
        test_fail(__FILE__, __LINE__, "the other thread's submit worked");
    return NULL;
}

/* submit.error.per-thread: each thread has its own last error; a submit
 * that succeeds leaves it alone. */
POOL_TEST(submit_error_is_per_thread) {
    cf_executor *down = pool_new(1), *up = pool_new(1);
    cf_future *f;
    pthread_t other;
    ASSERT_NULL(cf_last_error());
    ASSERT_OK(cf_executor_shutdown(down, true, false));
    ASSERT_EQ(pthread_create(&other, NULL, fail_a_submit, down), 0);
    ASSERT_EQ(pthread_join(other, NULL), 0);
    ASSERT_NULL(cf_last_error());
    ASSERT_STATUS(cf_submit(up, NULL, NULL, 0, &f), CF_EINVAL);
    ASSERT_OK(cf_submit(up, task_return_arg, NULL, 0, &f));
    check_last(CF_EINVAL, "ValueError", "cf_submit: fn is NULL");
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(down));
    ASSERT_OK(cf_executor_free(up));
}
