/*
 * The test harness: one TEST(name) per behaviour, each run in its own
 * process by CTest (the runner takes the test name as its argument; CMake
 * finds the names by reading the TEST(...) and POOL_TEST(...) lines).
 * ASSERTs print the file, the line, the expression and both values, then
 * exit with status 1; a failure in a worker thread ends the whole test
 * process the same way (in a worker process, it ends that process, which
 * breaks its pool).
 *
 * Pools: POOL_TEST(name) declares a test that CMake registers twice, as
 * <area>.<name> on a thread pool and <area>.<name>.process on a process pool
 * (CF_TEST_POOL=process in its environment), and in the areas an executor
 * written outside the library applies to, a third time as
 * <area>.<name>.outside on examples/small_pool_executor.c
 * (CF_TEST_POOL=outside); test_process_pool() and test_outside_pool() say
 * which this run is. A plain TEST always gets thread pools.
 *
 * The arena: one shared mapping made before the test runs, so that every
 * process forked afterwards -- a process pool's fork server and workers, a
 * child the test forks itself -- sees the same memory at the same address.
 * Gates and the counters that tasks bump live there, as atomics only (no
 * pthread object: a killed worker cannot leave one locked); a task gets one
 * as an int (arena_value, gate_value) and finds it again with arena_arg or
 * gate_arg. Only the test process allocates from it.
 *
 * Delays: SHORT is the "does not complete within" window; LONG only bounds a
 * wait that must succeed, so reaching it fails instead of hanging. Both are
 * multiplied by CF_TEST_DELAY_SCALE (sanitizer builds set it).
 */
#ifndef CF_TEST_HARNESS_H
#define CF_TEST_HARNESS_H

#include "cfutures.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
/* pool: declared with POOL_TEST, so it may run on a process pool. */
void test_register(const char *name, test_fn fn, bool pool);

#define TEST_(name, pool)                                                     \
    static void test_##name(void);                                            \
    __attribute__((constructor)) static void register_##name(void) {          \
        test_register(#name, test_##name, pool);                              \
    }                                                                         \
    static void test_##name(void)

#define TEST(name) TEST_(name, false)
#define POOL_TEST(name) TEST_(name, true)

/* True when this run of a POOL_TEST is its process-pool one. */
bool test_process_pool(void);
/* True when this run of a POOL_TEST is on the outside executor. */
bool test_outside_pool(void);

_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
    CF_PRINTF(3, 4);

#define ASSERT_TRUE(expr)                                                     \
    do {                                                                      \
        if (!(expr))                                                          \
            test_fail(__FILE__, __LINE__, "expected true: %s", #expr);        \
    } while (0)

#define ASSERT_FALSE(expr)                                                    \
    do {                                                                      \
        if (expr)                                                             \
            test_fail(__FILE__, __LINE__, "expected false: %s", #expr);       \
    } while (0)

#define ASSERT_OP(a, op, b)                                                   \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ op b_))                                                      \
            test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op,  \
                      #b, a_, b_);                                            \
    } while (0)

/* Integer comparisons (both sides are converted to long long). */
#define ASSERT_EQ(a, b) ASSERT_OP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_OP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_OP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_OP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_OP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_OP(a, >=, b)

/* Comparisons of doubles, e.g. elapsed seconds against SHORT. */
#define ASSERT_DBL_OP(a, op, b)                                               \
    do {                                                                      \
        double a_ = (a), b_ = (b);                                            \
        if (!(a_ op b_))                                                      \
            test_fail(__FILE__, __LINE__, "%s %s %s: %g vs %g", #a, #op, #b,  \
                      a_, b_);                                                \
    } while (0)

#define ASSERT_STATUS(expr, want)                                             \
    do {                                                                      \
        cf_status got_ = (expr), want_ = (want);                              \
        if (got_ != want_)                                                    \
            test_fail(__FILE__, __LINE__, "%s: got %s, want %s", #expr,       \
                      cf_status_name(got_), cf_status_name(want_));           \
    } while (0)

#define ASSERT_OK(expr) ASSERT_STATUS(expr, CF_OK)

#define ASSERT_STREQ(a, b)                                                    \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                  \
            test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a,   \
                      #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");            \
    } while (0)

#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)

/* Delays in seconds, scaled by CF_TEST_DELAY_SCALE. */
double test_short(void);
double test_long(void);
#define SHORT test_short()
#define LONG test_long()

/* Seconds on CLOCK_MONOTONIC. */
double test_now(void);

/* A repeat count scaled by CF_TEST_STRESS_SCALE (sanitizer builds lower it),
 * never below 1. */
long test_repeats(long n);

/* ---- The arena ---------------------------------------------------------- */

/* size zeroed octets in the arena (aligned for any atomic); a full arena
 * fails the test. */
void *arena_alloc(size_t size);
/* Gives back what arena_alloc gave; NULL is ignored. */
void arena_free(void *p);
/* p, which is in the arena, as the int a task receives. */
cf_value arena_value(const void *p);
/* The arena memory a task got as arena_value in argument i; NULL if that
 * argument is None. Anything else fails the test. */
void *arena_arg(const cf_call *call, size_t i);

/* Adds d to *n, which is in the arena, and wakes whoever waits on it. */
void shared_add(atomic_int *n, int d);
/* Waits up to timeout seconds until *n (in the arena, bumped with
 * shared_add) reaches want; true if it did. */
bool shared_wait_for(atomic_int *n, int want, double timeout);
/* The same for LONG, failing the test with "<*n> <what>, want <want>". */
void shared_wait_(const char *file, int line, atomic_int *n, int want,
                  const char *what);
#define shared_wait(n, want, what)                                            \
    shared_wait_(__FILE__, __LINE__, n, want, what)

/*
 * A gate: tasks block on it until the test opens it. Waiting longer than
 * LONG fails the test instead of hanging. Its flag is in the arena, so tasks
 * in worker processes can wait on it or open it too: pass gate_value(&g).
 */
typedef struct gate {
    atomic_int *open;
} gate;

void gate_init(gate *g);
void gate_open(gate *g);
void gate_wait(gate *g);
/* Waits up to timeout seconds for g to open; true if it did. Reaching the
 * timeout is an answer, not a failure. */
bool gate_wait_for(gate *g, double timeout);
bool gate_is_open(gate *g);
void gate_destroy(gate *g);
/* The gate as a task's argument. */
cf_value gate_value(const gate *g);
/* The gate a task got as gate_value in argument i; false if that argument
 * is None (no gate). */
bool gate_arg(const cf_call *call, size_t i, gate *out);

/* Waits on c, with m locked, for a millisecond at most: the caller re-checks
 * its condition and its own deadline. */
void cond_wait_a_little(pthread_cond_t *c, pthread_mutex_t *m);

/*
 * Waits until *count, guarded by m and broadcast on c whenever it changes,
 * reaches n. Waiting longer than LONG fails the test, saying "<count> <what>,
 * want <n>".
 */
void wait_count_(const char *file, int line, pthread_mutex_t *m,
                 pthread_cond_t *c, const long *count, long n,
                 const char *what);
#define wait_count(m, c, count, n, what)                                      \
    wait_count_(__FILE__, __LINE__, m, c, count, n, what)

/* Spins (yielding the CPU) until `seconds` have passed since t0; no gate
 * can stand for the passing of time itself. */
void let_time_pass(double t0, double seconds);

/* Task functions shared by the tests. */

/* Returns a copy of its first argument (None without arguments). */
void task_return_arg(cf_call *call);
/* arg0: gate to open when started (or None), arg1: gate to wait on
 * (or None), arg2: value to return. */
void task_gate_return(cf_call *call);
/* arg0: str type, arg1: str message; raises it. */
void task_raise(cf_call *call);

/*
 * Checkers: each looks at every accessor at once, result() with both a zero
 * and a CF_FOREVER timeout where that cannot block, then tries to confuse a
 * done future: set_result / set_exception / set_running must return
 * CF_INVALID_STATE and change nothing.
 */
void check_pending_(const char *file, int line, cf_future *f);
void check_running_(const char *file, int line, cf_future *f);
void check_value_(const char *file, int line, cf_future *f,
                  const cf_value *want);
void check_cancelled_(const char *file, int line, cf_future *f);
void check_raised_(const char *file, int line, cf_future *f, cf_status status,
                   const char *type, const char *message);
/* Checks that f ends with the int want within LONG / 2, then check_value. */
void check_int_soon_(const char *file, int line, cf_future *f, int64_t want);
/* Checks e is an error of this type and status, and of this message unless
 * message is NULL. */
void check_error_(const char *file, int line, const cf_error *e,
                  cf_status status, const char *type, const char *message);
#define check_pending(f) check_pending_(__FILE__, __LINE__, f)
#define check_running(f) check_running_(__FILE__, __LINE__, f)
#define check_value(f, want) check_value_(__FILE__, __LINE__, f, want)
#define check_cancelled(f) check_cancelled_(__FILE__, __LINE__, f)
#define check_raised(f, status, type, message)                                \
    check_raised_(__FILE__, __LINE__, f, status, type, message)
#define check_int_soon(f, want) check_int_soon_(__FILE__, __LINE__, f, want)
#define check_error(e, status, type, message)                                 \
    check_error_(__FILE__, __LINE__, e, status, type, message)

#endif
