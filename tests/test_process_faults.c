/*
 * The process pool against what its own program and its tasks may do to it
 * (faults an outside probe found): a fork() of the program holding copies of
 * the pool's sockets, a program a task starts inheriting its worker's
 * socket, no process left to start, a stray frame header on a worker's
 * socket, SIGCHLD ignored by the program. Each must neither hang nor lie.
 *
 * The tasks get their gates and counters as arena ints (harness.h), so the
 * test process, the pool's workers and any child see the same memory.
 * Where a test must see that something happens "without waiting for"
 * another process, that process waits on a gate for twice LONG while the
 * test waits at most LONG: the old behaviour then fails the test instead of
 * hanging it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------- */

/* Submits task_kill_self: its future fails, within LONG, as a pool broken
 * by signal 9. */
static void check_kill_breaks(cf_executor *ex) {
    cf_future *f;
    ASSERT_OK(cf_submit(ex, task_kill_self, NULL, 0, &f));
    check_broken(f, "was killed by signal 9)");
    ASSERT_OK(cf_future_release(f));
}

/* In a child that may outlive a failed test: its standard streams go to
 * /dev/null, so that CTest, reading the test's output, does not wait for
 * it. */
static void quiet_streams(void) {
    int fd = open("/dev/null", O_RDWR);
    for (int i = 0; fd >= 0 && i < 3; i++)
        dup2(fd, i);
    if (fd > 2)
        close(fd);
}

/* ---- a fork() of the program ------------------------------------------- */

/* Forks a child of the program (no exec) that holds copies of every
 * descriptor the test process has, the pool's included, until hold opens
 * or twice LONG passes. */
static pid_t fork_holder(gate *hold) {
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        quiet_streams();
        _exit(gate_wait_for(hold, 2 * LONG) ? 0 : 1);
    }
    return pid;
}

static void release_holder(pid_t pid, gate *hold) {
    int status;
    gate_open(hold);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
}

/* What a thread freeing an executor saw. */
typedef struct freer {
    pthread_t thread;
    cf_executor *ex;
    cf_status status;
    gate returned;
} freer;

static void *freer_main(void *arg) {
    freer *fr = (freer *)arg;
    fr->status = cf_executor_free(fr->ex);
    gate_open(&fr->returned);
    return NULL;
}

/* process-pool.free-independent-of-forks: cf_executor_free returns while a
 * fork() of the program still holds copies of the pool's sockets. */
TEST(process_faults_fork_of_program_does_not_block_free) {
    gate hold;
    freer fr = {.status = CF_EINVAL};
    gate_init(&hold);
    gate_init(&fr.returned);
    fr.ex = ppool(2, CF_UNLIMITED_TASKS);
    run_int(fr.ex, task_getpid, NULL, 0);
    pid_t holder = fork_holder(&hold);
    ASSERT_EQ(pthread_create(&fr.thread, NULL, freer_main, &fr), 0);
    if (!gate_wait_for(&fr.returned, LONG)) {
        release_holder(holder, &hold);
        test_fail(__FILE__, __LINE__,
                  "free waited for a fork of the program to exit");
    }
    ASSERT_EQ(pthread_join(fr.thread, NULL), 0);
    ASSERT_OK(fr.status);
    release_holder(holder, &hold);
    gate_destroy(&hold);
    gate_destroy(&fr.returned);
}

/* process-pool.break-independent-of-forks: a worker killed while a fork()
 * of the program holds copies of the pool's sockets breaks the pool at
 * once, not when that fork exits. */
TEST(process_faults_fork_of_program_does_not_delay_breaking) {
    gate hold;
    gate_init(&hold);
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    run_int(ex, task_getpid, NULL, 0);
    pid_t holder = fork_holder(&hold);
    check_kill_breaks(ex);
    ASSERT_OK(cf_executor_free(ex));
    release_holder(holder, &hold);
    gate_destroy(&hold);
}

/* ---- a program started by a task --------------------------------------- */

/* The pid of the program the last task_start_program started, in the
 * arena; killed at exit whatever the test's outcome. */
static atomic_int *program_pid;

static void kill_program(void) {
    if (program_pid && atomic_load(program_pid) > 0)
        kill(atomic_load(program_pid), SIGKILL);
}

/* arg0: the arena int program_pid. Starts `sleep` (twice LONG) in the
 * background, as system("sleep ... &") would, notes its pid and returns
 * the worker's pid. */
static void task_start_program(cf_call *call) {
    atomic_int *pid_out = arena_arg(call, 0);
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%d", (int)(2 * LONG) + 1);
    pid_t pid = fork();
    if (pid == 0) {
        quiet_streams();
        execl("/bin/sleep", "sleep", seconds, (char *)NULL);
        _exit(127);
    }
    atomic_store(pid_out, pid);
    cf_return(call, cf_int(getpid()));
}

/* The descriptors a process has open, from /proc/<pid>/fd; -1 if it
 * cannot be read. */
static int open_fds_of(pid_t pid) {
    char path[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Whether pid runs `sleep` and is asleep in it, so its exec is over (the
 * kernel names the new program before it closes the close-on-exec
 * descriptors; a process still exec'ing is running, not sleeping). */
static bool sleeping_in_sleep(pid_t pid) {
    char path[64], target[64] = "", state = 0;
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f && fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
        state = 0;
    if (f)
        fclose(f);
    return strstr(target, "sleep") && state == 'S';
}

/* Starts a program from a task of ex and waits until it has exec'ed;
 * returns the pid of the worker that ran the task. */
static int64_t start_program(cf_executor *ex) {
    if (!program_pid) {
        program_pid = arena_alloc(sizeof *program_pid);
        atexit(kill_program);
    }
    cf_value arg = arena_value(program_pid);
    int64_t worker = run_int(ex, task_start_program, &arg, 1);
    pid_t pid = atomic_load(program_pid);
    ASSERT_GT(pid, 0);
    double deadline = test_now() + LONG;
    while (!sleeping_in_sleep(pid))
        ASSERT_DBL_OP(test_now(), <, deadline);
    return worker;
}

/* process-pool.worker-descriptors-close-on-exec: a program a task starts
 * inherits only the worker's standard streams, not its socket, so the next
 * death of that worker breaks the pool at once. */
TEST(process_faults_task_program_does_not_inherit_socket) {
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    start_program(ex);
    ASSERT_EQ(open_fds_of(atomic_load(program_pid)), 3);
    check_kill_breaks(ex);
    ASSERT_OK(cf_executor_free(ex));
    kill_program();
}

/* process-pool.max-tasks-per-child: a worker that retires after its one
 * call, having started a program that lives on, is replaced for the next
 * call at once. */
TEST(process_faults_retired_worker_replaced_despite_its_program) {
    cf_executor *ex = ppool(1, 1);
    int64_t first = start_program(ex);
    cf_future *next;
    cf_value v;
    ASSERT_OK(cf_submit(ex, task_getpid, NULL, 0, &next));
    ASSERT_OK(cf_future_result(next, LONG, &v));
    ASSERT_NE(v.as.i, first);
    ASSERT_OK(cf_future_release(next));
    ASSERT_OK(cf_executor_free(ex));
    kill_program();
}

/* ---- no process can be started ----------------------------------------- */

/* The one child process of this process (whichever thread forked it),
 * from /proc/self/task/<tid>/children; 0 if there is not exactly one. */
static pid_t only_child(void) {
    DIR *d = opendir("/proc/self/task");
    pid_t child = 0;
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        for (int pid; f && fscanf(f, "%d", &pid) == 1; n++)
            child = pid;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n == 1 ? child : 0;
}

/* In a child (its own user when the test runs as root, so that the limit
 * holds): a pool whose first worker cannot be forked (its fork server's
 * RLIMIT_NPROC below the processes of its user) fails that call, then
 * cf_submit gives CF_EAGAIN (its cf_last_error Python's BlockingIOError),
 * and once processes can be made again the pool works. Returns the line of the
 * first failed check, 0 if all held. */
static int no_worker_child(void) {
    struct rlimit lim;
    cf_future *f;
    const cf_error *e;
    cf_value v;
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        return __LINE__;
    prctl(PR_SET_DUMPABLE, 1); /* LeakSanitizer needs it after setuid */
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    pid_t server = only_child();
    if (!server || prlimit(server, RLIMIT_NPROC, NULL, &lim) != 0)
        return __LINE__;
    rlim_t soft = lim.rlim_cur;
    lim.rlim_cur = 1; /* below this user's processes: fork fails */
    if (prlimit(server, RLIMIT_NPROC, &lim, NULL) != 0)
        return __LINE__;
    if (cf_submit(ex, task_getpid, NULL, 0, &f) != CF_OK ||
        cf_future_exception(f, LONG, &e) != CF_OK)
        return __LINE__;
    if (!e || cf_error_status(e) != CF_RAISED ||
        strcmp(cf_error_type(e), "BlockingIOError") != 0) {
        fprintf(stderr, "the call gave %s: %s\n", cf_error_type(e),
                cf_error_message(e));
        return __LINE__;
    }
    cf_future_release(f);
    if (cf_submit(ex, task_getpid, NULL, 0, &f) != CF_EAGAIN ||
        strcmp(cf_error_type(cf_last_error()), "BlockingIOError") != 0 ||
        strncmp(cf_error_message(cf_last_error()), "[Errno 11] ", 11) != 0)
        return __LINE__;
    lim.rlim_cur = soft;
    if (prlimit(server, RLIMIT_NPROC, &lim, NULL) != 0)
        return __LINE__;
    /* Each refused submit makes the pool try again; one now succeeds. A
     * call accepted while a try from before the limit rose is still under
     * way fails with that try (BlockingIOError), and the next one tries
     * again. */
    for (double deadline = test_now() + LONG;;) {
        if (test_now() > deadline)
            return __LINE__;
        cf_status st = cf_submit(ex, task_getpid, NULL, 0, &f);
        if (st == CF_EAGAIN) {
            sched_yield();
            continue;
        }
        if (st != CF_OK)
            return __LINE__;
        st = cf_future_result(f, LONG, &v);
        cf_future_release(f);
        if (st == CF_OK && v.type == CF_TYPE_INT)
            break;
        if (st != CF_RAISED)
            return __LINE__;
    }
    return cf_executor_free(ex) == CF_OK ? 0 : __LINE__;
}

/* process-pool.submit-eagain: no worker can be started (RLIMIT_NPROC) ->
 * the waiting call fails with BlockingIOError, cf_submit returns
 * CF_EAGAIN, and the pool is not broken for good. */
TEST(process_faults_no_worker_startable_then_recovers) {
    int status;
    pid_t pid = fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        int line = no_worker_child();
        if (line)
            fprintf(stderr, "%s:%d: FAIL in the child\n", __FILE__, line);
        _exit(line ? 1 : 0);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* ---- a stray frame header ---------------------------------------------- */

/* Writes, on the worker's socket (descriptor 3), a header announcing a
 * frame of almost 4 GiB and what a real frame would send next, then waits
 * to be killed. */
static void task_huge_header(cf_call *call) {
    static const unsigned char stray[] = {0xf0, 0xff, 0xff, 0xff, 5,    0,
                                          0,    0,    0xff, 0xff, 0xff, 0xff,
                                          5,    0,    0,    0,    0,    0};
    (void)call;
    if (write(3, stray, sizeof stray) != (ssize_t)sizeof stray)
        _exit(98);
    for (;;)
        pause();
}

/* process-pool.corrupt-frame: a frame header that announces more than its
 * frame holds breaks the pool as garbage does, and free returns. */
TEST(process_faults_huge_frame_header_breaks_pool) {
    check_task_breaks_pool(task_huge_header, "could not be decoded)");
}

/* ---- SIGCHLD ignored --------------------------------------------------- */

/* process-pool.worker-death-breaks-pool: with SIGCHLD ignored by the
 * program (and so inherited by the pool's processes), a killed worker is
 * still reported as killed by its signal. */
TEST(process_faults_sigchld_ignored_still_reports_the_signal) {
    signal(SIGCHLD, SIG_IGN);
    cf_executor *ex = ppool(1, CF_UNLIMITED_TASKS);
    run_int(ex, task_getpid, NULL, 0);
    check_kill_breaks(ex);
    ASSERT_OK(cf_executor_free(ex));
    signal(SIGCHLD, SIG_DFL);
}

/* ---- a long initializer error ------------------------------------------ */

/* Octets of the initializer's message: many reads of the socket,
 * so its frame is checked before anything is reserved for it. */
#define LONG_MESSAGE (1024 * 1024)

/* Raises a ValueError whose message is LONG_MESSAGE zeros. */
static void init_raise_long(cf_call *call) {
    cf_raise(call, "ValueError", "%0*d", LONG_MESSAGE, 0);
}

static atomic_int long_logs;

static void count_long_log(cf_log_level level, const char *message,
                           void *ctx) {
    (void)ctx;
    if (level == CF_LOG_CRITICAL &&
        strncmp(message, "Exception in initializer: ValueError: 000", 41) == 0)
        atomic_fetch_add(&long_logs, 1);
}

/* process-pool.initializer-failure-breaks: an initializer error too long
 * for one read is still logged (cut, as every log line is), and the pool
 * breaks as for any initializer that raises, not as for garbage. */
TEST(process_faults_long_initializer_error_is_logged) {
    cf_process_pool_options o;
    cf_executor *ex;
    cf_future *f;
    ASSERT_OK(cf_set_log_hook(count_long_log, NULL));
    ASSERT_OK(cf_process_pool_options_init(&o));
    o.max_workers = 1;
    o.initializer = init_raise_long;
    ASSERT_OK(cf_process_pool_new(&o, &ex));
    ASSERT_OK(cf_submit(ex, task_getpid, NULL, 0, &f));
    check_broken(f, "exited with status 3)");
    ASSERT_OK(cf_executor_free(ex));
    ASSERT_OK(cf_set_log_hook(NULL, NULL));
    ASSERT_EQ(atomic_load(&long_logs), 1);
    ASSERT_OK(cf_future_release(f));
}
