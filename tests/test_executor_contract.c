/*
 * The executor writer's contract (the header's "Writing an executor"): the
 * work's slot, the misuses the library reports, the cancel-at-shutdown
 * pattern, and what an outside executor may call -- cf_call_fn and
 * cf_error_free, cf_log, cf_executor_set_chunked.
 *
 * Misuse: each one is provoked twice. In this process with CF_MISUSE=log,
 * to check its log line and the defined outcome the library gives after it
 * (the sanitizer builds check that outcome touches no freed memory); and in
 * a fork()ed child with the default policy, which must log the same line
 * and then abort() in a debug build. The tests are built with the
 * library's flags, so NDEBUG here says what the library does. The children
 * start no thread: they fork from a test process that has none of its own.
 *
 * The executors here are the test's own: a keeper, whose FIFO is linked
 * through cf_work_slot and which ends its works at shutdown (or, on
 * purpose, forgets them); and an inliner, whose submit ends the work in
 * the caller's thread in a way the test chose, then returns what the test
 * chose.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the log --------------------------------------------------------------
 */

/* The lines the log hook got in this process, one after another. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logged[8192];
static size_t logged_len;
static int critical_lines;

static void capture_log(cf_log_level level, const char *message, void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    int n = snprintf(logged + logged_len, sizeof logged - logged_len, "%s\n",
                     message);
    if (n > 0 && (size_t)n < sizeof logged - logged_len)
        logged_len += (size_t)n;
    if (level == CF_LOG_CRITICAL)
        critical_lines++;
    pthread_mutex_unlock(&log_lock);
}

/* Misuse is logged, not fatal, from now on in this process, and the log is
 * captured. Called first thing: the library reads CF_MISUSE once. */
static void log_misuse(void) {
    ASSERT_EQ(setenv("CF_MISUSE", "log", 1), 0);
    ASSERT_OK(cf_set_log_hook(capture_log, NULL));
}

static void check_logged_(const char *file, int line, const char *part) {
    pthread_mutex_lock(&log_lock);
    bool found = strstr(logged, part) != NULL;
    pthread_mutex_unlock(&log_lock);
    if (!found)
        test_fail(file, line, "no log line says \"%s\"; the log:\n%s", part,
                  logged);
}
#define check_logged(part) check_logged_(__FILE__, __LINE__, part)

static void check_nothing_logged(void) {
    pthread_mutex_lock(&log_lock);
    size_t len = logged_len;
    pthread_mutex_unlock(&log_lock);
    if (len != 0)
        test_fail(__FILE__, __LINE__, "unexpected log lines:\n%s", logged);
}

/* ---- a misuse in a child ---------------------------------------------------
 */

static int child_log_fd = -1;

/* The child's log hook: each line, its level first, down the pipe. */
static void log_to_pipe(cf_log_level level, const char *message, void *ctx) {
    char line[1200];
    (void)ctx;
    int n = snprintf(line, sizeof line, "%d %s\n", (int)level, message);
    if (n > 0 && write(child_log_fd, line, (size_t)n) != n)
        _exit(3);
}

/* Everything fd gives until end of file, within LONG. */
static void read_all(int fd, char *buf, size_t size) {
    size_t len = 0;
    double deadline = test_now() + LONG;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int left_ms = (int)((deadline - test_now()) * 1000);
        if (left_ms <= 0 || poll(&p, 1, left_ms) != 1)
            test_fail(__FILE__, __LINE__, "the child did not end in time");
        ssize_t got = read(fd, buf + len, size - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == size - 1)
            break;
    }
    buf[len] = '\0';
}

/*
 * Runs provoke() in a forked child with the misuse policy `policy` (NULL:
 * the default) and its log lines sent here. Checks the child logged a
 * CF_LOG_CRITICAL line holding `part`, then aborted if `aborts`, else
 * returned from provoke() and exited 0.
 */
static void check_child_(const char *file, int line, void (*provoke)(void),
                         const char *policy, bool aborts, const char *part) {
    int fds[2], status = 0;
    char text[4096], want[256];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        child_log_fd = fds[1];
        if (policy ? setenv("CF_MISUSE", policy, 1) : unsetenv("CF_MISUSE"))
            _exit(4);
        cf_set_log_hook(log_to_pipe, NULL);
        provoke();
        _exit(0);
    }
    close(fds[1]);
    read_all(fds[0], text, sizeof text);
    close(fds[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    snprintf(want, sizeof want, "%d executor misuse: ", (int)CF_LOG_CRITICAL);
    if (!strstr(text, want) || !strstr(text, part))
        test_fail(file, line, "the child did not log \"%s\"; it logged:\n%s",
                  part, text);
    if (aborts && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        test_fail(file, line, "the child did not abort (status %#x)", status);
    if (!aborts && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        test_fail(file, line, "the child did not exit 0 (status %#x)", status);
}

/* The default policy: abort() after the log line in a debug build. */
#ifdef NDEBUG
#define DEBUG_BUILD false
#else
#define DEBUG_BUILD true
#endif
#define check_child_aborts_if_debug(provoke, part)                            \
    check_child_(__FILE__, __LINE__, provoke, NULL, DEBUG_BUILD, part)

/* ---- the keeper
 * -------------------------------------------------------------- */

/* A keeper's works, kept in a FIFO linked through each work's slot. */
typedef struct keeper {
    pthread_mutex_t lock;
    cf_work *head, *tail;
    bool forget; /* shutdown leaves the works unended (a misuse) */
    cf_status ended[8];
    int nended, frees;
} keeper;

static cf_status keeper_submit(void *self, cf_work *w) {
    keeper *k = (keeper *)self;
    void **slot = cf_work_slot(w);
    ASSERT_NOT_NULL(slot);
    ASSERT_NULL(*slot); /* NULL when the executor gets the work */
    pthread_mutex_lock(&k->lock);
    if (k->tail)
        *cf_work_slot(k->tail) = w;
    else
        k->head = w;
    k->tail = w;
    pthread_mutex_unlock(&k->lock);
    return CF_OK;
}

/* The header's cancel-at-shutdown pattern: the works come out under the
 * lock; each is then ended unlocked, its next read first. */
static cf_status keeper_shutdown(void *self, bool wait, bool cancel) {
    keeper *k = (keeper *)self;
    (void)wait;
    pthread_mutex_lock(&k->lock);
    cf_work *w = k->forget ? NULL : k->head;
    if (!k->forget)
        k->head = k->tail = NULL;
    pthread_mutex_unlock(&k->lock);
    while (w) {
        cf_work *next = (cf_work *)*cf_work_slot(w);
        cf_status st;
        if (cancel) {
            cf_future_cancel(cf_work_future(w));
            st = cf_work_release(w);
        } else {
            st = cf_work_run(w);
        }
        pthread_mutex_lock(&k->lock);
        k->ended[k->nended++] = st;
        pthread_mutex_unlock(&k->lock);
        w = next;
    }
    return CF_OK;
}

static void keeper_free(void *self) {
    keeper *k = (keeper *)self;
    pthread_mutex_lock(&k->lock);
    k->frees++;
    pthread_mutex_unlock(&k->lock);
}

static int keeper_frees(keeper *k) {
    pthread_mutex_lock(&k->lock);
    int n = k->frees;
    pthread_mutex_unlock(&k->lock);
    return n;
}

static const cf_executor_ops keeper_ops = {.name = "Keeper",
                                           .submit = keeper_submit,
                                           .shutdown = keeper_shutdown,
                                           .free = keeper_free};

static cf_executor *keeper_new(keeper *k) {
    cf_executor *ex = NULL;
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->lock, NULL);
    ASSERT_OK(cf_executor_new(&keeper_ops, k, &ex));
    return ex;
}

/* Submits task_return_arg(value) to ex. */
static cf_future *submit_int(cf_executor *ex, int64_t value) {
    cf_value arg = cf_int(value);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_return_arg, &arg, 1, &f));
    return f;
}

/* ---- the inliner
 * --------------------------------------------------------------- */

/* How the inliner's submit ends the work before it returns. */
typedef enum inline_end {
    INLINE_KEEP,    /* it does not: it returns at once */
    INLINE_RUN,     /* cf_work_run */
    INLINE_FAIL,    /* cf_work_fail(CF_BROKEN, ...) */
    INLINE_RELEASE, /* cf_work_release */
    INLINE_RUN_TWICE
} inline_end;

typedef struct inliner {
    inline_end end;
    cf_status returns; /* what submit returns */
    int submits;
    cf_fn last_fn;
    cf_status second_run; /* INLINE_RUN_TWICE: the second cf_work_run */
} inliner;

static cf_status inliner_submit(void *self, cf_work *w) {
    inliner *in = (inliner *)self;
    in->submits++;
    in->last_fn = cf_work_fn(w);
    switch (in->end) {
    case INLINE_KEEP:
        break;
    case INLINE_RUN:
        ASSERT_OK(cf_work_run(w));
        break;
    case INLINE_FAIL:
        ASSERT_OK(cf_work_fail(w, CF_BROKEN, "BrokenInliner", "failed"));
        break;
    case INLINE_RELEASE:
        ASSERT_OK(cf_work_release(w));
        break;
    case INLINE_RUN_TWICE:
        ASSERT_OK(cf_work_run(w));
        in->second_run = cf_work_run(w);
        break;
    }
    return in->returns;
}

static cf_status inliner_shutdown(void *self, bool wait, bool cancel) {
    (void)self;
    (void)wait;
    (void)cancel;
    return CF_OK;
}

static const cf_executor_ops inliner_ops = {
    .name = "Inliner", .submit = inliner_submit, .shutdown = inliner_shutdown};

static cf_executor *inliner_new(inliner *in, inline_end end,
                                cf_status returns) {
    cf_executor *ex = NULL;
    memset(in, 0, sizeof *in);
    in->end = end;
    in->returns = returns;
    ASSERT_OK(cf_executor_new(&inliner_ops, in, &ex));
    return ex;
}

/* ---- the work's slot
 * --------------------------------------------------------- */

/* executor.contract.work-slot: each work has a pointer-sized slot of the
 * executor's own, NULL when the work arrives, kept while the executor owns
 * it (the keeper links its FIFO through it); NULL for NULL and for an ended
 * work. */
TEST(executor_contract_work_slot_links_a_fifo) {
    keeper k;
    cf_executor *ex = keeper_new(&k);
    cf_future *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = submit_int(ex, i);
    cf_work *first = k.head;
    ASSERT_TRUE(*cf_work_slot(first) != NULL);
    ASSERT_OK(cf_executor_shutdown(ex, true, false)); /* runs them in order */
    ASSERT_EQ(k.nended, 3);
    for (int i = 0; i < 3; i++) {
        cf_value want = cf_int(i);
        ASSERT_STATUS(k.ended[i], CF_OK);
        check_value(fs[i], &want);
    }
    ASSERT_NULL(cf_work_slot(first)); /* ended; fs[0] keeps its memory */
    ASSERT_NULL(cf_work_slot(NULL));
    release_all(fs, 3);
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_EQ(k.frees, 1);
}

/* ---- the cancel-at-shutdown pattern ----------------------------------------
 */

static cf_status free_executor_cb(cf_future *f, void *ctx) {
    (void)f;
    return cf_executor_free((cf_executor *)ctx);
}

/* executor.contract.cancel-pattern-callback-frees: a done callback that the
 * safe cancel pattern runs may free the executor: the shutdown goes on with
 * the other works, the executor is freed when it returns, and nothing is
 * reported (the default policy would abort in a debug build). */
TEST(executor_contract_cancel_pattern_survives_a_callback_freeing_executor) {
    keeper k;
    cf_executor *ex = keeper_new(&k);
    cf_future *fs[3];
    ASSERT_OK(cf_set_log_hook(capture_log, NULL));
    for (int i = 0; i < 3; i++)
        fs[i] = submit_int(ex, i);
    ASSERT_OK(cf_future_add_done_callback(fs[0], free_executor_cb, ex));
    ASSERT_OK(cf_executor_shutdown(ex, false, true));
    ASSERT_EQ(keeper_frees(&k), 1);
    ASSERT_EQ(k.nended, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_STATUS(k.ended[i], CF_OK);
        check_cancelled(fs[i]);
    }
    release_all(fs, 3);
    check_nothing_logged();
}

/* ---- misuse: works left unended
 * --------------------------------------------- */

static keeper forgetful;
static cf_executor *forgetful_ex;
static cf_future *forgotten;

/* A keeper that leaves its one work unended when shut down, freed. */
static void free_with_work_unended(void) {
    forgetful_ex = keeper_new(&forgetful);
    forgetful.forget = true;
    forgotten = submit_int(forgetful_ex, 5);
    ASSERT_OK(cf_executor_free(forgetful_ex));
}

/* executor.contract.misuse.unended-at-free: cf_executor_free reports an
 * executor whose shutdown with wait returned CF_OK while works it took are
 * not ended; it still returns CF_OK, and the executor (its free operation
 * included) lives until the last of them ends, so ending one late touches
 * no freed memory. */
TEST(executor_contract_free_reports_works_left_unended) {
    log_misuse();
    free_with_work_unended();
    check_logged("executor misuse: Keeper: shutdown(wait=true) returned "
                 "CF_OK with 1 work(s) not ended");
    ASSERT_EQ(keeper_frees(&forgetful), 0);
    check_pending(forgotten);
    ASSERT_OK(cf_work_run(forgetful.head)); /* late, but it ends */
    ASSERT_EQ(keeper_frees(&forgetful), 1);
    cf_value five = cf_int(5);
    check_value(forgotten, &five);
    ASSERT_OK(cf_future_release(forgotten));
}

/* executor.contract.misuse.unended-at-free: without CF_MISUSE, a debug
 * build aborts after the log line. */
TEST(executor_contract_free_with_works_unended_aborts_in_debug_build) {
    check_child_aborts_if_debug(free_with_work_unended, "1 work(s) not ended");
}

/* ---- misuse: a submit that ended the work, then refused it
 * ------------------- */

static cf_status ended_then_refused(inline_end end, cf_future **f) {
    inliner in;
    cf_executor *ex = inliner_new(&in, end, CF_BROKEN);
    cf_value arg = cf_int(3);
    cf_status st = cf_submit(ex, task_return_arg, &arg, 1, f);
    ASSERT_OK(cf_executor_free(ex));
    return st;
}

static void run_then_refuse(void) {
    cf_future *f = NULL;
    ASSERT_OK(ended_then_refused(INLINE_RUN, &f));
    ASSERT_OK(cf_future_release(f));
}

/* executor.contract.misuse.ended-then-refused: a submit that ended the work
 * (cf_work_run, cf_work_fail or cf_work_release) and then returned a
 * refusal is reported; cf_submit gives out the future as the work left it
 * (CF_OK), releasing nothing twice. */
TEST(executor_contract_submit_that_ended_work_then_refused_is_reported) {
    cf_future *f = NULL;
    cf_value three = cf_int(3);
    log_misuse();
    ASSERT_OK(ended_then_refused(INLINE_RUN, &f));
    check_value(f, &three);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(ended_then_refused(INLINE_FAIL, &f));
    check_raised(f, CF_BROKEN, "BrokenInliner", "failed");
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(ended_then_refused(INLINE_RELEASE, &f));
    check_raised(f, CF_RAISED, "RuntimeError",
                 "the executor dropped the call");
    ASSERT_OK(cf_future_release(f));
    check_logged("executor misuse: Inliner: submit ended the work, then "
                 "returned CF_BROKEN");
}

/* executor.contract.misuse.ended-then-refused: without CF_MISUSE, a debug
 * build aborts after the log line. */
TEST(executor_contract_submit_that_ended_work_then_refused_aborts_in_debug) {
    check_child_aborts_if_debug(run_then_refuse,
                                "submit ended the work, then returned");
}

/* ---- misuse: a status submit may not return
 * ---------------------------------- */

static void refuse_with_timeout(void) {
    inliner in;
    cf_executor *ex = inliner_new(&in, INLINE_KEEP, CF_TIMEOUT);
    cf_future *f = NULL;
    ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &f), CF_BROKEN);
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.contract.misuse.bad-submit-status: a submit status other than
 * CF_OK, CF_SHUTDOWN, CF_BROKEN, CF_EAGAIN and CF_NOMEM is reported;
 * cf_submit takes it as CF_BROKEN (cf_last_error a BrokenExecutor), leaves
 * out alone, and the work is discarded. */
TEST(executor_contract_submit_status_outside_the_allowed_set_is_reported) {
    cf_status bad[] = {CF_TIMEOUT, CF_EINVAL, CF_RAISED, CF_DEADLOCK,
                       (cf_status)99};
    log_misuse();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        inliner in;
        cf_executor *ex = inliner_new(&in, INLINE_KEEP, bad[i]);
        cf_future *f = (cf_future *)&in;
        ASSERT_STATUS(cf_submit(ex, task_return_arg, NULL, 0, &f), CF_BROKEN);
        ASSERT_TRUE(f == (cf_future *)&in);
        check_error(cf_last_error(), CF_BROKEN, "BrokenExecutor", NULL);
        ASSERT_OK(cf_executor_free(ex));
    }
    check_logged("executor misuse: Inliner: submit returned CF_TIMEOUT (1)");
    check_logged("submit returned CF_UNKNOWN_STATUS (99)");
}

/* executor.contract.misuse.bad-submit-status: without CF_MISUSE, a debug
 * build aborts after the log line. */
TEST(executor_contract_submit_status_outside_the_set_aborts_in_debug) {
    check_child_aborts_if_debug(refuse_with_timeout,
                                "submit returned CF_TIMEOUT");
}

/* ---- misuse: running a work whose future is already running
 * ------------------ */

static void run_running_work(void) {
    keeper k;
    cf_executor *ex = keeper_new(&k);
    cf_future *f = submit_int(ex, 4);
    ASSERT_OK(cf_future_set_running_or_notify_cancel(f)); /* someone else */
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_STATUS(k.ended[0], CF_INVALID_STATE);
    ASSERT_OK(cf_future_release(f));
}

/* executor.contract.misuse.run-of-running: cf_work_run on a work whose
 * future someone else marked running is reported; the call does not run,
 * cf_work_run returns CF_INVALID_STATE and the future fails with
 * RuntimeError, so that nobody waits for it forever. */
TEST(executor_contract_work_run_of_running_future_is_reported) {
    keeper k;
    log_misuse();
    cf_executor *ex = keeper_new(&k);
    run_count runs;
    run_count_init(&runs);
    cf_value arg = run_count_value(&runs);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_count, &arg, 1, &f));
    ASSERT_OK(cf_future_set_running_or_notify_cancel(f));
    ASSERT_OK(cf_executor_shutdown(ex, true, false));
    ASSERT_STATUS(k.ended[0], CF_INVALID_STATE);
    ASSERT_EQ(run_count_get(&runs), 0);
    check_raised(f, CF_RAISED, "RuntimeError",
                 "cf_work_run: the future was already running");
    check_logged("executor misuse: Keeper: cf_work_run on a work whose "
                 "future is already RUNNING");
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
    run_count_destroy(&runs);
}

/* executor.contract.misuse.run-of-running: without CF_MISUSE, a debug
 * build aborts after the log line. */
TEST(executor_contract_work_run_of_running_future_aborts_in_debug_build) {
    check_child_aborts_if_debug(run_running_work, "future is already RUNNING");
}

/* ---- misuse: ending a work twice
 * --------------------------------------------- */

static void run_twice(void) {
    inliner in;
    cf_executor *ex = inliner_new(&in, INLINE_RUN_TWICE, CF_OK);
    cf_future *f = NULL;
    ASSERT_OK(cf_submit(ex, task_return_arg, NULL, 0, &f));
    ASSERT_STATUS(in.second_run, CF_EINVAL);
    ASSERT_OK(cf_future_release(f));
    ASSERT_OK(cf_executor_free(ex));
}

/* executor.contract.misuse.ended-twice: a cf_work_* call that ends a work
 * already ended, while its future still lives, is reported and returns
 * CF_EINVAL, changing nothing. */
TEST(executor_contract_work_ended_twice_is_reported) {
    log_misuse();
    run_twice();
    check_logged("executor misuse: cf_work_run on a work already ended");
}

/* executor.contract.misuse.ended-twice: without CF_MISUSE, a debug build
 * aborts after the log line. */
TEST(executor_contract_work_ended_twice_aborts_in_debug_build) {
    check_child_aborts_if_debug(run_twice, "on a work already ended");
}

/* ---- the misuse policy
 * ---------------------------------------------------------- */

/* executor.contract.misuse.policy: CF_MISUSE=abort aborts after the log
 * line in any build; CF_MISUSE=log never does, and the library goes on
 * with its defined outcome. */
TEST(executor_contract_misuse_policy_follows_cf_misuse) {
    check_child_(__FILE__, __LINE__, refuse_with_timeout, "abort", true,
                 "submit returned CF_TIMEOUT");
    check_child_(__FILE__, __LINE__, refuse_with_timeout, "log", false,
                 "submit returned CF_TIMEOUT");
}

/* ---- cf_call_fn and cf_error_free ------------------------------------------
 */

/* executor.contract.call-fn.value: cf_call_fn runs a task function in this
 * thread, outside any work, and gives what it returned (the caller's). */
TEST(executor_contract_call_fn_gives_the_value) {
    cf_value arg = cf_none(), value = cf_int(1);
    cf_error *error = (cf_error *)&arg;
    ASSERT_OK(cf_value_str(&arg, "initialised"));
    ASSERT_OK(cf_call_fn(task_return_arg, &arg, 1, &value, &error));
    ASSERT_TRUE(cf_value_equal(&value, &arg));
    ASSERT_NULL(error);
    cf_value_free(&value);
    ASSERT_OK(cf_call_fn(task_return_arg, NULL, 0, &value, &error));
    ASSERT_EQ(value.type, CF_TYPE_NONE);
    ASSERT_NULL(error);
    cf_value_free(&arg);
}

/* executor.contract.call-fn.raised: a task that raises gives its status
 * (CF_RAISED), None and the error, which the caller frees with
 * cf_error_free (NULL is harmless). */
TEST(executor_contract_call_fn_gives_the_error_to_free) {
    cf_value args[2] = {cf_none(), cf_none()}, value = cf_int(1);
    cf_error *error = NULL;
    ASSERT_OK(cf_value_str(&args[0], "KeyError"));
    ASSERT_OK(cf_value_str(&args[1], "no such key"));
    ASSERT_STATUS(cf_call_fn(task_raise, args, 2, &value, &error), CF_RAISED);
    ASSERT_EQ(value.type, CF_TYPE_NONE);
    check_error(error, CF_RAISED, "KeyError", "no such key");
    cf_error_free(error);
    cf_error_free(NULL);
    cf_value_free(&args[0]);
    cf_value_free(&args[1]);
}

/* executor.contract.call-fn.argument-checks: cf_call_fn refuses a NULL fn,
 * value or error, NULL args with nargs > 0 and an argument cf_value_copy
 * refuses: CF_EINVAL, the task not run, nothing written. */
TEST(executor_contract_call_fn_checks_its_arguments) {
    run_count runs;
    run_count_init(&runs);
    cf_value counter = run_count_value(&runs), value = cf_int(7);
    cf_value bad[2] = {run_count_value(&runs),
                       hand_made_buffer(CF_TYPE_STR, "\xff", 1)};
    cf_error *error = (cf_error *)&runs;
    ASSERT_STATUS(cf_call_fn(NULL, NULL, 0, &value, &error), CF_EINVAL);
    ASSERT_STATUS(cf_call_fn(task_count, &counter, 1, NULL, &error),
                  CF_EINVAL);
    ASSERT_STATUS(cf_call_fn(task_count, &counter, 1, &value, NULL),
                  CF_EINVAL);
    ASSERT_STATUS(cf_call_fn(task_count, NULL, 1, &value, &error), CF_EINVAL);
    ASSERT_STATUS(cf_call_fn(task_count, bad, 2, &value, &error), CF_EINVAL);
    ASSERT_EQ(run_count_get(&runs), 0);
    ASSERT_EQ(value.type, CF_TYPE_INT);
    ASSERT_TRUE(error == (cf_error *)&runs);
    ASSERT_OK(cf_call_fn(task_count, &counter, 1, &value, &error));
    ASSERT_EQ(run_count_get(&runs), 1);
    cf_value_free(&bad[1]);
    run_count_destroy(&runs);
}

/* ---- cf_log
 * ------------------------------------------------------------------------ */

/* executor.contract.log: cf_log formats its message and gives it to the log
 * hook at the level asked; it refuses an unknown level and a NULL format
 * (CF_EINVAL, nothing logged). */
TEST(executor_contract_log_gives_the_hook_a_formatted_line) {
    ASSERT_OK(cf_set_log_hook(capture_log, NULL));
    ASSERT_STATUS(cf_log((cf_log_level)45, "%s", "no such level"), CF_EINVAL);
    ASSERT_STATUS(cf_log(CF_LOG_ERROR, NULL), CF_EINVAL);
    check_nothing_logged();
    ASSERT_OK(cf_log(CF_LOG_ERROR, "Exception in %s: %d", "worker", 7));
    check_logged("Exception in worker: 7\n");
    ASSERT_EQ(critical_lines, 0);
    ASSERT_OK(cf_log(CF_LOG_CRITICAL, "broken"));
    ASSERT_EQ(critical_lines, 1);
}

/* ---- chunked map
 * ---------------------------------------------------------------- */

/* Maps task_return_arg over 0..6 with chunksize 3 on ex, checking the
 * results come back one by one in order. */
static void map_seven(cf_executor *ex) {
    cf_value args[7], v;
    cf_map_iter *it = NULL;
    for (int i = 0; i < 7; i++)
        args[i] = cf_int(i);
    ASSERT_OK(cf_map(ex, task_return_arg, args, 7, 1, LONG, 3, 0, &it));
    for (int i = 0; i < 7; i++) {
        ASSERT_OK(cf_map_next(it, &v, NULL));
        ASSERT_EQ(v.type, CF_TYPE_INT);
        ASSERT_EQ(v.as.i, i);
    }
    ASSERT_STATUS(cf_map_next(it, &v, NULL), CF_STOP);
    ASSERT_OK(cf_map_close(it));
}

/* executor.contract.set-chunked: an executor marked with
 * cf_executor_set_chunked gets cf_map's items in chunks of chunksize, one
 * call each (not of fn itself), and the results still come back one by
 * one; an unmarked one gets one call of fn per item. */
TEST(executor_contract_set_chunked_groups_map_items) {
    inliner chunked, plain;
    cf_executor *c = inliner_new(&chunked, INLINE_RUN, CF_OK);
    cf_executor *p = inliner_new(&plain, INLINE_RUN, CF_OK);
    ASSERT_OK(cf_executor_set_chunked(c));
    ASSERT_STATUS(cf_executor_set_chunked(NULL), CF_EINVAL);
    map_seven(c);
    ASSERT_EQ(chunked.submits, 3);
    ASSERT_TRUE(chunked.last_fn != task_return_arg);
    map_seven(p);
    ASSERT_EQ(plain.submits, 7);
    ASSERT_TRUE(plain.last_fn == task_return_arg);
    ASSERT_OK(cf_executor_free(c));
    ASSERT_OK(cf_executor_free(p));
}
