/*
 * process_manager.c -- the manager thread: sends calls to the workers,
 * collects their outcomes and completes the futures, asks the fork server
 * for workers and hears of their ends, and breaks the pool when one goes
 * unexpectedly.
 *
 * Runs in: the manager thread (cf__pp_manager_main), one per pool, with
 * every signal blocked; it forks the server as it starts. It holds
 * io_lock except while it is blocked in poll(); then a submitting thread
 * may take io_lock and do the manager's sending itself
 * (cf__pp_submit_directly, at the end, and what it calls). Futures are
 * completed, and their callbacks run, here, with io_lock held.
 *
 * Owns, under io_lock: the server's socket, every worker's socket and
 * stream (non-blocking on this side, so neither end can block the other),
 * the read end of the wake-up pipe, the rings of calls sent ahead, and the
 * pool's fields marked the manager thread's own. It takes pool->lock only
 * for a moment, for the queue and the flags.
 *
 * Calls: the manager sends up to DEPTH calls ahead to each worker, so that
 * a worker never waits for the manager between short calls (how a call
 * sent ahead is claimed and answered: process_pool.h). Calls start in the
 * order they were submitted, as from Python's one call queue (how:
 * process_pool.h, "Start order"): the manager sends a call to a worker
 * only if that keeps the worker's ring in submission order (target), puts
 * a call a worker handed back (CF__OUT_DEFERRED: an older one waited) back
 * in the queue in order (take_back), and gives a worker left idle the
 * oldest pending call, taking it back (revoking it) from the worker it was
 * sent ahead to if it is older than the queue's head (steal). The manager
 * collects outcomes in the order the calls were sent.
 *
 * Sleeping: with nothing to do, the manager first lingers for up to
 * LINGER_NS, yielding the processor, while it watches for submits,
 * wake-ups and outcomes (the events counter and the shared counts); a
 * caller that submits as soon as it has a result then finds it awake, and
 * a call costs two thread wake-ups, not three. Then it sleeps in poll().
 */
#define _GNU_SOURCE
#include "process_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

_Thread_local struct process_pool *cf__pp_current_pool;

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

/* Shows the workers w's ring window, of `count` slots from its head. */
static void publish_window(struct process_pool *p, const struct worker *w,
                           unsigned count) {
    atomic_store(&p->shared->blocks[w->block].window, w->head | count << 8);
}

/* The manager's `moves` sequence lock, around a move of a call. */
static void move_begins(struct process_pool *p) {
    atomic_fetch_add(&p->shared->moves, 1);
}

static void move_ends(struct process_pool *p) {
    atomic_fetch_add(&p->shared->moves, 1);
}

/* Whether f was sent before (and handed back): a call younger than it
 * was sent. */
static bool sent_younger(const struct process_pool *p, const cf_future *f) {
    return p->sent_any && cf__seq_before(f->seq, p->newest_sent);
}

/* With pool->lock held: shows the workers the queue's head if a call
 * younger than it was sent (it was handed back), as queue_lo. */
static void note_queue(struct process_pool *p) {
    const cf_future *h = p->queue.head;
    atomic_store(&p->shared->queue_lo,
                 h && sent_younger(p, h) ? h->seq : QUEUE_LO_NONE);
}

/* With pool->lock held: queues f again, in submission order. */
static void requeue(struct process_pool *p, cf_future *f) {
    struct cf__queue *q = &p->queue;
    if (!q->head || cf__seq_before(f->seq, q->head->seq)) {
        cf__queue_push_front(q, f);
        return;
    }
    cf_future *at = q->head;
    while (at->queue_next && cf__seq_before(at->queue_next->seq, f->seq))
        at = at->queue_next;
    f->queue_next = at->queue_next;
    at->queue_next = f;
    if (q->tail == at)
        q->tail = f;
    q->len++;
}

/* Closes w's socket and frees its buffers; its calls stay in its ring. */
static void close_worker(struct worker *w) {
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    cf__pp_stream_free(&w->in);
    cf__pp_stream_free(&w->out);
    free(w->large.data);
    w->large.data = NULL;
}

/* ---- breaking the pool (manager thread) ------------------------------- */

/*
 * User code -- done callbacks, the log hook -- never runs with a cfutures
 * lock held: the manager lets go of io_lock around what may call it. Its
 * state stays its own meanwhile: a submit takes io_lock only from a manager
 * asleep in poll() (cf__pp_submit_directly checks), and what user code run
 * here may do to the pool leaves that state alone (a submit queues;
 * shutdown and terminate_workers, from this thread, cancel and signal what
 * is there).
 */
static void user_code_begins(struct process_pool *p) {
    pthread_mutex_unlock(&p->io_lock);
}

static void user_code_ends(struct process_pool *p) {
    pthread_mutex_lock(&p->io_lock);
}

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
    cf__pp_stop_server(p); /* it kills and reaps every worker */
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
    user_code_begins(p);
    fail_all(sent, message);
    fail_all(queued, message);
    user_code_ends(p);
}

static void describe_exit(char *buf, size_t size, const struct worker *w) {
    if (!w->exited)
        snprintf(buf, size, "worker %d ended; the fork server is gone",
                 (int)w->pid);
    else if (w->status_unread)
        snprintf(buf, size,
                 "worker %d ended; its exit status could not be read",
                 (int)w->pid);
    else if (WIFSIGNALED(w->wstatus))
        snprintf(buf, size, "worker %d was killed by signal %d", (int)w->pid,
                 WTERMSIG(w->wstatus));
    else
        snprintf(buf, size, "worker %d exited with status %d", (int)w->pid,
                 WEXITSTATUS(w->wstatus));
}

/* No worker could be started (errno err) and none is left to run the
 * queued calls: they fail as Python's submit fails when it cannot start a
 * process (OSError, "[Errno 11] Resource temporarily unavailable"), and
 * cf_submit refuses calls with CF_EAGAIN until a worker can be started
 * again (each refusal makes the manager try). The pool is not broken. */
const char *cf__pp_errno_type(int err) {
    return err == EAGAIN ? "BlockingIOError" : "OSError";
}

void cf__pp_errno_message(int err, char *buf, size_t size) {
    char text[96];
    snprintf(buf, size, "[Errno %d] %s", err,
             strerror_r(err, text, sizeof text));
}

cf_status cf__pp_refuse_spawn(int err) {
    char message[128];
    cf__pp_errno_message(err, message, sizeof message);
    return cf_refuse(CF_EAGAIN, cf__pp_errno_type(err), "%s", message);
}

static void no_worker_startable(struct process_pool *p, int err) {
    char message[128];
    cf__pp_errno_message(err, message, sizeof message);
    p->spawn_failed = false; /* no worker left to wait for: a probe asks */
    pthread_mutex_lock(&p->lock);
    p->spawn_errno = err ? err : EAGAIN;
    cf_future *queued = cf__queue_take_all(&p->queue);
    pthread_mutex_unlock(&p->lock);
    user_code_begins(p);
    for (cf_future *f = queued, *next; f; f = next) {
        next = f->queue_next;
        cf_work_fail(cf__future_work(f), CF_RAISED, cf__pp_errno_type(err),
                     message);
    }
    user_code_ends(p);
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
    cf__pp_stream_trim(o); /* a large call's buffer is not kept */
}

/*
 * Queues f's call for w under claim word `slot`, encoding it straight into
 * w's stream (a large argument is copied there once, and that copy is
 * given back once sent: worker_flush): makes the word f's first
 * if `fresh` (a call from the queue; a moved one has it already). If f was
 * cancelled meanwhile it is released; if its frame cannot be made it fails
 * (a PTR, or no memory), except in a submitting thread, which must not run
 * callbacks: the call then goes back to the front of the queue for the
 * manager. False only then.
 */
static bool push_call(struct process_pool *p, struct worker *w, cf_future *f,
                      size_t slot, bool fresh) {
    size_t start = w->out.buf.len;
    cf_status st = cf__frame_task_append(&w->out.buf, (uint32_t)slot, f->fn,
                                         f->args, f->nargs);
    if (st != CF_OK && cf__pp_current_pool != p) {
        pthread_mutex_lock(&p->lock);
        cf__queue_push_front(&p->queue, f);
        pthread_mutex_unlock(&p->lock);
        return false;
    }
    if (st != CF_OK) {
        user_code_begins(p);
        cf_work_fail(cf__future_work(f), CF_RAISED,
                     st == CF_EINVAL ? "TypeError" : "MemoryError",
                     st == CF_EINVAL ? PICKLE_MESSAGE
                                     : "the call is too large");
        user_code_ends(p);
        return true;
    }
    /* its number first, then the window, then the word QUEUED */
    atomic_store(cf__pp_seq_at(p, slot), f->seq);
    publish_window(p, w, w->count + 1);
    if (fresh && !cf__future_set_claim(f, cf__pp_claim_at(p, slot))) {
        w->out.buf.len = start;
        cf_work_release(cf__future_work(f)); /* cancelled while queued */
        return true;
    }
    *ring_at(w, w->count++) = f;
    w->live++;
    w->last_seq = f->seq;
    if (!p->sent_any || cf__seq_before(p->newest_sent, f->seq))
        p->newest_sent = f->seq;
    p->sent_any = true;
    if (p->max_tasks && ++w->nsent >= p->max_tasks)
        w->state = W_RETIRING;
    return true;
}

/* Sends a queued call to w; false once the queue is empty (or a call must
 * wait for the manager: see push_call). A call handed back, older than one
 * sent, is sent inside `moves`: the workers see it in the queue (queue_lo)
 * or in its slot. */
static bool send_queued(struct process_pool *p, struct worker *w) {
    pthread_mutex_lock(&p->lock);
    cf_future *f = cf__queue_pop(&p->queue);
    pthread_mutex_unlock(&p->lock);
    if (!f)
        return false;
    bool back = sent_younger(p, f);
    if (back)
        move_begins(p);
    bool sent = push_call(p, w, f, next_slot(w), true);
    pthread_mutex_lock(&p->lock);
    note_queue(p);
    pthread_mutex_unlock(&p->lock);
    if (back)
        move_ends(p);
    return sent;
}

/* The worker a call numbered seq goes to: one with room whose ring it
 * keeps in submission order (it is younger than all its calls, or it has
 * none), the one with the fewest calls first; NULL if none. */
static struct worker *target(struct process_pool *p, uint32_t seq) {
    struct worker *best = NULL;
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (can_take(w) &&
            (w->live == 0 || cf__seq_before(w->last_seq, seq)) &&
            (!best || w->live < best->live))
            best = w;
    }
    return best;
}

/* The queue's head's sequence number at *seq; false if it is empty. */
static bool queue_head_seq(struct process_pool *p, uint32_t *seq) {
    pthread_mutex_lock(&p->lock);
    const cf_future *h = p->queue.head;
    if (h)
        *seq = h->seq;
    pthread_mutex_unlock(&p->lock);
    return h != NULL;
}

/* Moves the oldest pending call to the idle worker w if it is queued at
 * another worker (behind a call that runs, or about to be started there)
 * rather than in the queue: the oldest pending call goes to an idle
 * worker, as from Python's one call queue. False if there is none. */
static bool steal(struct process_pool *p, struct worker *w) {
    uint32_t queued = 0;
    bool any = queue_head_seq(p, &queued);
    for (;;) {
        struct worker *from = NULL;
        unsigned pos = 0;
        for (size_t i = 0; i < p->nworkers; i++) {
            struct worker *v = &p->workers[i];
            for (unsigned k = 0; v != w && k < v->count; k++) {
                cf_future *f = *ring_at(v, k);
                size_t at = v->block * DEPTH + (v->head + k) % DEPTH;
                if (!f || (any && !cf__seq_before(f->seq, queued)) ||
                    atomic_load(cf__pp_claim_at(p, at)) != CF__CLAIM_QUEUED)
                    continue;
                if (!from ||
                    cf__seq_before(f->seq, (*ring_at(from, pos))->seq)) {
                    from = v;
                    pos = k;
                }
                break; /* the ring's oldest queued call */
            }
        }
        if (!from)
            return false;
        cf_future **at = ring_at(from, pos);
        cf_future *f = *at;
        size_t slot = next_slot(w);
        move_begins(p);
        atomic_store(cf__pp_seq_at(p, slot), f->seq);
        publish_window(p, w, w->count + 1);
        bool moved = cf__future_move_claim(f, cf__pp_claim_at(p, slot));
        if (moved) {
            *at = NULL;
            from->live--;
            push_call(p, w, f, slot, false);
        }
        move_ends(p);
        if (moved)
            return true;
        /* cancelled or claimed just now: its word is no longer QUEUED */
    }
}

/* Sends queued calls, oldest first, each to the worker with the fewest
 * calls that may take it (target): one to each idle worker first. */
static void send_all_queued(struct process_pool *p) {
    pthread_mutex_lock(&p->lock);
    note_queue(p); /* a shutdown may have emptied the queue */
    pthread_mutex_unlock(&p->lock);
    for (;;) {
        uint32_t seq;
        struct worker *w = queue_head_seq(p, &seq) ? target(p, seq) : NULL;
        if (!w || !send_queued(p, w))
            return;
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

/* Gives each idle worker the oldest pending call if it waits at another
 * worker. */
static void steal_for_idle(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (can_take(w) && w->live == 0)
            steal(p, w);
    }
}

/* Sends calls to workers in the order they were submitted: an idle worker
 * first takes back the oldest pending call if it waits at another worker,
 * then the queued calls go out; then a worker still idle takes back what
 * is now the oldest (while a call handed back waited in the queue, a call
 * younger than it, sent ahead behind a long one, could not be taken; once
 * the queue is sent it can, and no event may come to prompt it). */
static void dispatch(struct process_pool *p) {
    steal_for_idle(p);
    send_all_queued(p);
    steal_for_idle(p);
    flush_all(p);
}

void cf__pp_cancel_sent(struct process_pool *p) {
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
    if (p->spawn_failed || p->forced)
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
    /* a submit refused for want of a worker asks for one, call or not */
    if (p->probe && p->nworkers + p->starting == 0)
        queued = 1;
    p->probe = false;
    pthread_mutex_unlock(&p->lock);
    while (queued > idle + p->starting &&
           p->nworkers + p->starting < p->max_workers) {
        if (!cf__pp_write_all(p->server_fd, (char[]){ASK_SPAWN}, 1))
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
    publish_window(p, w, 0);
    /* Up front, so that memory use does not depend on whether the worker
     * ever wakes the manager (cf__pp_stream_read tries again on failure). */
    cf__pp_stream_reserve(&w->in, READ_CHUNK);
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
        add_worker(p, m.pid, fd); /* signalled by the server if forced */
    } else if (m.kind == MSG_EXITED || m.kind == MSG_EXIT_UNREAD) {
        struct worker *w = find_worker(p, m.pid);
        if (w) {
            w->exited = true;
            w->status_unread = m.kind == MSG_EXIT_UNREAD;
            w->wstatus = m.info;
        }
    } else if (p->nworkers == 0 && p->starting == 0) {
        if (fd >= 0)
            close(fd);
        no_worker_startable(p, m.kind == MSG_SPAWNED ? EBADF : (int)m.info);
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
static void complete_call(struct process_pool *p, struct worker *w,
                          unsigned pos, cf_future *f, enum cf__outcome kind,
                          cf_value *value, cf_error *error) {
    w->ring[pos] = NULL;
    w->live--;
    /* The call is over and no worker will be sent it again: its arguments
     * go now (cf_work_release would free them after the callbacks), so
     * that a large argument is not still held while the caller copies a
     * large result. */
    for (size_t i = 0; i < f->nargs; i++)
        cf_value_free(&f->args[i]);
    if (kind != CF__OUT_SKIPPED) {
        user_code_begins(p);
        if (cf__future_finish(f, error ? NULL : value, error, NULL) != CF_OK) {
            cf__error_free(error);
            cf_value_free(value);
        }
        user_code_ends(p);
    }
    cf_work_release(cf__future_work(f)); /* done: runs nothing */
}

/* f, sent to w at ring position pos, was handed back (an older call
 * waited): queued again in order, queue_lo lowered first, unless it was
 * cancelled meanwhile. */
static void take_back(struct process_pool *p, struct worker *w, unsigned pos,
                      cf_future *f) {
    uint64_t lo = atomic_load(&p->shared->queue_lo);
    if (lo == QUEUE_LO_NONE || cf__seq_before(f->seq, (uint32_t)lo))
        atomic_store(&p->shared->queue_lo, f->seq);
    if (!cf__future_unclaim(f)) {
        complete_call(p, w, pos, f, CF__OUT_SKIPPED, NULL, NULL);
        return;
    }
    w->ring[pos] = NULL;
    w->live--;
    pthread_mutex_lock(&p->lock);
    requeue(p, f);
    note_queue(p);
    pthread_mutex_unlock(&p->lock);
}

/* Whether ring position pos of w holds a call sent and not collected. */
static bool in_ring(const struct worker *w, size_t pos) {
    return pos < DEPTH && (pos + DEPTH - w->head) % DEPTH < w->count;
}

/* An outcome from w's socket: one too large for its slot, the
 * initializer's error, or a wake-up. Takes *value and error. */
static void handle_outcome(struct process_pool *p, struct worker *w,
                           uint32_t slot, enum cf__outcome kind,
                           cf_value *value, cf_error *error) {
    if (kind == CF__OUT_INIT_FAILED) {
        user_code_begins(p);
        cf_log(CF_LOG_CRITICAL, "Exception in initializer: %s: %s",
               cf_error_type(error), cf_error_message(error));
        user_code_ends(p);
        cf__error_free(error);
        return; /* the worker exits: its death breaks the pool */
    }
    if (kind == CF__OUT_WAKE)
        return;
    size_t pos = slot - w->block * DEPTH;
    cf_future *f =
        kind != CF__OUT_SKIPPED && kind != CF__OUT_DEFERRED && in_ring(w, pos)
            ? w->ring[pos]
            : NULL;
    if (!f) {
        cf_value_free(value);
        cf__error_free(error);
        break_pool(p, "worker %d sent a reply nobody asked for", (int)w->pid);
        return;
    }
    complete_call(p, w, (unsigned)pos, f, kind, value, error);
}

/* A whole frame from w's socket. */
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
    handle_outcome(p, w, slot, kind, &value, error);
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
            if (kind == CF__OUT_DEFERRED)
                take_back(p, w, pos, f);
            else
                complete_call(p, w, pos, f, kind, &value, error);
        }
        w->head = (pos + 1) % DEPTH;
        w->count--;
        w->collected++;
        publish_window(p, w, w->count);
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

/*
 * How much room to read into for the frame w's stream has begun, `need`
 * octets short: a frame larger than a read must first show (its first
 * octets: an outcome for a call sent to w, of that very length) that it
 * is one, so that a stray header (a task writing on the socket) is caught
 * as garbage before anything is reserved for it. 0: it is garbage.
 */
static size_t room_for_frame(const struct worker *w, size_t need) {
    const struct stream *s = &w->in;
    size_t have = s->buf.len - s->off;
    uint32_t slot;
    if (need <= READ_CHUNK || have < CF__FRAME_HEADER)
        return need;
    const unsigned char *frame = s->buf.data + s->off;
    int check = cf__outcome_length_check(frame + CF__FRAME_HEADER,
                                         have - CF__FRAME_HEADER,
                                         cf__frame_length(frame), &slot);
    size_t pos = slot - w->block * DEPTH;
    /* CF__NO_SLOT: the initializer's error, which answers no call */
    bool answers = slot == CF__NO_SLOT || (in_ring(w, pos) && w->ring[pos]);
    if (check < 0 || (check > 0 && !answers))
        return 0;
    return check > 0 ? need : READ_CHUNK;
}

/*
 * A BYTES or STR result of more than LARGE_BUFFER octets is read from the
 * socket straight into the buffer its value will own, not into w's stream,
 * which would hold a second copy while it is decoded (and keep its size):
 * its octets are in the parent's memory once, and the future takes that
 * buffer. Starts that if the frame w's stream has begun is such a result
 * for a call of w's; what the stream holds of it moves to the new buffer.
 * True if it did, or broke the pool because that buffer cannot be
 * allocated.
 */
static bool start_large_result(struct process_pool *p, struct worker *w) {
    struct stream *s = &w->in;
    size_t have = s->buf.len - s->off;
    uint32_t slot;
    cf_type type;
    if (have < CF__FRAME_HEADER)
        return false;
    const unsigned char *frame = s->buf.data + s->off;
    size_t len = cf__frame_length(frame);
    if (!cf__outcome_buffer(frame + CF__FRAME_HEADER, have - CF__FRAME_HEADER,
                            len, &slot, &type) ||
        len - CF__OUTCOME_BUFFER_AT <= LARGE_BUFFER)
        return false;
    size_t pos = slot - w->block * DEPTH;
    if (!in_ring(w, pos) || !w->ring[pos])
        return false; /* garbage: handled as such once read */
    size_t n = len - CF__OUTCOME_BUFFER_AT;
    char *data = malloc(n + 1);
    if (!data) {
        break_pool(p,
                   "a reply of %zu bytes from worker %d could not be "
                   "allocated",
                   len, (int)w->pid);
        return true;
    }
    /* the frame is not whole yet: what is here is less than n octets */
    size_t got = have - CF__FRAME_HEADER - CF__OUTCOME_BUFFER_AT;
    memcpy(data, frame + CF__FRAME_HEADER + CF__OUTCOME_BUFFER_AT, got);
    s->off = s->buf.len;
    cf__pp_stream_trim(s);
    w->large = (struct large_result){data, n, got, slot, type};
    return true;
}

/* Reads more of w's large result, and completes its call once it is
 * whole: what read() returned (errno set if -1). */
static ssize_t read_large_result(struct process_pool *p, struct worker *w) {
    struct large_result *r = &w->large;
    ssize_t n;
    while ((n = read(w->fd, r->data + r->have, r->len - r->have)) < 0 &&
           errno == EINTR)
        ;
    if (n <= 0 || (r->have += (size_t)n) < r->len)
        return n;
    struct large_result whole = *r;
    cf_value value;
    r->data = NULL;
    if (cf__decode_buffer(&value, whole.type, whole.data, whole.len) == CF_OK)
        handle_outcome(p, w, whole.slot, CF__OUT_VALUE, &value, NULL);
    else
        break_pool(p, "a reply from worker %d could not be decoded",
                   (int)w->pid);
    return n;
}

/* Reads and handles what w sent; at EOF closes its socket. A read that
 * leaves room in the buffer emptied the socket: what comes after it, the
 * next poll() reports, so no read is spent just to hear EAGAIN. */
static void read_worker(struct process_pool *p, struct worker *w) {
    bool drained = false;
    for (;;) {
        const unsigned char *payload;
        size_t len, need = 0, room = 0;
        while (!p->finished && w->fd >= 0 && !w->large.data &&
               cf__pp_stream_frame(&w->in, &payload, &len, &need))
            handle_frame(p, w, payload, len);
        if (p->finished || w->fd < 0)
            return;
        cf__pp_stream_trim(&w->in); /* a large frame's buffer is not kept */
        if (!w->large.data) {
            room = room_for_frame(w, need);
            if (!room) {
                break_pool(p, "a reply from worker %d could not be decoded",
                           (int)w->pid);
                return;
            }
            if (start_large_result(p, w) && p->finished)
                return;
        }
        if (drained)
            return;
        ssize_t n;
        if (w->large.data) {
            size_t want = w->large.len - w->large.have;
            n = read_large_result(p, w);
            drained = n > 0 && (size_t)n < want;
        } else {
            n = cf__pp_stream_read(&w->in, w->fd, room);
            drained = n > 0 && w->in.buf.len < w->in.buf.cap;
        }
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
        if (w->exited && w->fd >= 0) {
            /* Its end is known, so everything it sent is in the socket
             * now: read that rather than wait for an end of file that a
             * copy of the socket (in a fork of the program, or a program
             * a task started) would hold back. */
            read_worker(p, w);
            collect(p, w);
            if (p->finished)
                return;
            close_worker(w);
        }
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

/* Whether a call sent ahead still waits behind another call of its
 * worker: an idle worker is to take it (steal), so it is not closed. */
static bool waiting_behind(struct process_pool *p) {
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *v = &p->workers[i];
        bool ahead = false;
        for (unsigned k = 0; k < v->count; k++) {
            cf_future *f = *ring_at(v, k);
            size_t at = v->block * DEPTH + (v->head + k) % DEPTH;
            if (f && ahead &&
                atomic_load(cf__pp_claim_at(p, at)) == CF__CLAIM_QUEUED)
                return true;
            ahead = ahead || f;
        }
    }
    return false;
}

/* True once the pool is shut down, drained, and every process is gone;
 * closes idle workers' sockets once nothing is left to run (no call is
 * queued, nor waits behind another at its worker). */
static bool manager_done(struct process_pool *p) {
    if (p->finished)
        return true;
    pthread_mutex_lock(&p->lock);
    bool drained = p->shutdown && !p->queue.head;
    pthread_mutex_unlock(&p->lock);
    if (!drained || waiting_behind(p))
        return false;
    for (size_t i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        if (w->fd >= 0 && w->count == 0) {
            /* told to exit, as a copy of its socket may keep it from
             * seeing the end of file (failed: it is gone, or will see it) */
            send(w->fd, QUIT_FRAME, CF__FRAME_HEADER, MSG_NOSIGNAL);
            close_worker(w);
            w->state = W_CLOSED;
        }
    }
    settle_workers(p);
    if (p->finished || p->nworkers || p->starting)
        return p->finished;
    cf__pp_stop_server(p);
    p->finished = true;
    return true;
}

void cf__pp_signal_workers(struct process_pool *p, int sig) {
    p->forced = sig;
    if (p->server_fd >= 0) /* failed: the server is gone, and so are they */
        cf__pp_write_all(p->server_fd,
                         (char[]){sig == SIGTERM ? ASK_TERM : ASK_KILL}, 1);
}

/* Answers a terminate_workers / kill_workers that waits for the manager. */
static void answer_force(struct process_pool *p) {
    pthread_mutex_lock(&p->lock);
    int sig = p->force_sent ? 0 : p->force_signal;
    pthread_mutex_unlock(&p->lock);
    if (!sig)
        return;
    cf__pp_signal_workers(p, sig);
    pthread_mutex_lock(&p->lock);
    p->force_sent = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Answers a shutdown(cancel_futures) that waits for the manager. */
static void answer_cancel(struct process_pool *p) {
    pthread_mutex_lock(&p->lock);
    bool asked = p->cancel_sent;
    pthread_mutex_unlock(&p->lock);
    if (!asked)
        return;
    user_code_begins(p); /* the cancelled calls' callbacks */
    cf__pp_cancel_sent(p);
    user_code_ends(p);
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
    uint32_t head = 0;
    bool empty = !queue_head_seq(p, &head);
    bool room = !empty && target(p, head);
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

void *cf__pp_manager_main(void *arg) {
    struct process_pool *p = arg;
    cf__pp_current_pool = p;
    cf_status st = cf__pp_start_server(p);
    pthread_mutex_lock(&p->lock);
    p->start_state = st == CF_OK ? 1 : -1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_lock(&p->io_lock);
    while (st == CF_OK && !manager_done(p)) {
        unsigned events =
            atomic_load_explicit(&p->events, memory_order_acquire);
        answer_cancel(p);
        answer_force(p);
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
    cf__pp_current_pool = NULL;
    pthread_mutex_lock(&p->lock);
    p->manager_gone = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- sending from a submitting thread --------------------------------- */

bool cf__pp_submit_directly(struct process_pool *p) {
    struct worker *idle = NULL;
    pthread_mutex_lock(&p->lock);
    /* io_lock free does not mean asleep: the manager lets go of it while
     * it runs user code (user_code_begins) */
    bool asleep = p->sleeping;
    bool one = p->queue.head && !p->queue.head->queue_next;
    pthread_mutex_unlock(&p->lock);
    if (!asleep)
        return true;
    for (size_t i = 0; i < p->nworkers && !idle; i++)
        if (can_take(&p->workers[i]) && p->workers[i].count == 0)
            idle = &p->workers[i];
    if (p->finished || !idle || !one || !send_queued(p, idle))
        return true;
    worker_flush(idle);
    return idle->out.buf.len != 0;
}
