/*
 * process_worker.c -- a worker process: runs the calls the manager sends
 * it, one at a time, in order.
 *
 * Runs in: a worker, forked by the fork server (server_spawn calls
 * cf__pp_worker_main in the child) and single-threaded. It reads task
 * frames (ipc.c) in batches from its socket and runs the calls one at a
 * time, in order, claiming each first (see process_pool.h); it exits, with
 * _exit, when told to (an empty frame) or at EOF, after max_tasks_per_child
 * calls, or when it cannot go on.
 *
 * Owns: CHILD_FD, its end of its socket to the manager (blocking on this
 * side; every other descriptor above 2 is closed), and its block of the
 * shared memory: the claim words it moves to RUNNING, the outcomes in its
 * slots and its done count. It reads the manager's sleeps. It takes none
 * of the pool's locks: its struct process_pool is the copy fork made of
 * the server's, read-only here.
 */
#define _GNU_SOURCE
#include "process_pool.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

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
    if (!cf__pp_write_all(CHILD_FD, b->data, b->len))
        _exit(0);
}

/* Leaves the outcome of the call under `slot` in the slot if it fits,
 * else sends it on the socket (and gives back b's memory if a large
 * outcome grew it: a worker does not keep a large result's size). */
static void worker_answer(const struct process_pool *p, struct cf__buf *b,
                          uint32_t slot, enum cf__outcome kind,
                          const cf_value *value, const cf_error *error) {
    struct slot *s = cf__pp_slot_at(p, slot);
    worker_encode(b, slot, kind, value, error);
    size_t len = b->len - CF__FRAME_HEADER;
    if (len <= SLOT_DATA) {
        memcpy(s->data, b->data + CF__FRAME_HEADER, len);
        s->len = (uint32_t)len;
    } else {
        worker_write(b);
        s->len = SENT_ON_SOCKET;
        if (b->cap > LARGE_BUFFER)
            cf__buf_free(b);
    }
}

/* Runs the initializer; if it raises, says so and exits. */
static void worker_initialize(const struct process_pool *p,
                              struct cf__buf *out) {
    cf_value value = cf_none();
    cf_error *error = NULL;
    if (!p->initializer)
        return;
    /* public, as an outside executor would run its initializer */
    cf_call_fn(p->initializer, p->initargs, p->ninitargs, &value, &error);
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
    uint32_t deferred;   /* its slots it handed back, perhaps still QUEUED */
    struct cf__buf out;
};

/* What an older call, pending and not started, is doing. */
enum older { NO_OLDER, OLDER_ELSEWHERE, OLDER_HELD };

/* Whether a call older than `seq` (in slot `slot`) waits: at another
 * worker (the first QUEUED word of each other ring's window is its oldest
 * queued call), or held back by the manager or handed back by this worker
 * (OLDER_HELD). Inside the manager's `moves` sequence lock, so that a call
 * moved meanwhile is seen where it was or where it went. */
static enum older older_waiting(const struct process_pool *p,
                                const struct worker_self *self, uint32_t slot,
                                uint32_t seq) {
    const struct shared *sh = p->shared;
    size_t own = slot / DEPTH;
    for (;;) {
        unsigned moves = atomic_load(&sh->moves);
        enum older found = NO_OLDER;
        if (moves % 2 == 0) {
            for (size_t b = 0; b < p->max_workers && !found; b++) {
                const struct block *k = &sh->blocks[b];
                if (b == own)
                    continue;
                unsigned window = atomic_load(&k->window);
                unsigned head = window & 0xff, count = window >> 8;
                for (unsigned i = 0; i < count && i < DEPTH; i++) {
                    unsigned pos = (head + i) % DEPTH;
                    if (atomic_load(&k->claims[pos]) != CF__CLAIM_QUEUED)
                        continue;
                    if (cf__seq_before(atomic_load(&k->seqs[pos]), seq))
                        found = OLDER_ELSEWHERE;
                    break;
                }
            }
            const struct block *mine = &sh->blocks[own];
            for (unsigned pos = 0; pos < DEPTH && !found; pos++)
                if ((self->deferred >> pos & 1) &&
                    atomic_load(&mine->claims[pos]) == CF__CLAIM_QUEUED &&
                    cf__seq_before(atomic_load(&mine->seqs[pos]), seq))
                    found = OLDER_HELD;
            uint64_t lo = atomic_load(&sh->queue_lo);
            if (!found && lo != QUEUE_LO_NONE &&
                cf__seq_before((uint32_t)lo, seq))
                found = OLDER_HELD;
            if (atomic_load(&sh->moves) == moves)
                return found;
        }
        sched_yield();
    }
}

static long ns_since(const struct timespec *since) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L +
           (t.tv_nsec - since->tv_nsec);
}

/* Whether the call in `slot` may start now (it may still be cancelled or
 * revoked: the claim decides): no older call waits, or one that waits at
 * another worker started within ORDER_WAIT_NS. False: hand it back. */
static bool may_start(const struct process_pool *p, struct worker_self *self,
                      uint32_t slot) {
    atomic_uint *claim = cf__pp_claim_at(p, slot);
    uint32_t seq = atomic_load(cf__pp_seq_at(p, slot));
    struct timespec start;
    bool timing = false;
    for (uint32_t pos = 0; pos < DEPTH; pos++)
        if ((self->deferred >> pos & 1) &&
            atomic_load(&self->block->claims[pos]) != CF__CLAIM_QUEUED)
            self->deferred &= ~(UINT32_C(1) << pos); /* taken back */
    for (;;) {
        enum older older = older_waiting(p, self, slot, seq);
        if (older == NO_OLDER)
            return true;
        if (older == OLDER_HELD)
            return false;
        if (atomic_load(claim) != CF__CLAIM_QUEUED)
            return true; /* cancelled or revoked: the claim fails */
        if (!timing) {
            clock_gettime(CLOCK_MONOTONIC, &start);
            timing = true;
        } else if (ns_since(&start) >= ORDER_WAIT_NS) {
            return false;
        }
        sched_yield();
    }
}

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

/* Claims and runs one task frame, the one just taken from `in`, or skips
 * it if the parent cancelled or revoked it; exits if it does not decode
 * (Python: unpickling failed in a worker) or names a slot outside this
 * worker's block. A large call costs twice its size here at most: the
 * frame is given back once decoded (if it grew the stream), the arguments
 * once the call has returned, before its result is encoded. */
static void worker_run(const struct process_pool *p, struct stream *in,
                       const void *payload, size_t len,
                       struct worker_self *self) {
    uint32_t slot;
    cf_fn fn;
    cf_value *args, value;
    size_t nargs;
    cf_error *error;
    if (cf__parse_task(payload, len, &slot, &fn, &args, &nargs) != CF_OK ||
        slot >= p->max_workers * DEPTH)
        _exit(BAD_TASK_STATUS);
    cf__pp_stream_trim(in); /* payload is not read again */
    struct block *block = &p->shared->blocks[slot / DEPTH];
    if (!self->block)
        self->block = block;
    if (block != self->block)
        _exit(BAD_TASK_STATUS);
    unsigned queued = CF__CLAIM_QUEUED;
    if (!may_start(p, self, slot)) {
        /* an older call waits: this one goes back, its word QUEUED */
        cf__values_free(args, nargs);
        self->deferred |= UINT32_C(1) << (slot % DEPTH);
        worker_answer(p, &self->out, slot, CF__OUT_DEFERRED, NULL, NULL);
    } else if (atomic_compare_exchange_strong(cf__pp_claim_at(p, slot),
                                              &queued, CF__CLAIM_RUNNING)) {
        cf__call_invoke(fn, args, nargs, &value, &error);
        cf__values_free(args, nargs);
        worker_answer(p, &self->out, slot,
                      error ? CF__OUT_ERROR : CF__OUT_VALUE, &value, error);
        cf__error_free(error);
        cf_value_free(&value);
    } else {
        cf__values_free(args, nargs);
        worker_answer(p, &self->out, slot, CF__OUT_SKIPPED, NULL, NULL);
    }
    worker_count_done(p, self);
}

_Noreturn void cf__pp_worker_main(const struct process_pool *p, int fd,
                                  pid_t server) {
    struct stream in = {0};
    struct worker_self self = {0};
    sigset_t none;
    cf__pp_keep_only(fd);
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
        if (cf__pp_stream_frame(&in, &payload, &len, &need)) {
            if (len == 0)
                break; /* QUIT_FRAME: the parent is done with it */
            worker_run(p, &in, payload, len, &self);
            n++;
        } else {
            ssize_t got = cf__pp_stream_read(&in, CHILD_FD, need);
            if (got < 0 && errno == ENOMEM)
                _exit(BAD_TASK_STATUS);
            if (got <= 0)
                break; /* EOF: the parent closed its end */
        }
    }
    _exit(0);
}
