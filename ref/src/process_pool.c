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
 * learns of exits through a pidfd per worker (Linux 5.3), reaps its children
 * and reports each exit; at EOF on its socket it kills (SIGKILL) and reaps
 * what is left and exits. Forked children end with _exit only.
 *
 * Calls: the manager sends up to DEPTH calls ahead to each worker, so that
 * a worker never waits for the manager between short calls. A call sent
 * ahead stays PENDING and cancellable: it has a claim word in memory shared
 * with the workers (mapped before the server is forked), and the worker
 * runs it only if it moves the word from QUEUED to RUNNING first (see
 * cf__future_set_claim). A worker left idle takes back (revokes) a call
 * still queued at a busier one. Workers are single-threaded: they read
 * task frames (ipc.c) in batches and run the calls one at a time, in order.
 *
 * Outcomes: a worker leaves each call's outcome (CF__OUT_SKIPPED for a call
 * cancelled or revoked) in the call's slot of the shared memory, or, if it
 * does not fit there, sends it on its socket first; then it counts the call
 * done. So a busy worker answers without a system call. The manager
 * collects outcomes in the order the calls were sent. Before it sleeps in
 * poll() it marks itself asleep, then looks at the counts once more; a
 * worker that counts a call done while the manager is marked asleep wakes
 * it with a CF__OUT_WAKE frame (once per sleep). Sockets to workers are
 * non-blocking on the manager's side, so neither end can block the other.
 *
 * Sleeping: with nothing to do, the manager first lingers for up to
 * LINGER_NS, yielding the processor, while it watches for submits,
 * wake-ups and outcomes (the events counter and the shared counts); a
 * caller that submits as soon as it has a result then finds it awake, and
 * a call costs two thread wake-ups, not three. Then it sleeps in poll().
 *
 * Locks: pool->lock guards the queue, the shutdown, broken and sleeping
 * flags and the start-up and cancel handshakes; join_lock serialises
 * joiners of the manager thread and is never taken with pool->lock held.
 * Everything about processes, sockets and workers is under io_lock, which
 * the manager thread holds except while it is blocked in poll(): a submit
 * that finds the manager asleep takes io_lock and sends the call itself,
 * sparing the round trip a thread wake-up. Order: io_lock, then
 * pool->lock, then the futures' stripe locks. Futures are completed, and
 * their callbacks run, in the manager thread, with io_lock held (a submit
 * from a callback then leaves the sending to the manager).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
/* Calls sent ahead to one worker at most (its ring of slots). */
#define DEPTH 32
/* Octets of an outcome payload a slot holds; a larger one goes on the
 * socket. */
#define SLOT_DATA 240
/* A slot's len when its outcome went on the socket. */
#define SENT_ON_SOCKET UINT32_MAX
/* How long the manager stays awake, with nothing to do, before it sleeps:
 * about a thread wake-up and a submit, so that the next call of a caller
 * that submits as soon as it has a result finds it awake. */
#define LINGER_NS 50000
/* Octets read from a socket at a time. */
#define READ_CHUNK 65536

/* ---- the memory shared with the workers ------------------------------- */

/* One call sent ahead. */
struct slot {
    atomic_uint claim; /* enum cf__claim */
    /* Written by the worker before it counts the call done: the octets of
     * the outcome payload in data, or SENT_ON_SOCKET. */
    uint32_t len;
    unsigned char data[SLOT_DATA];
};

/* A worker's slots; slot number block * DEPTH + i is slots[i]. */
struct block {
    alignas(64) atomic_uint done; /* calls finished, counted by the worker */
    struct slot slots[DEPTH];
};

struct shared {
    /* The manager's sleeps, twice: odd while it is asleep in poll(). */
    alignas(64) atomic_uint sleeps;
    struct block blocks[]; /* [max_workers] */
};

/* ---- the pool --------------------------------------------------------- */

/* What the fork server tells the parent. */
enum { MSG_SPAWNED = 1, MSG_SPAWN_FAILED, MSG_EXITED };
struct server_msg {
    int32_t kind, pid, info; /* info: errno, or the wait status */
};

enum worker_state {
    W_OPEN,     /* takes calls */
    W_RETIRING, /* was sent max_tasks_per_child calls; exits after them */
    W_CLOSED    /* the parent closed its socket (shutdown); will exit */
};

/* Octets received and not yet parsed, or queued and not yet sent. */
struct stream {
    struct cf__buf buf;
    size_t off; /* parsed or sent up to here */
};

struct worker {
    pid_t pid;
    int fd; /* -1 once closed */
    enum worker_state state;
    int nsent;    /* task frames sent, for max_tasks_per_child */
    size_t block; /* its slots: shared->blocks[block] */
    bool exited;  /* the server reported its end */
    int wstatus;
    /* The calls sent and not collected, oldest first: ring[(head + i) %
     * DEPTH] uses slot (head + i) % DEPTH of the block; NULL for a call
     * revoked and sent elsewhere, or answered on the socket. */
    cf_future *ring[DEPTH];
    unsigned head, count;
    unsigned live;      /* the non-NULL ones */
    unsigned collected; /* calls collected, to compare with block->done */
    struct stream in, out;
};

struct process_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t join_lock;
    pthread_mutex_t io_lock; /* below: the manager's, or a submit's */
    struct cf__queue queue;
    bool shutdown, broken;
    bool sleeping;    /* the manager polls with the queue empty: wake it */
    bool cancel_sent; /* shutdown(cancel_futures) waits for the manager */
    bool manager_gone;
    atomic_uint events; /* submits and wake-ups, for a lingering manager */
    int start_state; /* 0 starting, 1 running, -1 the server did not start */
    /* set before the manager starts, read-only after */
    size_t max_workers;
    int max_tasks; /* 0: no limit */
    bool lingers;  /* more than one processor: the manager lingers */
    cf_fn initializer;
    cf_value *initargs;
    size_t ninitargs;
    int wake[2];
    struct shared *shared; /* mapped before the server is forked */
    size_t shared_size;
    pthread_t manager;
    bool joined; /* under join_lock */
    /* the manager thread's own */
    pid_t server_pid;
    int server_fd;
    struct worker *workers;
    bool *blocks_used; /* [max_workers] */
    size_t nworkers, starting;
    bool spawn_failed; /* no more requests until a worker goes */
    struct pollfd *pfds;
    struct cf__buf frame;
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

/* Moves fd to CHILD_FD and closes every other descriptor above 2. */
static void keep_only(int fd) {
    if (fd != CHILD_FD && dup2(fd, CHILD_FD) < 0)
        _exit(1);
    close_range(CHILD_FD + 1, ~0u, 0);
}

/* Room for `room` more octets after what s holds, moving what is left to
 * parse to the front first; false if it cannot be allocated. */
static bool stream_reserve(struct stream *s, size_t room) {
    struct cf__buf *b = &s->buf;
    if (s->off) {
        memmove(b->data, b->data + s->off, b->len - s->off);
        b->len -= s->off;
        s->off = 0;
    }
    if (b->cap - b->len >= room)
        return true;
    if (room > SIZE_MAX - b->len)
        return false;
    unsigned char *data = realloc(b->data, b->len + room);
    if (!data)
        return false;
    b->data = data;
    b->cap = b->len + room;
    return true;
}

/*
 * The next whole frame in s: its payload at *payload (valid until s is
 * read into again), its length at *len. Otherwise false, with *need set to
 * how many more octets s must hold for one, or 0 if that frame cannot be
 * allocated.
 */
static bool stream_frame(struct stream *s, const unsigned char **payload,
                         size_t *len, size_t *need) {
    size_t have = s->buf.len - s->off;
    *need = CF__FRAME_HEADER - have;
    if (have < CF__FRAME_HEADER)
        return false;
    uint32_t n = cf__frame_length(s->buf.data + s->off);
    if (have - CF__FRAME_HEADER < n) {
        *need = CF__FRAME_HEADER + (size_t)n - have;
        return false;
    }
    *payload = s->buf.data + s->off + CF__FRAME_HEADER;
    *len = n;
    s->off += CF__FRAME_HEADER + (size_t)n;
    return true;
}

/* Reads what fd has (at least `need` octets' room); the octets read, 0 at
 * EOF, -1 with errno set (EAGAIN: nothing yet; ENOMEM: no room). */
static ssize_t stream_read(struct stream *s, int fd, size_t need) {
    if (!stream_reserve(s, need > READ_CHUNK ? need : READ_CHUNK)) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    while ((n = read(fd, s->buf.data + s->buf.len, s->buf.cap - s->buf.len)) <
               0 &&
           errno == EINTR)
        ;
    if (n > 0)
        s->buf.len += (size_t)n;
    return n;
}

static void stream_free(struct stream *s) {
    cf__buf_free(&s->buf);
    s->off = 0;
}

/* ---- the worker process ----------------------------------------------- */

static struct slot *slot_at(const struct process_pool *p, size_t slot) {
    return &p->shared->blocks[slot / DEPTH].slots[slot % DEPTH];
}

/* Replaces b's contents with an outcome frame; a PTR result becomes
 * Python's pickling TypeError, an outcome too large to encode a
 * MemoryError. Exits if not even that can be said. */
static void worker_encode(struct cf__buf *b, uint32_t slot,
                          enum cf__outcome kind, const cf_value *value,
                          const cf_error *error) {
    cf_error *own = NULL;
    if (kind == CF__OUT_VALUE && value->type == CF_TYPE_PTR) {
        own = cf__error_new(CF_RAISED, "TypeError", PICKLE_MESSAGE);
        kind = CF__OUT_ERROR;
        error = own ? own : &cf__nomem_error;
    }
    cf_status st = cf__frame_outcome(b, slot, kind, value, error);
    if (st != CF_OK) {
        cf_error *e = cf__error_new(CF_RAISED, "MemoryError",
                                    "the result is too large to send");
        st = cf__frame_outcome(b, slot, CF__OUT_ERROR, NULL,
                               e ? e : &cf__nomem_error);
        cf__error_free(e);
    }
    cf__error_free(own);
    if (st != CF_OK)
        _exit(0);
}

/* Sends b's frame to the parent; exits if the parent is gone. */
static void worker_write(const struct cf__buf *b) {
    if (!write_all(CHILD_FD, b->data, b->len))
        _exit(0);
}

/* Leaves the outcome of the call under `slot` in the slot if it fits,
 * else sends it on the socket. */
static void worker_answer(const struct process_pool *p, struct cf__buf *b,
                          uint32_t slot, enum cf__outcome kind,
                          const cf_value *value, const cf_error *error) {
    struct slot *s = slot_at(p, slot);
    worker_encode(b, slot, kind, value, error);
    size_t len = b->len - CF__FRAME_HEADER;
    if (len <= SLOT_DATA) {
        memcpy(s->data, b->data + CF__FRAME_HEADER, len);
        s->len = (uint32_t)len;
    } else {
        worker_write(b);
        s->len = SENT_ON_SOCKET;
    }
}

/* Runs the initializer; if it raises, says so and exits. */
static void worker_initialize(const struct process_pool *p,
                              struct cf__buf *out) {
    cf_value value;
    cf_error *error;
    if (!p->initializer)
        return;
    cf__call_invoke(p->initializer, p->initargs, p->ninitargs, &value, &error);
    cf_value_free(&value);
    if (!error)
        return;
    worker_encode(out, CF__NO_SLOT, CF__OUT_INIT_FAILED, NULL, error);
    worker_write(out);
    _exit(INIT_FAILED_STATUS);
}

/* What a worker keeps between calls. */
struct worker_self {
    struct block *block; /* NULL until the first call names it */
    unsigned done;       /* calls finished */
    unsigned woke;       /* the manager's sleep it last woke it from */
    struct cf__buf out;
};

/* Counts a call done; wakes the manager if it is asleep (and this worker
 * has not woken it from this sleep yet). The count is stored before the
 * sleep is read, and the manager marks its sleep before it reads the
 * counts (all sequentially consistent), so one of them sees the other. */
static void worker_count_done(const struct process_pool *p,
                              struct worker_self *self) {
    atomic_store(&self->block->done, ++self->done);
    unsigned sleeps = atomic_load(&p->shared->sleeps);
    if (sleeps % 2 == 1 && sleeps != self->woke) {
        self->woke = sleeps;
        worker_encode(&self->out, CF__NO_SLOT, CF__OUT_WAKE, NULL, NULL);
        worker_write(&self->out);
    }
}

/* Claims and runs one task frame, or skips it if the parent cancelled or
 * revoked it; exits if it does not decode (Python: unpickling failed in a
 * worker) or names a slot outside this worker's block. */
static void worker_run(const struct process_pool *p, const void *payload,
                       size_t len, struct worker_self *self) {
    uint32_t slot;
    cf_fn fn;
    cf_value *args, value;
    size_t nargs;
    cf_error *error;
    if (cf__parse_task(payload, len, &slot, &fn, &args, &nargs) != CF_OK ||
        slot >= p->max_workers * DEPTH)
        _exit(BAD_TASK_STATUS);
    struct block *block = &p->shared->blocks[slot / DEPTH];
    if (!self->block)
        self->block = block;
    if (block != self->block)
        _exit(BAD_TASK_STATUS);
    unsigned queued = CF__CLAIM_QUEUED;
    if (atomic_compare_exchange_strong_explicit(
            &slot_at(p, slot)->claim, &queued, CF__CLAIM_RUNNING,
            memory_order_acq_rel, memory_order_acquire)) {
        cf__call_invoke(fn, args, nargs, &value, &error);
        worker_answer(p, &self->out, slot,
                      error ? CF__OUT_ERROR : CF__OUT_VALUE, &value, error);
        cf__error_free(error);
        cf_value_free(&value);
    } else {
        worker_answer(p, &self->out, slot, CF__OUT_SKIPPED, NULL, NULL);
    }
    cf__values_free(args, nargs);
    worker_count_done(p, self);
}

static _Noreturn void worker_main(const struct process_pool *p, int fd,
                                  pid_t server) {
    struct stream in = {0};
    struct worker_self self = {0};
    sigset_t none;
    keep_only(fd);
    signal(SIGCHLD, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server)
        _exit(0);
    worker_initialize(p, &self.out);
    for (int n = 0; p->max_tasks == 0 || n < p->max_tasks;) {
        const unsigned char *payload;
        size_t len, need;
        if (stream_frame(&in, &payload, &len, &need)) {
            worker_run(p, payload, len, &self);
            n++;
        } else {
            ssize_t got = stream_read(&in, CHILD_FD, need);
            if (got < 0 && errno == ENOMEM)
                _exit(BAD_TASK_STATUS);
            if (got <= 0)
                break; /* EOF: the parent closed its end */
        }
    }
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
    atomic_fetch_add_explicit(&p->events, 1, memory_order_release);
    ssize_t r = write(p->wake[1], "w", 1); /* full: a wake-up is pending */
    (void)r;
}

/* ---- workers' calls (manager thread) --------------------------------- */

/* The slot for the next call sent to w. */
static size_t next_slot(const struct worker *w) {
    return w->block * DEPTH + (w->head + w->count) % DEPTH;
}

static bool can_take(const struct worker *w) {
    return w->state == W_OPEN && w->fd >= 0 && w->count < DEPTH;
}

/* The call at w's ring position i (0: the oldest). */
static cf_future **ring_at(struct worker *w, unsigned i) {
    return &w->ring[(w->head + i) % DEPTH];
}

/* Closes w's socket and frees its buffers; its calls stay in its ring. */
static void close_worker(struct worker *w) {
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    stream_free(&w->in);
    stream_free(&w->out);
}

/* ---- breaking the pool (manager thread) ------------------------------- */

static void fail_all(cf_future *all, const char *message) {
    for (cf_future *f = all, *next; f; f = next) {
        next = f->queue_next;
        cf_work_fail(cf__future_work(f), CF_BROKEN, BROKEN_TYPE, message);
    }
}

/* Python's BrokenProcessPool: stops every process, then fails every call
 * sent to a worker and every queued one with BROKEN_MESSAGE and the
 * detail. */
static void break_pool(struct process_pool *p, const char *fmt, ...)
    CF_PRINTF(2, 3);
static void break_pool(struct process_pool *p, const char *fmt, ...) {
    char detail[160], message[sizeof BROKEN_MESSAGE + 200];
    cf_future *sent = NULL;
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
        close_worker(w);
        for (unsigned k = 0; k < w->count; k++) {
            cf_future *f = *ring_at(w, k);
            if (f) {
                f->queue_next = sent;
                sent = f;
            }
        }
        w->count = 0;
    }
    p->nworkers = p->starting = 0;
    p->finished = true;
    fail_all(sent, message);
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

/* Sends what is queued for w, as much as its socket takes now. */
static void worker_flush(struct worker *w) {
    struct stream *o = &w->out;
    while (w->fd >= 0 && o->off < o->buf.len) {
        ssize_t n = send(w->fd, o->buf.data + o->off, o->buf.len - o->off,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break; /* it died: its EOF and exit report break the pool */
        o->off += (size_t)n;
    }
    o->buf.len = o->off = 0;
}

/*
 * Queues f's call for w under claim word `slot`: makes the word f's first
 * if `fresh` (a call from the queue; a moved one has it already). If f was
 * cancelled meanwhile it is released; if its frame cannot be made it fails
 * (a PTR, or no memory), except in a submitting thread, which must not run
 * callbacks: the call then goes back to the front of the queue for the
 * manager. False only then.
 */
static bool push_call(struct process_pool *p, struct worker *w, cf_future *f,
                      size_t slot, bool fresh) {
    cf_status st =
        cf__frame_task(&p->frame, (uint32_t)slot, f->fn, f->args, f->nargs);
    if (st == CF_OK)
        st = cf__buf_put(&w->out.buf, p->frame.data, p->frame.len);
    if (st != CF_OK && current_pool != p) {
        pthread_mutex_lock(&p->lock);
        cf__queue_push_front(&p->queue, f);
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    if (st != CF_OK) {
        cf_work_fail(cf__future_work(f), CF_RAISED,
                     st == CF_EINVAL ? "TypeError" : "MemoryError",
                     st == CF_EINVAL ? PICKLE_MESSAGE
                                     : "the call is too large");
        return true;
    }
    if (fresh && !cf__future_set_claim(f, &slot_at(p, slot)->claim)) {
        w->out.buf.len -= p->frame.len;
        cf_work_release(cf__future_work(f)); /* cancelled while queued */
        return true;
    }
    *ring_at(w, w->count++) = f;
    w->live++;
    if (p->max_tasks && ++w->nsent >= p->max_tasks)
        w->state = W_RETIRING;
    return true;
}

/* Sends a queued call to w; false once the queue is empty (or a call must
 * wait for the manager: see push_call). */
static bool send_queued(struct process_pool *p, struct worker *w) {
    pthread_mutex_lock(&p->lock);
    cf_future *f = cf__queue_pop(&p->queue);
    pthread_mutex_unlock(&p->lock);
    return f && push_call(p, w, f, next_slot(w), true);
}

/* The worker with the most calls sent and not yet claimed, at least one
 * (the oldest of each is taken to be running); NULL if none. */
static struct worker *busiest(struct process_pool *p) {
    struct worker *best = NULL;
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (w->live >= 2 && (!best || w->live > best->live))
            best = w;
    }
    return best;
}

/* Moves the oldest call still queued at the busiest worker to the idle
 * worker w (calls start in the order they were submitted, as from
 * Python's one call queue): false if there is none. */
static bool steal(struct process_pool *p, struct worker *w) {
    struct worker *v = busiest(p);
    for (unsigned k = 1; v && k < v->count; k++) {
        cf_future **at = ring_at(v, k);
        size_t slot = next_slot(w);
        if (!*at || !cf__future_move_claim(*at, &slot_at(p, slot)->claim))
            continue; /* moved already, cancelled, or claimed just now */
        cf_future *f = *at;
        *at = NULL;
        v->live--;
        push_call(p, w, f, slot, false);
        return true;
    }
    return false;
}

/* Sends queued calls: one to each idle worker first, then round after
 * round to every worker with room. */
static void send_all_queued(struct process_pool *p) {
    bool more = true;
    for (unsigned round = 0; more && round < DEPTH; round++)
        for (size_t i = 0; more && i < p->nworkers; i++) {
            struct worker *w = &p->workers[i];
            if (can_take(w) && w->count <= round)
                more = send_queued(p, w);
        }
}

/* Sends what it can of what is queued for each worker; true if some of it
 * must wait until a socket has room. */
static bool flush_all(struct process_pool *p) {
    bool left = false;
    for (size_t i = 0; i < p->nworkers; i++) {
        worker_flush(&p->workers[i]);
        left = left || p->workers[i].out.buf.len;
    }
    return left;
}

/* Sends calls to workers in the order they were submitted: an idle worker
 * first takes back a call still waiting behind a busy one (it is older
 * than anything queued), then the queued calls go out. */
static void dispatch(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (can_take(w) && w->live == 0)
            steal(p, w);
    }
    send_all_queued(p);
    flush_all(p);
}

/* In shutdown(cancel_futures): cancels every call sent and not yet
 * claimed. */
static void cancel_sent(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers; i++)
        for (unsigned k = 0; k < p->workers[i].count; k++) {
            cf_future *f = *ring_at(&p->workers[i], k);
            if (f)
                cf_future_cancel(f);
        }
}

/* Asks the server for workers while calls wait and the limit allows. A
 * call sent ahead behind another waits too: a new worker takes it back. */
static void request_workers(struct process_pool *p) {
    size_t idle = 0, queued = 0;
    if (p->spawn_failed)
        return;
    for (size_t i = 0; i < p->nworkers; i++) {
        const struct worker *w = &p->workers[i];
        idle += can_take(w) && w->count == 0;
        queued += w->live > 1 ? w->live - 1 : 0;
    }
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
    w->state = W_OPEN;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (p->blocks_used[w->block])
        w->block++; /* fewer than max_workers are in use */
    p->blocks_used[w->block] = true;
    atomic_store(&p->shared->blocks[w->block].done, 0);
    /* Up front, so that memory use does not depend on whether the worker
     * ever wakes the manager (stream_read tries again on failure). */
    stream_reserve(&w->in, READ_CHUNK);
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
    } else {
        /* fork failed, but workers remain: they run the calls, and no new
         * one is asked for until one of them goes (no retry spin) */
        if (fd >= 0)
            close(fd);
        p->spawn_failed = true;
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

/* Completes f, sent to w at ring position pos, with the outcome of kind
 * (CF__OUT_VALUE, CF__OUT_ERROR or CF__OUT_SKIPPED for a cancelled one). */
static void complete_call(struct worker *w, unsigned pos, cf_future *f,
                          enum cf__outcome kind, cf_value *value,
                          cf_error *error) {
    w->ring[pos] = NULL;
    w->live--;
    if (kind != CF__OUT_SKIPPED &&
        cf__future_finish(f, error ? NULL : value, error, NULL) != CF_OK) {
        cf__error_free(error);
        cf_value_free(value);
    }
    cf_work_release(cf__future_work(f));
}

/* Whether ring position pos of w holds a call sent and not collected. */
static bool in_ring(const struct worker *w, size_t pos) {
    return pos < DEPTH && (pos + DEPTH - w->head) % DEPTH < w->count;
}

/* A whole frame from w's socket: an outcome too large for its slot, the
 * initializer's error, or a wake-up. */
static void handle_frame(struct process_pool *p, struct worker *w,
                         const unsigned char *data, size_t len) {
    uint32_t slot;
    enum cf__outcome kind;
    cf_value value;
    cf_error *error;
    cf_status st = cf__parse_outcome(data, len, &slot, &kind, &value, &error);
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
    if (kind == CF__OUT_WAKE)
        return;
    size_t pos = slot - w->block * DEPTH;
    cf_future *f =
        kind != CF__OUT_SKIPPED && in_ring(w, pos) ? w->ring[pos] : NULL;
    if (!f) {
        cf_value_free(&value);
        cf__error_free(error);
        break_pool(p, "worker %d sent a reply nobody asked for", (int)w->pid);
        return;
    }
    complete_call(w, (unsigned)pos, f, kind, &value, error);
}

/* Collects the outcomes w has counted done, oldest first, up to one whose
 * frame on the socket has not been read yet. */
static void collect(struct process_pool *p, struct worker *w) {
    struct block *b = &p->shared->blocks[w->block];
    unsigned done = atomic_load_explicit(&b->done, memory_order_acquire);
    while (!p->finished && w->count && w->collected != done) {
        unsigned pos = w->head;
        const struct slot *s = &b->slots[pos];
        cf_future *f = w->ring[pos];
        if (f && s->len == SENT_ON_SOCKET)
            return;
        if (f) {
            uint32_t slot;
            enum cf__outcome kind;
            cf_value value;
            cf_error *error;
            cf_status st = s->len > SLOT_DATA
                               ? CF_EINVAL
                               : cf__parse_outcome(s->data, s->len, &slot,
                                                   &kind, &value, &error);
            if (st == CF_OK &&
                (slot != w->block * DEPTH + pos ||
                 kind == CF__OUT_INIT_FAILED || kind == CF__OUT_WAKE)) {
                cf_value_free(&value);
                cf__error_free(error);
                st = CF_EINVAL;
            }
            if (st != CF_OK) {
                break_pool(p, "an outcome from worker %d could not be %s",
                           (int)w->pid,
                           st == CF_NOMEM ? "allocated" : "decoded");
                return;
            }
            complete_call(w, pos, f, kind, &value, error);
        }
        w->head = (pos + 1) % DEPTH;
        w->count--;
        w->collected++;
    }
}

/* Whether a worker has counted done a call not collected yet. */
static bool outcomes_waiting(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers; i++) {
        const struct worker *w = &p->workers[i];
        if (w->count &&
            atomic_load(&p->shared->blocks[w->block].done) != w->collected)
            return true;
    }
    return false;
}

/* Reads and handles what w sent; at EOF closes its socket. A read that
 * leaves room in the buffer emptied the socket: what comes after it, the
 * next poll() reports, so no read is spent just to hear EAGAIN. */
static void read_worker(struct process_pool *p, struct worker *w) {
    bool drained = false;
    for (;;) {
        const unsigned char *payload;
        size_t len, need;
        while (!p->finished && w->fd >= 0 &&
               stream_frame(&w->in, &payload, &len, &need))
            handle_frame(p, w, payload, len);
        if (p->finished || w->fd < 0 || drained)
            return;
        ssize_t n = stream_read(&w->in, w->fd, need);
        drained = n > 0 && w->in.buf.len < w->in.buf.cap;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0 && errno == ENOMEM) {
            break_pool(p,
                       "a reply of %zu bytes from worker %d could not be "
                       "allocated",
                       need, (int)w->pid);
            return;
        }
        if (n <= 0) {
            close_worker(w);
            return;
        }
    }
}

/* Forgets workers that are gone; one that went unexpectedly (with calls,
 * or while it should take more) breaks the pool. */
static void settle_workers(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers && !p->finished; i++) {
        struct worker *w = &p->workers[i];
        if (w->fd >= 0 || (!w->exited && p->server_fd >= 0))
            continue;
        if (w->state == W_OPEN || w->count) {
            char detail[120];
            describe_exit(detail, sizeof detail, w);
            break_pool(p, "%s", detail);
            return;
        }
        close_worker(w);
        p->blocks_used[w->block] = false;
        p->workers[i--] = p->workers[--p->nworkers];
        p->spawn_failed = false; /* one went: a new one may be asked for */
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
        if (w->fd >= 0 && w->count == 0) {
            close_worker(w);
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

/* Answers a shutdown(cancel_futures) that waits for the manager. */
static void answer_cancel(struct process_pool *p) {
    pthread_mutex_lock(&p->lock);
    bool asked = p->cancel_sent;
    pthread_mutex_unlock(&p->lock);
    if (!asked)
        return;
    cancel_sent(p);
    pthread_mutex_lock(&p->lock);
    p->cancel_sent = false;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static long elapsed_ns(const struct timespec *since) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L +
           (t.tv_nsec - since->tv_nsec);
}

/* Whether something happened since the manager's loop read `events`: a
 * submit or wake-up that dispatch and request_workers may have missed, or
 * an outcome. */
static bool news(struct process_pool *p, unsigned events) {
    return atomic_load_explicit(&p->events, memory_order_acquire) != events ||
           outcomes_waiting(p);
}

/* Before the manager sleeps: stays awake for up to LINGER_NS while
 * nothing happens, giving the processor to anything else runnable. True
 * if something did. */
static bool linger(struct process_pool *p, unsigned events) {
    struct timespec start;
    if (news(p, events) || !p->lingers)
        return news(p, events);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (elapsed_ns(&start) < LINGER_NS) {
        sched_yield();
        if (news(p, events))
            return true;
    }
    return false;
}

/* Whether to poll: not while calls wait and a worker has room for them.
 * *at_once: poll without waiting, for something happened since the loop
 * read `events` (a submit after dispatch and request_workers ran must not
 * be slept through). A submit wakes a manager about to sleep with the
 * queue empty. */
static bool manager_may_sleep(struct process_pool *p, unsigned events,
                              bool *at_once) {
    bool room = false;
    for (size_t i = 0; i < p->nworkers && !room; i++)
        room = can_take(&p->workers[i]);
    pthread_mutex_lock(&p->lock);
    bool empty = !p->queue.head;
    pthread_mutex_unlock(&p->lock);
    if (!empty && room)
        return false;
    *at_once = linger(p, events);
    pthread_mutex_lock(&p->lock);
    empty = !p->queue.head;
    /* a submit counts its event under the lock: seen here, or it sees
     * sleeping */
    *at_once = *at_once || atomic_load_explicit(
                               &p->events, memory_order_relaxed) != events;
    p->sleeping = empty && !*at_once;
    pthread_mutex_unlock(&p->lock);
    return *at_once || empty || !room;
}

/* Waits for something to happen and handles it: a worker's outcomes
 * (collected from every worker, whichever woke the manager), its frames
 * and its end, the server's messages, a submit. */
static void manager_poll(struct process_pool *p, bool at_once) {
    size_t n = 0;
    p->pfds[n++] = (struct pollfd){p->wake[0], POLLIN, 0};
    p->pfds[n++] = (struct pollfd){p->server_fd, POLLIN, 0};
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (w->fd >= 0)
            p->pfds[n++] = (struct pollfd){
                w->fd, POLLIN | (w->out.buf.len ? POLLOUT : 0), 0};
    }
    int timeout = 0;
    if (!at_once) {
        atomic_fetch_add(&p->shared->sleeps, 1); /* asleep: workers wake it */
        timeout = outcomes_waiting(p) ? 0 : -1;
    }
    pthread_mutex_unlock(&p->io_lock);
    int ready = poll(p->pfds, n, timeout);
    pthread_mutex_lock(&p->io_lock);
    if (!at_once)
        atomic_fetch_add(&p->shared->sleeps, 1);
    pthread_mutex_lock(&p->lock);
    p->sleeping = false;
    pthread_mutex_unlock(&p->lock);
    if (ready < 0)
        return;
    if (ready > 0 && p->pfds[0].revents) {
        char buf[64];
        while (read(p->wake[0], buf, sizeof buf) > 0)
            ;
    }
    for (size_t k = 2; k < n && ready > 0 && !p->finished; k++) {
        if (!p->pfds[k].revents)
            continue;
        for (size_t i = 0; i < p->nworkers; i++) {
            struct worker *w = &p->workers[i];
            if (w->fd != p->pfds[k].fd)
                continue;
            if (p->pfds[k].revents & POLLOUT)
                worker_flush(w);
            read_worker(p, w);
            break;
        }
    }
    for (size_t i = 0; i < p->nworkers && !p->finished; i++)
        collect(p, &p->workers[i]);
    if (!p->finished && ready > 0 && p->pfds[1].revents)
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
    pthread_mutex_lock(&p->io_lock);
    while (st == CF_OK && !manager_done(p)) {
        unsigned events =
            atomic_load_explicit(&p->events, memory_order_acquire);
        answer_cancel(p);
        dispatch(p);
        if (!p->finished)
            request_workers(p);
        /* dispatch may have drained the queue (calls cancelled while
         * queued) and so finished a shutdown: never sleep past that */
        bool at_once = false;
        if (!manager_done(p) && manager_may_sleep(p, events, &at_once))
            manager_poll(p, at_once);
    }
    pthread_mutex_unlock(&p->io_lock);
    current_pool = NULL;
    pthread_mutex_lock(&p->lock);
    p->manager_gone = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- operations ------------------------------------------------------- */

/*
 * From a submitting thread while the manager sleeps in poll() (io_lock
 * held): sends the one queued call to an idle worker, sparing the round
 * trip the manager's wake-up. Anything more (more calls, no idle worker,
 * octets left for a socket) is the manager's: true if it must be woken.
 */
static bool submit_directly(struct process_pool *p) {
    struct worker *idle = NULL;
    for (size_t i = 0; i < p->nworkers && !idle; i++)
        if (can_take(&p->workers[i]) && p->workers[i].count == 0)
            idle = &p->workers[i];
    pthread_mutex_lock(&p->lock);
    bool one = p->queue.head && !p->queue.head->queue_next;
    pthread_mutex_unlock(&p->lock);
    if (p->finished || !idle || !one || !send_queued(p, idle))
        return true;
    worker_flush(idle);
    return idle->out.buf.len != 0;
}

static cf_status pool_submit(void *self, cf_work *work) {
    struct process_pool *p = self;
    cf_status st = CF_OK;
    pthread_mutex_lock(&p->lock);
    if (p->broken || p->shutdown)
        st = p->broken ? CF_BROKEN : CF_SHUTDOWN;
    else
        cf__queue_push(&p->queue, cf__work_future(work));
    if (st == CF_OK)
        atomic_fetch_add_explicit(&p->events, 1, memory_order_release);
    bool sleeping = st == CF_OK && p->sleeping;
    pthread_mutex_unlock(&p->lock);
    if (!sleeping)
        return st;
    if (current_pool != p && pthread_mutex_trylock(&p->io_lock) == 0) {
        bool wake_manager = submit_directly(p);
        pthread_mutex_unlock(&p->io_lock);
        if (!wake_manager)
            return CF_OK;
    }
    pthread_mutex_lock(&p->lock);
    sleeping = p->sleeping;
    p->sleeping = false; /* one wake-up is enough */
    pthread_mutex_unlock(&p->lock);
    if (sleeping)
        wake(p);
    return CF_OK;
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
    if (cancel_futures) {
        cancelled = cf__queue_take_all(&p->queue);
        p->cancel_sent = current_pool != p;
    }
    pthread_mutex_unlock(&p->lock);
    wake(p);
    cf__works_cancel(cancelled);
    /* Calls sent ahead to workers are still pending too: the manager, which
     * owns them, cancels those its workers have not claimed. */
    if (cancel_futures && current_pool == p) {
        cancel_sent(p);
    } else if (cancel_futures) {
        pthread_mutex_lock(&p->lock);
        while (p->cancel_sent && !p->manager_gone)
            pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
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
    free(p->blocks_used);
    free(p->pfds);
    cf__buf_free(&p->frame);
    if (p->shared)
        munmap(p->shared, p->shared_size);
    for (int i = 0; i < 2; i++)
        if (p->wake[i] >= 0)
            close(p->wake[i]);
    free(p);
}

static void destroy_sync(struct process_pool *p) {
    pthread_mutex_destroy(&p->io_lock);
    cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->cond);
}

static void pool_free(void *self) {
    struct process_pool *p = self;
    destroy_sync(p);
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
    p->lingers = cpus > 1;
    p->initializer = o->initializer;
    p->workers = calloc(p->max_workers, sizeof *p->workers);
    p->blocks_used = calloc(p->max_workers, sizeof *p->blocks_used);
    p->pfds = calloc(p->max_workers + 2, sizeof *p->pfds);
    if (!p->workers || !p->blocks_used || !p->pfds ||
        p->max_workers > UINT32_MAX / DEPTH - 1)
        return CF_NOMEM;
    /* mapped before the fork server is forked: every worker shares it */
    p->shared_size =
        sizeof *p->shared + p->max_workers * sizeof p->shared->blocks[0];
    void *shared = mmap(NULL, p->shared_size, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        return CF_NOMEM;
    p->shared = shared;
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
    if (pthread_mutex_init(&p->io_lock, NULL)) {
        cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->cond);
        st = CF_EAGAIN;
        goto err_free_memory;
    }
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
    destroy_sync(p);
err_free_memory:
    free_pool_memory(p);
    return st;
}
