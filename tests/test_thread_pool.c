/*
 * The thread pool: cf_thread_pool_options_init, cf_thread_pool_new (its
 * argument checks and max_workers default), how many threads it starts and
 * when, thread names (cf_current_thread_name), and the initializer, including
 * one that fails and breaks the pool.
 *
 * Workers are counted by the distinct kernel thread ids (gettid) the tasks
 * see, and threads by the entries of /proc/self/task; tasks block on gates
 * so that the count is taken while every worker is busy. Nothing sleeps.
 *
 * What is not about threads -- how many workers run at once, idle-worker
 * reuse, the initializer -- holds for process pools too: those tests are
 * POOL_TESTs, recording in the arena (a worker process's gettid is its
 * pid). The others say why they are thread pool only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* sched_getaffinity, CPU_COUNT, gettid */
#endif

#include "support.h"

#include <sched.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Python's default worker count for this machine, by either reading of
 * "cpus": the CPUs this process may run on (Python 3.13's
 * process_cpu_count) and the CPUs online (3.8-3.12's cpu_count). */
static int default_workers_affinity(void) {
    cpu_set_t set;
    int cpus = 1;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    return cpus + 4 < 32 ? cpus + 4 : 32;
}

static int default_workers_online(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    return cpus + 4 < 32 ? (int)cpus + 4 : 32;
}

/* The most calls a recorder follows: 15 times the largest default pool. */
#define MAX_CALLS 512
#define MAX_NAME 40

/*
 * What task_record saw, in the arena so that calls in worker processes
 * record too: for each call (by its index), the kernel id of the thread that
 * ran it (gettid: a worker process's pid) and that thread's pool name.
 */
typedef struct recorder {
    atomic_int started;
    atomic_int tids[MAX_CALLS]; /* 0 until the call starts */
    char names[MAX_CALLS][MAX_NAME];
    gate proceed;  /* every recording task waits on it when asked to */
    int submitted; /* the test's own: calls submitted so far */
} recorder;

static recorder *recorder_new(void) {
    recorder *r = arena_alloc(sizeof *r);
    gate_init(&r->proceed);
    return r;
}

static void recorder_free(recorder *r) {
    gate_destroy(&r->proceed);
    arena_free(r);
}

/* Waits until n calls have started; LONG fails. */
static void recorder_wait_started(recorder *r, int n) {
    shared_wait(&r->started, n, "calls started");
}

/* Watches for SHORT that no more than n calls start. */
static void recorder_assert_no_more_than(recorder *r, int n) {
    if (shared_wait_for(&r->started, n + 1, SHORT))
        test_fail(__FILE__, __LINE__, "%d calls started, at most %d",
                  atomic_load(&r->started), n);
}

/* The distinct threads (kernel ids) that ran the calls started so far, into
 * ids (room for MAX_CALLS); returns how many. */
static size_t recorder_workers(recorder *r, int *ids) {
    size_t n = 0;
    for (int i = 0; i < r->submitted; i++) {
        int tid = atomic_load(&r->tids[i]);
        size_t k = 0;
        while (k < n && ids[k] != tid)
            k++;
        if (tid != 0 && k == n)
            ids[n++] = tid;
    }
    return n;
}

static bool has_worker(const int *ids, size_t n, int tid) {
    for (size_t k = 0; k < n; k++)
        if (ids[k] == tid)
            return true;
    return false;
}

static _Thread_local int initializer_runs_here;

/* arg0: recorder, arg1: the call's index, arg2: bool, true to wait on the
 * recorder's proceed gate. Records the call and its thread; returns how
 * many times the initializer ran in this thread. */
static void task_record(cf_call *call) {
    recorder *r = arena_arg(call, 0);
    int64_t i = cf_arg(call, 1)->as.i;
    bool block = cf_arg(call, 2)->as.b;
    const char *name = cf_current_thread_name();
    ASSERT_TRUE(i >= 0 && i < MAX_CALLS);
    snprintf(r->names[i], MAX_NAME, "%s", name ? name : "");
    atomic_store(&r->tids[i], (int)gettid());
    shared_add(&r->started, 1);
    if (block)
        gate_wait(&r->proceed);
    cf_return(call, cf_int(initializer_runs_here));
}

/* Submits n recording calls (blocked on the proceed gate if block). */
static cf_future **submit_recorded(cf_executor *ex, recorder *r, size_t n,
                                   bool block) {
    cf_future **fs = calloc(n, sizeof *fs);
    ASSERT_NOT_NULL(fs);
    ASSERT_LE(r->submitted + (int)n, MAX_CALLS);
    for (size_t i = 0; i < n; i++) {
        cf_value args[3] = {arena_value(r), cf_int(r->submitted++),
                            cf_bool(block)};
        ASSERT_OK(cf_submit(ex, task_record, args, 3, &fs[i]));
    }
    return fs;
}

/* Waits for n futures, checks each returned want, releases them. */
static void finish_all(cf_future **fs, size_t n, int64_t want) {
    for (size_t i = 0; i < n; i++) {
        cf_value v = cf_none();
        ASSERT_OK(cf_future_result(fs[i], LONG, &v));
        ASSERT_EQ(v.type, CF_TYPE_INT);
        ASSERT_EQ(v.as.i, want);
        ASSERT_OK(cf_future_release(fs[i]));
    }
    free(fs);
}

/*
 * Submits 15 * hi blocked calls and checks that the pool runs exactly one of
 * lo or hi of them at once (lo == hi for an exact count), on as many
 * distinct workers, and that every call runs on one of those workers.
 */
static void check_saturation(cf_executor *ex, int lo, int hi) {
    recorder *r = recorder_new();
    int ids[MAX_CALLS];
    size_t n = 15 * (size_t)hi;
    cf_future **fs = submit_recorded(ex, r, n, true);
    recorder_wait_started(r, lo);
    recorder_assert_no_more_than(r, hi);
    int running = atomic_load(&r->started);
    ASSERT_EQ(recorder_workers(r, ids), running);
    ASSERT_TRUE(running == lo || running == hi);
    gate_open(&r->proceed);
    finish_all(fs, n, 0);
    ASSERT_EQ(atomic_load(&r->started), n);
    ASSERT_EQ(recorder_workers(r, ids), running);
    ASSERT_OK(cf_executor_free(ex));
    recorder_free(r);
}

/* Returns the kernel id of the thread it runs on. */
static void task_thread_id(cf_call *call) {
    cf_return(call, cf_int(gettid()));
}

/* Returns the calling thread's cf_current_thread_name() (None if NULL). */
static void task_name(cf_call *call) {
    const char *name = cf_current_thread_name();
    cf_value v = cf_none();
    if (name)
        ASSERT_OK(cf_value_str(&v, name));
    cf_return(call, v);
}

/* Runs task_name on ex and gives the name (the caller frees it). */
static char *name_in(cf_executor *ex) {
    cf_future *f = NULL;
    cf_value v = cf_none();
    ASSERT_OK(cf_submit(ex, task_name, NULL, 0, &f));
    ASSERT_OK(cf_future_result(f, LONG, &v));
    ASSERT_EQ(v.type, CF_TYPE_STR);
    char *name = strdup(v.as.buf.data);
    ASSERT_NOT_NULL(name);
    cf_value_free(&v);
    ASSERT_OK(cf_future_release(f));
    return name;
}

/* Parses "ThreadPoolExecutor-<k>_<n>"; false if name has another form. */
static bool parse_default_name(const char *name, long *k, long *n) {
    const char *prefix = "ThreadPoolExecutor-";
    char *end;
    if (strncmp(name, prefix, strlen(prefix)) != 0)
        return false;
    name += strlen(prefix);
    if (*name < '0' || *name > '9')
        return false;
    *k = strtol(name, &end, 10);
    if (*end != '_' || end[1] < '0' || end[1] > '9')
        return false;
    *n = strtol(end + 1, &end, 10);
    return *end == '\0';
}

/* What the recording initializer saw, in the arena. */
typedef struct init_log {
    atomic_int calls;
    atomic_int bad_args;
    atomic_int tids[MAX_CALLS]; /* by call, the thread it ran in */
} init_log;

/* Initializer: arg0 init_log, arg1 int 42, arg2 str "init-arg". Counts its
 * calls and threads, and notes whether its arguments were right. */
static void init_record(cf_call *call) {
    init_log *l = arena_arg(call, 0);
    const cf_value *a1 = cf_arg(call, 1), *a2 = cf_arg(call, 2);
    bool ok = cf_nargs(call) == 3 && a1->type == CF_TYPE_INT &&
              a1->as.i == 42 && a2->type == CF_TYPE_STR &&
              strcmp(a2->as.buf.data, "init-arg") == 0;
    int k = atomic_fetch_add(&l->calls, 1);
    if (k < MAX_CALLS)
        atomic_store(&l->tids[k], (int)gettid());
    atomic_fetch_add(&l->bad_args, !ok);
    initializer_runs_here++;
}

/* The log lines the library sent to the hook. */
static struct {
    pthread_mutex_t lock;
    int critical;
    int error;
    char last[256];
} logs = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};

static void log_capture(cf_log_level level, const char *message, void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&logs.lock);
    if (level == CF_LOG_CRITICAL)
        logs.critical++;
    else
        logs.error++;
    snprintf(logs.last, sizeof logs.last, "%s", message ? message : "");
    pthread_mutex_unlock(&logs.lock);
}

#define BROKEN_MESSAGE                                                        \
    "A thread initializer failed, the thread pool is not usable anymore"
/* A process pool's: its worker exits with status 3 when the initializer
 * raises, and that death breaks the pool (as in Python). */
#define BROKEN_PROCESS_PREFIX                                                 \
    "A process in the process pool was terminated abruptly while the "        \
    "future was running or pending. (worker "
#define BROKEN_PROCESS_SUFFIX " exited with status 3)"

/* Checks f failed because its pool's initializer raised: BrokenThreadPool
 * with Python's message, or BrokenProcessPool for the worker's exit. */
static void check_broken_by_initializer(cf_future *f) {
    const cf_error *e = NULL;
    if (!test_process_pool()) {
        check_raised(f, CF_BROKEN, "BrokenThreadPool", BROKEN_MESSAGE);
        return;
    }
    check_raised(f, CF_BROKEN, "BrokenProcessPool", NULL);
    ASSERT_OK(cf_future_exception(f, 0, &e));
    const char *m = cf_error_message(e);
    size_t len = strlen(m), suffix = strlen(BROKEN_PROCESS_SUFFIX);
    if (strncmp(m, BROKEN_PROCESS_PREFIX, strlen(BROKEN_PROCESS_PREFIX)) ||
        len < suffix || strcmp(m + len - suffix, BROKEN_PROCESS_SUFFIX))
        test_fail(__FILE__, __LINE__, "message \"%s\"", m);
}

static cf_executor *const not_written = (cf_executor *)&logs;

/* A pool broken by its failing initializer, with the log hook capturing:
 * the n task_count calls submitted before the failure all gave
 * CF_BROKEN. */
typedef struct broken_pool {
    gate go;
    run_count runs;
    cf_executor *ex;
    cf_future *fs[3];
    size_t n;
} broken_pool;

static void broken_pool_start(broken_pool *b, int max_workers, size_t n) {
    cf_value arg;
    ASSERT_LE(n, 3);
    b->n = n;
    gate_init(&b->go);
    run_count_init(&b->runs);
    arg = run_count_value(&b->runs);
    ASSERT_OK(cf_set_log_hook(log_capture, NULL));
    b->ex = failing_pool(max_workers, &b->go);
    for (size_t i = 0; i < n; i++)
        ASSERT_OK(cf_submit(b->ex, task_count, &arg, 1, &b->fs[i]));
    gate_open(&b->go);
    for (size_t i = 0; i < n; i++)
        ASSERT_STATUS(cf_future_result(b->fs[i], LONG, NULL), CF_BROKEN);
}

/* Releases the calls and frees the pool; none of the calls ever ran. */
static void broken_pool_free(broken_pool *b) {
    release_all(b->fs, b->n);
    ASSERT_OK(cf_executor_free(b->ex));
    ASSERT_EQ(run_count_get(&b->runs), 0);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    run_count_destroy(&b->runs);
    gate_destroy(&b->go);
}

/* ---- options and arguments --------------------------------------------- */

/* Thread pool only, all of them: they check cf_thread_pool_options_init and
 * cf_thread_pool_new themselves (test_process_pool.c checks the process
 * pool's). */

/* thread-pool.options-init.defaults: options_init gives CF_DEFAULT_WORKERS,
 * no prefix and no initializer, whatever the struct held before. */
TEST(thread_pool_options_init_gives_defaults) {
    cf_thread_pool_options o;
    memset(&o, 0xAB, sizeof o);
    ASSERT_OK(cf_thread_pool_options_init(&o));
    ASSERT_EQ(o.max_workers, CF_DEFAULT_WORKERS);
    ASSERT_NULL(o.thread_name_prefix);
    ASSERT_TRUE(o.initializer == NULL);
    ASSERT_NULL(o.initargs);
    ASSERT_EQ(o.ninitargs, 0);
}

/* thread-pool.options-init.null-is-einval: options_init(NULL) is CF_EINVAL. */
TEST(thread_pool_options_init_null_is_einval) {
    ASSERT_STATUS(cf_thread_pool_options_init(NULL), CF_EINVAL);
}

/* thread-pool.new.max-workers-zero-is-einval: max_workers 0 is rejected
 * (Python: ValueError "max_workers must be greater than 0") and out is left
 * alone. */
TEST(thread_pool_max_workers_zero_is_einval) {
    cf_thread_pool_options o;
    cf_executor *ex = not_written;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = 0;
    ASSERT_STATUS(cf_thread_pool_new(&o, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == not_written);
}

/* thread-pool.new.max-workers-negative-is-einval: max_workers -1 is
 * rejected and out is left alone. */
TEST(thread_pool_max_workers_negative_is_einval) {
    cf_thread_pool_options o;
    cf_executor *ex = not_written;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = -1;
    ASSERT_STATUS(cf_thread_pool_new(&o, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == not_written);
}

/* thread-pool.new.reserved-must-be-zero: options with a reserved slot set
 * (an option of a later version) are refused, out left alone; options_init
 * zeroes them. */
TEST(thread_pool_reserved_options_are_einval) {
    cf_thread_pool_options o;
    cf_executor *ex = not_written;
    memset(&o, 0xAB, sizeof o);
    ASSERT_OK(cf_thread_pool_options_init(&o));
    for (size_t i = 0; i < sizeof o.reserved / sizeof o.reserved[0]; i++)
        ASSERT_NULL(o.reserved[i]);
    o.reserved[0] = &o;
    ASSERT_STATUS(cf_thread_pool_new(&o, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == not_written);
}

/* thread-pool.new.null-out-is-einval: cf_thread_pool_new with out NULL is
 * CF_EINVAL. */
TEST(thread_pool_new_null_out_is_einval) {
    cf_thread_pool_options o;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    ASSERT_STATUS(cf_thread_pool_new(&o, NULL), CF_EINVAL);
    ASSERT_STATUS(cf_thread_pool_new(NULL, NULL), CF_EINVAL);
}

/* thread-pool.new.initargs-null-with-count-is-einval: initargs NULL with
 * ninitargs > 0 is CF_EINVAL and out is left alone. */
TEST(thread_pool_initargs_null_with_count_is_einval) {
    cf_thread_pool_options o;
    cf_executor *ex = not_written;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.initializer = init_record;
    o.initargs = NULL;
    o.ninitargs = 2;
    ASSERT_STATUS(cf_thread_pool_new(&o, &ex), CF_EINVAL);
    ASSERT_TRUE(ex == not_written);
}

/* ---- how many threads -------------------------------------------------- */

/* thread-pool.default-workers: CF_DEFAULT_WORKERS runs min(32, cpus + 4)
 * calls at once (cpus: the CPUs this process may use, or those online).
 * Thread pool only: a process pool's default is the CPU count. */
TEST(thread_pool_default_workers_is_min_32_cpus_plus_4) {
    int a = default_workers_affinity(), b = default_workers_online();
    check_saturation(pool_new(CF_DEFAULT_WORKERS), a < b ? a : b,
                     a < b ? b : a);
}

/* thread-pool.new.null-options-are-defaults: options NULL gives the default
 * worker count, min(32, cpus + 4).
 * Thread pool only: a process pool's default is the CPU count. */
TEST(thread_pool_null_options_give_default_workers) {
    int a = default_workers_affinity(), b = default_workers_online();
    check_saturation(pool_with(NULL), a < b ? a : b, a < b ? b : a);
}

/* thread-pool.saturation: 15 * max_workers blocked calls start exactly
 * max_workers threads (worker processes on a process pool). */
POOL_TEST(thread_pool_saturation_starts_exactly_max_workers) {
    check_saturation(pool_new(4), 4, 4);
}

/* thread-pool.saturation.one-worker: a pool of one runs one call at a time,
 * all on the same thread (or worker process). */
POOL_TEST(thread_pool_single_worker_runs_one_call_at_a_time) {
    check_saturation(pool_new(1), 1, 1);
}

/* thread-pool.idle-worker-reused: three sequential submit-then-result calls
 * run on one thread although the pool may start four. A process pool
 * reuses an idle worker process the same way (cfutures.h; Python since 3.9
 * for the fork server). */
POOL_TEST(thread_pool_idle_worker_reused) {
    cf_executor *ex = pool_new(4);
    cf_value ids[3];
    for (int i = 0; i < 3; i++) {
        cf_future *f = NULL;
        ASSERT_OK(cf_submit(ex, task_thread_id, NULL, 0, &f));
        ASSERT_OK(cf_future_result(f, LONG, &ids[i]));
        ASSERT_OK(cf_future_release(f));
    }
    ASSERT_TRUE(cf_value_equal(&ids[0], &ids[1]));
    ASSERT_TRUE(cf_value_equal(&ids[1], &ids[2]));
    ASSERT_OK(cf_executor_free(ex));
}

/* What a done callback saw when it waited for a call it submitted. */
typedef struct nested_wait {
    cf_executor *ex;
    cf_status status;
    gate finished;
} nested_wait;

/* Submits task_return_arg(6) to the same pool and waits for it. */
static cf_status submit_and_wait_cb(cf_future *done, void *ctx) {
    nested_wait *nw = ctx;
    cf_value six = cf_int(6);
    cf_future *g = NULL;
    (void)done;
    nw->status = cf_submit(nw->ex, task_return_arg, &six, 1, &g);
    if (nw->status == CF_OK) {
        nw->status = cf_future_result(g, LONG, NULL);
        cf_future_release(g);
    }
    gate_open(&nw->finished);
    return CF_OK;
}

/* thread-pool.idle-worker-reused: a worker running done callbacks is not
 * idle: a call a callback submits and waits for gets a thread of its own
 * (the pool may start two), instead of waiting for the callback forever.
 * Thread pool only: it is about callbacks running in the worker thread (a
 * process pool runs them in its manager thread). */
TEST(thread_pool_worker_in_callbacks_is_not_idle) {
    nested_wait nw;
    gate proceed;
    nw.ex = pool_new(2);
    nw.status = CF_EINVAL;
    gate_init(&nw.finished);
    gate_init(&proceed);
    cf_future *f = submit_gated(nw.ex, NULL, &proceed, 1);
    ASSERT_OK(cf_future_add_done_callback(f, submit_and_wait_cb, &nw));
    gate_open(&proceed);
    gate_wait(&nw.finished);
    ASSERT_STATUS(nw.status, CF_OK);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(nw.ex));
    gate_destroy(&proceed);
    gate_destroy(&nw.finished);
}

/* thread-pool.threads-start-lazily: a new pool starts no thread, and two
 * blocked calls on a pool of four start exactly two.
 * Thread pool only: it counts the threads of the process. */
TEST(thread_pool_threads_start_lazily) {
    settle_runtime_threads();
    int before = count_threads();
    cf_executor *ex = pool_new(4);
    recorder *r = recorder_new();
    int ids[MAX_CALLS];
    ASSERT_EQ(count_threads(), before);
    cf_future **fs = submit_recorded(ex, r, 2, true);
    recorder_wait_started(r, 2);
    ASSERT_EQ(count_threads(), before + 2);
    ASSERT_EQ(recorder_workers(r, ids), 2);
    gate_open(&r->proceed);
    finish_all(fs, 2, 0);
    ASSERT_OK(cf_executor_free(ex));
    recorder_free(r);
}

/* thread-pool.shutdown-wait-joins-workers: after shutdown with wait the
 * pool's threads have exited.
 * Thread pool only: it counts worker threads (test_process_pool.c checks
 * that a freed process pool leaves no process or thread). */
TEST(thread_pool_shutdown_wait_ends_worker_threads) {
    settle_runtime_threads();
    int before = count_threads();
    cf_executor *ex = pool_new(3);
    recorder *r = recorder_new();
    cf_future **fs = submit_recorded(ex, r, 3, true);
    recorder_wait_started(r, 3);
    ASSERT_EQ(count_threads(), before + 3);
    gate_open(&r->proceed);
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    wait_thread_count(before);
    finish_all(fs, 3, 0);
    ASSERT_OK(cf_executor_free(ex));
    recorder_free(r);
}

/* ---- thread names ------------------------------------------------------ */

/* Thread pool only, all of them: thread names and thread_name_prefix are the
 * thread pool's (ProcessPoolExecutor has neither). */

/* thread-pool.thread-names.prefix: with a prefix the workers are named
 * "<prefix>_0" .. "<prefix>_<max-1>", one name per thread. */
TEST(thread_pool_thread_names_use_prefix) {
    cf_thread_pool_options o;
    recorder *r = recorder_new();
    int ids[MAX_CALLS];
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = 5;
    o.thread_name_prefix = "SpecialPool";
    cf_executor *ex = pool_with(&o);
    cf_future **fs = submit_recorded(ex, r, 5, true);
    recorder_wait_started(r, 5); /* five calls at once: one per thread */
    gate_open(&r->proceed);
    finish_all(fs, 5, 0);
    ASSERT_EQ(recorder_workers(r, ids), 5);
    bool seen[5] = {false};
    for (size_t i = 0; i < 5; i++) {
        ASSERT_EQ(strncmp(r->names[i], "SpecialPool_", 12), 0);
        ASSERT_EQ(strlen(r->names[i]), 13);
        int n = r->names[i][12] - '0';
        ASSERT_TRUE(n >= 0 && n < 5);
        ASSERT_FALSE(seen[n]);
        seen[n] = true;
    }
    ASSERT_OK(cf_executor_free(ex));
    recorder_free(r);
}

/* thread-pool.thread-names.prefix-copied: the pool keeps its own copy of
 * the prefix. */
TEST(thread_pool_thread_name_prefix_is_copied) {
    cf_thread_pool_options o;
    char *prefix = strdup("CopiedPrefix");
    ASSERT_NOT_NULL(prefix);
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = 1;
    o.thread_name_prefix = prefix;
    cf_executor *ex = pool_with(&o);
    memset(prefix, 'X', strlen(prefix));
    free(prefix);
    char *name = name_in(ex);
    ASSERT_STREQ(name, "CopiedPrefix_0");
    free(name);
    ASSERT_OK(cf_executor_free(ex));
}

/* thread-pool.thread-names.default: without a prefix the first worker of
 * each pool is "ThreadPoolExecutor-<k>_0", k counting pools in the order
 * they were made. */
TEST(thread_pool_thread_names_default_prefix) {
    cf_thread_pool_options o;
    long k1, k2, n1, n2;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    cf_executor *first = pool_with(&o);
    cf_executor *second = pool_with(NULL);
    char *name2 = name_in(second), *name1 = name_in(first);
    if (!parse_default_name(name1, &k1, &n1) ||
        !parse_default_name(name2, &k2, &n2))
        test_fail(__FILE__, __LINE__, "names \"%s\", \"%s\"", name1, name2);
    ASSERT_EQ(n1, 0);
    ASSERT_EQ(n2, 0);
    ASSERT_EQ(k2, k1 + 1);
    free(name1);
    free(name2);
    ASSERT_OK(cf_executor_free(first));
    ASSERT_OK(cf_executor_free(second));
}

/* thread-pool.thread-names.empty-prefix-is-default: a prefix "" gives the
 * default "ThreadPoolExecutor-<k>_<n>" names. */
TEST(thread_pool_empty_prefix_gives_default_names) {
    cf_thread_pool_options o;
    long k, n;
    ASSERT_OK(cf_thread_pool_options_init(&o));
    o.max_workers = 2;
    o.thread_name_prefix = "";
    cf_executor *ex = pool_with(&o);
    char *name = name_in(ex);
    if (!parse_default_name(name, &k, &n))
        test_fail(__FILE__, __LINE__, "name \"%s\"", name);
    ASSERT_EQ(n, 0);
    free(name);
    ASSERT_OK(cf_executor_free(ex));
}

static void *name_in_plain_thread(void *arg) {
    *(const char **)arg = cf_current_thread_name();
    return NULL;
}

/* thread-pool.current-thread-name.null-outside-pools: the main thread and a
 * thread the program started itself have no pool name.
 * Thread pool only: thread names. */
TEST(thread_pool_current_thread_name_null_outside_workers) {
    const char *name = "unset";
    pthread_t t;
    ASSERT_NULL(cf_current_thread_name());
    cf_executor *ex = pool_new(1);
    char *worker = name_in(ex);
    free(worker);
    ASSERT_NULL(cf_current_thread_name());
    ASSERT_EQ(pthread_create(&t, NULL, name_in_plain_thread, &name), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_NULL(name);
    ASSERT_OK(cf_executor_free(ex));
}

/* ---- the initializer --------------------------------------------------- */

/* A pool of max_workers whose initializer is init_record with initargs
 * (l, 42, "init-arg"), filled in here; the caller frees initargs[2]. */
static cf_executor *recording_pool(int max_workers, init_log *l,
                                   cf_value initargs[3]) {
    initargs[0] = arena_value(l);
    initargs[1] = cf_int(42);
    ASSERT_OK(cf_value_str(&initargs[2], "init-arg"));
    return pool_with_initializer(max_workers, init_record, initargs, 3);
}

/* thread-pool.initializer.once-per-worker: the initializer runs once at the
 * start of each worker, with its initargs, before any call on it. */
POOL_TEST(thread_pool_initializer_runs_once_per_worker) {
    init_log *l = arena_alloc(sizeof *l);
    cf_value initargs[3];
    recorder *r = recorder_new();
    int ids[MAX_CALLS];
    cf_executor *ex = recording_pool(3, l, initargs);
    cf_future **fs = submit_recorded(ex, r, 3, true);
    recorder_wait_started(r, 3);
    gate_open(&r->proceed);
    finish_all(fs, 3, 1); /* each call saw one initializer run */
    fs = submit_recorded(ex, r, 9, false);
    finish_all(fs, 9, 1);
    ASSERT_OK(cf_executor_free(ex));
    size_t nworkers = recorder_workers(r, ids);
    ASSERT_EQ(nworkers, 3);
    ASSERT_EQ(atomic_load(&l->calls), 3);
    ASSERT_EQ(atomic_load(&l->bad_args), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_TRUE(has_worker(ids, nworkers, atomic_load(&l->tids[i])));
    cf_value_free(&initargs[2]);
    recorder_free(r);
    arena_free(l);
}

/* thread-pool.initializer.initargs-copied: the pool keeps its own copies of
 * initargs, so the caller may free them before any worker starts. */
POOL_TEST(thread_pool_initargs_are_copied) {
    init_log *l = arena_alloc(sizeof *l);
    cf_value initargs[3];
    cf_executor *ex = recording_pool(1, l, initargs);
    memset(initargs[2].as.buf.data, 'X', initargs[2].as.buf.len);
    cf_value_free(&initargs[2]);
    initargs[1] = cf_int(0);
    cf_future *f = submit_gated(ex, NULL, NULL, 1); /* starts the worker */
    check_int_soon(f, 1);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(atomic_load(&l->calls), 1);
    ASSERT_EQ(atomic_load(&l->bad_args), 0);
    arena_free(l);
}

/* thread-pool.initializer.failure-breaks-queued: when the initializer
 * raises, every queued call fails with CF_BROKEN, BrokenThreadPool("A thread
 * initializer failed, the thread pool is not usable anymore"), and never
 * runs. A process pool's calls get BrokenProcessPool, as in Python. */
POOL_TEST(thread_pool_failing_initializer_fails_queued_calls) {
    broken_pool b;
    broken_pool_start(&b, 2, 3);
    for (int i = 0; i < 3; i++)
        check_broken_by_initializer(b.fs[i]);
    broken_pool_free(&b);
}

/* thread-pool.initializer.failure-breaks-submit: once the initializer has
 * failed, cf_submit returns CF_BROKEN and schedules nothing. */
POOL_TEST(thread_pool_submit_after_initializer_failure_is_broken) {
    broken_pool b;
    cf_future *later = (cf_future *)&b;
    broken_pool_start(&b, 1, 1);
    cf_value arg = run_count_value(&b.runs);
    ASSERT_STATUS(cf_submit(b.ex, task_count, &arg, 1, &later), CF_BROKEN);
    ASSERT_TRUE(later == (cf_future *)&b);
    broken_pool_free(&b);
}

/* thread-pool.initializer.failure-logs-critical: a failing initializer is
 * logged once, at CF_LOG_CRITICAL, through the log hook. */
POOL_TEST(thread_pool_failing_initializer_logs_critical) {
    broken_pool b;
    broken_pool_start(&b, 1, 1);
    ASSERT_OK(cf_executor_shutdown(b.ex, true, false));
    pthread_mutex_lock(&logs.lock);
    ASSERT_EQ(logs.critical, 1);
    ASSERT_EQ(logs.error, 0);
    ASSERT_TRUE(logs.last[0] != '\0');
    pthread_mutex_unlock(&logs.lock);
    broken_pool_free(&b);
}

/* ---- a task or initializer that ends its thread (pthread_exit) ---------- */

/* Thread pool only, all of them: they are about a pool's worker threads,
 * and pthread_exit ends one. (A process pool's calls run in worker
 * processes, where a task ending its thread is a different matter.) Python's
 * analogue is a task raising SystemExit: its future gets the exception and
 * the pool goes on. */

#define EXIT_MESSAGE "the task called pthread_exit"

/* arg0: gate to open once started (or None), arg1: gate to wait on (or
 * None), arg2: a str, there to be freed with the work. Ends its thread. */
static void task_pthread_exit(cf_call *call) {
    gate started, proceed;
    if (gate_arg(call, 0, &started))
        gate_open(&started);
    if (gate_arg(call, 1, &proceed))
        gate_wait(&proceed);
    pthread_exit(NULL);
}

/* Submits task_pthread_exit(started, proceed, "..."); either gate may be
 * NULL. */
static cf_future *submit_exiting(cf_executor *ex, gate *started,
                                 gate *proceed) {
    cf_value args[3] = {started ? gate_value(started) : cf_none(),
                        proceed ? gate_value(proceed) : cf_none(), cf_none()};
    cf_future *f = NULL;
    ASSERT_OK(cf_value_str(&args[2], "an argument the work frees"));
    ASSERT_OK(cf_submit(ex, task_pthread_exit, args, 3, &f));
    ASSERT_NOT_NULL(f);
    cf_value_free(&args[2]);
    return f;
}

/* Waits (LONG at most) for f to fail because its task ended its thread,
 * then checks it. */
static void check_exited_soon(cf_future *f) {
    ASSERT_STATUS(cf_future_result(f, LONG, NULL), CF_RAISED);
    check_raised(f, CF_RAISED, "SystemExit", EXIT_MESSAGE);
}

/* thread-pool.task-exit.fails-future: on a pool of one, a task that calls
 * pthread_exit fails with CF_RAISED, SystemExit("the task called
 * pthread_exit"); the call queued behind it still runs (on a new worker),
 * so does a later submit, and cf_executor_free returns. */
TEST(thread_pool_task_pthread_exit_fails_its_future) {
    gate started, proceed;
    gate_init(&started);
    gate_init(&proceed);
    cf_executor *ex = pool_new(1);
    cf_future *exiting = submit_exiting(ex, &started, &proceed);
    gate_wait(&started);
    check_running(exiting);
    cf_future *queued = submit_gated(ex, NULL, NULL, 7);
    gate_open(&proceed);
    check_exited_soon(exiting);
    check_int_soon(queued, 7);
    cf_future *later = submit_gated(ex, NULL, NULL, 8);
    check_int_soon(later, 8);
    ASSERT_OK(cf_executor_free(ex));
    cf_future *fs[3] = {exiting, queued, later};
    release_all(fs, 3);
    gate_destroy(&started);
    gate_destroy(&proceed);
}

/* thread-pool.task-exit.callbacks-once: the done callbacks of a future
 * whose task called pthread_exit run exactly once each, with that future;
 * one added after it failed runs at once. */
TEST(thread_pool_task_pthread_exit_runs_callbacks_once) {
    gate started, proceed;
    counter c1 = {0}, c2 = {0}, c3 = {0};
    gate_init(&started);
    gate_init(&proceed);
    cf_executor *ex = pool_new(1);
    cf_future *f = submit_exiting(ex, &started, &proceed);
    gate_wait(&started);
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c1));
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c2));
    gate_open(&proceed);
    check_exited_soon(f);
    ASSERT_OK(cf_executor_free(ex)); /* joins the worker: its callbacks ran */
    ASSERT_EQ(calls_of(&c1), 1);
    ASSERT_EQ(calls_of(&c2), 1);
    ASSERT_TRUE(c1.future == f && c2.future == f);
    ASSERT_OK(cf_future_add_done_callback(f, count_cb, &c3));
    ASSERT_EQ(calls_of(&c3), 1);
    ASSERT_EQ(calls_of(&c1), 1);
    ASSERT_OK(cf_future_release(f));
    gate_destroy(&started);
    gate_destroy(&proceed);
}

/* thread-pool.task-exit.workers-replaced: a worker whose task ended it does
 * not count toward max_workers: on a pool of two, calls that exit and calls
 * that return, one after the other, all finish as they should, and then the
 * pool runs exactly two calls at once (no fewer, no more). */
TEST(thread_pool_task_pthread_exit_workers_are_replaced) {
    enum { N = 24 };
    cf_future *fs[N];
    cf_executor *ex = pool_new(2);
    for (int i = 0; i < N; i++)
        fs[i] = i % 3 ? submit_gated(ex, NULL, NULL, i)
                      : submit_exiting(ex, NULL, NULL);
    for (int i = 0; i < N; i++) {
        if (i % 3)
            check_int_soon(fs[i], i);
        else
            check_exited_soon(fs[i]);
    }
    release_all(fs, N);
    check_saturation(ex, 2, 2); /* frees ex */
}

/* thread-pool.task-exit.after-shutdown: a task that calls pthread_exit
 * after shutdown(wait=false) began still leaves its queued call to run, as
 * shutdown promises; cf_executor_free then returns. */
TEST(thread_pool_task_pthread_exit_after_shutdown_runs_queued) {
    gate started, proceed;
    gate_init(&started);
    gate_init(&proceed);
    cf_executor *ex = pool_new(1);
    cf_future *exiting = submit_exiting(ex, &started, &proceed);
    gate_wait(&started);
    cf_future *queued = submit_gated(ex, NULL, NULL, 5);
    ASSERT_OK(cf_executor_shutdown(ex, false, false));
    gate_open(&proceed);
    check_exited_soon(exiting);
    check_int_soon(queued, 5);
    ASSERT_OK(cf_executor_free(ex));
    cf_future *fs[2] = {exiting, queued};
    release_all(fs, 2);
    gate_destroy(&started);
    gate_destroy(&proceed);
}

/* An initializer: arg0 gate to wait on first (or None); then ends its
 * thread. */
static void init_pthread_exit(cf_call *call) {
    gate go;
    if (gate_arg(call, 0, &go))
        gate_wait(&go);
    pthread_exit(NULL);
}

/* thread-pool.initializer.pthread-exit-breaks: an initializer that calls
 * pthread_exit fails as one that raises: the pool breaks (queued calls and
 * later submits give CF_BROKEN, BrokenThreadPool), it logs once at
 * CF_LOG_CRITICAL naming SystemExit, no call runs, and cf_executor_free
 * returns. */
TEST(thread_pool_initializer_pthread_exit_breaks_pool) {
    gate go;
    run_count runs;
    cf_future *fs[3];
    gate_init(&go);
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs), initarg = gate_value(&go);
    ASSERT_OK(cf_set_log_hook(log_capture, NULL));
    cf_executor *ex = pool_with_initializer(1, init_pthread_exit, &initarg, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(cf_submit(ex, task_count, &arg, 1, &fs[i]));
    gate_open(&go);
    for (int i = 0; i < 3; i++)
        ASSERT_STATUS(cf_future_result(fs[i], LONG, NULL), CF_BROKEN);
    cf_future *later = (cf_future *)&go;
    ASSERT_STATUS(cf_submit(ex, task_count, &arg, 1, &later), CF_BROKEN);
    ASSERT_TRUE(later == (cf_future *)&go);
    /* The log, once the worker is joined and before the checkers run (they
     * provoke log lines of their own). */
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    pthread_mutex_lock(&logs.lock);
    ASSERT_EQ(logs.critical, 1);
    ASSERT_EQ(logs.error, 0);
    ASSERT_NOT_NULL(strstr(logs.last, "SystemExit"));
    pthread_mutex_unlock(&logs.lock);
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    for (int i = 0; i < 3; i++)
        check_raised(fs[i], CF_BROKEN, "BrokenThreadPool", BROKEN_MESSAGE);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    release_all(fs, 3);
    run_count_destroy(&runs);
    gate_destroy(&go);
}
