/*
 * process_pool.c -- ProcessPoolExecutor: calls run in worker processes
 * forked from a single-threaded fork server; a manager thread in the parent
 * sends them and completes their futures.
 *
 * Processes: the manager thread forks the fork server as it starts (so the
 * server's PR_SET_PDEATHSIG follows the manager thread, which outlives every
 * use of it). The server closes every inherited descriptor but its socket
 * to the parent, then on each request ("S") makes a socketpair, forks a
 * worker and passes the parent's end back with SCM_RIGHTS and the pid. It
 * reaps its children and reports each exit; at EOF on its socket it kills
 * (SIGKILL) and reaps what is left and exits. It learns of exits through
 * a pidfd per worker (Linux 5.3). Workers are single-threaded
 * and run one call at a time: read a task frame, decode, run, send the
 * outcome frame (ipc.c). Forked children end with _exit only.
 *
 * Locks: pool->lock guards the queue, the shutdown and broken flags and the
 * start-up handshake; join_lock serialises joiners of the manager thread
 * and is never taken with pool->lock held. Everything about processes,
 * sockets and workers belongs to the manager thread alone and is touched
 * with no lock. Futures are completed, and their callbacks run, in the
 * manager thread with no lock held.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BROKEN_TYPE "BrokenProcessPool"
#define BROKEN_MESSAGE                                                        \
    "A process in the process pool was terminated abruptly while the "        \
    "future was running or pending."
#define PICKLE_MESSAGE "cannot pickle 'pointer' object"
/* A worker whose initializer raised exits with this status. */
#define INIT_FAILED_STATUS 3
/* A worker that got a task it could not decode exits with this status. */
#define BAD_TASK_STATUS 4
/* The descriptor a worker's socket and the server's socket sit on. */
#define CHILD_FD 3

/* ---- the pool --------------------------------------------------------- */

/* What the fork server tells the parent. */
enum { MSG_SPAWNED = 1, MSG_SPAWN_FAILED, MSG_EXITED };
struct server_msg {
    int32_t kind, pid, info; /* info: errno, or the wait status */
};

enum worker_state {
    W_IDLE,     /* waiting for a task */
    W_BUSY,     /* one task in flight */
    W_RETIRING, /* ran max_tasks_per_child tasks; will exit */
    W_CLOSED    /* the parent closed its socket (shutdown); will exit */
};

struct worker {
    pid_t pid;
    int fd; /* -1 once closed */
    enum worker_state state;
    cf_future *task; /* W_BUSY */
    int ntasks;
    bool exited; /* the server reported its end */
    int wstatus;
    /* the frame being read */
    unsigned char header[CF__FRAME_HEADER];
    size_t header_got;
    unsigned char *data;
    size_t want, got;
};

struct process_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t join_lock;
    struct cf__queue queue;
    bool shutdown, broken;
    int start_state; /* 0 starting, 1 running, -1 the server did not start */
    /* set before the manager starts, read-only after */
    size_t max_workers;
    int max_tasks; /* 0: no limit */
    cf_fn initializer;
    cf_value *initargs;
    size_t ninitargs;
    int wake[2];
    pthread_t manager;
    bool joined; /* under join_lock */
    /* the manager thread's own */
    pid_t server_pid;
    int server_fd;
    struct worker *workers;
    size_t nworkers, starting;
    struct pollfd *pfds;
    struct cf__buf out;
    bool finished;
};

/* The pool whose manager thread this is. */
static _Thread_local struct process_pool *current_pool;

/* ---- I/O helpers ------------------------------------------------------ */

static bool write_all(int fd, const void *data, size_t len) {
    const unsigned char *at = data;
    while (len) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        at += n;
        len -= (size_t)n;
    }
    return true;
}

/* 1: read len octets; 0: EOF before any; -1: error or EOF midway. */
static int read_all(int fd, void *data, size_t len) {
    unsigned char *at = data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, at + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 && got == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

/* Moves fd to CHILD_FD and closes every other descriptor above 2. */
static void keep_only(int fd) {
    if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
        _exit(1);
    close_range(CHILD_FD + 1, ~0u, 0);
}

/* ---- the worker process ----------------------------------------------- */

/* Sends the outcome; a PTR result becomes Python's pickling TypeError. */
static void worker_send(int fd, enum cf__outcome kind, const cf_value *value,
                        const cf_error *error) {
    struct cf__buf b = {0};
    cf_error *own = NULL;
    if (kind == CF__OUT_VALUE && value->type == CF_TYPE_PTR) {
        own = cf__error_new(CF_RAISED, "TypeError", PICKLE_MESSAGE);
        kind = CF__OUT_ERROR;
        error = own ? own : &cf__nomem_error;
    }
    cf_status st = cf__frame_outcome(&b, kind, value, error);
    if (st != CF_OK) {
        cf_error *e = cf__error_new(CF_RAISED, "MemoryError",
                                    "the result is too large to send");
        st = cf__frame_outcome(&b, CF__OUT_ERROR, NULL,
                               e ? e : &cf__nomem_error);
        cf__error_free(e);
    }
    cf__error_free(own);
    if (st != CF_OK || !write_all(fd, b.data, b.len))
        _exit(0); /* the parent is gone, or nothing can be said */
    cf__buf_free(&b);
}

/* Runs the initializer; if it raises, says so and exits. */
static void worker_initialize(const struct process_pool *p) {
    cf_value value;
    cf_error *error;
    if (!p->initializer)
        return;
    cf__call_invoke(p->initializer, p->initargs, p->ninitargs, &value, &error);
    cf_value_free(&value);
    if (!error)
        return;
    worker_send(CHILD_FD, CF__OUT_INIT_FAILED, NULL, error);
    _exit(INIT_FAILED_STATUS);
}

/* Reads and runs one task; false at EOF. */
static bool worker_run_one(void) {
    unsigned char header[CF__FRAME_HEADER];
    int r = read_all(CHILD_FD, header, sizeof header);
    if (r <= 0)
        return false;
    uint32_t len = cf__frame_length(header);
    unsigned char *data = malloc(len ? len : 1);
    if (!data)
        _exit(BAD_TASK_STATUS);
    if (read_all(CHILD_FD, data, len) != 1 && len)
        return false;
    cf_fn fn;
    cf_value *args, value;
    size_t nargs;
    cf_error *error;
    if (cf__parse_task(data, len, &fn, &args, &nargs) != CF_OK)
        _exit(BAD_TASK_STATUS); /* Python: unpickling failed in a worker */
    free(data);
    cf__call_invoke(fn, args, nargs, &value, &error);
    for (size_t i = 0; i < nargs; i++)
        cf_value_free(&args[i]);
    free(args);
    worker_send(CHILD_FD, error ? CF__OUT_ERROR : CF__OUT_VALUE, &value,
                error);
    cf__error_free(error);
    cf_value_free(&value);
    return true;
}

static _Noreturn void worker_main(const struct process_pool *p, int fd,
                                  pid_t server) {
    sigset_t none;
    keep_only(fd);
    signal(SIGCHLD, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server)
        _exit(0);
    worker_initialize(p);
    for (int n = 0; p->max_tasks == 0 || n < p->max_tasks; n++)
        if (!worker_run_one())
            break;
    _exit(0);
}

/* ---- the fork server process ------------------------------------------ */

/* The server's children, each with a pidfd that polls readable once it
 * has exited (no SIGCHLD handler: ThreadSanitizer defers signal handlers,
 * and a poll would never hear of the exit). */
struct server {
    pid_t self;
    pid_t *pids;
    struct pollfd *pfds; /* [0]: the parent's socket; [1 + i]: pids[i] */
    size_t npids, cap;
};

static void server_send(int kind, pid_t pid, int info, int pass_fd) {
    struct server_msg m = {kind, pid, info};
    struct iovec iov = {&m, sizeof m};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    while (sendmsg(CHILD_FD, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ; /* failure: the parent is gone, and EOF will tell */
}

static void server_spawn(const struct process_pool *p, struct server *s) {
    int sv[2];
    if (s->npids == s->cap) {
        size_t cap = s->cap * 2;
        pid_t *pids = realloc(s->pids, cap * sizeof *pids);
        if (pids)
            s->pids = pids;
        struct pollfd *pfds =
            pids ? realloc(s->pfds, (cap + 1) * sizeof *pfds) : NULL;
        if (!pfds) {
            server_send(MSG_SPAWN_FAILED, 0, ENOMEM, -1);
            return;
        }
        s->pfds = pfds;
        s->cap = cap;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        server_send(MSG_SPAWN_FAILED, 0, errno, -1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        worker_main(p, sv[1], s->self);
    int err = errno;
    close(sv[1]);
    int pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (pid > 0 && pidfd < 0) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    if (pid < 0) {
        server_send(MSG_SPAWN_FAILED, 0, err, -1);
    } else {
        s->pids[s->npids] = pid;
        s->pfds[1 + s->npids++] = (struct pollfd){pidfd, POLLIN, 0};
        server_send(MSG_SPAWNED, pid, 0, sv[0]);
    }
    close(sv[0]);
}

/* Reaps and reports the child at index i, whose pidfd is readable. */
static void server_reap(struct server *s, size_t i) {
    int status;
    pid_t pid = s->pids[i];
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    close(s->pfds[1 + i].fd);
    s->npids--;
    s->pids[i] = s->pids[s->npids];
    s->pfds[1 + i] = s->pfds[1 + s->npids];
    server_send(MSG_EXITED, pid, status, -1);
}

static _Noreturn void server_main(const struct process_pool *p, int fd,
                                  pid_t parent) {
    struct server s = {getpid(), NULL, NULL, 0, 8};
    sigset_t none;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(0);
    keep_only(fd);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    s.pids = malloc(s.cap * sizeof *s.pids);
    s.pfds = malloc((s.cap + 1) * sizeof *s.pfds);
    if (!s.pids || !s.pfds)
        _exit(1);
    s.pfds[0] = (struct pollfd){CHILD_FD, POLLIN, 0};
    for (;;) {
        char c;
        if (poll(s.pfds, 1 + s.npids, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t i = s.npids; i-- > 0;)
            if (s.pfds[1 + i].revents)
                server_reap(&s, i);
        if (s.pfds[0].revents) {
            ssize_t n = read(CHILD_FD, &c, 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* the parent shut down, or died */
            if (c == 'S')
                server_spawn(p, &s);
        }
    }
    for (size_t i = 0; i < s.npids; i++)
        kill(s.pids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    _exit(0);
}

/* Forks the server, from the manager thread. */
static cf_status start_server(struct process_pool *p) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return CF_EAGAIN;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        server_main(p, sv[1], parent);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return CF_EAGAIN;
    }
    p->server_pid = pid;
    p->server_fd = sv[0];
    return CF_OK;
}

/* Closes the server's socket (it kills and reaps what is left of the
 * workers, then exits) and reaps the server. */
static void stop_server(struct process_pool *p) {
    if (p->server_fd < 0)
        return;
    close(p->server_fd);
    p->server_fd = -1;
    while (waitpid(p->server_pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void wake(struct process_pool *p) {
    ssize_t r = write(p->wake[1], "w", 1); /* full: a wake-up is pending */
    (void)r;
}

/* ---- breaking the pool (manager thread) ------------------------------- */

static void fail_all(cf_future *all, const char *message) {
    for (cf_future *f = all, *next; f; f = next) {
        next = f->queue_next;
        cf_work_fail(cf__future_work(f), CF_BROKEN, BROKEN_TYPE, message);
    }
}

/* Python's BrokenProcessPool: stops every process, then fails every
 * running and queued call with BROKEN_MESSAGE and the detail. */
static void break_pool(struct process_pool *p, const char *fmt, ...)
    CF_PRINTF(2, 3);
static void break_pool(struct process_pool *p, const char *fmt, ...) {
    char detail[160], message[sizeof BROKEN_MESSAGE + 200];
    cf_future *running = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(message, sizeof message, "%s (%s)", BROKEN_MESSAGE, detail);
    pthread_mutex_lock(&p->lock);
    p->broken = true;
    cf_future *queued = cf__queue_take_all(&p->queue);
    pthread_mutex_unlock(&p->lock);
    stop_server(p); /* it kills and reaps every worker */
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (w->fd >= 0)
            close(w->fd);
        free(w->data);
        if (w->task) {
            w->task->queue_next = running;
            running = w->task;
        }
    }
    p->nworkers = p->starting = 0;
    p->finished = true;
    fail_all(running, message);
    fail_all(queued, message);
}

static void describe_exit(char *buf, size_t size, const struct worker *w) {
    if (!w->exited)
        snprintf(buf, size, "worker %d ended; the fork server is gone",
                 (int)w->pid);
    else if (WIFSIGNALED(w->wstatus))
        snprintf(buf, size, "worker %d was killed by signal %d", (int)w->pid,
                 WTERMSIG(w->wstatus));
    else
        snprintf(buf, size, "worker %d exited with status %d", (int)w->pid,
                 WEXITSTATUS(w->wstatus));
}

/* ---- sending calls (manager thread) ----------------------------------- */

/* Sends queued calls to idle workers, one each. */
static void dispatch(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers && !p->finished; i++) {
        struct worker *w = &p->workers[i];
        while (w->state == W_IDLE) {
            pthread_mutex_lock(&p->lock);
            cf_future *f = cf__queue_pop(&p->queue);
            pthread_mutex_unlock(&p->lock);
            if (!f)
                return;
            cf_work *work = cf__future_work(f);
            if (cf_future_set_running_or_notify_cancel(f) != CF_OK) {
                cf_work_release(work); /* cancelled while queued */
                continue;
            }
            cf_status st = cf__frame_task(&p->out, f->fn, f->args, f->nargs);
            if (st != CF_OK) {
                cf_work_fail(work, CF_RAISED,
                             st == CF_EINVAL ? "TypeError" : "MemoryError",
                             st == CF_EINVAL ? PICKLE_MESSAGE
                                             : "the call is too large");
                continue;
            }
            w->state = W_BUSY;
            w->task = f;
            w->ntasks++;
            /* a failed send means the worker died: its EOF and exit
             * report break the pool */
            write_all(w->fd, p->out.data, p->out.len);
        }
    }
}

/* Asks the server for workers while calls wait and the limit allows. */
static void request_workers(struct process_pool *p) {
    size_t idle = 0, queued = 0;
    for (size_t i = 0; i < p->nworkers; i++)
        idle += p->workers[i].state == W_IDLE;
    pthread_mutex_lock(&p->lock);
    for (cf_future *f = p->queue.head; f && queued <= idle + p->starting;
         f = f->queue_next)
        queued++;
    pthread_mutex_unlock(&p->lock);
    while (queued > idle + p->starting &&
           p->nworkers + p->starting < p->max_workers) {
        if (!write_all(p->server_fd, "S", 1))
            return; /* the server is gone: its EOF breaks the pool */
        p->starting++;
    }
}

/* ---- receiving (manager thread) --------------------------------------- */

static struct worker *find_worker(struct process_pool *p, pid_t pid) {
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i].pid == pid)
            return &p->workers[i];
    return NULL;
}

static void add_worker(struct process_pool *p, pid_t pid, int fd) {
    struct worker *w = &p->workers[p->nworkers++];
    memset(w, 0, sizeof *w);
    w->pid = pid;
    w->fd = fd;
    w->state = W_IDLE;
}

/* One message from the server; false when it is gone. */
static bool read_server_msg(struct process_pool *p) {
    struct server_msg m;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {&m, sizeof m};
    struct msghdr msg = {0};
    int fd = -1;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t n = recvmsg(p->server_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c;
         c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (n > 0 && (size_t)n < sizeof m &&
        recv(p->server_fd, (char *)&m + n, sizeof m - (size_t)n,
             MSG_WAITALL) != (ssize_t)(sizeof m - (size_t)n))
        n = 0;
    if (n <= 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    if (m.kind == MSG_SPAWNED || m.kind == MSG_SPAWN_FAILED)
        p->starting--;
    if (m.kind == MSG_SPAWNED && fd >= 0) {
        add_worker(p, m.pid, fd);
    } else if (m.kind == MSG_EXITED) {
        struct worker *w = find_worker(p, m.pid);
        if (w) {
            w->exited = true;
            w->wstatus = m.info;
        }
    } else if (p->nworkers == 0 && p->starting == 0) {
        if (fd >= 0)
            close(fd);
        break_pool(p, "a worker could not be started: errno %d",
                   m.kind == MSG_SPAWNED ? EBADF : (int)m.info);
    }
    return true;
}

static void read_server(struct process_pool *p) {
    for (int i = 0; i < 16 && !p->finished; i++) {
        struct pollfd pf = {p->server_fd, POLLIN, 0};
        if (poll(&pf, 1, 0) <= 0)
            return;
        if (!read_server_msg(p)) {
            if (!p->finished)
                break_pool(p, "the fork server exited");
            return;
        }
    }
}

/* A whole outcome frame from w. */
static void handle_frame(struct process_pool *p, struct worker *w,
                         const unsigned char *data, size_t len) {
    enum cf__outcome kind;
    cf_value value;
    cf_error *error;
    cf_status st = cf__parse_outcome(data, len, &kind, &value, &error);
    if (st != CF_OK) {
        break_pool(p, "a reply from worker %d could not be %s", (int)w->pid,
                   st == CF_NOMEM ? "allocated" : "decoded");
        return;
    }
    if (kind == CF__OUT_INIT_FAILED) {
        cf__log(CF_LOG_CRITICAL, "Exception in initializer: %s: %s",
                cf_error_type(error), cf_error_message(error));
        cf__error_free(error);
        return; /* the worker exits: its death breaks the pool */
    }
    if (w->state != W_BUSY) {
        cf_value_free(&value);
        cf__error_free(error);
        break_pool(p, "worker %d sent a reply nobody asked for", (int)w->pid);
        return;
    }
    cf_future *f = w->task;
    w->task = NULL;
    w->state = p->max_tasks && w->ntasks >= p->max_tasks ? W_RETIRING : W_IDLE;
    if (cf__future_finish(f, error ? NULL : &value, error, NULL) != CF_OK) {
        cf__error_free(error);
        cf_value_free(&value);
    }
    cf_work_release(cf__future_work(f));
}

/* Reads what w sent; at EOF closes its socket. */
static void read_worker(struct process_pool *p, struct worker *w) {
    while (!p->finished && w->fd >= 0) {
        bool in_header = w->header_got < CF__FRAME_HEADER;
        ssize_t n = in_header
                        ? recv(w->fd, w->header + w->header_got,
                               CF__FRAME_HEADER - w->header_got, MSG_DONTWAIT)
                        : recv(w->fd, w->data + w->got, w->want - w->got,
                               MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(w->fd);
            w->fd = -1;
            return;
        }
        if (in_header) {
            w->header_got += (size_t)n;
            if (w->header_got < CF__FRAME_HEADER)
                continue;
            w->want = cf__frame_length(w->header);
            w->got = 0;
            w->data = malloc(w->want ? w->want : 1);
            if (!w->data) {
                break_pool(p,
                           "a reply of %zu bytes from worker %d could "
                           "not be allocated",
                           w->want, (int)w->pid);
                return;
            }
        } else {
            w->got += (size_t)n;
        }
        if (w->got == w->want) {
            unsigned char *data = w->data;
            w->data = NULL;
            w->header_got = 0;
            handle_frame(p, w, data, w->want);
            free(data);
        }
    }
}

/* Forgets workers that are gone; one that went unexpectedly breaks the
 * pool. */
static void settle_workers(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers && !p->finished; i++) {
        struct worker *w = &p->workers[i];
        if (w->fd >= 0 || (!w->exited && p->server_fd >= 0))
            continue;
        if (w->state != W_RETIRING && w->state != W_CLOSED) {
            char detail[120];
            describe_exit(detail, sizeof detail, w);
            break_pool(p, "%s", detail);
            return;
        }
        free(w->data);
        p->workers[i--] = p->workers[--p->nworkers];
    }
}

/* ---- the manager thread ----------------------------------------------- */

/* True once the pool is shut down, drained, and every process is gone;
 * closes idle workers' sockets once nothing is left to run. */
static bool manager_done(struct process_pool *p) {
    if (p->finished)
        return true;
    pthread_mutex_lock(&p->lock);
    bool drained = p->shutdown && !p->queue.head;
    pthread_mutex_unlock(&p->lock);
    if (!drained)
        return false;
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (w->state == W_IDLE) {
            close(w->fd);
            w->fd = -1;
            w->state = W_CLOSED;
        }
    }
    settle_workers(p);
    if (p->finished || p->nworkers || p->starting)
        return p->finished;
    stop_server(p);
    p->finished = true;
    return true;
}

/* Waits for something to happen and handles it. */
static void manager_poll(struct process_pool *p) {
    size_t n = 0;
    p->pfds[n++] = (struct pollfd){p->wake[0], POLLIN, 0};
    p->pfds[n++] = (struct pollfd){p->server_fd, POLLIN, 0};
    for (size_t i = 0; i < p->nworkers; i++)
        if (p->workers[i].fd >= 0)
            p->pfds[n++] = (struct pollfd){p->workers[i].fd, POLLIN, 0};
    if (poll(p->pfds, n, -1) < 0)
        return;
    if (p->pfds[0].revents) {
        char buf[64];
        while (read(p->wake[0], buf, sizeof buf) > 0)
            ;
    }
    for (size_t k = 2; k < n && !p->finished; k++) {
        if (!p->pfds[k].revents)
            continue;
        for (size_t i = 0; i < p->nworkers; i++)
            if (p->workers[i].fd == p->pfds[k].fd)
                read_worker(p, &p->workers[i]);
    }
    if (!p->finished && p->pfds[1].revents)
        read_server(p);
    settle_workers(p);
}

static void *manager_main(void *arg) {
    struct process_pool *p = arg;
    current_pool = p;
    cf_status st = start_server(p);
    pthread_mutex_lock(&p->lock);
    p->start_state = st == CF_OK ? 1 : -1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (st != CF_OK)
        return NULL;
    while (!manager_done(p)) {
        dispatch(p);
        if (!p->finished)
            request_workers(p);
        if (!p->finished)
            manager_poll(p);
    }
    current_pool = NULL;
    return NULL;
}

/* ---- operations ------------------------------------------------------- */

static cf_status pool_submit(void *self, cf_work *work) {
    struct process_pool *p = self;
    cf_status st = CF_OK;
    pthread_mutex_lock(&p->lock);
    if (p->broken || p->shutdown)
        st = p->broken ? CF_BROKEN : CF_SHUTDOWN;
    else
        cf__queue_push(&p->queue, cf__work_future(work));
    pthread_mutex_unlock(&p->lock);
    if (st == CF_OK)
        wake(p);
    return st;
}

static void join_manager(struct process_pool *p) {
    pthread_mutex_lock(&p->join_lock);
    if (!p->joined)
        p->joined = pthread_join(p->manager, NULL) == 0;
    pthread_mutex_unlock(&p->join_lock);
}

static cf_status pool_shutdown(void *self, bool wait, bool cancel_futures) {
    struct process_pool *p = self;
    cf_future *cancelled = NULL;
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    if (cancel_futures)
        cancelled = cf__queue_take_all(&p->queue);
    pthread_mutex_unlock(&p->lock);
    wake(p);
    cf__works_cancel(cancelled);
    if (!wait)
        return CF_OK;
    if (current_pool == p)
        return CF_DEADLOCK; /* the manager cannot wait for itself */
    join_manager(p);
    return CF_OK;
}

static void free_pool_memory(struct process_pool *p) {
    cf__values_free(p->initargs, p->ninitargs);
    free(p->workers);
    free(p->pfds);
    cf__buf_free(&p->out);
    for (int i = 0; i < 2; i++)
        if (p->wake[i] >= 0)
            close(p->wake[i]);
    free(p);
}

static void pool_free(void *self) {
    struct process_pool *p = self;
    cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->cond);
    free_pool_memory(p);
}

static const cf_executor_ops process_pool_ops = {
    "ProcessPoolExecutor", pool_submit, pool_shutdown, pool_free};

/* ---- construction ----------------------------------------------------- */

cf_status cf_process_pool_options_init(cf_process_pool_options *o) {
    if (!o)
        return CF_EINVAL;
    memset(o, 0, sizeof *o);
    o->max_workers = CF_DEFAULT_WORKERS;
    o->max_tasks_per_child = CF_UNLIMITED_TASKS;
    return CF_OK;
}

static bool options_valid(const cf_process_pool_options *o) {
    return (o->max_workers > 0 || o->max_workers == CF_DEFAULT_WORKERS) &&
           (o->max_tasks_per_child > 0 ||
            o->max_tasks_per_child == CF_UNLIMITED_TASKS) &&
           (!o->ninitargs || o->initargs);
}

/* Copies the options and makes the tables and the wake-up pipe. */
static cf_status pool_prepare(struct process_pool *p,
                              const cf_process_pool_options *o) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->wake[0] = p->wake[1] = p->server_fd = -1;
    p->max_workers = o->max_workers == CF_DEFAULT_WORKERS
                         ? (size_t)(cpus > 0 ? cpus : 1)
                         : (size_t)o->max_workers;
    p->max_tasks = o->max_tasks_per_child > 0 ? o->max_tasks_per_child : 0;
    p->initializer = o->initializer;
    p->workers = calloc(p->max_workers, sizeof *p->workers);
    p->pfds = calloc(p->max_workers + 2, sizeof *p->pfds);
    if (!p->workers || !p->pfds)
        return CF_NOMEM;
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC))
        return CF_EAGAIN;
    if (!o->initializer)
        return CF_OK;
    cf_status st = cf__values_dup(o->initargs, o->ninitargs, &p->initargs);
    if (st == CF_OK)
        p->ninitargs = o->ninitargs;
    return st;
}

/* Starts the manager thread, every signal blocked in it (it inherits the
 * mask), and waits until it has forked the server. */
static cf_status start_manager(struct process_pool *p) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&p->manager, NULL, manager_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        return CF_EAGAIN;
    pthread_mutex_lock(&p->lock);
    while (p->start_state == 0)
        pthread_cond_wait(&p->cond, &p->lock);
    bool started = p->start_state > 0;
    pthread_mutex_unlock(&p->lock);
    if (started)
        return CF_OK;
    pthread_join(p->manager, NULL);
    return CF_EAGAIN;
}

cf_status cf_process_pool_new(const cf_process_pool_options *options,
                              cf_executor **out) {
    cf_process_pool_options defaults;
    cf_process_pool_options_init(&defaults);
    const cf_process_pool_options *o = options ? options : &defaults;
    if (!out || !options_valid(o))
        return CF_EINVAL;
    struct process_pool *p = calloc(1, sizeof *p);
    if (!p)
        return CF_NOMEM;
    cf_status st = pool_prepare(p, o);
    if (st == CF_OK)
        st = cf__pool_sync_init(&p->lock, &p->join_lock, &p->cond);
    if (st != CF_OK)
        goto err_free_memory;
    st = start_manager(p);
    if (st != CF_OK)
        goto err_destroy_sync;
    st = cf_executor_new(&process_pool_ops, p, out);
    if (st == CF_OK) {
        cf__executor_set_runs_chunks(*out);
        return CF_OK;
    }
    pool_shutdown(p, true, false);
err_destroy_sync:
    cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->cond);
err_free_memory:
    free_pool_memory(p);
    return st;
}
