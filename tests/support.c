/* What several test files share beyond the harness; see support.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* gettid */
#endif

#include "support.h"

#include "small_pool_executor.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

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

void run_count_init(run_count *c) {
    c->n = arena_alloc(sizeof *c->n);
}

void run_count_destroy(run_count *c) {
    arena_free(c->n);
    c->n = NULL;
}

int run_count_get(const run_count *c) {
    return atomic_load(c->n);
}

cf_value run_count_value(const run_count *c) {
    return arena_value(c->n);
}

void task_count(cf_call *call) {
    shared_add(arena_arg(call, 0), 1);
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
    gate go;
    if (gate_arg(call, 0, &go))
        gate_wait(&go);
    cf_raise(call, "ValueError", "initializer failed on purpose");
}

cf_executor *pool_with(const cf_thread_pool_options *o) {
    cf_executor *ex = NULL;
    ASSERT_OK(cf_thread_pool_new(o, &ex));
    ASSERT_NOT_NULL(ex);
    return ex;
}

bool skipped_on_outside(const char *why) {
    if (!test_outside_pool())
        return false;
    fprintf(stderr, "skipped on the outside executor: %s\n", why);
    return true;
}

cf_executor *pool_with_initializer(int max_workers, cf_fn init,
                                   const cf_value *initargs,
                                   size_t ninitargs) {
    cf_executor *ex = NULL;
    if (test_outside_pool()) {
        if (init)
            test_fail(__FILE__, __LINE__,
                      "the outside executor has no initializer: skip the "
                      "test there (skipped_on_outside)");
        ASSERT_OK(small_pool_new(
            max_workers == CF_DEFAULT_WORKERS ? 4 : max_workers, &ex));
        return ex;
    }
    if (test_process_pool()) {
        cf_process_pool_options o;
        ASSERT_OK(cf_process_pool_options_init(&o));
        o.max_workers = max_workers;
        o.initializer = init;
        o.initargs = initargs;
        o.ninitargs = ninitargs;
        ASSERT_OK(cf_process_pool_new(&o, &ex));
        ASSERT_NOT_NULL(ex);
        return ex;
    }
    cf_thread_pool_options o;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = max_workers;
    o.initializer = init;
    o.initargs = initargs;
    o.ninitargs = ninitargs;
    return pool_with(&o);
}

cf_executor *pool_new(int max_workers) {
    return pool_with_initializer(max_workers, NULL, NULL, 0);
}

cf_executor *failing_pool(int max_workers, gate *go) {
    cf_value initarg = gate_value(go);
    return pool_with_initializer(max_workers, init_fail, &initarg, 1);
}

const char *broken_pool_type(void) {
    return test_process_pool() ? "BrokenProcessPool" : "BrokenThreadPool";
}

cf_future *submit_gated_value(cf_executor *ex, gate *started, gate *proceed,
                              cf_value value) {
    cf_value args[3] = {started ? gate_value(started) : cf_none(),
                        proceed ? gate_value(proceed) : cf_none(), value};
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

cf_value hand_made_buffer(cf_type type, const char *s, size_t len) {
    cf_value v = cf_none();
    v.type = type;
    v.as.buf.data = NULL;
    v.as.buf.len = len;
    if (s) {
        v.as.buf.data = malloc(len);
        if (!v.as.buf.data)
            test_fail(__FILE__, __LINE__, "out of memory");
        memcpy(v.as.buf.data, s, len);
    }
    return v;
}

/* ---- process pools ----------------------------------------------------- */

#define BROKEN_PREFIX                                                         \
    "A process in the process pool was terminated abruptly while the "        \
    "future was running or pending. ("

pid_t fork_dying_with_test(void) {
    pid_t test = getpid(), child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != test)
            _exit(1);
    }
    return child;
}

cf_executor *ppool(int max_workers, int max_tasks) {
    cf_process_pool_options o;
    cf_executor *ex = NULL;
    ASSERT_OK(cf_process_pool_options_init(&o));
    o.max_workers = max_workers;
    o.max_tasks_per_child = max_tasks;
    ASSERT_OK(cf_process_pool_new(&o, &ex));
    return ex;
}

int64_t run_int(cf_executor *ex, cf_fn fn, const cf_value *args,
                size_t nargs) {
    cf_future *f;
    cf_value v;
    ASSERT_OK(cf_submit(ex, fn, args, nargs, &f));
    ASSERT_OK(cf_future_result(f, LONG, &v));
    ASSERT_EQ(v.type, CF_TYPE_INT);
    ASSERT_OK(cf_future_release(f));
    return v.as.i;
}

void check_broken(cf_future *f, const char *detail) {
    const cf_error *e;
    ASSERT_STATUS(cf_future_result(f, LONG, NULL), CF_BROKEN);
    ASSERT_OK(cf_future_exception(f, 0, &e));
    check_error(e, CF_BROKEN, "BrokenProcessPool", NULL);
    const char *m = cf_error_message(e);
    ASSERT_TRUE(strncmp(m, BROKEN_PREFIX, strlen(BROKEN_PREFIX)) == 0);
    if (!strstr(m, detail))
        test_fail(__FILE__, __LINE__, "\"%s\" does not say \"%s\"", m, detail);
}

void check_task_breaks_pool(cf_fn task, const char *detail) {
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    cf_future *f, *g;
    ASSERT_OK(cf_submit(ex, task, NULL, 0, &f));
    check_broken(f, detail);
    ASSERT_STATUS(cf_submit(ex, task_getpid, NULL, 0, &g), CF_BROKEN);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_future_release(f));
}

void task_getpid(cf_call *call) {
    bool parent = cf_nargs(call) > 0 && cf_arg(call, 0)->as.b;
    cf_return(call, cf_int(parent ? getppid() : getpid()));
}

void task_kill_self(cf_call *call) {
    (void)call;
    raise(SIGKILL);
}
