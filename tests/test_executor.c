/*
 * Executors: cf_submit and what the task functions do (cf_arg, cf_return,
 * cf_raise), the states a submitted future goes through, cf_executor_name,
 * executors written with cf_executor_new + cf_executor_ops and the cf_work_*
 * calls they use, and the deadlock a worker meets when it waits for its own
 * pool.
 *
 * Two custom executors appear: an inline one, whose submit runs the work at
 * once with cf_work_run, and a keeping one, which stores the works and ends
 * them when shut down, in the way the test chose (run, fail, release...).
 * Neither checks for shutdown itself: that check is the library's.
 *
 * A POOL_TEST runs on a thread pool and again on a process pool; its tasks
 * reach the test's gates and counters through arena ints only.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

/* ---- helpers ----------------------------------------------------------- */

/* Neither returns nor raises. */
static void task_nothing(cf_call *call) {
    (void)call;
}

/* arg0: int*; adds one to it and returns the same pointer. */
static void task_bump_ptr(cf_call *call) {
    const cf_value *p = cf_arg(call, 0);
    ASSERT_EQ(p->type, CF_TYPE_PTR);
    (*(int *)p->as.ptr)++;
    cf_return(call, cf_ptr(p->as.ptr));
}

/* Each task below writes the status of its second outcome call where arg0
 * (an atomic_int in the arena) says. */

/* Returns 1, then tries to return the str "two". */
static void task_return_twice(cf_call *call) {
    atomic_int *second = arena_arg(call, 0);
    cf_value two = cf_none();
    ASSERT_OK(cf_return(call, cf_int(1)));
    ASSERT_OK(cf_value_str(&two, "two"));
    /* moved in, whatever the status */
    atomic_store(second, (int)cf_return(call, two));
}

/* Returns 1, then tries to raise. */
static void task_return_then_raise(cf_call *call) {
    atomic_int *second = arena_arg(call, 0);
    ASSERT_OK(cf_return(call, cf_int(1)));
    atomic_store(second, (int)cf_raise(call, "ValueError", "too late"));
}

/* Raises, then tries to return a str. */
static void task_raise_then_return(cf_call *call) {
    atomic_int *second = arena_arg(call, 0);
    cf_value v = cf_none();
    ASSERT_OK(cf_raise(call, "KeyError", "first %d", 1));
    ASSERT_OK(cf_value_str(&v, "ignored"));
    atomic_store(second, (int)cf_return(call, v));
}

/* Runs task on a pool of one; checks that its first outcome stands -- the
 * int 1, or, when type is not NULL, the exception type(message) -- and that
 * its second outcome call was CF_INVALID_STATE. */
static void check_first_outcome_stands(cf_fn task, const char *type,
                                       const char *message) {
    cf_executor *ex = pool_new(1);
    atomic_int *second = arena_alloc(sizeof *second);
    cf_value arg = arena_value(second);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task, &arg, 1, &f));
    if (type == NULL) {
        check_int_soon(f, 1);
    } else {
        ASSERT_STATUS(cf_future_result(f, LONG, NULL), CF_RAISED);
        check_raised(f, CF_RAISED, type, message);
    }
    ASSERT_STATUS((cf_status)atomic_load(second), CF_INVALID_STATE);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    arena_free(second);
}

/* arg0: the executor running this task; shuts it down with wait and
 * returns the status as an int. */
static void task_shutdown_own_pool(cf_call *call) {
    cf_executor *ex = (cf_executor *)cf_arg(call, 0)->as.ptr;
    cf_return(call, cf_int(cf_executor_shutdown(ex, true, false)));
}

/* Like task_shutdown_own_pool, without wait. */
static void task_shutdown_own_pool_nowait(cf_call *call) {
    cf_executor *ex = (cf_executor *)cf_arg(call, 0)->as.ptr;
    cf_return(call, cf_int(cf_executor_shutdown(ex, false, false)));
}

/* arg0: the executor running this task; frees it and returns the status. */
static void task_free_own_pool(cf_call *call) {
    cf_executor *ex = (cf_executor *)cf_arg(call, 0)->as.ptr;
    cf_return(call, cf_int(cf_executor_free(ex)));
}

/* arg0: the executor running this task; submits task_return_arg(arg1) to
 * it, waits for that and returns its value. */
static void task_submit_to_own_pool(cf_call *call) {
    cf_executor *ex = (cf_executor *)cf_arg(call, 0)->as.ptr;
    cf_future *inner = NULL;
    cf_value v = cf_none();
    ASSERT_OK(cf_submit(ex, task_return_arg, cf_arg(call, 1), 1, &inner));
    ASSERT_OK(cf_future_result(inner, LONG, &v));
    ASSERT_OK(cf_future_release(inner));
    cf_return(call, v);
}

/* ---- the custom executors ---------------------------------------------- */

/* How the keeping executor ends its works when shut down. */
typedef enum end_how {
    END_RUN,         /* cf_work_run */
    END_FAIL_BROKEN, /* cf_work_fail(CF_BROKEN, "BrokenCustom", ...) */
    END_FAIL_RAISED, /* cf_work_fail(CF_RAISED, "ValueError", ...) */
    END_RELEASE,     /* cf_work_release on the unfinished future */
    END_SET_RELEASE, /* cf_future_set_result(99), then cf_work_release */
    END_SET_RUN,     /* cf_future_set_result(99), then cf_work_run */
    END_SET_FAIL     /* cf_future_set_result(99), then cf_work_fail */
} end_how;

#define MAX_WORKS 16

typedef struct custom {
    pthread_mutex_t lock;
    bool run_inline;  /* submit runs the work at once */
    cf_status refuse; /* submit returns this instead when not CF_OK */
    end_how how;
    cf_work *works[MAX_WORKS];
    size_t nworks;
    int submits, shutdowns, frees;
    cf_status ended[MAX_WORKS]; /* what the cf_work_* call returned */
    size_t nended;
    /* what submit saw of the last work */
    cf_fn seen_fn;
    size_t seen_nargs;
    const cf_value *seen_args;
    cf_value seen_arg0;
    cf_future *seen_future;
} custom;

static void custom_init(custom *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->refuse = CF_OK;
}

static cf_status custom_submit(void *self, cf_work *w) {
    custom *c = (custom *)self;
    pthread_mutex_lock(&c->lock);
    c->submits++;
    c->seen_fn = cf_work_fn(w);
    c->seen_nargs = cf_work_nargs(w);
    c->seen_args = cf_work_args(w);
    cf_value_free(&c->seen_arg0);
    if (c->seen_nargs > 0)
        ASSERT_OK(cf_value_copy(&c->seen_arg0, &c->seen_args[0]));
    c->seen_future = cf_work_future(w);
    if (c->refuse != CF_OK) {
        pthread_mutex_unlock(&c->lock);
        return c->refuse;
    }
    if (c->run_inline) {
        pthread_mutex_unlock(&c->lock);
        ASSERT_OK(cf_work_run(w));
        return CF_OK;
    }
    ASSERT_LT(c->nworks, MAX_WORKS);
    c->works[c->nworks++] = w;
    pthread_mutex_unlock(&c->lock);
    return CF_OK;
}

static cf_status end_work(custom *c, cf_work *w, bool cancel_futures) {
    cf_value v99 = cf_int(99);
    if (cancel_futures)
        ASSERT_TRUE(cf_future_cancel(cf_work_future(w)));
    switch (c->how) {
    case END_RUN:
        return cf_work_run(w);
    case END_FAIL_BROKEN:
        return cf_work_fail(w, CF_BROKEN, "BrokenCustom", "it broke");
    case END_FAIL_RAISED:
        return cf_work_fail(w, CF_RAISED, "ValueError", "refused");
    case END_RELEASE:
        return cf_work_release(w);
    case END_SET_RELEASE:
        ASSERT_OK(cf_future_set_result(cf_work_future(w), &v99));
        return cf_work_release(w);
    case END_SET_RUN:
        ASSERT_OK(cf_future_set_result(cf_work_future(w), &v99));
        return cf_work_run(w);
    case END_SET_FAIL:
        ASSERT_OK(cf_future_set_result(cf_work_future(w), &v99));
        return cf_work_fail(w, CF_BROKEN, "BrokenCustom", "too late");
    }
    return CF_EINVAL;
}

static cf_status custom_shutdown(void *self, bool wait, bool cancel_futures) {
    custom *c = (custom *)self;
    cf_work *works[MAX_WORKS];
    size_t n;
    (void)wait;
    pthread_mutex_lock(&c->lock);
    c->shutdowns++;
    n = c->nworks;
    memcpy(works, c->works, n * sizeof works[0]);
    c->nworks = 0;
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        cf_status s = end_work(c, works[i], cancel_futures);
        pthread_mutex_lock(&c->lock);
        c->ended[c->nended++] = s;
        pthread_mutex_unlock(&c->lock);
    }
    return CF_OK;
}

static void custom_free(void *self) {
    custom *c = (custom *)self;
    pthread_mutex_lock(&c->lock);
    c->frees++;
    pthread_mutex_unlock(&c->lock);
}

static const cf_executor_ops inline_ops = {.name = "InlineExecutor",
                                           .submit = custom_submit,
                                           .shutdown = custom_shutdown,
                                           .free = custom_free};
static const cf_executor_ops keeping_ops = {.name = "KeepingExecutor",
                                            .submit = custom_submit,
                                            .shutdown = custom_shutdown,
                                            .free = custom_free};
static const cf_executor_ops no_free_ops = {.name = "NoFreeExecutor",
                                            .submit = custom_submit,
                                            .shutdown = custom_shutdown,
                                            .free = NULL};

static cf_executor *inline_new(custom *c) {
    cf_executor *ex = NULL;
    custom_init(c);
    c->run_inline = true;
    ASSERT_OK(cf_executor_new(&inline_ops, c, &ex));
    ASSERT_NOT_NULL(ex);
    return ex;
}

static cf_executor *keeping_new(custom *c, end_how how) {
    cf_executor *ex = NULL;
    custom_init(c);
    c->how = how;
    ASSERT_OK(cf_executor_new(&keeping_ops, c, &ex));
    ASSERT_NOT_NULL(ex);
    return ex;
}

static void custom_destroy(custom *c) {
    cf_value_free(&c->seen_arg0);
    pthread_mutex_destroy(&c->lock);
}

static cf_future *const not_written = (cf_future *)&inline_ops;

/* One task_count call kept by a keeping executor and ended at shutdown. */
typedef struct kept_call {
    custom c;
    cf_executor *ex;
    run_count runs;
    cf_future *f;
} kept_call;

/* Submits the call to a keeping executor that ends its works `how`, shuts
 * it down with wait (and cancel_futures), and checks that the cf_work_*
 * call ending the work returned `ended` and that the task never ran. */
static void kept_call_end(kept_call *k, end_how how, bool cancel_futures,
                          cf_status ended) {
    cf_value arg;
    run_count_init(&k->runs);
    arg = run_count_value(&k->runs);
    k->ex = keeping_new(&k->c, how);
    ASSERT_OK(cf_submit(k->ex, task_count, &arg, 1, &k->f));
    ASSERT_OK(cf_executor_shutdown(k->ex, true, cancel_futures));
    ASSERT_EQ(k->c.nended, 1);
    ASSERT_STATUS(k->c.ended[0], ended);
    ASSERT_EQ(run_count_get(&k->runs), 0);
}

/* Releases the future and frees the executor; the task still never ran. */
static void kept_call_free(kept_call *k) {
    ASSERT_OK(cf_future_release(k->f));
    ASSERT_OK(cf_executor_free(k->ex));
    ASSERT_EQ(run_count_get(&k->runs), 0);
    custom_destroy(&k->c);
    run_count_destroy(&k->runs);
}

/* ---- submit ------------------------------------------------------------ */

/* executor.submit.returns-pending-future: submit gives a future that is not
 * done while its task is held, then ends with the task's value. */
POOL_TEST(executor_submit_returns_future_ending_with_task_value) {
    cf_executor *ex = pool_new(2);
    gate proceed;
    gate_init(&proceed);
    cf_future *f = submit_gated(ex, NULL, &proceed, 42);
    ASSERT_FALSE(cf_future_done(f));
    ASSERT_FALSE(cf_future_cancelled(f));
    ASSERT_STATUS(cf_future_result(f, 0, NULL), CF_TIMEOUT);
    gate_open(&proceed);
    check_int_soon(f, 42);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    gate_destroy(&proceed);
}

/* executor.submit.copies-arguments: the call keeps its own copy of each
 * argument, so the caller may free a str right after submit. */
POOL_TEST(executor_submit_copies_arguments) {
    cf_executor *ex = pool_new(1);
    gate proceed;
    cf_value s = cf_none(), want = cf_none();
    gate_init(&proceed);
    ASSERT_OK(cf_value_str(&s, "hello, world"));
    ASSERT_OK(cf_value_str(&want, "hello, world"));
    cf_future *f = submit_gated_value(ex, NULL, &proceed, s);
    memset(s.as.buf.data, 'X', s.as.buf.len);
    cf_value_free(&s);
    gate_open(&proceed);
    ASSERT_OK(cf_future_result(f, LONG, NULL));
    check_value(f, &want);
    cf_value_free(&want);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    gate_destroy(&proceed);
}

/* executor.submit.thread-pool-accepts-ptr: a thread pool passes a
 * CF_TYPE_PTR argument through, pointing at the caller's memory.
 * Thread pool only: a process pool refuses a pointer, as Python refuses what
 * it cannot pickle (test_process_pool.c checks that). */
TEST(executor_thread_pool_accepts_pointer_arguments) {
    cf_executor *ex = pool_new(1);
    int target = 41;
    cf_value arg = cf_ptr(&target), want = cf_ptr(&target);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_bump_ptr, &arg, 1, &f));
    ASSERT_OK(cf_future_result(f, LONG, NULL));
    check_value(f, &want);
    ASSERT_EQ(target, 42);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.submit.null-executor-is-einval: submit to NULL is CF_EINVAL and
 * out is left alone. */
TEST(executor_submit_null_executor_is_einval) {
    cf_future *f = not_written;
    ASSERT_STATUS(cf_submit(NULL, task_return_arg, NULL, 0, &f), CF_EINVAL);
    ASSERT_TRUE(f == not_written);
}

/* executor.submit.null-fn-is-einval: submit of a NULL function is CF_EINVAL
 * and out is left alone. */
POOL_TEST(executor_submit_null_fn_is_einval) {
    cf_executor *ex = pool_new(1);
    cf_future *f = not_written;
    ASSERT_STATUS(cf_submit(ex, NULL, NULL, 0, &f), CF_EINVAL);
    ASSERT_TRUE(f == not_written);
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.submit.null-out-is-einval: submit without an out pointer is
 * CF_EINVAL and nothing runs. */
POOL_TEST(executor_submit_null_out_is_einval) {
    cf_executor *ex = pool_new(1);
    run_count runs;
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs);
    ASSERT_STATUS(cf_submit(ex, task_count, &arg, 1, NULL), CF_EINVAL);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    run_count_destroy(&runs);
}

/* executor.submit.unknown-value-type-is-einval: an argument of unknown type
 * is CF_EINVAL, and nothing was scheduled. */
POOL_TEST(executor_submit_unknown_value_type_is_einval) {
    cf_executor *ex = pool_new(1);
    run_count runs;
    run_count_init(&runs);
    cf_value args[2] = {run_count_value(&runs), cf_none()};
    cf_future *f = not_written;
    args[1].type = (cf_type)99;
    ASSERT_STATUS(cf_submit(ex, task_count, args, 2, &f), CF_EINVAL);
    ASSERT_TRUE(f == not_written);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    run_count_destroy(&runs);
}

/* executor.submit.null-args-with-count-is-einval: args may be NULL only when
 * nargs is 0. */
POOL_TEST(executor_submit_null_args_with_count_is_einval) {
    cf_executor *ex = pool_new(1);
    cf_future *f = not_written;
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 1, &f), CF_EINVAL);
    ASSERT_TRUE(f == not_written);
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.call.no-outcome-is-none: a task that neither returns nor raises
 * gives None. */
POOL_TEST(executor_task_without_outcome_gives_none) {
    cf_executor *ex = pool_new(1);
    cf_value none = cf_none();
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_nothing, NULL, 0, &f));
    ASSERT_OK(cf_future_result(f, LONG, NULL));
    check_value(f, &none);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.call.raise-gives-raised: cf_raise in a task makes result()
 * return CF_RAISED with the exception's type and message. */
POOL_TEST(executor_task_raise_gives_raised_error) {
    cf_executor *ex = pool_new(1);
    cf_value args[2] = {cf_none(), cf_none()};
    cf_future *f = NULL;
    ASSERT_OK(cf_value_str(&args[0], "ZeroDivisionError"));
    ASSERT_OK(cf_value_str(&args[1], "division by zero"));
    ASSERT_OK(cf_submit(ex, task_raise, args, 2, &f));
    ASSERT_STATUS(cf_future_result(f, LONG, NULL), CF_RAISED);
    check_raised(f, CF_RAISED, "ZeroDivisionError", "division by zero");
    cf_value_free(&args[0]);
    cf_value_free(&args[1]);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.call.return-twice-keeps-first: a second cf_return is
 * CF_INVALID_STATE and the first value stands. */
POOL_TEST(executor_return_twice_keeps_first_value) {
    check_first_outcome_stands(task_return_twice, NULL, NULL);
}

/* executor.call.raise-after-return-keeps-value: cf_raise after cf_return is
 * CF_INVALID_STATE and the value stands. */
POOL_TEST(executor_raise_after_return_keeps_value) {
    check_first_outcome_stands(task_return_then_raise, NULL, NULL);
}

/* executor.call.return-after-raise-keeps-error: cf_return after cf_raise is
 * CF_INVALID_STATE and the exception stands. */
POOL_TEST(executor_return_after_raise_keeps_error) {
    check_first_outcome_stands(task_raise_then_return, "KeyError", "first 1");
}

/* executor.future.running-cannot-cancel: while its task runs the future is
 * running(), and cancel() returns false and changes nothing. */
POOL_TEST(executor_running_call_cannot_be_cancelled) {
    busy_pool b;
    busy_pool_start(&b, 5);
    check_running(b.running);
    ASSERT_FALSE(cf_future_cancel(b.running));
    check_running(b.running);
    gate_open(&b.proceed);
    check_int_soon(b.running, 5);
    ASSERT_OK(cf_future_release(b.running));
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* executor.future.queued-is-pending-and-cancellable: a call queued behind a
 * busy single worker is pending; cancel() returns true and it never runs. */
POOL_TEST(executor_queued_call_is_pending_and_cancellable) {
    busy_pool b;
    run_count runs;
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs);
    cf_future *queued = NULL;
    busy_pool_start(&b, 1);
    ASSERT_OK(cf_submit(b.ex, task_count, &arg, 1, &queued));
    check_pending(queued);
    ASSERT_TRUE(cf_future_cancel(queued));
    check_cancelled(queued);
    gate_open(&b.proceed);
    check_int_soon(b.running, 1);
    ASSERT_OK(cf_executor_free(b.ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    check_cancelled(queued);
    ASSERT_OK(cf_future_release(queued));
    ASSERT_OK(cf_future_release(b.running));
    busy_pool_destroy(&b);
    run_count_destroy(&runs);
}

/* executor.submit.from-own-worker: a task may submit to its own pool and
 * wait for that call when a second worker is free.
 * Thread pool only: the task reaches its own pool, which the documentation
 * says deadlocks from a callable submitted to a ProcessPoolExecutor. */
TEST(executor_submit_from_own_worker) {
    cf_executor *ex = pool_new(2);
    cf_value args[2] = {cf_ptr(ex), cf_int(17)};
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_submit_to_own_pool, args, 2, &f));
    check_int_soon(f, 17);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* ---- names ------------------------------------------------------------- */

/* executor.name.thread-pool: a thread pool is named "ThreadPoolExecutor".
 * Thread pool only: it is the thread pool's name (process_pool.c's tests
 * check "ProcessPoolExecutor"). */
TEST(executor_name_of_thread_pool) {
    cf_executor *ex = pool_new(1);
    ASSERT_STREQ(cf_executor_name(ex), "ThreadPoolExecutor");
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.name.null-is-empty: cf_executor_name(NULL) is "". */
TEST(executor_name_of_null_is_empty) {
    ASSERT_STREQ(cf_executor_name(NULL), "");
}

/* executor.name.custom-is-ops-name: a custom executor is named by its ops
 * table. */
TEST(executor_name_of_custom_executor_is_ops_name) {
    custom c;
    cf_executor *ex = inline_new(&c);
    ASSERT_STREQ(cf_executor_name(ex), "InlineExecutor");
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* ---- shutdown and free argument checks --------------------------------- */

/* executor.shutdown.null-is-einval: shutting down NULL is CF_EINVAL. */
TEST(executor_shutdown_null_is_einval) {
    ASSERT_STATUS(cf_executor_shutdown(NULL, true, false), CF_EINVAL);
    ASSERT_STATUS(cf_executor_shutdown(NULL, false, true), CF_EINVAL);
}

/* executor.free.null-is-einval: freeing NULL is CF_EINVAL. */
TEST(executor_free_null_is_einval) {
    ASSERT_STATUS(cf_executor_free(NULL), CF_EINVAL);
}

/* ---- custom executors -------------------------------------------------- */

/* executor.custom.inline-runs-call: an executor whose submit calls
 * cf_work_run gives a future already done with the task's value. */
TEST(executor_custom_inline_executor_runs_call) {
    custom c;
    cf_executor *ex = inline_new(&c);
    cf_value arg = cf_int(8);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_return_arg, &arg, 1, &f));
    ASSERT_EQ(c.submits, 1);
    check_value(f, &arg);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* executor.custom.submit-after-shutdown: after shutdown the library's
 * cf_submit returns CF_SHUTDOWN for a custom executor, runs nothing and
 * leaves out alone. */
TEST(executor_custom_submit_after_shutdown_is_shutdown) {
    custom c;
    cf_executor *ex = inline_new(&c);
    run_count runs;
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs);
    cf_future *f = not_written;
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_STATUS(cf_submit(ex, task_count, &arg, 1, &f), CF_SHUTDOWN);
    ASSERT_TRUE(f == not_written);
    ASSERT_EQ(run_count_get(&runs), 0);
    run_count_destroy(&runs);
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* executor.custom.second-shutdown-harmless: shutting a custom executor down
 * twice, then freeing it, all return CF_OK, and its free op runs once. */
TEST(executor_custom_second_shutdown_is_harmless) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    ASSERT_OK(cf_executor_shutdown(ex, false, false));
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_OK(cf_executor_shutdown(ex, true, true));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_GE(c.shutdowns, 1);
    ASSERT_EQ(c.frees, 1);
    custom_destroy(&c);
}

/* executor.custom.kept-works-run-on-shutdown: works an executor keeps stay
 * pending until it runs them, here in its shutdown. */
TEST(executor_custom_kept_works_run_on_shutdown) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    cf_future *fs[3];
    for (int i = 0; i < 3; i++) {
        cf_value arg = cf_int(i);
        ASSERT_OK(cf_submit(ex, task_return_arg, &arg, 1, &fs[i]));
        check_pending(fs[i]);
    }
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_EQ(c.nended, 3);
    for (int i = 0; i < 3; i++) {
        cf_value want = cf_int(i);
        ASSERT_STATUS(c.ended[i], CF_OK);
        check_value(fs[i], &want);
        ASSERT_OK(cf_future_release(fs[i]));
    }
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* executor.custom.cancelled-work-not-run: cf_work_run on a work whose future
 * was cancelled returns CF_CANCELLED and does not run the task. */
TEST(executor_custom_work_run_of_cancelled_future_is_cancelled) {
    kept_call k;
    kept_call_end(&k, END_RUN, true, CF_CANCELLED); /* cancels, then runs */
    check_cancelled(k.f);
    kept_call_free(&k);
}

/* executor.custom.work-run-after-set-is-invalid-state: cf_work_run on a
 * work whose future the executor already finished returns CF_INVALID_STATE,
 * does not run the task, and keeps the outcome. */
TEST(executor_custom_work_run_of_finished_future_is_invalid_state) {
    kept_call k;
    cf_value want = cf_int(99);
    kept_call_end(&k, END_SET_RUN, false, CF_INVALID_STATE);
    check_value(k.f, &want);
    kept_call_free(&k);
}

/* executor.custom.work-fail-broken: cf_work_fail with CF_BROKEN makes
 * result() return CF_BROKEN with the given type and message. */
TEST(executor_custom_work_fail_broken_gives_broken) {
    kept_call k;
    kept_call_end(&k, END_FAIL_BROKEN, false, CF_OK);
    check_raised(k.f, CF_BROKEN, "BrokenCustom", "it broke");
    kept_call_free(&k);
}

/* executor.custom.work-fail-raised: cf_work_fail with CF_RAISED makes
 * result() return CF_RAISED with the given type and message. */
TEST(executor_custom_work_fail_raised_gives_raised) {
    kept_call k;
    kept_call_end(&k, END_FAIL_RAISED, false, CF_OK);
    check_raised(k.f, CF_RAISED, "ValueError", "refused");
    kept_call_free(&k);
}

/* executor.custom.work-fail-done-is-invalid-state: cf_work_fail on a work
 * whose future is already finished returns CF_INVALID_STATE and keeps the
 * outcome (the work is still ended: nothing leaks). */
TEST(executor_custom_work_fail_of_finished_future_is_invalid_state) {
    kept_call k;
    cf_value want = cf_int(99);
    kept_call_end(&k, END_SET_FAIL, false, CF_INVALID_STATE);
    check_value(k.f, &want);
    kept_call_free(&k);
}

/* executor.custom.work-fail-bad-status-is-einval: cf_work_fail with a status
 * other than CF_BROKEN or CF_RAISED is CF_EINVAL and ends nothing. */
TEST(executor_custom_work_fail_bad_status_is_einval) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    cf_value arg = cf_int(3);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_return_arg, &arg, 1, &f));
    ASSERT_EQ(c.nworks, 1);
    ASSERT_STATUS(cf_work_fail(c.works[0], CF_TIMEOUT, "X", "y"), CF_EINVAL);
    ASSERT_STATUS(cf_work_fail(c.works[0], CF_OK, "X", "y"), CF_EINVAL);
    check_pending(f);
    ASSERT_OK(cf_executor_shutdown(ex, true, false)); /* runs it */
    check_value(f, &arg);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* executor.custom.work-release-unfinished: cf_work_release on a work whose
 * future is not done fails it with RuntimeError "the executor dropped the
 * call", so nobody waits forever. */
TEST(executor_custom_work_release_of_unfinished_future_fails_it) {
    kept_call k;
    kept_call_end(&k, END_RELEASE, false, CF_OK);
    check_raised(k.f, CF_RAISED, "RuntimeError",
                 "the executor dropped the call");
    kept_call_free(&k);
}

/* executor.custom.work-release-keeps-outcome: cf_work_release after the
 * executor finished the future itself leaves that outcome alone. */
TEST(executor_custom_work_release_keeps_outcome_set_by_executor) {
    kept_call k;
    cf_value want = cf_int(99);
    kept_call_end(&k, END_SET_RELEASE, false, CF_OK);
    check_value(k.f, &want);
    kept_call_free(&k);
}

/* executor.custom.refused-submit: when the executor's submit refuses a work,
 * cf_submit returns that status, leaves out alone, and the work is
 * discarded (nothing runs, nothing leaks). */
TEST(executor_custom_refused_submit_returns_its_status) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    run_count runs;
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs);
    cf_status refusals[] = {CF_BROKEN, CF_EAGAIN, CF_NOMEM, CF_SHUTDOWN};
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        cf_future *f = not_written;
        c.refuse = refusals[i];
        ASSERT_STATUS(cf_submit(ex, task_count, &arg, 1, &f), refusals[i]);
        ASSERT_TRUE(f == not_written);
    }
    c.refuse = CF_OK;
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(c.nended, 0);
    ASSERT_EQ(run_count_get(&runs), 0);
    run_count_destroy(&runs);
    custom_destroy(&c);
}

/* executor.custom.work-exposes-call: cf_work_fn, cf_work_nargs, cf_work_args
 * and cf_work_future show the executor the call and its future; the
 * arguments are the library's copies. */
TEST(executor_custom_work_exposes_fn_args_and_future) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    cf_value args[2] = {cf_none(), cf_int(5)};
    cf_future *f = NULL;
    ASSERT_OK(cf_value_str(&args[0], "copied"));
    ASSERT_OK(cf_submit(ex, task_return_arg, args, 2, &f));
    ASSERT_TRUE(c.seen_fn == task_return_arg);
    ASSERT_EQ(c.seen_nargs, 2);
    ASSERT_NOT_NULL(c.seen_args);
    ASSERT_TRUE(c.seen_args != args);
    ASSERT_TRUE(cf_value_equal(&c.seen_args[0], &args[0]));
    ASSERT_TRUE(c.seen_args[0].as.buf.data != args[0].as.buf.data);
    ASSERT_TRUE(cf_value_equal(&c.seen_args[1], &args[1]));
    ASSERT_TRUE(c.seen_future == f);
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    check_value(f, &args[0]);
    cf_value_free(&args[0]);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    custom_destroy(&c);
}

/* executor.custom.free-op-once: cf_executor_free shuts the executor down
 * with wait (running what it kept) and calls its free op exactly once. */
TEST(executor_custom_free_runs_shutdown_then_free_op_once) {
    custom c;
    cf_executor *ex = keeping_new(&c, END_RUN);
    cf_value arg = cf_int(4);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_return_arg, &arg, 1, &f));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_GE(c.shutdowns, 1);
    ASSERT_EQ(c.frees, 1);
    check_value(f, &arg);
    ASSERT_OK(cf_future_release(f));
    custom_destroy(&c);
}

/* executor.new.null-free-op-allowed: an ops table without free is
 * accepted, and freeing such an executor works. */
TEST(executor_new_accepts_ops_without_free) {
    custom c;
    cf_executor *ex = NULL;
    custom_init(&c);
    c.run_inline = true;
    ASSERT_OK(cf_executor_new(&no_free_ops, &c, &ex));
    ASSERT_NOT_NULL(ex);
    ASSERT_STREQ(cf_executor_name(ex), "NoFreeExecutor");
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(c.frees, 0);
    custom_destroy(&c);
}

/* executor.new.argument-checks: cf_executor_new rejects NULL ops, ops
 * without submit or shutdown, and NULL out, leaving out alone. */
TEST(executor_new_rejects_missing_arguments) {
    custom c;
    cf_executor *ex = (cf_executor *)&c;
    const cf_executor_ops no_submit = {.name = "X",
                                       .submit = NULL,
                                       .shutdown = custom_shutdown,
                                       .free = NULL};
    const cf_executor_ops no_shutdown = {
        .name = "X", .submit = custom_submit, .shutdown = NULL, .free = NULL};
    custom_init(&c);
    ASSERT_STATUS(cf_executor_new(NULL, &c, &ex), CF_EINVAL);
    ASSERT_STATUS(cf_executor_new(&no_submit, &c, &ex), CF_EINVAL);
    ASSERT_STATUS(cf_executor_new(&no_shutdown, &c, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == (cf_executor *)&c);
    ASSERT_STATUS(cf_executor_new(&inline_ops, &c, NULL), CF_EINVAL);
    custom_destroy(&c);
}

/* executor.new.reserved-must-be-null: an ops table with a reserved slot set
 * (an operation of a later version) is refused, out left alone. */
TEST(executor_new_rejects_reserved_ops) {
    custom c;
    cf_executor *ex = (cf_executor *)&c;
    cf_executor_ops later = inline_ops;
    custom_init(&c);
    later.reserved[3] = &c;
    ASSERT_STATUS(cf_executor_new(&later, &c, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == (cf_executor *)&c);
    custom_destroy(&c);
}

/* executor.work.null-arguments: the cf_work_* calls give NULL / 0 or
 * CF_EINVAL for a NULL work. */
TEST(executor_work_calls_reject_null_work) {
    ASSERT_NULL(cf_work_future(NULL));
    ASSERT_TRUE(cf_work_fn(NULL) == NULL);
    ASSERT_EQ(cf_work_nargs(NULL), 0);
    ASSERT_NULL(cf_work_args(NULL));
    ASSERT_STATUS(cf_work_run(NULL), CF_EINVAL);
    ASSERT_STATUS(cf_work_fail(NULL, CF_BROKEN, "BrokenX", "m"), CF_EINVAL);
    ASSERT_STATUS(cf_work_release(NULL), CF_EINVAL);
}

/* ---- deadlock from inside ---------------------------------------------- */

/* The tests whose task reaches its own pool are thread pool only: the
 * documentation says that calling Executor methods from a callable
 * submitted to a ProcessPoolExecutor deadlocks, and a worker process has
 * only a copy of the pool. */

/* executor.shutdown.wait-from-own-worker-is-deadlock: a task that shuts its
 * own pool down with wait gets CF_DEADLOCK; the pool is then shut down.
 * Thread pool only: the task reaches its own pool. */
TEST(executor_shutdown_wait_from_own_worker_is_deadlock) {
    cf_executor *ex = pool_new(2);
    cf_value arg = cf_ptr(ex);
    cf_future *f = NULL, *later = not_written;
    ASSERT_OK(cf_submit(ex, task_shutdown_own_pool, &arg, 1, &f));
    check_int_soon(f, CF_DEADLOCK);
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &later),
                  CF_SHUTDOWN);
    ASSERT_TRUE(later == not_written);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* arg0: the pool, arg1: gate opened when started, arg2: gate to wait on;
 * then shuts the pool down with wait and returns the status. */
static void task_shutdown_own_pool_gated(cf_call *call) {
    gate started, go;
    ASSERT_TRUE(gate_arg(call, 1, &started) && gate_arg(call, 2, &go));
    gate_open(&started);
    gate_wait(&go);
    task_shutdown_own_pool(call);
}

/* executor.shutdown.wait-from-own-worker-is-deadlock: two workers shutting
 * their own pool down with wait at the same time both get CF_DEADLOCK at
 * once; neither waits to join the other.
 * Thread pool only: the tasks reach their own pool. */
TEST(executor_shutdown_wait_from_two_workers_is_deadlock_for_both) {
    cf_executor *ex = pool_new(2);
    gate started[2], go;
    cf_future *f[2];
    gate_init(&go);
    for (int i = 0; i < 2; i++) {
        gate_init(&started[i]);
        cf_value args[3] = {cf_ptr(ex), gate_value(&started[i]),
                            gate_value(&go)};
        ASSERT_OK(cf_submit(ex, task_shutdown_own_pool_gated, args, 3, &f[i]));
    }
    gate_wait(&started[0]);
    gate_wait(&started[1]);
    gate_open(&go);
    for (int i = 0; i < 2; i++) {
        check_int_soon(f[i], CF_DEADLOCK);
        ASSERT_OK(cf_future_release(f[i]));
        gate_destroy(&started[i]);
    }
    ASSERT_OK(cf_executor_free(ex));
    gate_destroy(&go);
}

/* A thread that frees an executor; status is what cf_executor_free gave. */
typedef struct freer {
    cf_executor *ex;
    cf_status status;
} freer;

static void *free_executor(void *arg) {
    freer *fr = arg;
    fr->status = cf_executor_free(fr->ex);
    return NULL;
}

/* executor.free.from-other-thread: a pool shut down with wait may be freed
 * from a thread started afterwards, which (reusing a joined worker's
 * pthread_t) must not be taken for one of the pool's workers. */
POOL_TEST(executor_free_from_thread_started_after_shutdown_is_ok) {
    cf_executor *ex = pool_new(1);
    cf_future *f = submit_gated(ex, NULL, NULL, 5);
    check_int_soon(f, 5);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    freer fr = {ex, CF_EINVAL};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, free_executor, &fr), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_STATUS(fr.status, CF_OK);
}

/* executor.shutdown.nowait-from-own-worker: a task may shut its own pool
 * down without wait (CF_OK).
 * Thread pool only: the task reaches its own pool. */
TEST(executor_shutdown_without_wait_from_own_worker_is_ok) {
    cf_executor *ex = pool_new(2);
    cf_value arg = cf_ptr(ex);
    cf_future *f = NULL, *later = not_written;
    ASSERT_OK(cf_submit(ex, task_shutdown_own_pool_nowait, &arg, 1, &f));
    check_int_soon(f, CF_OK);
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &later),
                  CF_SHUTDOWN);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.free.from-own-worker-is-deadlock: a task that frees its own pool
 * gets CF_DEADLOCK and nothing is freed: the owner frees it afterwards.
 * Thread pool only: the task reaches its own pool. */
TEST(executor_free_from_own_worker_is_deadlock) {
    cf_executor *ex = pool_new(2);
    cf_value arg = cf_ptr(ex);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_free_own_pool, &arg, 1, &f));
    check_int_soon(f, CF_DEADLOCK);
    ASSERT_STREQ(cf_executor_name(ex), "ThreadPoolExecutor");
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}
