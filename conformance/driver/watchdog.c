/*
 * watchdog.c -- runs each scenario in a child process, in its own process
 * group, and watches it (SCENARIOS.md "Running", "Deadlocks"): the child
 * says on a pipe which statement it is about to run; a child that does not
 * end within the limit is reported with that line and its group killed; a
 * child that dies is reported with the signal or status and the line; a
 * deadlock scenario's child reports the deadlock and blocks, and the
 * watchdog kills its group and checks that no process of it is left. The
 * gates' folder is made here and removed here, whatever happened.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

typedef struct watch {
    const cf_scenario *sc;
    sc_pools pool;
    pid_t pid;
    int fd;
    int index; /* the statement running: -1 none yet */
    bool finishing, deadlock, deadlock_ok;
    int failures;
} watch;

static double now(void) {
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

/* Reads every message waiting on the pipe. */
static void drain(watch *w) {
    sc_msg m;

    while (read(w->fd, &m, sizeof m) == (ssize_t)sizeof m) {
        switch (m.kind) {
        case SC_MSG_LINE:
            w->index = m.value;
            break;
        case SC_MSG_FINISH:
            w->finishing = true;
            break;
        case SC_MSG_FAILED:
            w->failures = m.value;
            break;
        case SC_MSG_DEADLOCK:
            w->deadlock = true;
            w->deadlock_ok = m.value != 0;
            break;
        }
    }
}

/* Where the child was: "LINE" and the statement. */
static int where_line(const watch *w) {
    if (w->index < 0 || (size_t)w->index >= w->sc->nstmts)
        return w->sc->nstmts ? w->sc->stmts[0].line : 1;
    return w->sc->stmts[w->index].line;
}

static const char *where_text(const watch *w) {
    if (w->finishing)
        return "the end of the scenario (opening the gates, shutting the "
               "pool down with wait=True)";
    if (w->index < 0 || (size_t)w->index >= w->sc->nstmts)
        return "the start of the scenario";
    return w->sc->stmts[w->index].text;
}

/* Kills the group and reaps what is ours in it; true once none is left
 * (waits up to about 5 s for the kernel to finish). */
static bool kill_group(pid_t pgid) {
    double until = now() + 5;

    kill(-pgid, SIGKILL);
    for (;;) {
        while (waitpid(-pgid, NULL, WNOHANG) > 0)
            ;
        if (kill(-pgid, 0) != 0 && errno == ESRCH)
            return true;
        if (now() > until)
            return false;
        kill(-pgid, SIGKILL);
        sleep_ms(10);
    }
}

static void child(const cf_scenario *sc, sc_pools pool, const char *folder,
                  const sc_options *opt, int fds[2]) {
    int rc;

    setpgid(0, 0);
    close(fds[0]);
    rc = sc_run(sc, pool, folder, opt, fds[1]);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

/* Waits for the child; returns its wait status, or -1 if it hung. */
static int supervise(watch *w, double limit) {
    double deadline = now() + limit;
    struct pollfd pfd;
    int status;

    pfd.fd = w->fd;
    pfd.events = POLLIN;
    for (;;) {
        pid_t got;
        poll(&pfd, 1, 50);
        drain(w);
        if (w->deadlock)
            return 0;
        got = waitpid(w->pid, &status, WNOHANG);
        if (got == w->pid) {
            drain(w);
            return status;
        }
        if (now() > deadline)
            return -1;
    }
}

/* Reports what the child's end says; true if it passed. */
static bool judge(watch *w, int status, const sc_options *opt) {
    const char *file = w->sc->file;

    if (status == -1) {
        fprintf(stderr, "%s:%d: hung at: %s (the watchdog's limit is %g s)\n",
                file, where_line(w), where_text(w), opt->timeout);
        return false;
    }
    if (w->deadlock) {
        if (w->failures)
            return false;
        return w->deadlock_ok;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr,
                "%s:%d: the scenario's process was killed by signal %d "
                "while running: %s\n",
                file, where_line(w), WTERMSIG(status), where_text(w));
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && w->failures)
        return false;
    fprintf(stderr,
            "%s:%d: the scenario's process exited with status %d while "
            "running: %s\n",
            file, where_line(w), WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            where_text(w));
    return false;
}

bool sc_watch(const cf_scenario *sc, sc_pools pool, const sc_options *opt) {
    char *folder = sc_gates_make();
    watch w;
    int fds[2], status;
    bool ok;

    memset(&w, 0, sizeof w);
    w.sc = sc;
    w.pool = pool;
    w.index = -1;
    if (!folder || pipe(fds) != 0) {
        fprintf(stderr, "%s: cannot make the gates' folder or a pipe: %s\n",
                sc->file, strerror(errno));
        free(folder);
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    w.pid = fork();
    if (w.pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", sc->file, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        sc_gates_remove(folder);
        free(folder);
        return false;
    }
    if (w.pid == 0)
        child(sc, pool, folder, opt, fds);
    setpgid(w.pid, w.pid); /* also here: no race with the child's own */
    close(fds[1]);
    w.fd = fds[0];
    fcntl(w.fd, F_SETFL, fcntl(w.fd, F_GETFL) | O_NONBLOCK);
    status = supervise(&w, opt->timeout);
    ok = judge(&w, status, opt);
    if (!kill_group(w.pid) && (w.deadlock || status == -1)) {
        fprintf(stderr,
                "%s: processes of the scenario's group are left after the "
                "watchdog killed it\n",
                sc->file);
        ok = false;
    }
    while (waitpid(w.pid, NULL, WNOHANG) > 0)
        ;
    close(w.fd);
    sc_gates_remove(folder);
    free(folder);
    return ok;
}
