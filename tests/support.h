/*
 * Helpers several test files share, on top of the harness: thread counting,
 * pools and hand-made futures set up for a test, a busy one-worker pool, a
 * thread that completes futures while the test waits, and counters of task
 * and callback calls. Each fails the test (as an ASSERT does) when the
 * library refuses what it asks.
 *
 * The pools (pool_new, pool_with_initializer, failing_pool, busy_pool_start)
 * are process pools when test_process_pool() says so, the outside executor
 * (examples/small_pool_executor.c) when test_outside_pool() does, else
 * thread pools; their tasks take gates and task counters as arena ints,
 * never pointers.
 */
#ifndef CF_TEST_SUPPORT_H
#define CF_TEST_SUPPORT_H

#include "harness.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Threads ----------------------------------------------------------- */

/*
 * Threads, counted as the entries of /proc/self/task. A thread that has
 * been joined can stay listed for a moment after pthread_join returns.
 */
int count_threads(void);
/* Waits until the process has `want` threads; LONG fails. */
void wait_thread_count(int want);
/* Starts and joins one thread, and waits until it has left /proc, so that
 * threads a runtime starts along with the first one (ThreadSanitizer's
 * background thread) exist before a test takes its baseline count. */
void settle_runtime_threads(void);

/* ---- Executors and futures made for a test ----------------------------- */

/* A thread pool with these options (NULL: the defaults), in a
 * process-pool run too. */
cf_executor *pool_with(const cf_thread_pool_options *o);
/* A pool of max_workers, the other options at their defaults (the outside
 * executor: max_workers threads, 4 for CF_DEFAULT_WORKERS). */
cf_executor *pool_new(int max_workers);
/* A pool of max_workers whose initializer is init(initargs); the outside
 * executor has none (init must be NULL: skip the test there). */
cf_executor *pool_with_initializer(int max_workers, cf_fn init,
                                   const cf_value *initargs, size_t ninitargs);
/* On the outside executor: says "skipped on the outside executor: <why>"
 * and returns true, for the test to return; false anywhere else. */
bool skipped_on_outside(const char *why);
/* An initializer: arg0 gate to wait on first (or None); then raises
 * ValueError. */
void init_fail(cf_call *call);
/* A pool of max_workers whose initializer (init_fail) waits for go to open,
 * then raises: the pool breaks. */
cf_executor *failing_pool(int max_workers, gate *go);
/* The error type of the calls of a broken pool of this run's kind:
 * "BrokenThreadPool" or "BrokenProcessPool". */
const char *broken_pool_type(void);

/* Submits task_gate_return(started, proceed, value); either gate may be
 * NULL. */
cf_future *submit_gated_value(cf_executor *ex, gate *started, gate *proceed,
                              cf_value value);
/* The same with an int value. */
cf_future *submit_gated(cf_executor *ex, gate *started, gate *proceed,
                        int64_t value);

/*
 * A pool of one worker kept busy: `running` is task_gate_return(started,
 * proceed, value) and has started; it runs until the test opens proceed,
 * and whatever is submitted meanwhile stays queued.
 */
typedef struct busy_pool {
    cf_executor *ex;
    gate started, proceed;
    cf_future *running;
} busy_pool;

void busy_pool_start(busy_pool *b, int64_t value);
/* Destroys the gates, once the test has opened proceed and freed ex (it
 * releases `running` itself). */
void busy_pool_destroy(busy_pool *b);

/* Hand-made futures (cf_future_new): pending, running, or finished with an
 * int. */
cf_future *pending_future(void);
cf_future *running_future(void);
cf_future *finished_future(int64_t value);
/* set_result(f, int value), which must succeed. */
void finish_future(cf_future *f, int64_t value);
/* Releases fs[0..n), each of which must succeed. */
void release_all(cf_future *const *fs, size_t n);

/* A hand-made BYTES or STR that may break the header's rules, owning a
 * malloc'd copy of exactly len octets of s, with no terminator (none when
 * s is NULL: data is then NULL), so that the ASan build catches a read
 * past it. cf_value_free frees it. */
cf_value hand_made_buffer(cf_type type, const char *s, size_t len);

/* ---- Process pools ------------------------------------------------------ */

/* fork() for a child that dies with the test (PR_SET_PDEATHSIG), should the
 * test fail first: 0 in the child, its pid in the test. */
pid_t fork_dying_with_test(void);

/* A process pool of max_workers (CF_DEFAULT_WORKERS allowed) with this
 * max_tasks_per_child (CF_UNLIMITED_TASKS allowed). */
cf_executor *ppool(int max_workers, int max_tasks);
/* Submits fn(args) and gives the int it returns within LONG. */
int64_t run_int(cf_executor *ex, cf_fn fn, const cf_value *args, size_t nargs);
/* Checks f fails, within LONG, as a broken process pool whose message (the
 * Python one, then the detail in parentheses) contains detail. */
void check_broken(cf_future *f, const char *detail);
/* Runs task on a process pool of one: the call fails as a broken pool
 * whose detail contains detail, later submits are refused with
 * CF_BROKEN, and free returns. */
void check_task_breaks_pool(cf_fn task, const char *detail);
/* Returns the worker's pid (arg0 false or absent) or its parent's, the
 * fork server's (true). */
void task_getpid(cf_call *call);
/* Kills its own worker with SIGKILL. */
void task_kill_self(cf_call *call);

/* ---- A thread that completes futures while the test waits -------------- */

/*
 * A step completer: a thread that completes hand-made futures (or opens
 * gates) one step at a time while the test thread waits on them. Before
 * each step it checks for SHORT that the wait has not returned (`returned`
 * still closed), so a wait that returns too early fails the test.
 */
typedef enum step_action {
    STEP_RESULT,    /* set_result(int 1) */
    STEP_EXCEPTION, /* set_exception(KeyError("k")) */
    STEP_CANCEL,    /* cancel(), which must return true */
    STEP_OPEN_GATE  /* gate_open(gate) */
} step_action;

typedef struct step {
    step_action what;
    cf_future *future;
    gate *gate;
} step;

typedef struct step_completer {
    pthread_t thread;
    gate returned;
    step steps[4];
    size_t nsteps;
} step_completer;

/* Starts the thread on c's steps; the test thread then waits. */
void step_completer_start(step_completer *c);
/* Once the wait returned: opens `returned` and joins the thread. */
void step_completer_join(step_completer *c);

/* ---- Counters ---------------------------------------------------------- */

/* A count of task calls, in the arena so that tasks in worker processes
 * count too (task_count bumps it). */
typedef struct run_count {
    atomic_int *n;
} run_count;

void run_count_init(run_count *c);
void run_count_destroy(run_count *c);
int run_count_get(const run_count *c);
/* The count as a task's argument. */
cf_value run_count_value(const run_count *c);
/* A task: arg0 run_count_value; counts the call and returns nothing. */
void task_count(cf_call *call);

/* A done callback (count_cb, ctx a counter*) that counts its calls and
 * remembers the thread and the future of the last one. Callbacks run in
 * the test process whatever the pool, so this one stays in its memory. */
typedef struct counter {
    atomic_int calls;
    pthread_t thread;
    cf_future *future;
} counter;

cf_status count_cb(cf_future *f, void *ctx);
int calls_of(counter *c);

#endif
