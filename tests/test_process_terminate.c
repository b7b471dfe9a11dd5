/*
 * cf_process_pool_terminate_workers and cf_process_pool_kill_workers
 * (Python 3.14's ProcessPoolExecutor.terminate_workers / kill_workers):
 * the pool shuts down without waiting, what has not started is cancelled,
 * every worker gets the signal, the calls that ran fail as a broken pool,
 * and nothing is left behind.
 *
 * Running calls are held by arena gates (harness.h) and note their
 * worker's pid in the arena, so the test can tell the workers are gone.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "support.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

/* A call that runs until its worker is signalled. */
typedef struct held {
    gate started, never;
    atomic_int *pid; /* the worker's, once started */
    cf_future *future;
} held;

/* arg0: started gate, arg1: a gate never opened, arg2: the arena int for
 * the pid. */
static void task_note_pid_and_hold(cf_call *call) {
    gate started, never;
    atomic_int *pid = arena_arg(call, 2);
    if (!gate_arg(call, 0, &started) || !gate_arg(call, 1, &never))
        _exit(4);
    atomic_store(pid, getpid());
    gate_open(&started);
    gate_wait_for(&never, 2 * LONG);
}

static void hold_start(held *h, cf_executor *ex) {
    gate_init(&h->started);
    gate_init(&h->never);
    h->pid = arena_alloc(sizeof *h->pid);
    cf_value args[3] = {gate_value(&h->started), gate_value(&h->never),
                        arena_value(h->pid)};
    ASSERT_OK(cf_submit(ex, task_note_pid_and_hold, args, 3, &h->future));
}

/* Checks the held call failed as a pool broken by sig, and that its
 * worker is gone (after free). */
static void hold_check_gone(held *h, int sig) {
    char detail[48];
    snprintf(detail, sizeof detail, "was killed by signal %d)", sig);
    check_broken(h->future, detail);
    ASSERT_OK(cf_future_release(h->future));
    pid_t pid = atomic_load(h->pid);
    ASSERT_TRUE(kill(pid, 0) == -1 && errno == ESRCH);
    gate_destroy(&h->started);
    gate_destroy(&h->never);
    arena_free(h->pid);
}

/* Two calls running on two workers and one queued; force(ex) stops them:
 * the queued one is cancelled, later submits are refused, the running ones
 * fail naming sig, and free leaves no worker. */
static void check_force(cf_status (*force)(cf_executor *), int sig) {
    cf_executor *ex = ppool(2, CF_UNLIMITED_TASKS);
    held h[2];
    cf_future *queued, *later;
    for (int i = 0; i < 2; i++)
        hold_start(&h[i], ex);
    for (int i = 0; i < 2; i++)
        gate_wait(&h[i].started);
    queued = submit_gated(ex, NULL, NULL, 3);
    ASSERT_OK(force(ex));
    check_cancelled(queued);
    ASSERT_STATUS(cf_submit(ex, task_getpid, NULL, 0, &later), CF_SHUTDOWN);
    for (int i = 0; i < 2; i++)
        ASSERT_STATUS(cf_future_result(h[i].future, LONG, NULL), CF_BROKEN);
    ASSERT_OK(force(ex)); /* a second call is harmless */
    ASSERT_OK(cf_executor_free(ex));
    for (int i = 0; i < 2; i++)
        hold_check_gone(&h[i], sig);
    ASSERT_OK(cf_future_release(queued));
}

/* process-pool.terminate-workers (3.14): SIGTERM to every worker. */
TEST(process_terminate_workers_stops_pool) {
    check_force(cf_process_pool_terminate_workers, SIGTERM);
}

/* process-pool.kill-workers (3.14): SIGKILL to every worker. */
TEST(process_kill_workers_stops_pool) {
    check_force(cf_process_pool_kill_workers, SIGKILL);
}

/* process-pool.terminate-workers: no worker ever started -> no error, and
 * the pool is shut down. */
TEST(process_terminate_workers_before_any_worker) {
    cf_executor *ex = ppool(2, CF_UNLIMITED_TASKS);
    cf_future *f;
    ASSERT_OK(cf_process_pool_terminate_workers(ex));
    ASSERT_STATUS(cf_submit(ex, task_getpid, NULL, 0, &f), CF_SHUTDOWN);
    ASSERT_OK(cf_executor_free(ex));
}

/* process-pool.terminate-workers: workers already dead (the pool broke) ->
 * no error. */
TEST(process_kill_workers_after_pool_broke) {
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    cf_future *f;
    ASSERT_OK(cf_submit(ex, task_kill_self, NULL, 0, &f));
    check_broken(f, "was killed by signal 9)");
    ASSERT_OK(cf_process_pool_kill_workers(ex));
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_future_release(f));
}

/* process-pool.terminate-workers.invalid: not a process pool -> CF_EINVAL,
 * and the executor is left alone. */
TEST(process_terminate_workers_refuses_other_executors) {
    cf_executor *ex = NULL;
    ASSERT_OK(cf_thread_pool_new(NULL, &ex));
    ASSERT_STATUS(cf_process_pool_terminate_workers(ex), CF_EINVAL);
    ASSERT_STATUS(cf_process_pool_kill_workers(NULL), CF_EINVAL);
    ASSERT_EQ(run_int(ex, task_getpid, NULL, 0), getpid());
    ASSERT_OK(cf_executor_free(ex));
}

/* What kill_in_callback did, in the manager thread. */
static atomic_int killed_status = -1;

static cf_status kill_in_callback(cf_future *f, void *ctx) {
    (void)f;
    atomic_store(&killed_status, cf_process_pool_kill_workers(ctx));
    return CF_OK;
}

/* process-pool.terminate-workers: from a done callback, which runs in the
 * pool's manager thread: the other running call's worker is killed. */
TEST(process_kill_workers_from_done_callback) {
    cf_executor *ex = ppool(2, CF_UNLIMITED_TASKS);
    held h;
    cf_future *quick;
    hold_start(&h, ex);
    gate_wait(&h.started);
    ASSERT_OK(cf_submit(ex, task_getpid, NULL, 0, &quick));
    ASSERT_OK(cf_future_add_done_callback(quick, kill_in_callback, ex));
    ASSERT_STATUS(cf_future_result(h.future, LONG, NULL), CF_BROKEN);
    ASSERT_EQ(atomic_load(&killed_status), CF_OK);
    ASSERT_OK(cf_executor_free(ex));
    hold_check_gone(&h, SIGKILL);
    ASSERT_OK(cf_future_release(quick));
}
