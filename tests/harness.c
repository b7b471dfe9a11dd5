/* The test runner and its arena, gates, delays and checkers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* syscall, MAP_ANONYMOUS */
#endif

#include "harness.h"

#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
    const char *name;
    test_fn fn;
    bool pool;
} tests[MAX_TESTS];
static int ntests;
static bool on_process_pool, on_outside_pool;

void test_register(const char *name, test_fn fn, bool pool) {
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "harness: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    tests[ntests].pool = pool;
    ntests++;
}

bool test_process_pool(void) {
    return on_process_pool;
}

bool test_outside_pool(void) {
    return on_outside_pool;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    fflush(stdout);
    /* _exit: the library's exit handler would wait for workers that the
     * failed test left blocked on gates. */
    _exit(1);
}

static double env_scale(const char *name) {
    const char *s = getenv(name);
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

double test_short(void) {
    return 0.05 * env_scale("CF_TEST_DELAY_SCALE");
}
double test_long(void) {
    return 10.0 * env_scale("CF_TEST_DELAY_SCALE");
}

long test_repeats(long n) {
    long r = (long)((double)n * env_scale("CF_TEST_STRESS_SCALE"));
    return r < 1 ? 1 : r;
}

double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the arena --------------------------------------------------------- */

/* Atomics in shared memory work across processes only when lock-free. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int must be lock-free");

/* The arena is cut into blocks of whole slots; arena_len[i] is the length
 * in slots of the block starting at slot i (0: slot i starts no block).
 * Only the test process allocates, so a private lock guards the table. */
enum { ARENA_SLOT = 64, ARENA_SLOTS = 16384 };
static unsigned char *arena;
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned short arena_len[ARENA_SLOTS];
static bool arena_used[ARENA_SLOTS];

/* Maps the arena; before the test runs, hence before any fork. */
static void arena_map(void) {
    void *p = mmap(NULL, (size_t)ARENA_SLOT * ARENA_SLOTS,
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("harness: mmap of the arena");
        exit(2);
    }
    arena = p;
}

void *arena_alloc(size_t size) {
    size_t want = size ? (size + ARENA_SLOT - 1) / ARENA_SLOT : 1, run = 0;
    if (!arena)
        test_fail(__FILE__, __LINE__, "arena_alloc before the test runs");
    pthread_mutex_lock(&arena_lock);
    for (size_t i = 0; i < ARENA_SLOTS && want <= USHRT_MAX; i++) {
        run = arena_used[i] ? 0 : run + 1;
        if (run < want)
            continue;
        size_t first = i + 1 - want;
        memset(&arena_used[first], true, want);
        arena_len[first] = (unsigned short)want;
        pthread_mutex_unlock(&arena_lock);
        memset(arena + first * ARENA_SLOT, 0, want * ARENA_SLOT);
        return arena + first * ARENA_SLOT;
    }
    pthread_mutex_unlock(&arena_lock);
    test_fail(__FILE__, __LINE__, "the arena has no room for %zu octets",
              size);
}

/* The slot p starts, checked; fails the test for anything else. */
static size_t arena_slot(const void *p) {
    uintptr_t at = (uintptr_t)p, base = (uintptr_t)arena;
    if (!arena || at < base || (at - base) % ARENA_SLOT != 0 ||
        (at - base) / ARENA_SLOT >= ARENA_SLOTS)
        test_fail(__FILE__, __LINE__, "%p is not a block of the arena", p);
    return (at - base) / ARENA_SLOT;
}

void arena_free(void *p) {
    if (!p)
        return;
    size_t first = arena_slot(p);
    pthread_mutex_lock(&arena_lock);
    size_t n = arena_len[first];
    if (n == 0) {
        pthread_mutex_unlock(&arena_lock);
        test_fail(__FILE__, __LINE__, "arena_free of a block not allocated");
    }
    memset(&arena_used[first], false, n);
    arena_len[first] = 0;
    pthread_mutex_unlock(&arena_lock);
}

cf_value arena_value(const void *p) {
    return cf_int((int64_t)arena_slot(p));
}

void *arena_arg(const cf_call *call, size_t i) {
    const cf_value *v = cf_arg(call, i);
    if (v && v->type == CF_TYPE_NONE)
        return NULL;
    if (!v || v->type != CF_TYPE_INT || v->as.i < 0 || v->as.i >= ARENA_SLOTS)
        test_fail(__FILE__, __LINE__, "argument %zu is not an arena block", i);
    return arena + (size_t)v->as.i * ARENA_SLOT;
}

/* The process-shared (not FUTEX_PRIVATE) futex calls on a word of the
 * arena. A wait returns when woken, when *w != value, or after timeout
 * seconds (an hour at most), whichever comes first. */
static void futex_wait(atomic_int *w, int value, double timeout) {
    struct timespec ts;
    if (timeout > 3600)
        timeout = 3600;
    ts.tv_sec = (time_t)timeout;
    ts.tv_nsec = (long)((timeout - (double)ts.tv_sec) * 1e9);
    syscall(SYS_futex, w, FUTEX_WAIT, value, &ts, NULL, 0);
}

static void futex_wake_all(atomic_int *w) {
    syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void shared_add(atomic_int *n, int d) {
    atomic_fetch_add_explicit(n, d, memory_order_acq_rel);
    futex_wake_all(n);
}

bool shared_wait_for(atomic_int *n, int want, double timeout) {
    double deadline = test_now() + timeout;
    for (;;) {
        int v = atomic_load_explicit(n, memory_order_acquire);
        double left = deadline - test_now();
        if (v >= want)
            return true;
        if (left <= 0)
            return false;
        futex_wait(n, v, left);
    }
}

void shared_wait_(const char *file, int line, atomic_int *n, int want,
                  const char *what) {
    if (!shared_wait_for(n, want, LONG))
        test_fail(file, line, "%d %s, want %d", atomic_load(n), what, want);
}

/* ---- gates -------------------------------------------------------------- */

void gate_init(gate *g) {
    g->open = arena_alloc(sizeof *g->open);
}

void gate_open(gate *g) {
    atomic_store_explicit(g->open, 1, memory_order_release);
    futex_wake_all(g->open);
}

void gate_wait(gate *g) {
    if (!gate_wait_for(g, LONG))
        test_fail(__FILE__, __LINE__, "gate not opened within LONG");
}

bool gate_wait_for(gate *g, double timeout) {
    return shared_wait_for(g->open, 1, timeout);
}

bool gate_is_open(gate *g) {
    return atomic_load_explicit(g->open, memory_order_acquire) != 0;
}

void gate_destroy(gate *g) {
    arena_free(g->open);
    g->open = NULL;
}

cf_value gate_value(const gate *g) {
    return arena_value(g->open);
}

bool gate_arg(const cf_call *call, size_t i, gate *out) {
    out->open = arena_arg(call, i);
    return out->open != NULL;
}

/* Waits on c, with m locked, for a millisecond at most. */
void cond_wait_a_little(pthread_cond_t *c, pthread_mutex_t *m) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(c, m, &ts);
}

void wait_count_(const char *file, int line, pthread_mutex_t *m,
                 pthread_cond_t *c, const long *count, long n,
                 const char *what) {
    double deadline = test_now() + LONG;
    pthread_mutex_lock(m);
    while (*count < n) {
        if (test_now() > deadline)
            test_fail(file, line, "%ld %s, want %ld", *count, what, n);
        cond_wait_a_little(c, m);
    }
    pthread_mutex_unlock(m);
}

void let_time_pass(double t0, double seconds) {
    while (test_now() - t0 < seconds)
        sched_yield();
}

void task_return_arg(cf_call *call) {
    cf_value v = cf_none();
    if (cf_nargs(call) > 0 && cf_value_copy(&v, cf_arg(call, 0)) != CF_OK)
        test_fail(__FILE__, __LINE__, "task_return_arg: copy failed");
    cf_return(call, v);
}

void task_gate_return(cf_call *call) {
    gate started, proceed;
    cf_value v = cf_none();
    if (gate_arg(call, 0, &started))
        gate_open(&started);
    if (gate_arg(call, 1, &proceed))
        gate_wait(&proceed);
    if (cf_arg(call, 2) && cf_value_copy(&v, cf_arg(call, 2)) != CF_OK)
        test_fail(__FILE__, __LINE__, "task_gate_return: copy failed");
    cf_return(call, v);
}

void task_raise(cf_call *call) {
    const cf_value *type = cf_arg(call, 0), *msg = cf_arg(call, 1);
    if (!type || type->type != CF_TYPE_STR || !msg || msg->type != CF_TYPE_STR)
        test_fail(__FILE__, __LINE__, "task_raise: wants (str, str)");
    cf_raise(call, type->as.buf.data, "%s", msg->as.buf.data);
}

static void confuse(const char *file, int line, cf_future *f) {
    cf_value seven = cf_int(7);
    if (cf_future_set_result(f, &seven) != CF_INVALID_STATE ||
        cf_future_set_exception(f, "ValueError", "x") != CF_INVALID_STATE ||
        cf_future_set_running_or_notify_cancel(f) != CF_INVALID_STATE)
        test_fail(file, line, "a done future accepted a second outcome");
}

static void check_flags(const char *file, int line, cf_future *f, bool running,
                        bool cancelled, bool done) {
    if (cf_future_running(f) != running ||
        cf_future_cancelled(f) != cancelled || cf_future_done(f) != done)
        test_fail(file, line,
                  "running/cancelled/done = %d/%d/%d, want %d/%d/%d",
                  cf_future_running(f), cf_future_cancelled(f),
                  cf_future_done(f), running, cancelled, done);
}

static void check_not_done(const char *file, int line, cf_future *f) {
    const cf_error *e = NULL;
    cf_status s = cf_future_result(f, 0, NULL);
    if (s != CF_TIMEOUT)
        test_fail(file, line, "result(0) = %s, want CF_TIMEOUT",
                  cf_status_name(s));
    s = cf_future_exception(f, 0, &e);
    if (s != CF_TIMEOUT)
        test_fail(file, line, "exception(0) = %s, want CF_TIMEOUT",
                  cf_status_name(s));
}

void check_pending_(const char *file, int line, cf_future *f) {
    check_flags(file, line, f, false, false, false);
    check_not_done(file, line, f);
}

void check_running_(const char *file, int line, cf_future *f) {
    check_flags(file, line, f, true, false, false);
    check_not_done(file, line, f);
}

void check_value_(const char *file, int line, cf_future *f,
                  const cf_value *want) {
    double timeouts[] = {0, CF_FOREVER};
    check_flags(file, line, f, false, false, true);
    for (int i = 0; i < 2; i++) {
        cf_value got = cf_none();
        const cf_error *e = (const cf_error *)1;
        cf_status s = cf_future_result(f, timeouts[i], &got);
        if (s != CF_OK || !cf_value_equal(&got, want))
            test_fail(file, line, "result(%g) = %s or a wrong value",
                      timeouts[i], cf_status_name(s));
        cf_value_free(&got);
        s = cf_future_exception(f, timeouts[i], &e);
        if (s != CF_OK || e != NULL)
            test_fail(file, line, "exception(%g) = %s, error %p", timeouts[i],
                      cf_status_name(s), (const void *)e);
    }
    confuse(file, line, f);
    check_flags(file, line, f, false, false, true);
}

void check_int_soon_(const char *file, int line, cf_future *f, int64_t want) {
    cf_value v = cf_none(), w = cf_int(want);
    double t0 = test_now();
    cf_status s = cf_future_result(f, LONG, &v);
    double took = test_now() - t0;
    if (s != CF_OK)
        test_fail(file, line, "result(LONG) = %s, want CF_OK",
                  cf_status_name(s));
    if (took >= LONG / 2)
        test_fail(file, line, "result took %.3fs, LONG / 2 or more", took);
    if (v.type != CF_TYPE_INT || v.as.i != want)
        test_fail(file, line, "result type %d value %lld, want int %lld",
                  (int)v.type, (long long)v.as.i, (long long)want);
    check_value_(file, line, f, &w);
}

void check_error_(const char *file, int line, const cf_error *e,
                  cf_status status, const char *type, const char *message) {
    const char *got_type, *got_message;
    if (e == NULL)
        test_fail(file, line, "no error, want %s", type);
    got_type = cf_error_type(e);
    got_message = cf_error_message(e);
    if (got_type == NULL || got_message == NULL)
        test_fail(file, line, "an error accessor gave NULL");
    if (strcmp(got_type, type) != 0 ||
        (message && strcmp(got_message, message) != 0) ||
        cf_error_status(e) != status)
        test_fail(file, line, "error %s(\"%s\") %s, want %s(\"%s\") %s",
                  got_type, got_message, cf_status_name(cf_error_status(e)),
                  type, message ? message : "*", cf_status_name(status));
}

void check_cancelled_(const char *file, int line, cf_future *f) {
    double timeouts[] = {0, CF_FOREVER};
    check_flags(file, line, f, false, true, true);
    for (int i = 0; i < 2; i++) {
        const cf_error *e = NULL;
        cf_status s = cf_future_result(f, timeouts[i], NULL);
        if (s != CF_CANCELLED)
            test_fail(file, line, "result(%g) = %s, want CF_CANCELLED",
                      timeouts[i], cf_status_name(s));
        s = cf_future_exception(f, timeouts[i], &e);
        if (s != CF_CANCELLED)
            test_fail(file, line, "exception(%g) = %s, want CF_CANCELLED",
                      timeouts[i], cf_status_name(s));
    }
    if (!cf_future_cancel(f))
        test_fail(file, line, "cancel() of a cancelled future is false");
    cf_value seven = cf_int(7);
    if (cf_future_set_result(f, &seven) != CF_INVALID_STATE ||
        cf_future_set_exception(f, "ValueError", "x") != CF_INVALID_STATE)
        test_fail(file, line, "a cancelled future accepted an outcome");
    check_flags(file, line, f, false, true, true);
}

void check_raised_(const char *file, int line, cf_future *f, cf_status status,
                   const char *type, const char *message) {
    double timeouts[] = {0, CF_FOREVER};
    check_flags(file, line, f, false, false, true);
    for (int i = 0; i < 2; i++) {
        const cf_error *e = NULL;
        cf_status s = cf_future_result(f, timeouts[i], NULL);
        if (s != status)
            test_fail(file, line, "result(%g) = %s, want %s", timeouts[i],
                      cf_status_name(s), cf_status_name(status));
        s = cf_future_exception(f, timeouts[i], &e);
        if (s != CF_OK || e == NULL)
            test_fail(file, line, "exception(%g) = %s with no error",
                      timeouts[i], cf_status_name(s));
        check_error_(file, line, e, status, type, message);
    }
    confuse(file, line, f);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < ntests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr,
                "usage: %s TEST | --list\n"
                "Runs one test in this process; exit 0 on success.\n"
                "Environment: CF_TEST_DELAY_SCALE multiplies delays, "
                "CF_TEST_STRESS_SCALE repeat counts; CF_TEST_POOL=process "
                "runs a POOL_TEST on process pools, CF_TEST_POOL=outside on "
                "the outside executor (examples/small_pool_executor.c).\n",
                argv[0]);
        return argc == 2 ? 0 : 2;
    }
    const char *kind = getenv("CF_TEST_POOL");
    bool process = kind && strcmp(kind, "process") == 0;
    bool outside = kind && strcmp(kind, "outside") == 0;
    if (kind && !process && !outside && *kind && strcmp(kind, "thread") != 0) {
        fprintf(stderr,
                "%s: CF_TEST_POOL=%s: use thread, process or outside\n",
                argv[0], kind);
        return 2;
    }
    for (int i = 0; i < ntests; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            if ((process || outside) && !tests[i].pool) {
                fprintf(stderr, "%s: %s is not a POOL_TEST\n", argv[0],
                        argv[1]);
                return 2;
            }
            on_process_pool = process;
            on_outside_pool = outside;
            arena_map();
            tests[i].fn();
            return 0;
        }
    }
    fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
    return 2;
}
