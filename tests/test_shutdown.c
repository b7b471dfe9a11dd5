/*
 * Shutdown: cf_executor_shutdown (wait, cancel_futures, twice),
 * cf_executor_free, submit after shutdown, and the wait at process exit.
 *
 * A "shutter" thread makes the shutdown (or free) call so that the test
 * thread can watch it block: the shutter opens `calling` just before the
 * call and `returned` right after it, noting which futures were done by
 * then. The process-exit tests fork(): the child makes its pools and exits,
 * the parent talks to it through pipes and gates and reads its exit status.
 * Every test that makes a pool is a POOL_TEST: shutdown is the same on both
 * pools.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Checks f ends with the int want (within LONG / 2), then releases it. */
#define check_int_and_release(f, want)                                        \
    do {                                                                      \
        check_int_soon(f, want);                                              \
        ASSERT_OK(cf_future_release(f));                                      \
    } while (0)

/* Which threads ran the done callbacks, in order. */
typedef struct cb_log {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long n;
    pthread_t threads[16];
} cb_log;

static void cb_log_init(cb_log *l) {
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
}

static void cb_log_destroy(cb_log *l) {
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
}

static cf_status cb_record(cf_future *f, void *ctx) {
    cb_log *l = (cb_log *)ctx;
    (void)f;
    pthread_mutex_lock(&l->lock);
    if (l->n < 16)
        l->threads[l->n] = pthread_self();
    l->n++;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return CF_OK;
}

/* Submits n task_count(runs) calls to ex into fs, each with cb_record(log)
 * as its done callback. */
static void submit_logged(cf_executor *ex, run_count *runs, cb_log *log,
                          cf_future **fs, int n) {
    cf_value arg = run_count_value(runs);
    for (int i = 0; i < n; i++) {
        ASSERT_OK(cf_submit(ex, task_count, &arg, 1, &fs[i]));
        ASSERT_OK(cf_future_add_done_callback(fs[i], cb_record, log));
    }
}

/* Waits until n callbacks ran; LONG fails. */
static void cb_log_wait(cb_log *l, long n) {
    wait_count(&l->lock, &l->cond, &l->n, n, "callbacks ran");
}

/* Checks that callback i, of a call shutdown(cancel_futures) cancelled, ran
 * in the thread that called shutdown. Not on a process pool: it cancels the
 * calls it already sent ahead to a worker in its manager thread, as
 * CPython's manager thread does (python-semantics.md rule 62). */
static void check_cancelled_in(cb_log *l, long i, pthread_t caller) {
    pthread_mutex_lock(&l->lock);
    pthread_t ran_in = l->threads[i];
    pthread_mutex_unlock(&l->lock);
    if (!test_process_pool())
        ASSERT_TRUE(pthread_equal(ran_in, caller));
}

/* A thread that shuts an executor down (or frees it) while the test
 * watches. */
typedef struct shutter {
    pthread_t thread;
    cf_executor *ex;
    bool wait, cancel_futures, use_free;
    gate calling;  /* opened just before the call */
    gate returned; /* opened once the call returned */
    cf_status status;
    cf_future **watch; /* futures that must be done when the call returns */
    size_t nwatch;
    size_t ndone_at_return;
} shutter;

static void *shutter_main(void *arg) {
    shutter *s = (shutter *)arg;
    gate_open(&s->calling);
    s->status = s->use_free
                    ? cf_executor_free(s->ex)
                    : cf_executor_shutdown(s->ex, s->wait, s->cancel_futures);
    for (size_t i = 0; i < s->nwatch; i++)
        s->ndone_at_return += cf_future_done(s->watch[i]);
    gate_open(&s->returned);
    return NULL;
}

static void shutter_start(shutter *s, cf_executor *ex, cf_future **watch,
                          size_t nwatch) {
    s->ex = ex;
    s->watch = watch;
    s->nwatch = nwatch;
    s->ndone_at_return = 0;
    gate_init(&s->calling);
    gate_init(&s->returned);
    ASSERT_EQ(pthread_create(&s->thread, NULL, shutter_main, s), 0);
    gate_wait(&s->calling);
}

/* Checks for SHORT that the shutter's call has not returned. */
static void shutter_check_blocked(shutter *s) {
    double t0 = test_now();
    ASSERT_FALSE(gate_wait_for(&s->returned, SHORT));
    ASSERT_TRUE(test_now() - t0 >= SHORT);
}

static void shutter_join(shutter *s) {
    ASSERT_EQ(pthread_join(s->thread, NULL), 0);
    gate_destroy(&s->calling);
    gate_destroy(&s->returned);
}

/* Submits n calls held by one gate to a pool of max_workers, makes the
 * shutter's call (shutdown with wait, or free), checks that it blocks until
 * the gate opens and that every call had finished, with its value, when it
 * returned. */
static void check_call_waits_for_pending(shutter *s, int max_workers, int n) {
    cf_executor *ex = pool_new(max_workers);
    gate proceed;
    cf_future *fs[4];
    ASSERT_LE(n, 4);
    gate_init(&proceed);
    for (int i = 0; i < n; i++)
        fs[i] = submit_gated(ex, NULL, &proceed, i);
    shutter_start(s, ex, fs, (size_t)n);
    shutter_check_blocked(s);
    for (int i = 0; i < n; i++)
        ASSERT_FALSE(cf_future_done(fs[i]));
    gate_open(&proceed);
    shutter_join(s);
    ASSERT_OK(s->status);
    ASSERT_EQ(s->ndone_at_return, n);
    for (int i = 0; i < n; i++)
        check_int_and_release(fs[i], i);
    if (!s->use_free)
        ASSERT_OK(cf_executor_free(ex));
    gate_destroy(&proceed);
}

static cf_future *const not_written = (cf_future *)&not_written;

/* ---- submit after shutdown --------------------------------------------- */

/* shutdown.submit-after-shutdown: after shutdown(wait) cf_submit returns
 * CF_SHUTDOWN and leaves out alone. */
POOL_TEST(shutdown_submit_after_shutdown_is_shutdown) {
    cf_executor *ex = pool_new(2);
    cf_future *f = not_written;
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &f), CF_SHUTDOWN);
    ASSERT_TRUE(f == not_written);
    ASSERT_OK(cf_executor_free(ex));
}

/* shutdown.submit-after-nowait-shutdown: after shutdown(wait=false), while
 * a call still runs, cf_submit returns CF_SHUTDOWN. */
POOL_TEST(shutdown_submit_after_nowait_shutdown_is_shutdown) {
    busy_pool b;
    cf_future *later = not_written;
    busy_pool_start(&b, 1);
    ASSERT_OK(cf_executor_shutdown(b.ex, false, false));
    ASSERT_STATUS(cf_submit(b.ex, task_return_arg, NULL, 0, &later),
                  CF_SHUTDOWN);
    ASSERT_TRUE(later == not_written);
    gate_open(&b.proceed);
    check_int_and_release(b.running, 1);
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* ---- wait / no wait ---------------------------------------------------- */

/* shutdown.wait-blocks-until-done: shutdown(wait=true) returns only after
 * every pending future, running or queued, is done. */
POOL_TEST(shutdown_wait_returns_after_every_pending_call) {
    shutter s = {.wait = true};
    check_call_waits_for_pending(&s, 2, 4);
}

/* shutdown.nowait-returns-at-once: shutdown(wait=false) returns while a call
 * runs and another is queued, cancels neither, and both still finish. */
POOL_TEST(shutdown_nowait_returns_at_once_and_work_finishes) {
    busy_pool b;
    busy_pool_start(&b, 1);
    cf_future *queued = submit_gated(b.ex, NULL, &b.proceed, 2);
    double t0 = test_now();
    ASSERT_OK(cf_executor_shutdown(b.ex, false, false));
    ASSERT_TRUE(test_now() - t0 < LONG / 2);
    check_running(b.running);
    check_pending(queued);
    gate_open(&b.proceed);
    check_int_and_release(b.running, 1);
    check_int_and_release(queued, 2);
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* ---- cancel_futures ---------------------------------------------------- */

/* shutdown.cancel-futures.cancels-queued: shutdown(cancel_futures) cancels
 * every queued call, running their callbacks in the calling thread (a
 * process pool: see check_cancelled_in) before it returns; they never run,
 * and the running call is untouched. */
POOL_TEST(shutdown_cancel_futures_cancels_queued_calls) {
    busy_pool b;
    run_count runs;
    cf_future *queued[3];
    cb_log log;
    run_count_init(&runs);
    cb_log_init(&log);
    busy_pool_start(&b, 1);
    submit_logged(b.ex, &runs, &log, queued, 3);
    ASSERT_OK(cf_executor_shutdown(b.ex, false, true));
    ASSERT_EQ(log.n, 3);
    for (int i = 0; i < 3; i++) {
        check_cancelled_in(&log, i, pthread_self());
        check_cancelled(queued[i]);
    }
    check_running(b.running);
    gate_open(&b.proceed);
    check_int_and_release(b.running, 1);
    ASSERT_OK(cf_executor_free(b.ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    ASSERT_EQ(log.n, 3);
    release_all(queued, 3);
    cb_log_destroy(&log);
    busy_pool_destroy(&b);
    run_count_destroy(&runs);
}

/* shutdown.cancel-futures.running-finish: shutdown(wait, cancel_futures)
 * cancels the queued calls in its own thread (a process pool: see
 * check_cancelled_in) at once, then returns only after the running call has
 * finished normally. */
POOL_TEST(shutdown_cancel_futures_with_wait_lets_running_call_finish) {
    busy_pool b;
    run_count runs;
    cf_future *fs[3];
    cb_log log;
    shutter s = {.wait = true, .cancel_futures = true};
    run_count_init(&runs);
    cb_log_init(&log);
    busy_pool_start(&b, 1);
    fs[0] = b.running;
    submit_logged(b.ex, &runs, &log, fs + 1, 2);
    shutter_start(&s, b.ex, fs, 3);
    cb_log_wait(&log, 2);
    for (int i = 1; i < 3; i++) {
        check_cancelled_in(&log, i - 1, s.thread);
        check_cancelled(fs[i]);
    }
    shutter_check_blocked(&s);
    check_running(fs[0]);
    gate_open(&b.proceed);
    shutter_join(&s);
    ASSERT_OK(s.status);
    ASSERT_EQ(s.ndone_at_return, 3);
    check_int_and_release(fs[0], 1);
    ASSERT_OK(cf_executor_free(b.ex));
    ASSERT_EQ(run_count_get(&runs), 0);
    release_all(fs + 1, 2);
    cb_log_destroy(&log);
    busy_pool_destroy(&b);
    run_count_destroy(&runs);
}

/* ---- twice, and free --------------------------------------------------- */

/* shutdown.second-shutdown-harmless: shutting down twice returns CF_OK both
 * times and leaves the executor usable for free. */
POOL_TEST(shutdown_second_shutdown_is_harmless) {
    cf_executor *ex = pool_new(2);
    cf_future *f = submit_gated(ex, NULL, NULL, 3);
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_OK(cf_executor_shutdown(ex, false, true));
    check_int_and_release(f, 3);
    ASSERT_OK(cf_executor_free(ex));
}

/* shutdown.second-shutdown-waits: a second shutdown with wait, after one
 * without, still waits for the pending calls. */
POOL_TEST(shutdown_second_shutdown_with_wait_waits) {
    busy_pool b;
    cf_future *fs[2];
    shutter s = {.wait = true};
    busy_pool_start(&b, 1);
    fs[0] = b.running;
    fs[1] = submit_gated(b.ex, NULL, &b.proceed, 2);
    ASSERT_OK(cf_executor_shutdown(b.ex, false, false));
    shutter_start(&s, b.ex, fs, 2);
    shutter_check_blocked(&s);
    gate_open(&b.proceed);
    shutter_join(&s);
    ASSERT_OK(s.status);
    ASSERT_EQ(s.ndone_at_return, 2);
    check_int_and_release(fs[0], 1);
    check_int_and_release(fs[1], 2);
    ASSERT_OK(cf_executor_free(b.ex));
    busy_pool_destroy(&b);
}

/* shutdown.free-waits: cf_executor_free without a prior shutdown waits for
 * every pending call, and the futures stay valid afterwards. */
POOL_TEST(shutdown_free_waits_for_pending_calls) {
    shutter s = {.use_free = true};
    check_call_waits_for_pending(&s, 1, 3);
}

/* ---- a callback that frees the executor during its shutdown ----------- */

/* Calls queued behind the busy pool's running one: more than a process
 * pool's worker takes ahead (32), so the last stays in the pool's queue
 * and shutdown(cancel_futures) cancels it in the calling thread. */
#define QUEUED_BEHIND 40

/* What free_in_callback saw. */
typedef struct freeing {
    busy_pool *pool;
    int calls;
    cf_status freed;
} freeing;

/* A done callback that lets the running call finish, then frees the
 * executor whose shutdown is cancelling this very future. */
static cf_status free_in_callback(cf_future *f, void *ctx) {
    freeing *fr = (freeing *)ctx;
    (void)f;
    fr->calls++;
    gate_open(&fr->pool->proceed);
    fr->freed = cf_executor_free(fr->pool->ex);
    return CF_OK;
}

/* Shuts the busy pool down with cancel_futures while the last queued
 * call's done callback frees it: both calls return CF_OK, the callback
 * ran once, every call is done, and nothing is read after it is freed
 * (AddressSanitizer checks that). */
static void check_free_in_cancel_callback(bool wait) {
    busy_pool b;
    freeing fr = {&b, 0, CF_EINVAL};
    cf_future *queued[QUEUED_BEHIND];
    busy_pool_start(&b, 1);
    for (int i = 0; i < QUEUED_BEHIND; i++)
        queued[i] = submit_gated(b.ex, NULL, NULL, i);
    ASSERT_OK(cf_future_add_done_callback(queued[QUEUED_BEHIND - 1],
                                          free_in_callback, &fr));
    ASSERT_OK(cf_executor_shutdown(b.ex, wait, true));
    ASSERT_EQ(fr.calls, 1);
    ASSERT_OK(fr.freed);
    check_int_and_release(b.running, 1);
    check_cancelled(queued[QUEUED_BEHIND - 1]);
    for (int i = 0; i < QUEUED_BEHIND; i++)
        ASSERT_TRUE(cf_future_done(queued[i]));
    release_all(queued, QUEUED_BEHIND);
    busy_pool_destroy(&b);
}

/* shutdown.callback-frees-executor: a done callback run by
 * shutdown(wait, cancel_futures) may free the executor being shut down
 * (the header lets a callback call any cfutures function). */
POOL_TEST(shutdown_callback_frees_executor_during_waiting_shutdown) {
    check_free_in_cancel_callback(true);
}

/* shutdown.callback-frees-executor: the same during a shutdown that does
 * not wait. */
POOL_TEST(shutdown_callback_frees_executor_during_nowait_shutdown) {
    check_free_in_cancel_callback(false);
}

/* ---- process exit ------------------------------------------------------ */

/* Reads one byte from fd within timeout; false on timeout or end of file. */
static bool read_byte_within(int fd, double timeout, unsigned char *out) {
    double deadline = test_now() + timeout;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int ms = (int)((deadline - test_now()) * 1000) + 1;
        if (ms <= 0)
            return false;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t n = read(fd, out, 1);
        if (n < 0 && errno == EINTR)
            continue;
        return n == 1;
    }
}

/* Waits for end of file on fd (every writer gone, e.g. the child exited)
 * within timeout, discarding data. */
static bool wait_eof(int fd, double timeout) {
    unsigned char c;
    double deadline = test_now() + timeout;
    while (test_now() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        int ms = (int)((deadline - test_now()) * 1000) + 1;
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        ssize_t n = read(fd, &c, 1);
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
    return false;
}

/* Kills the child and fails the test with what. */
static _Noreturn void child_fail(pid_t pid, int line, const char *what) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    test_fail(__FILE__, line, "%s", what);
}

/* Waits for the child to exit (eof_fd reaches end of file when it does) and
 * checks it exited with status 0. */
static void child_exited_cleanly(pid_t pid, int eof_fd) {
    int status = 0;
    if (!wait_eof(eof_fd, LONG))
        child_fail(pid, __LINE__, "the child did not exit within LONG");
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* Kept in statics so that the child's leak check finds them reachable. */
static cf_executor *child_pool;
static cf_executor *child_spy;
static int exit_began_pipe[2];

/* The task of the child's pool: waits for the gate arg0, which the parent
 * opens once the child is exiting, then opens the gate arg1. The gates are
 * in the arena, which the parent, the child and its pool's workers share. */
static void task_wait_parent_then_open(cf_call *call) {
    gate proceed, finished;
    if (!gate_arg(call, 0, &proceed) || !gate_arg(call, 1, &finished))
        _exit(4);
    gate_wait(&proceed);
    gate_open(&finished);
}

/* atexit handler registered after the pool exists, so that it runs before
 * the library's: tells the parent that exit has begun. */
static void announce_exit(void) {
    unsigned char c = 'e';
    if (write(exit_began_pipe[1], &c, 1) != 1)
        _exit(5);
}

/* How the child of check_end_waits ends its main thread: exit() (announced
 * by an atexit handler registered after the pool exists, so that it runs
 * before the library's), or pthread_exit() (announced just before). */
static void end_with_exit(void) {
    if (atexit(announce_exit) != 0)
        _exit(3);
    exit(0);
}

static void end_with_pthread_exit(void) {
    unsigned char e = 'e';
    if (write(exit_began_pipe[1], &e, 1) != 1)
        _exit(3);
    pthread_exit(NULL);
}

/* A child makes a pool, submits a call that waits for the parent, and
 * ends its main thread with end(): the call still runs to the end, and
 * then the child exits with status 0. */
static void check_end_waits(void (*end)(void)) {
    unsigned char c = 0;
    gate proceed, finished;
    gate_init(&proceed);
    gate_init(&finished);
    ASSERT_EQ(pipe(exit_began_pipe), 0);
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        cf_value args[2] = {gate_value(&proceed), gate_value(&finished)};
        cf_future *f = NULL;
        close(exit_began_pipe[0]);
        child_pool = pool_new(2);
        if (cf_submit(child_pool, task_wait_parent_then_open, args, 2, &f) !=
            CF_OK)
            _exit(2);
        cf_future_release(f);
        end();
    }
    close(exit_began_pipe[1]);
    if (!read_byte_within(exit_began_pipe[0], LONG, &c) || c != 'e')
        child_fail(pid, __LINE__, "the child never began to end");
    ASSERT_FALSE(gate_is_open(&finished));
    gate_open(&proceed);
    if (!gate_wait_for(&finished, LONG))
        child_fail(pid, __LINE__,
                   "the pending call never finished: the end did not wait");
    child_exited_cleanly(pid, exit_began_pipe[0]);
    close(exit_began_pipe[0]);
    gate_destroy(&proceed);
    gate_destroy(&finished);
}

/* shutdown.process-exit.waits: a process that exits without freeing its
 * pool still runs the pending call to the end first (the atexit wait). */
POOL_TEST(shutdown_process_exit_waits_for_pending_calls) {
    check_end_waits(end_with_exit);
}

/* shutdown.process-exit.main-thread-exit: a program whose main thread ends
 * with pthread_exit() while a pool is alive still ends, once the pending
 * call has finished (as a Python program ends when its main thread does,
 * after the executors' pending work): the pool's idle workers do not keep
 * it alive. */
POOL_TEST(shutdown_main_thread_exit_ends_process_after_pending_calls) {
#if defined(__SANITIZE_THREAD__)
    /* Not under ThreadSanitizer: its runtime's own background thread keeps
     * a process alive once main has called pthread_exit, with or without
     * cfutures (a program that starts and joins one thread, then calls
     * pthread_exit from main, never ends under TSan). */
    fprintf(stderr, "skipped under ThreadSanitizer (see the comment)\n");
    return;
#endif
    check_end_waits(end_with_pthread_exit);
}

static int report_pipe[2];
static pthread_t submitter;
static gate exit_began;
static pthread_mutex_t spy_lock = PTHREAD_MUTEX_INITIALIZER;
static bool spy_joined;

/* Waits until the library's exit handler shuts the spy down, then submits
 * to a live pool and reports the status to the parent. */
static void *submitter_main(void *arg) {
    cf_future *f = NULL;
    unsigned char b;
    (void)arg;
    gate_wait(&exit_began);
    cf_status s = cf_submit(child_pool, task_return_arg, NULL, 0, &f);
    if (s == CF_OK)
        cf_future_release(f);
    b = (unsigned char)s;
    if (write(report_pipe[1], &b, 1) != 1)
        _exit(4);
    return NULL;
}

static cf_status spy_submit(void *self, cf_work *work) {
    (void)self;
    return cf_work_run(work) == CF_EINVAL ? CF_EINVAL : CF_OK;
}

/* Called by the library's exit handler: lets the submitter try, and waits
 * for it, so the submit happens while exit is under way. */
static cf_status spy_shutdown(void *self, bool wait, bool cancel_futures) {
    (void)self;
    (void)wait;
    (void)cancel_futures;
    pthread_mutex_lock(&spy_lock);
    if (!spy_joined) {
        spy_joined = true;
        gate_open(&exit_began);
        pthread_join(submitter, NULL);
    }
    pthread_mutex_unlock(&spy_lock);
    return CF_OK;
}

static const cf_executor_ops spy_ops = {.name = "SpyExecutor",
                                        .submit = spy_submit,
                                        .shutdown = spy_shutdown,
                                        .free = NULL};

/* shutdown.process-exit.submit-is-shutdown: once the exit handler has
 * started, cf_submit to an executor it has not reached returns
 * CF_SHUTDOWN. */
POOL_TEST(shutdown_submit_during_process_exit_is_shutdown) {
    unsigned char b = 0;
    gate_init(&exit_began); /* only the test process allocates gates */
    ASSERT_EQ(pipe(report_pipe), 0);
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        close(report_pipe[0]);
        child_pool = pool_new(1);
        if (cf_executor_new(&spy_ops, NULL, &child_spy) != CF_OK)
            _exit(2);
        if (pthread_create(&submitter, NULL, submitter_main, NULL) != 0)
            _exit(3);
        exit(0);
    }
    close(report_pipe[1]);
    if (!read_byte_within(report_pipe[0], LONG, &b))
        child_fail(pid, __LINE__,
                   "no report: the exit handler never shut the spy down");
    if (b != CF_SHUTDOWN)
        test_fail(__FILE__, __LINE__, "submit during exit gave %s",
                  cf_status_name((cf_status)b));
    child_exited_cleanly(pid, report_pipe[0]);
    close(report_pipe[0]);
    gate_destroy(&exit_began);
}

static cf_executor *parent_pool, *parent_spy;
static volatile int in_forked_child;
static pid_t spy_owner;
static int alive[2];

/* The parent's custom executor: shut down from any process but its owner,
 * it tells the parent through the pipe the child holds. */
static cf_status owner_spy_shutdown(void *self, bool wait,
                                    bool cancel_futures) {
    unsigned char c = 'w';
    (void)self;
    (void)wait;
    (void)cancel_futures;
    if (getpid() != spy_owner && write(alive[1], &c, 1) != 1)
        _exit(6);
    return CF_OK;
}

static const cf_executor_ops owner_spy_ops = {.name = "OwnerSpy",
                                              .submit = spy_submit,
                                              .shutdown = owner_spy_shutdown,
                                              .free = NULL};

/* Reads fd to its end within timeout; true on end of file, with the number
 * of bytes read before it in *nbytes. */
static bool read_to_eof(int fd, double timeout, size_t *nbytes) {
    unsigned char c;
    *nbytes = 0;
    while (read_byte_within(fd, timeout, &c))
        ++*nbytes;
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && read(fd, &c, 1) == 0;
}

/* LeakSanitizer calls this before its check at exit. A forked child may not
 * use, so cannot free, the pool it inherited: its memory is the parent's
 * business, not a leak of the child. Without LeakSanitizer it is unused. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) {
    return in_forked_child;
}

/* shutdown.process-exit.fork-forgets-parent-executors: a child made by
 * fork() exits at once although its parent's pool has a call running and
 * another queued, and shuts none of the parent's executors down. */
POOL_TEST(shutdown_forked_child_does_not_wait_for_parent_executors) {
    gate started, proceed;
    size_t nbytes = 0;
    int status = 0;
    gate_init(&started);
    gate_init(&proceed);
    spy_owner = getpid();
    parent_pool = pool_new(1);
    ASSERT_OK(cf_executor_new(&owner_spy_ops, NULL, &parent_spy));
    cf_future *running = submit_gated(parent_pool, &started, &proceed, 6);
    cf_future *queued = submit_gated(parent_pool, NULL, NULL, 7);
    gate_wait(&started);
    ASSERT_EQ(pipe(alive), 0);
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        in_forked_child = 1;
        close(alive[0]);
        exit(0);
    }
    close(alive[1]);
    if (!read_to_eof(alive[0], LONG, &nbytes))
        child_fail(pid, __LINE__, "the child did not exit within LONG");
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    if (nbytes != 0)
        test_fail(__FILE__, __LINE__,
                  "the child shut its parent's executor down at exit");
    close(alive[0]);
    check_running(running);
    gate_open(&proceed);
    check_int_and_release(running, 6);
    check_int_and_release(queued, 7);
    ASSERT_OK(cf_executor_free(parent_pool));
    ASSERT_OK(cf_executor_free(parent_spy));
    gate_destroy(&started);
    gate_destroy(&proceed);
}
