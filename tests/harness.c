/* The test runner and the helpers every test file shares. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* gettid */
#endif

#include "harness.h"

#include <dirent.h>
#include <sched.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;

void test_register(const char *name, test_fn fn) {
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "harness: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
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

void gate_init(gate *g) {
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = false;
}

void gate_open(gate *g) {
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Waits on c, with m locked, for `ns` nanoseconds at most (below 1 s). */
static void cond_wait_ns(pthread_cond_t *c, pthread_mutex_t *m, long ns) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ns;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(c, m, &ts);
}

void cond_wait_a_little(pthread_cond_t *c, pthread_mutex_t *m) {
    cond_wait_ns(c, m, 1000 * 1000);
}

void gate_wait(gate *g) {
    double deadline = test_now() + LONG;
    pthread_mutex_lock(&g->lock);
    while (!g->open) {
        cond_wait_ns(&g->cond, &g->lock, 10 * 1000 * 1000);
        if (!g->open && test_now() > deadline)
            test_fail(__FILE__, __LINE__, "gate not opened within LONG");
    }
    pthread_mutex_unlock(&g->lock);
}

bool gate_wait_for(gate *g, double timeout) {
    double deadline = test_now() + timeout;
    pthread_mutex_lock(&g->lock);
    while (!g->open && test_now() < deadline)
        cond_wait_a_little(&g->cond, &g->lock);
    bool open = g->open;
    pthread_mutex_unlock(&g->lock);
    return open;
}

bool gate_is_open(gate *g) {
    pthread_mutex_lock(&g->lock);
    bool open = g->open;
    pthread_mutex_unlock(&g->lock);
    return open;
}

void gate_destroy(gate *g) {
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
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

int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    ASSERT_NOT_NULL(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

void wait_thread_count(int want) {
    double deadline = test_now() + LONG;
    int n;
    while ((n = count_threads()) != want) {
        if (test_now() > deadline)
            test_fail(__FILE__, __LINE__, "%d threads, want %d", n, want);
        sched_yield();
    }
}

/* Notes the kernel id of the thread it runs in. */
static void *note_tid(void *arg) {
    *(pid_t *)arg = gettid();
    return NULL;
}

void settle_runtime_threads(void) {
    pthread_t t;
    pid_t tid = 0;
    char path[64];
    double deadline = test_now() + LONG;
    ASSERT_EQ(pthread_create(&t, NULL, note_tid, &tid), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    while (access(path, F_OK) == 0) {
        if (test_now() > deadline)
            test_fail(__FILE__, __LINE__, "%s stays after the join", path);
        sched_yield();
    }
}

void task_return_arg(cf_call *call) {
    cf_value v = cf_none();
    if (cf_nargs(call) > 0 && cf_value_copy(&v, cf_arg(call, 0)) != CF_OK)
        test_fail(__FILE__, __LINE__, "task_return_arg: copy failed");
    cf_return(call, v);
}

static gate *gate_arg(cf_call *call, size_t i) {
    const cf_value *v = cf_arg(call, i);
    return v && v->type == CF_TYPE_PTR ? (gate *)v->as.ptr : NULL;
}

void task_gate_return(cf_call *call) {
    gate *started = gate_arg(call, 0), *proceed = gate_arg(call, 1);
    cf_value v = cf_none();
    if (started)
        gate_open(started);
    if (proceed)
        gate_wait(proceed);
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

static void *step_completer_main(void *arg) {
    step_completer *c = (step_completer *)arg;
    cf_value v = cf_int(1);
    for (size_t i = 0; i < c->nsteps; i++) {
        step *s = &c->steps[i];
        if (gate_wait_for(&c->returned, SHORT))
            test_fail(__FILE__, __LINE__, "the wait returned before step %zu",
                      i);
        switch (s->what) {
        case STEP_RESULT:
            ASSERT_OK(cf_future_set_result(s->future, &v));
            break;
        case STEP_EXCEPTION:
            ASSERT_OK(cf_future_set_exception(s->future, "KeyError", "k"));
            break;
        case STEP_CANCEL:
            ASSERT_TRUE(cf_future_cancel(s->future));
            break;
        case STEP_OPEN_GATE:
            gate_open(s->gate);
            break;
        }
    }
    return NULL;
}

void step_completer_start(step_completer *c) {
    gate_init(&c->returned);
    ASSERT_EQ(pthread_create(&c->thread, NULL, step_completer_main, c), 0);
}

void step_completer_join(step_completer *c) {
    gate_open(&c->returned);
    ASSERT_EQ(pthread_join(c->thread, NULL), 0);
    gate_destroy(&c->returned);
}

int run_count_get(run_count *c) {
    pthread_mutex_lock(&c->lock);
    int n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void task_count(cf_call *call) {
    run_count *c = (run_count *)cf_arg(call, 0)->as.ptr;
    pthread_mutex_lock(&c->lock);
    c->n++;
    pthread_mutex_unlock(&c->lock);
}

cf_status count_cb(cf_future *f, void *ctx) {
    counter *c = ctx;
    c->thread = pthread_self();
    c->future = f;
    atomic_fetch_add(&c->calls, 1);
    return CF_OK;
}

int calls_of(counter *c) {
    return atomic_load(&c->calls);
}

void init_fail(cf_call *call) {
    gate *go = gate_arg(call, 0);
    if (go)
        gate_wait(go);
    cf_raise(call, "ValueError", "initializer failed on purpose");
}

cf_executor *pool_with(const cf_thread_pool_options *o) {
    cf_executor *ex = NULL;
    ASSERT_OK(cf_thread_pool_new(o, &ex));
    ASSERT_NOT_NULL(ex);
    return ex;
}

cf_executor *pool_new(int max_workers) {
    cf_thread_pool_options o;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = max_workers;
    return pool_with(&o);
}

cf_executor *pool_with_initializer(int max_workers, cf_fn init,
                                   const cf_value *initargs,
                                   size_t ninitargs) {
    cf_thread_pool_options o;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = max_workers;
    o.initializer = init;
    o.initargs = initargs;
    o.ninitargs = ninitargs;
    return pool_with(&o);
}

cf_executor *failing_pool(int max_workers, gate *go) {
    cf_value initarg = cf_ptr(go);
    return pool_with_initializer(max_workers, init_fail, &initarg, 1);
}

cf_future *submit_gated_value(cf_executor *ex, gate *started, gate *proceed,
                              cf_value value) {
    cf_value args[3] = {started ? cf_ptr(started) : cf_none(),
                        proceed ? cf_ptr(proceed) : cf_none(), value};
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_gate_return, args, 3, &f));
    ASSERT_NOT_NULL(f);
    return f;
}

cf_future *submit_gated(cf_executor *ex, gate *started, gate *proceed,
                        int64_t value) {
    return submit_gated_value(ex, started, proceed, cf_int(value));
}

void busy_pool_start(busy_pool *b, int64_t value) {
    gate_init(&b->started);
    gate_init(&b->proceed);
    b->ex = pool_new(1);
    b->running = submit_gated(b->ex, &b->started, &b->proceed, value);
    gate_wait(&b->started);
}

void busy_pool_destroy(busy_pool *b) {
    gate_destroy(&b->started);
    gate_destroy(&b->proceed);
}

cf_future *pending_future(void) {
    cf_future *f = NULL;
    ASSERT_OK(cf_future_new(&f));
    ASSERT_NOT_NULL(f);
    return f;
}

cf_future *running_future(void) {
    cf_future *f = pending_future();
    ASSERT_OK(cf_future_set_running_or_notify_cancel(f));
    return f;
}

void finish_future(cf_future *f, int64_t value) {
    cf_value v = cf_int(value);
    ASSERT_OK(cf_future_set_result(f, &v));
}

cf_future *finished_future(int64_t value) {
    cf_future *f = pending_future();
    finish_future(f, value);
    return f;
}

void release_all(cf_future *const *fs, size_t n) {
    for (size_t i = 0; i < n; i++)
        ASSERT_OK(cf_future_release(fs[i]));
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
                "CF_TEST_STRESS_SCALE repeat counts.\n",
                argv[0]);
        return argc == 2 ? 0 : 2;
    }
    for (int i = 0; i < ntests; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            tests[i].fn();
            return 0;
        }
    }
    fprintf(stderr, "%s: no test named %s\n", argv[0], argv[1]);
    return 2;
}
