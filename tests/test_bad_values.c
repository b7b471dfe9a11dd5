/*
 * Values that break the header's rules -- an unknown type, a STR that is
 * not valid UTF-8 or holds a NUL inside its length, BYTES or STR with NULL
 * data and a length -- made by hand and handed to a pool: cf_submit and
 * cf_map refuse them as arguments (CF_EINVAL) without disturbing the pool,
 * and a task that returns one raises TypeError, the same on both pools.
 * (The encoder that carries values to a worker refuses them too: see
 * test_ipc.c.)
 *
 * Hand-made buffers hold exactly their len octets, with no terminator, so
 * that the ASan build catches a read past them.
 */
#include "support.h"

/* The bad values a task returns, by number (the task's argument), and the
 * TypeError each gives. */
enum { BAD_TYPE, BAD_UTF8, BAD_NUL, BAD_STR_NO_DATA, BAD_BYTES_NO_DATA, NBAD };

static const char *const bad_messages[NBAD] = {
    "cf_return: a value of unknown type 42",
    "cf_return: a str that is not valid UTF-8",
    "cf_return: a str with a NUL inside",
    "cf_return: a str with a length but no data",
    "cf_return: bytes with a length but no data",
};

static cf_value bad_value(int64_t kind) {
    cf_value v = cf_none();
    switch (kind) {
    case BAD_TYPE:
        v.type = (cf_type)42;
        return v;
    case BAD_UTF8:
        return hand_made_buffer(CF_TYPE_STR, "ok \xf0\x9f", 5);
    case BAD_NUL:
        return hand_made_buffer(CF_TYPE_STR, "a\0b", 3);
    case BAD_STR_NO_DATA:
        return hand_made_buffer(CF_TYPE_STR, NULL, 3);
    default:
        return hand_made_buffer(CF_TYPE_BYTES, NULL, 5);
    }
}

/* arg0: int, which bad_value to return; arg1: arena int where the task
 * leaves cf_return's status + 1. */
static void task_return_bad(cf_call *call) {
    const cf_value *kind = cf_arg(call, 0);
    atomic_int *status = arena_arg(call, 1);
    if (!kind || kind->type != CF_TYPE_INT)
        test_fail(__FILE__, __LINE__, "task_return_bad: wants (int, int)");
    cf_status st = cf_return(call, bad_value(kind->as.i));
    atomic_store(status, (int)st + 1);
}

/* A call that is running on ex (max_workers >= 2) until the test opens
 * proceed, and returns 7. */
typedef struct running_call {
    gate started, proceed;
    cf_future *f;
} running_call;

static void running_call_start(running_call *r, cf_executor *ex) {
    gate_init(&r->started);
    gate_init(&r->proceed);
    r->f = submit_gated(ex, &r->started, &r->proceed, 7);
    gate_wait(&r->started);
}

/* Lets it finish, checks it returned 7 as if nothing had happened, and that
 * the pool still takes and runs a new call. */
static void running_call_finish(running_call *r, cf_executor *ex) {
    gate_open(&r->proceed);
    check_int_soon(r->f, 7);
    cf_future *next = submit_gated(ex, NULL, NULL, 8);
    check_int_soon(next, 8);
    release_all((cf_future *[]){r->f, next}, 2);
    gate_destroy(&r->started);
    gate_destroy(&r->proceed);
}

/* cf_submit refuses an argument that is a hand-made STR not valid UTF-8,
 * or one with a NUL inside its length, with CF_EINVAL (out unwritten),
 * while a call that runs on the same pool meanwhile completes normally
 * and the pool accepts new calls (a process pool used to send the str to
 * a worker, which could not decode it and exited, breaking the pool).
 * clause: submit.rejects-invalid-value */
POOL_TEST(submit_refuses_invalid_str_and_pool_goes_on) {
    cf_executor *ex = pool_new(2);
    running_call r;
    cf_value bad[] = {hand_made_buffer(CF_TYPE_STR, "caf\xc3", 4),
                      hand_made_buffer(CF_TYPE_STR, "a\0b", 3)};
    running_call_start(&r, ex);
    for (size_t k = 0; k < 2; k++) {
        cf_value args[2] = {cf_int(1), bad[k]};
        cf_future *f = NULL;
        ASSERT_STATUS(cf_submit(ex, task_return_arg, args, 2, &f), CF_EINVAL);
        ASSERT_NULL(f);
        ASSERT_TRUE(cf_future_running(r.f));
        cf_value_free(&bad[k]);
    }
    running_call_finish(&r, ex);
    ASSERT_OK(cf_executor_free(ex));
}

/* cf_map refuses items holding such a str with CF_EINVAL, item by item
 * (chunksize 1) or in chunks (2, on a process pool), and makes no
 * iterator; the running call and the pool are not disturbed.
 * clause: map.rejects-invalid-value */
POOL_TEST(map_refuses_invalid_str_and_pool_goes_on) {
    cf_executor *ex = pool_new(2);
    running_call r;
    cf_value items[2] = {cf_int(1), hand_made_buffer(CF_TYPE_STR, "\xff", 1)};
    running_call_start(&r, ex);
    for (size_t chunksize = 1; chunksize <= 2; chunksize++) {
        cf_map_iter *it = NULL;
        ASSERT_STATUS(cf_map(ex, task_return_arg, items, 2, 1, CF_FOREVER,
                             chunksize, 0, &it),
                      CF_EINVAL);
        ASSERT_NULL(it);
    }
    cf_value_free(&items[1]);
    running_call_finish(&r, ex);
    ASSERT_OK(cf_executor_free(ex));
}

/* Runs task_return_bad(kind) and checks that cf_return said CF_EINVAL and
 * the call raised TypeError with the kind's message. */
static void check_bad_return(cf_executor *ex, int kind) {
    atomic_int *status = arena_alloc(sizeof *status);
    cf_value args[2] = {cf_int(kind), arena_value(status)};
    cf_future *f = NULL;
    const cf_error *e = NULL;
    ASSERT_OK(cf_submit(ex, task_return_bad, args, 2, &f));
    ASSERT_STATUS(cf_future_result(f, LONG, NULL), CF_RAISED);
    ASSERT_OK(cf_future_exception(f, 0, &e));
    check_error(e, CF_RAISED, "TypeError", bad_messages[kind]);
    ASSERT_EQ(atomic_load(status), CF_EINVAL + 1);
    check_raised(f, CF_RAISED, "TypeError", bad_messages[kind]);
    ASSERT_OK(cf_future_release(f));
    arena_free(status);
}

/* A task that returns a value of unknown type: cf_return frees nothing it
 * cannot know, returns CF_EINVAL, and the call raises TypeError
 * "cf_return: a value of unknown type 42" -- the same on both pools (a
 * process pool used to say MemoryError, a thread pool to give CF_EINVAL
 * from result() with no error); the pool goes on.
 * clause: task.return.rejects-invalid-value */
POOL_TEST(return_of_unknown_type_raises_type_error) {
    cf_executor *ex = pool_new(1);
    check_bad_return(ex, BAD_TYPE);
    cf_future *next = submit_gated(ex, NULL, NULL, 9);
    check_int_soon(next, 9);
    ASSERT_OK(cf_future_release(next));
    ASSERT_OK(cf_executor_free(ex));
}

/* A task that returns a STR not valid UTF-8 or with a NUL inside, or BYTES
 * or STR with NULL data and a length: cf_return frees its buffer (the ASan
 * build checks for leaks), returns CF_EINVAL, and the call raises
 * TypeError naming the fault, on both pools; the pool goes on.
 * clause: task.return.rejects-invalid-value */
POOL_TEST(return_of_invalid_buffer_raises_type_error) {
    cf_executor *ex = pool_new(1);
    for (int kind = BAD_UTF8; kind < NBAD; kind++)
        check_bad_return(ex, kind);
    cf_future *next = submit_gated(ex, NULL, NULL, 9);
    check_int_soon(next, 9);
    ASSERT_OK(cf_future_release(next));
    ASSERT_OK(cf_executor_free(ex));
}
