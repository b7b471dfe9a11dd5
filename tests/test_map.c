/*
 * cf_map: results in input order, eager submission, zipped arguments, errors
 * and what they cancel, the timeout (counted from cf_map, gh-95166),
 * cf_map_close, map after shutdown, chunksize on a thread pool, and
 * buffersize (Python 3.14, gh-74028): how many calls are submitted ahead of
 * the consumer, and what is never submitted after an error, a timeout, a
 * close or a refused submit.
 *
 * Every item runs task_item(index, code, ctx): the code says what the call
 * does (return a number, raise, block on a gate, wait for its own gate, wait
 * for a later item to start) and ctx counts how many times each item ran,
 * so a test can tell after cf_executor_free which calls were cancelled
 * before they started or never submitted. ctx is in the arena, so the
 * POOL_TESTs run the same on a process pool.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

/* ---- helpers ----------------------------------------------------------- */

enum {
    RAISE = -1, /* raise ValueError("item <index>") */
    BLOCK =
        -2, /* open ctx->block_started, wait for ctx->block, return index */
    GATED = -3, /* wait for ctx->gates[index], note the finish, return index */
    AHEAD = -4  /* wait until item ctx->awaits[index] - 1 (if any) started,
                   return index */
};

#define MAX_ITEMS 16

/* What the items share with the test: in the arena, so that items running
 * in worker processes reach it too. */
typedef struct map_ctx {
    atomic_int runs[MAX_ITEMS];
    atomic_int finish_order[MAX_ITEMS];
    atomic_int nstarted, nfinished;
    /* the test sets ncalls to k before its k-th cf_map_next (1-based);
     * every item notes, as it starts, the ncalls it saw */
    atomic_int ncalls;
    atomic_int seen_calls[MAX_ITEMS];
    atomic_int awaits[MAX_ITEMS]; /* AHEAD: 1 + the item to wait for */
    gate block, block_started;
    gate gates[MAX_ITEMS];
} map_ctx;

static map_ctx *ctx_new(void) {
    map_ctx *c = arena_alloc(sizeof *c);
    gate_init(&c->block);
    gate_init(&c->block_started);
    for (int i = 0; i < MAX_ITEMS; i++)
        gate_init(&c->gates[i]);
    return c;
}

static void ctx_free(map_ctx *c) {
    for (int i = 0; i < MAX_ITEMS; i++)
        gate_destroy(&c->gates[i]);
    gate_destroy(&c->block);
    gate_destroy(&c->block_started);
    arena_free(c);
}

static int ctx_runs(map_ctx *c, int i) {
    return atomic_load(&c->runs[i]);
}

/* Checks that items [from, to) each ran exactly n times. */
static void check_runs_(const char *file, int line, map_ctx *c, int from,
                        int to, int n) {
    for (int i = from; i < to; i++)
        if (ctx_runs(c, i) != n)
            test_fail(file, line, "item %d ran %d times, want %d", i,
                      ctx_runs(c, i), n);
}
#define check_runs(c, from, to, n)                                            \
    check_runs_(__FILE__, __LINE__, c, from, to, n)

/* The ncalls item i saw as it started. */
static int ctx_seen(map_ctx *c, int i) {
    return atomic_load(&c->seen_calls[i]);
}

/* Waits until *counter (nstarted or nfinished) reaches n; LONG fails. */
static void ctx_wait(map_ctx *c, atomic_int *counter, int n) {
    shared_wait(counter, n,
                counter == &c->nstarted ? "calls started" : "calls finished");
}

static void task_item(cf_call *call) {
    int index = (int)cf_arg(call, 0)->as.i;
    int code = (int)cf_arg(call, 1)->as.i;
    map_ctx *c = arena_arg(call, 2);
    /* noted before the counts that let the test go on */
    atomic_store(&c->seen_calls[index], atomic_load(&c->ncalls));
    shared_add(&c->runs[index], 1);
    shared_add(&c->nstarted, 1);
    if (code == RAISE) {
        cf_raise(call, "ValueError", "item %d", index);
        return;
    }
    if (code == BLOCK) {
        gate_open(&c->block_started);
        gate_wait(&c->block);
    } else if (code == AHEAD) {
        int awaited = atomic_load(&c->awaits[index]);
        if (awaited)
            shared_wait(&c->runs[awaited - 1], 1, "runs of the awaited item");
    } else if (code == GATED) {
        gate_wait(&c->gates[index]);
        /* the test opens one gate at a time and waits for its finish, so
         * nfinished is this item's place in the order */
        atomic_store(&c->finish_order[atomic_load(&c->nfinished)], index);
        shared_add(&c->nfinished, 1);
    }
    cf_return(call, cf_int(code >= 0 ? code : index));
}

/* The zipped arguments for n items: (index, codes[index], ctx). */
static cf_value *item_args(map_ctx *c, const int *codes, int n) {
    static cf_value args[3 * MAX_ITEMS];
    ASSERT_LE(n, MAX_ITEMS);
    for (int i = 0; i < n; i++) {
        args[3 * i] = cf_int(i);
        args[3 * i + 1] = cf_int(codes[i]);
        args[3 * i + 2] = arena_value(c);
    }
    return args;
}

/* cf_map over n items, at most buffersize calls ahead (0: eager). */
static cf_map_iter *map_buffered(cf_executor *ex, map_ctx *c, const int *codes,
                                 int n, double timeout, size_t buffersize) {
    cf_map_iter *it = NULL;
    ASSERT_OK(cf_map(ex, task_item, item_args(c, codes, n), (size_t)n, 3,
                     timeout, 1, buffersize, &it));
    ASSERT_NOT_NULL(it);
    return it;
}

static cf_map_iter *map_items(cf_executor *ex, map_ctx *c, const int *codes,
                              int n, double timeout) {
    return map_buffered(ex, c, codes, n, timeout, 0);
}

/* Sets ncalls to k, then checks that the k-th next gives the int want. */
#define expect_int_at(c, k, it, want)                                         \
    do {                                                                      \
        atomic_store(&(c)->ncalls, (k));                                      \
        expect_int(it, want);                                                 \
    } while (0)

/* Checks the next result is the int want, within LONG / 2. */
static void expect_int_(const char *file, int line, cf_map_iter *it,
                        int64_t want) {
    cf_value v = cf_none();
    const cf_error *e = NULL;
    double t0 = test_now();
    cf_status s = cf_map_next(it, &v, &e);
    if (s != CF_OK)
        test_fail(file, line, "next = %s (%s: %s), want %lld",
                  cf_status_name(s), cf_error_type(e), cf_error_message(e),
                  (long long)want);
    if (v.type != CF_TYPE_INT || v.as.i != want)
        test_fail(file, line, "next gave type %d value %lld, want %lld",
                  (int)v.type, (long long)v.as.i, (long long)want);
    if (test_now() - t0 >= LONG / 2)
        test_fail(file, line, "next took LONG / 2 or more");
}
#define expect_int(it, want) expect_int_(__FILE__, __LINE__, it, want)

/* Checks next fails with status, leaving out alone; gives the error. */
static const cf_error *expect_failure(cf_map_iter *it, cf_status status) {
    cf_value v = cf_int(-999);
    const cf_error *e = NULL;
    ASSERT_STATUS(cf_map_next(it, &v, &e), status);
    ASSERT_EQ(v.type, CF_TYPE_INT);
    ASSERT_EQ(v.as.i, -999);
    return e;
}

static void expect_stop(cf_map_iter *it) {
    cf_value v = cf_int(-999);
    ASSERT_STATUS(cf_map_next(it, &v, NULL), CF_STOP);
    ASSERT_EQ(v.as.i, -999);
}

static cf_map_iter *const not_written = (cf_map_iter *)&not_written;

/* ---- results ----------------------------------------------------------- */

/* map.results-in-input-order: results come in input order although the
 * calls finish in the reverse order. */
POOL_TEST(map_results_in_input_order) {
    int codes[3] = {GATED, GATED, GATED};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(3);
    cf_map_iter *it = map_items(ex, c, codes, 3, CF_FOREVER);
    for (int k = 0; k < 3; k++) {
        gate_open(&c->gates[2 - k]);
        ctx_wait(c, &c->nfinished, k + 1);
    }
    ASSERT_EQ(atomic_load(&c->finish_order[0]), 2);
    ASSERT_EQ(atomic_load(&c->finish_order[1]), 1);
    ASSERT_EQ(atomic_load(&c->finish_order[2]), 0);
    for (int i = 0; i < 3; i++)
        expect_int(it, i);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ctx_free(c);
}

/* map.eager-submission: cf_map submits every call before the first next. */
POOL_TEST(map_submits_every_call_before_the_first_next) {
    int codes[5] = {10, 11, 12, 13, 14};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_items(ex, c, codes, 5, CF_FOREVER);
    ctx_wait(c, &c->nstarted, 5);
    for (int i = 0; i < 5; i++)
        expect_int(it, 10 + i);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ctx_free(c);
}

/* arg0 * 100 + arg1; raises unless called with exactly two ints. */
static void task_combine(cf_call *call) {
    if (cf_nargs(call) != 2 || cf_arg(call, 0)->type != CF_TYPE_INT ||
        cf_arg(call, 1)->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "want two ints, got %zu args",
                 cf_nargs(call));
        return;
    }
    cf_return(call,
              cf_int(cf_arg(call, 0)->as.i * 100 + cf_arg(call, 1)->as.i));
}

/* map.zipped-arguments: with nargs 2, item i is called with args[2i] and
 * args[2i + 1], as Python zips its iterables. */
POOL_TEST(map_zips_arguments) {
    cf_value args[6] = {cf_int(1), cf_int(2), cf_int(3),
                        cf_int(4), cf_int(5), cf_int(6)};
    cf_executor *ex = pool_new(2);
    cf_map_iter *it = NULL;
    ASSERT_OK(cf_map(ex, task_combine, args, 3, 2, CF_FOREVER, 1, 0, &it));
    expect_int(it, 102);
    expect_int(it, 304);
    expect_int(it, 506);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
}

/* Maps over five strings with this buffersize, overwriting and freeing
 * the caller's argument array right after cf_map: each result is still its
 * word, and the caller's own. */
static void check_map_copies(size_t buffersize) {
    const char *words[5] = {"a", "bb", "ccc", "dddd", "eeeee"};
    cf_value args[5];
    cf_executor *ex = pool_new(2);
    cf_map_iter *it = NULL;
    for (int i = 0; i < 5; i++)
        ASSERT_OK(cf_value_str(&args[i], words[i]));
    ASSERT_OK(cf_map(ex, task_return_arg, args, 5, 1, CF_FOREVER, 1,
                     buffersize, &it));
    for (int i = 0; i < 5; i++) {
        memset(args[i].as.buf.data, 'X', args[i].as.buf.len);
        cf_value_free(&args[i]);
    }
    for (int i = 0; i < 5; i++) {
        cf_value v = cf_none();
        ASSERT_OK(cf_map_next(it, &v, NULL));
        ASSERT_EQ(v.type, CF_TYPE_STR);
        ASSERT_STREQ(v.as.buf.data, words[i]);
        cf_value_free(&v);
    }
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
}

/* map.copies-arguments-results-owned: cf_map copies its arguments (the
 * caller may free them at once) and each result is the caller's own. */
POOL_TEST(map_copies_arguments_and_gives_owned_results) {
    check_map_copies(0);
}

/* map.empty: nitems 0 gives an iterator that stops at once. */
POOL_TEST(map_with_no_items_stops_at_once) {
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = NULL;
    ASSERT_OK(cf_map(ex, task_return_arg, NULL, 0, 1, CF_FOREVER, 1, 0, &it));
    ASSERT_NOT_NULL(it);
    expect_stop(it);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
}

/* map.chunksize-ignored: a thread pool gives the same results for
 * chunksize 0, 1 and 1000.
 * Thread pool only: a process pool uses chunksize and refuses 0, as Python
 * does (test_process_pool.c checks that). */
TEST(map_chunksize_ignored_by_thread_pool) {
    size_t sizes[3] = {0, 1, 1000};
    cf_value args[10];
    cf_executor *ex = pool_new(3);
    for (int i = 0; i < 10; i++)
        args[i] = cf_int(i * i);
    for (int k = 0; k < 3; k++) {
        cf_map_iter *it = NULL;
        ASSERT_OK(cf_map(ex, task_return_arg, args, 10, 1, CF_FOREVER,
                         sizes[k], 0, &it));
        for (int i = 0; i < 10; i++)
            expect_int(it, i * i);
        expect_stop(it);
        ASSERT_OK(cf_map_close(it));
    }
    ASSERT_OK(cf_executor_free(ex));
}

/* ---- errors ------------------------------------------------------------ */

/* map.error-at-its-item: a call's exception is delivered when its item is
 * reached (CF_RAISED and the error); then the iterator stops and the calls
 * not yet started are cancelled. */
POOL_TEST(map_error_delivered_at_its_item_then_stops) {
    int codes[5] = {10, RAISE, BLOCK, 13, 14};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_items(ex, c, codes, 5, CF_FOREVER);
    expect_int(it, 10);
    const cf_error *e = expect_failure(it, CF_RAISED);
    check_error(e, CF_RAISED, "ValueError", "item 1");
    expect_stop(it);
    expect_stop(it);
    gate_open(&c->block);
    ASSERT_OK(cf_executor_free(ex)); /* whatever was not cancelled runs */
    ASSERT_OK(cf_map_close(it));
    ASSERT_LE(ctx_runs(c, 2), 1);
    check_runs(c, 3, 5, 0);
    ctx_free(c);
}

/* map.cancelled-item: an item cancelled by shutdown(cancel_futures) gives
 * CF_CANCELLED when reached, then the iterator stops. */
POOL_TEST(map_item_cancelled_by_shutdown_gives_cancelled) {
    int codes[3] = {BLOCK, 1, 2};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_items(ex, c, codes, 3, CF_FOREVER);
    gate_wait(&c->block_started);
    ASSERT_OK(cf_executor_shutdown(ex, false, true));
    gate_open(&c->block);
    expect_int(it, 0);
    expect_failure(it, CF_CANCELLED);
    expect_stop(it);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_map_close(it));
    check_runs(c, 1, 3, 0);
    ctx_free(c);
}

static void log_quietly(cf_log_level level, const char *msg, void *ctx) {
    (void)level;
    (void)msg;
    (void)ctx;
}

/* map.broken-pool: items of a pool broken by its initializer give
 * CF_BROKEN with the pool's Broken error (BrokenThreadPool, or
 * BrokenProcessPool: in Python a failing initializer ends its worker
 * process, which breaks the process pool), then the iterator stops. */
POOL_TEST(map_on_broken_pool_gives_broken) {
    if (skipped_on_outside("it breaks the pool through an initializer, "
                           "which the outside executor has none of"))
        return;
    gate go;
    cf_value args[3] = {cf_int(1), cf_int(2), cf_int(3)};
    cf_map_iter *it = NULL;
    gate_init(&go);
    ASSERT_OK(cf_set_log_hook(log_quietly, NULL));
    cf_executor *ex = failing_pool(1, &go);
    ASSERT_OK(cf_map(ex, task_return_arg, args, 3, 1, CF_FOREVER, 1, 0, &it));
    gate_open(&go);
    const cf_error *e = expect_failure(it, CF_BROKEN);
    check_error(e, CF_BROKEN, broken_pool_type(), NULL);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    gate_destroy(&go);
}

/* ---- timeout ----------------------------------------------------------- */

/* The next result times out at once (the deadline has passed), with
 * Python's TimeoutError, and the iterator is finished; then the blocked
 * item is let go and the pool freed, so whatever was not cancelled runs. */
static void expect_late_timeout_then_free(map_ctx *c, cf_executor *ex,
                                          cf_map_iter *it, double timeout) {
    double t1 = test_now();
    const cf_error *e = expect_failure(it, CF_TIMEOUT);
    ASSERT_TRUE(test_now() - t1 < timeout);
    check_error(e, CF_TIMEOUT, "TimeoutError", NULL);
    expect_stop(it);
    gate_open(&c->block);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_map_close(it));
}

/* map.timeout-from-call: the timeout counts from cf_map, so a first next
 * made after it expired times out without waiting again; what had not
 * started is cancelled. */
POOL_TEST(map_timeout_counts_from_the_map_call) {
    int codes[2] = {BLOCK, 5};
    double timeout = 2 * SHORT;
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    double t0 = test_now();
    cf_map_iter *it = map_items(ex, c, codes, 2, timeout);
    gate_wait(&c->block_started);
    let_time_pass(t0, timeout);
    expect_late_timeout_then_free(c, ex, it, timeout);
    check_runs(c, 0, 1, 1);
    check_runs(c, 1, 2, 0);
    ctx_free(c);
}

/* map.timeout-cancels-waited-call (gh-95166): when the timeout expires
 * while next waits for a call that has not started, that call is cancelled
 * too, not only the later ones. */
POOL_TEST(map_timeout_cancels_the_waited_call_if_not_started) {
    int codes[2] = {0, 1};
    busy_pool b;
    map_ctx *c = ctx_new();
    busy_pool_start(&b, 0);
    double t0 = test_now();
    cf_map_iter *it = map_items(b.ex, c, codes, 2, SHORT);
    expect_failure(it, CF_TIMEOUT);
    ASSERT_TRUE(test_now() - t0 >= SHORT);
    expect_stop(it);
    gate_open(&b.proceed);
    ASSERT_OK(cf_future_result(b.running, LONG, NULL));
    ASSERT_OK(cf_executor_free(b.ex)); /* whatever was not cancelled runs */
    ASSERT_OK(cf_map_close(it));
    check_runs(c, 0, 2, 0);
    ASSERT_OK(cf_future_release(b.running));
    busy_pool_destroy(&b);
    ctx_free(c);
}

/* map.timeout-available-result (rule 47): after the deadline a result that
 * is already available is still returned; only a missing one times out. */
POOL_TEST(map_result_available_after_deadline_is_returned) {
    int codes[2] = {7, BLOCK};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    double t0 = test_now();
    cf_map_iter *it = map_items(ex, c, codes, 2, SHORT);
    /* one worker: item 1 starts only after item 0's future is finished */
    gate_wait(&c->block_started);
    let_time_pass(t0, SHORT);
    expect_int(it, 7);
    expect_failure(it, CF_TIMEOUT);
    expect_stop(it);
    gate_open(&c->block);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ctx_free(c);
}

/* ---- close ------------------------------------------------------------- */

/* map.close-cancels-unstarted: closing an iterator advanced once cancels
 * the calls not yet started; the running one finishes. */
POOL_TEST(map_close_after_next_cancels_calls_not_started) {
    int codes[4] = {10, BLOCK, 12, 13};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_items(ex, c, codes, 4, CF_FOREVER);
    expect_int(it, 10);
    gate_wait(&c->block_started);
    ASSERT_OK(cf_map_close(it));
    gate_open(&c->block);
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 1, 2, 1);
    check_runs(c, 2, 4, 0);
    ctx_free(c);
}

/* map.close-never-advanced-cancels-nothing: closing an iterator never
 * advanced cancels nothing: every call still runs. */
POOL_TEST(map_close_without_next_cancels_nothing) {
    int codes[4] = {BLOCK, 1, 2, 3};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_items(ex, c, codes, 4, CF_FOREVER);
    gate_wait(&c->block_started);
    ASSERT_OK(cf_map_close(it));
    gate_open(&c->block);
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 0, 4, 1);
    ctx_free(c);
}

/* ---- shutdown and failed submits --------------------------------------- */

/* map.after-shutdown: cf_map on a shut-down executor returns CF_SHUTDOWN
 * and makes no iterator. */
POOL_TEST(map_after_shutdown_is_shutdown) {
    cf_value args[2] = {cf_int(1), cf_int(2)};
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = not_written;
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_STATUS(
        cf_map(ex, task_return_arg, args, 2, 1, CF_FOREVER, 1, 0, &it),
        CF_SHUTDOWN);
    ASSERT_TRUE(it == not_written);
    ASSERT_OK(cf_executor_free(ex));
}

/* map.empty-after-shutdown: with nitems 0 nothing is submitted, so cf_map
 * on a shut-down executor succeeds, as in Python. */
POOL_TEST(map_with_no_items_after_shutdown_is_ok) {
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = NULL;
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_OK(cf_map(ex, task_return_arg, NULL, 0, 1, CF_FOREVER, 1, 0, &it));
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
}

/* An executor that keeps the works it takes and refuses, with CF_EAGAIN
 * (and RuntimeError "refused by the test", cf_refuse), every submit after
 * the first `accept`; the test runs a kept work when it
 * likes (refuser_run), and its shutdown runs what is left. nworks counts
 * every work it took, so a test knows exactly how many were submitted. */
typedef struct refuser {
    pthread_mutex_t lock;
    int accept;
    cf_work *works[MAX_ITEMS];
    int nworks;
    cf_status ended[MAX_ITEMS];
} refuser;

static cf_status refuser_submit(void *self, cf_work *w) {
    refuser *r = (refuser *)self;
    pthread_mutex_lock(&r->lock);
    if (r->nworks == r->accept) {
        pthread_mutex_unlock(&r->lock);
        return cf_refuse(CF_EAGAIN, "RuntimeError", "refused by the test");
    }
    r->works[r->nworks++] = w;
    pthread_mutex_unlock(&r->lock);
    return CF_OK;
}

/* Runs kept work i now, in this thread, unless it already ran. */
static void refuser_run(refuser *r, int i) {
    pthread_mutex_lock(&r->lock);
    ASSERT_LT(i, r->nworks);
    cf_work *w = r->works[i];
    r->works[i] = NULL;
    pthread_mutex_unlock(&r->lock);
    if (w)
        r->ended[i] = cf_work_run(w);
}

static int refuser_count(refuser *r) {
    pthread_mutex_lock(&r->lock);
    int n = r->nworks;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static cf_status refuser_shutdown(void *self, bool wait, bool cancel) {
    refuser *r = (refuser *)self;
    (void)wait;
    (void)cancel;
    for (int i = 0; i < refuser_count(r); i++)
        refuser_run(r, i);
    return CF_OK;
}

static const cf_executor_ops refuser_ops = {.name = "RefusingExecutor",
                                            .submit = refuser_submit,
                                            .shutdown = refuser_shutdown,
                                            .free = NULL};

/* map.failed-submit-cancels-submitted: when a submit fails part way,
 * cf_map returns its status, makes no iterator, and cancels the calls
 * already submitted. */
TEST(map_failed_submit_cancels_what_was_submitted) {
    int codes[4] = {0, 1, 2, 3};
    refuser r = {PTHREAD_MUTEX_INITIALIZER, 2, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    cf_map_iter *it = not_written;
    map_ctx *c = ctx_new();
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    ASSERT_STATUS(cf_map(ex, task_item, item_args(c, codes, 4), 4, 3,
                         CF_FOREVER, 1, 0, &it),
                  CF_EAGAIN);
    ASSERT_TRUE(it == not_written);
    ASSERT_EQ(r.nworks, 2);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_STATUS(r.ended[0], CF_CANCELLED);
    ASSERT_STATUS(r.ended[1], CF_CANCELLED);
    check_runs(c, 0, 4, 0);
    ctx_free(c);
}

/* ---- buffersize (Python 3.14, gh-74028) --------------------------------- */

/* map.buffersize.bounded-ahead (rule 54): with buffersize 2, cf_map submits
 * the first 2 calls only; each next first submits one more, then waits for
 * the oldest, so 3 calls are in flight during a next (gh-131466, as
 * CPython). Each item k waits for item k + 2 to start before it returns,
 * so a next that waited before it submitted would hang; and item i >= 2
 * notes that it started during the (i - 1)-th next, not before. */
POOL_TEST(map_buffersize_submits_one_more_per_next) {
    enum { N = 10, B = 2 };
    int codes[N];
    map_ctx *c = ctx_new();
    for (int i = 0; i < N; i++) {
        codes[i] = AHEAD;
        if (i + B < N)
            atomic_store(&c->awaits[i], i + B + 1);
    }
    cf_executor *ex = pool_new(B + 1);
    cf_map_iter *it = map_buffered(ex, c, codes, N, CF_FOREVER, B);
    ctx_wait(c, &c->nstarted, B);
    for (int k = 0; k < N; k++)
        expect_int_at(c, k + 1, it, k);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(ctx_runs(c, i), 1);
        ASSERT_EQ(ctx_seen(c, i), i < B ? 0 : i - B + 1);
    }
    ctx_free(c);
}

/* map.buffersize.counts-chunks (rule 54): on a process pool with chunksize
 * 2, buffersize 2 counts chunks -- calls, as CPython's base map counts the
 * futures of ProcessPoolExecutor.map's chunks: cf_map submits chunks 0 and
 * 1 (items 0-3), and the next that reaches a chunk's first item submits one
 * more chunk before it waits, while the next that gives a chunk's second
 * item submits nothing. The first item of chunk k waits for chunk k + 2 to
 * start, and notes the next during which it started. */
TEST(map_buffersize_counts_chunks_on_a_process_pool) {
    enum { N = 10, CHUNK = 2, B = 2, NCHUNKS = N / CHUNK };
    int codes[N];
    map_ctx *c = ctx_new();
    for (int i = 0; i < N; i++)
        codes[i] = AHEAD;
    for (int k = 0; k + B < NCHUNKS; k++)
        atomic_store(&c->awaits[k * CHUNK], (k + B) * CHUNK + 1);
    cf_process_pool_options o;
    cf_executor *ex = NULL;
    ASSERT_OK(cf_process_pool_options_init(&o));
    o.max_workers = B + 1;
    ASSERT_OK(cf_process_pool_new(&o, &ex));
    cf_map_iter *it = NULL;
    ASSERT_OK(cf_map(ex, task_item, item_args(c, codes, N), N, 3, CF_FOREVER,
                     CHUNK, B, &it));
    shared_wait(&c->runs[0], 1, "runs of item 0");
    shared_wait(&c->runs[CHUNK], 1, "runs of chunk 1's first item");
    for (int k = 0; k < N; k++)
        expect_int_at(c, k + 1, it, k);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    for (int k = 0; k < NCHUNKS; k++) {
        /* chunk k >= B is submitted by the next of chunk k - B's first
         * item, the (CHUNK * (k - B) + 1)-th */
        int during = k < B ? 0 : CHUNK * (k - B) + 1;
        ASSERT_EQ(ctx_seen(c, k * CHUNK), during);
        ASSERT_GE(ctx_seen(c, k * CHUNK + 1), during);
        for (int j = 0; j < CHUNK; j++)
            ASSERT_EQ(ctx_runs(c, k * CHUNK + j), 1);
    }
    ctx_free(c);
}

/* map.buffersize.error-stops-submitting (rule 48 with rule 54): buffersize
 * 2 and item 2 raises: the next that reaches item 2 submits item 4 first,
 * then gives the error and cancels items 3 and 4; items 5-7 are never
 * submitted, so never run. */
POOL_TEST(map_buffersize_error_leaves_the_rest_unsubmitted) {
    int codes[8] = {10, 11, RAISE, 13, 14, 15, 16, 17};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(2);
    cf_map_iter *it = map_buffered(ex, c, codes, 8, CF_FOREVER, 2);
    expect_int(it, 10);
    expect_int(it, 11);
    const cf_error *e = expect_failure(it, CF_RAISED);
    check_error(e, CF_RAISED, "ValueError", "item 2");
    expect_stop(it);
    ASSERT_OK(cf_executor_free(ex)); /* whatever was not cancelled runs */
    ASSERT_OK(cf_map_close(it));
    ASSERT_LE(ctx_runs(c, 3), 1);
    ASSERT_LE(ctx_runs(c, 4), 1);
    check_runs(c, 5, 8, 0);
    ctx_free(c);
}

/* map.buffersize.close-never-submits (rule 48 with rule 54): closing an
 * iterator advanced once cancels what it submitted and not yet gave out
 * (items 1 and 2) and never submits the rest (items 3-7). */
POOL_TEST(map_buffersize_close_after_next_never_submits_the_rest) {
    int codes[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(2);
    cf_map_iter *it = map_buffered(ex, c, codes, 8, CF_FOREVER, 2);
    expect_int(it, 0);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 0, 1, 1);
    ASSERT_LE(ctx_runs(c, 1), 1);
    ASSERT_LE(ctx_runs(c, 2), 1);
    check_runs(c, 3, 8, 0);
    ctx_free(c);
}

/* map.buffersize.close-never-advanced (rules 45 and 54): closing an
 * iterator never advanced cancels nothing -- the buffersize calls cf_map
 * submitted still run -- and never submits the rest. */
POOL_TEST(map_buffersize_close_without_next_runs_only_the_first) {
    int codes[8] = {BLOCK, 1, 2, 3, 4, 5, 6, 7};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = map_buffered(ex, c, codes, 8, CF_FOREVER, 2);
    gate_wait(&c->block_started);
    ASSERT_OK(cf_map_close(it));
    gate_open(&c->block);
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 0, 2, 1);
    check_runs(c, 2, 8, 0);
    ctx_free(c);
}

/* map.buffersize.invalid (rule 54): a buffersize above SIZE_MAX / 2 -- a
 * negative number converted, beyond Python's sys.maxsize -- is CF_EINVAL
 * (Python: ValueError "buffersize must be None or > 0"), checked before
 * anything is submitted, with no items too, and before the shutdown check
 * (Python validates before it submits); out is left alone. SIZE_MAX / 2 is
 * valid: every call is submitted at once. cf_last_error says why. */
POOL_TEST(map_buffersize_invalid_is_einval_and_submits_nothing) {
    size_t bad[3] = {SIZE_MAX, SIZE_MAX / 2 + 1, (size_t)-2};
    int codes[3] = {0, 1, 2};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(2);
    cf_map_iter *it = not_written;
    for (int k = 0; k < 3; k++) {
        ASSERT_STATUS(cf_map(ex, task_item, item_args(c, codes, 3), 3, 3,
                             CF_FOREVER, 1, bad[k], &it),
                      CF_EINVAL);
        check_error(cf_last_error(), CF_EINVAL, "ValueError",
                    "buffersize must be None or > 0");
        ASSERT_STATUS(
            cf_map(ex, task_item, NULL, 0, 3, CF_FOREVER, 1, bad[k], &it),
            CF_EINVAL);
    }
    ASSERT_TRUE(it == not_written);
    it = map_buffered(ex, c, codes, 3, CF_FOREVER, SIZE_MAX / 2);
    ctx_wait(c, &c->nstarted, 3);
    for (int i = 0; i < 3; i++)
        expect_int(it, i);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    it = not_written;
    ASSERT_STATUS(cf_map(ex, task_item, item_args(c, codes, 3), 3, 3,
                         CF_FOREVER, 1, SIZE_MAX, &it),
                  CF_EINVAL);
    ASSERT_TRUE(it == not_written);
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 0, 3, 1);
    ctx_free(c);
}

/* map.buffersize.timeout-from-call (rules 47 and 54): the deadline counts
 * from cf_map whatever was submitted later: after it passed, a result
 * already there is still given (and one more call submitted), then the
 * next that has to wait times out at once; the calls submitted and not
 * started are cancelled, and the rest are never submitted. One worker:
 * item 1 blocks it, so items 2 and 3 stay queued until cancelled. */
POOL_TEST(map_buffersize_timeout_counts_from_the_map_call) {
    int codes[6] = {7, BLOCK, 2, 3, 4, 5};
    double timeout = SHORT;
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(1);
    double t0 = test_now();
    cf_map_iter *it = map_buffered(ex, c, codes, 6, timeout, 2);
    gate_wait(&c->block_started); /* so item 0's future is finished */
    let_time_pass(t0, timeout);
    expect_int(it, 7);
    expect_late_timeout_then_free(c, ex, it, timeout);
    check_runs(c, 0, 2, 1);
    check_runs(c, 2, 6, 0);
    ctx_free(c);
}

/* map.buffersize.submit-after-shutdown (rule 55, gh-146392): the executor
 * shut down after cf_map, before or during the iteration: the next that
 * must submit one more gets the submit's CF_SHUTDOWN with Python's
 * RuntimeError "cannot schedule new futures after shutdown" (CPython's
 * next() raises the refill submit's exception); the iteration ends there,
 * the results already computed are lost, and the rest never runs. */
POOL_TEST(map_buffersize_submit_after_shutdown_ends_the_iteration) {
    for (int advanced = 0; advanced < 2; advanced++) {
        int codes[6] = {0, 1, 2, 3, 4, 5};
        map_ctx *c = ctx_new();
        cf_executor *ex = pool_new(2);
        cf_map_iter *it = map_buffered(ex, c, codes, 6, CF_FOREVER, 2);
        if (advanced)
            expect_int(it, 0);
        ASSERT_OK(cf_executor_shutdown(ex, true, false));
        const cf_error *e = expect_failure(it, CF_SHUTDOWN);
        check_error(e, CF_SHUTDOWN, "RuntimeError",
                    "cannot schedule new futures after shutdown");
        expect_stop(it);
        expect_stop(it);
        ASSERT_OK(cf_map_close(it));
        ASSERT_OK(cf_executor_free(ex));
        for (int i = 0; i < 2 + advanced; i++)
            ASSERT_EQ(ctx_runs(c, i), 1);
        for (int i = 2 + advanced; i < 6; i++)
            ASSERT_EQ(ctx_runs(c, i), 0);
        ctx_free(c);
    }
}

/* map.buffersize.exact-submissions (rule 54): on an executor that only
 * keeps its works, the submits are counted exactly: cf_map makes 2, each
 * next one more (before it waits) until none is left. */
TEST(map_buffersize_exact_submissions_on_a_keeping_executor) {
    enum { N = 6, B = 2 };
    int codes[N] = {0, 1, 2, 3, 4, 5};
    refuser r = {PTHREAD_MUTEX_INITIALIZER, MAX_ITEMS, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    map_ctx *c = ctx_new();
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    cf_map_iter *it = map_buffered(ex, c, codes, N, CF_FOREVER, B);
    ASSERT_EQ(refuser_count(&r), B);
    for (int k = 0; k < N; k++) {
        refuser_run(&r, k);
        expect_int(it, k);
        ASSERT_EQ(refuser_count(&r), k + B + 1 < N ? k + B + 1 : N);
    }
    expect_stop(it);
    ASSERT_EQ(refuser_count(&r), N);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    check_runs(c, 0, N, 1);
    ctx_free(c);
}

/* map.buffersize.error-stops-submitting, counted: item 2 raises; the next
 * that reaches it submitted item 4 first (5 submits in all), and cancels
 * items 3 and 4. */
TEST(map_buffersize_error_submits_exactly_one_more) {
    int codes[8] = {0, 1, RAISE, 3, 4, 5, 6, 7};
    refuser r = {PTHREAD_MUTEX_INITIALIZER, MAX_ITEMS, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    map_ctx *c = ctx_new();
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    cf_map_iter *it = map_buffered(ex, c, codes, 8, CF_FOREVER, 2);
    for (int k = 0; k < 2; k++) {
        refuser_run(&r, k);
        expect_int(it, k);
    }
    refuser_run(&r, 2);
    const cf_error *e = expect_failure(it, CF_RAISED);
    check_error(e, CF_RAISED, "ValueError", "item 2");
    expect_stop(it);
    ASSERT_EQ(refuser_count(&r), 5);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_STATUS(r.ended[3], CF_CANCELLED);
    ASSERT_STATUS(r.ended[4], CF_CANCELLED);
    check_runs(c, 3, 8, 0);
    ctx_free(c);
}

/* map.buffersize.timeout-from-call, counted: with the deadline already
 * passed, the first next still submits one more call before it waits (as
 * CPython), then times out; both calls are cancelled. */
TEST(map_buffersize_timed_out_next_submits_then_cancels) {
    int codes[4] = {0, 1, 2, 3};
    refuser r = {PTHREAD_MUTEX_INITIALIZER, MAX_ITEMS, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    map_ctx *c = ctx_new();
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    cf_map_iter *it = map_buffered(ex, c, codes, 4, 0, 1);
    ASSERT_EQ(refuser_count(&r), 1);
    const cf_error *e = expect_failure(it, CF_TIMEOUT);
    check_error(e, CF_TIMEOUT, "TimeoutError", NULL);
    expect_stop(it);
    ASSERT_EQ(refuser_count(&r), 2);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_STATUS(r.ended[0], CF_CANCELLED);
    ASSERT_STATUS(r.ended[1], CF_CANCELLED);
    check_runs(c, 0, 4, 0);
    ctx_free(c);
}

/* map.buffersize.submit-fails-mid-iteration: a submit refused while
 * iterating (CF_EAGAIN here) is what that next gives, with the submit's
 * error, the executor's reason (cf_last_error, here RuntimeError "refused
 * by the test"); the iteration ends, the calls submitted and not given out are
 * cancelled (item 1's result, computed, is lost), and the rest is never
 * submitted. */
TEST(map_buffersize_refused_submit_ends_the_iteration) {
    int codes[6] = {0, 1, 2, 3, 4, 5};
    refuser r = {PTHREAD_MUTEX_INITIALIZER, 3, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    map_ctx *c = ctx_new();
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    cf_map_iter *it = map_buffered(ex, c, codes, 6, CF_FOREVER, 2);
    refuser_run(&r, 0);
    expect_int(it, 0);
    refuser_run(&r, 1);
    const cf_error *e = expect_failure(it, CF_EAGAIN);
    check_error(e, CF_EAGAIN, "RuntimeError", "refused by the test");
    expect_stop(it);
    ASSERT_EQ(refuser_count(&r), 3);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_STATUS(r.ended[1], CF_OK);
    ASSERT_STATUS(r.ended[2], CF_CANCELLED);
    check_runs(c, 1, 2, 1);
    check_runs(c, 2, 6, 0);
    ctx_free(c);
}

/* map.buffersize.copies-arguments (rule 54): the arguments of the calls
 * not yet submitted are the iterator's own copies: the caller may free its
 * array right after cf_map. */
POOL_TEST(map_buffersize_copies_the_arguments_not_yet_submitted) {
    check_map_copies(1);
}

/* map.buffersize.copies-arguments: the arguments not submitted at cf_map
 * are copied there, so one that cf_value_copy refuses (a STR that is not
 * UTF-8) fails cf_map with CF_EINVAL, as without a buffersize, before
 * anything is submitted. */
TEST(map_buffersize_bad_later_argument_is_einval_before_any_submit) {
    refuser r = {PTHREAD_MUTEX_INITIALIZER, MAX_ITEMS, {NULL}, 0, {CF_OK}};
    cf_executor *ex = NULL;
    cf_value items[3] = {cf_int(1), cf_int(2),
                         hand_made_buffer(CF_TYPE_STR, "\xff", 1)};
    cf_map_iter *it = not_written;
    ASSERT_OK(cf_executor_new(&refuser_ops, &r, &ex));
    ASSERT_STATUS(
        cf_map(ex, task_return_arg, items, 3, 1, CF_FOREVER, 1, 1, &it),
        CF_EINVAL);
    ASSERT_TRUE(it == not_written);
    ASSERT_EQ(refuser_count(&r), 0);
    ASSERT_OK(cf_executor_free(ex));
    cf_value_free(&items[2]);
}

/* map.buffersize.larger-than-input: a buffersize of at least the number of
 * calls submits them all at cf_map, like the eager map; nitems 0 stops at
 * once. */
POOL_TEST(map_buffersize_larger_than_the_input_submits_all) {
    int codes[3] = {0, 1, 2};
    map_ctx *c = ctx_new();
    cf_executor *ex = pool_new(3);
    cf_map_iter *it = map_buffered(ex, c, codes, 3, CF_FOREVER, 3);
    ctx_wait(c, &c->nstarted, 3);
    for (int i = 0; i < 3; i++)
        expect_int(it, i);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    it = map_buffered(ex, c, codes, 0, CF_FOREVER, 2);
    expect_stop(it);
    ASSERT_OK(cf_map_close(it));
    ASSERT_OK(cf_executor_free(ex));
    ctx_free(c);
}

/* ---- arguments --------------------------------------------------------- */

/* map.argument-checks: NULL executor, function or out, NULL args with items
 * to submit, and a NaN timeout are CF_EINVAL, and out is left alone. */
POOL_TEST(map_rejects_bad_arguments) {
    cf_value args[2] = {cf_int(1), cf_int(2)};
    cf_executor *ex = pool_new(1);
    cf_map_iter *it = not_written;
    ASSERT_STATUS(cf_map(NULL, task_return_arg, args, 2, 1, 0, 1, 0, &it),
                  CF_EINVAL);
    ASSERT_STATUS(cf_map(ex, NULL, args, 2, 1, 0, 1, 0, &it), CF_EINVAL);
    ASSERT_STATUS(cf_map(ex, task_return_arg, args, 2, 1, 0, 1, 0, NULL),
                  CF_EINVAL);
    ASSERT_STATUS(cf_map(ex, task_return_arg, NULL, 2, 1, 0, 1, 0, &it),
                  CF_EINVAL);
    ASSERT_STATUS(cf_map(ex, task_return_arg, args, 2, 1, NAN, 1, 0, &it),
                  CF_EINVAL);
    ASSERT_TRUE(it == not_written);
    ASSERT_OK(cf_executor_free(ex));
}

/* map.next-close-null: cf_map_next and cf_map_close of NULL are
 * CF_EINVAL. */
TEST(map_next_and_close_reject_null) {
    cf_value v = cf_none();
    ASSERT_STATUS(cf_map_next(NULL, &v, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_map_close(NULL), CF_EINVAL);
}
