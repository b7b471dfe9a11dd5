/*
 * process_pool.h -- what the process pool's files share and nobody else
 * sees (private, like internal.h). Names that cross files start with
 * cf__pp_.
 *
 * ProcessPoolExecutor: calls run in worker processes forked from a
 * single-threaded fork server; a manager thread in the parent sends them
 * and completes their futures. Each file holds the code of one room:
 *   process_pool.c     the executor's operations, in the callers' threads
 *   process_manager.c  the manager thread
 *   fork_server.c      the fork server process (and its start and stop,
 *                      from the manager thread)
 *   process_worker.c   a worker process
 *   process_io.c       descriptor and stream helpers more than one uses
 * Forked children end with _exit only.
 *
 * Locks: pool->lock guards the queue, the shutdown, broken and sleeping
 * flags and the start-up and cancel handshakes; join_lock serialises
 * joiners of the manager thread and is never taken with pool->lock held.
 * Everything about processes, sockets and workers is under io_lock, which
 * the manager thread holds except while it is blocked in poll(): a submit
 * that finds the manager asleep takes io_lock and sends the call itself,
 * sparing the round trip a thread wake-up. Order: io_lock, then
 * pool->lock, then the futures' stripe locks. Futures are completed, and
 * their callbacks run, in the manager thread, which lets go of io_lock
 * around them (user_code_begins in process_manager.c); a submit from a
 * callback leaves the sending to the manager.
 *
 * Calls sent ahead: a call the manager sends ahead to a worker stays
 * PENDING and cancellable: it has a claim word in memory shared with the
 * workers (mapped before the server is forked), and the worker runs it
 * only if it moves the word from QUEUED to RUNNING first (see
 * cf__future_set_claim).
 *
 * Start order: calls start in the order they were submitted, as from
 * Python's one call queue: a call never starts while an older one, still
 * pending and not cancelled, has not, and an idle worker gets the oldest
 * pending call. Each call has a sequence number (its submission order,
 * cf_future.seq), stored beside its claim word; the calls that may still
 * be QUEUED in a worker's ring have increasing numbers (the manager sends
 * a call to a ring with live calls only if it is younger than all of
 * them), so before a worker claims a call it looks, in each other block,
 * only at the first QUEUED word of the ring's window, and at queue_lo, the
 * oldest call the manager holds back that is older than one sent. If an
 * older call waits at another worker, it waits for up to ORDER_WAIT_NS for
 * that worker to start it; if it still waits (its worker runs a long
 * call), or it waits in the queue or was handed back by this worker, the
 * worker does not run its call but answers CF__OUT_DEFERRED, leaving the
 * word QUEUED; the manager takes the call back (cf__future_unclaim) and
 * queues it again in order, and the worker, free, is sent the oldest
 * pending call (steal in process_manager.c). A cancelled call is CANCELLED,
 * not QUEUED: it holds nothing back. The manager moves a call between
 * rings, or between the queue and a ring, inside an odd `moves` (a
 * sequence lock the workers read around their look), and lowers queue_lo
 * before it takes a handed-back call out of its slot.
 *
 * Outcomes: a worker leaves each call's outcome (CF__OUT_SKIPPED for a call
 * cancelled or revoked) in the call's slot of the shared memory, or, if it
 * does not fit there, sends it on its socket first; then it counts the call
 * done. So a busy worker answers without a system call. Before the manager
 * sleeps in poll() it marks itself asleep, then looks at the counts once
 * more; a worker that counts a call done while the manager is marked
 * asleep wakes it with a CF__OUT_WAKE frame (once per sleep).
 *
 * Memory: a large value crosses with as few copies as the rooms allow (the
 * header gives the counts). The manager encodes a call straight into its
 * worker's stream; a large BYTES or STR result is read straight into the
 * buffer its value will own (struct large_result); a call's arguments are
 * freed as soon as its outcome is in (not before: steal() encodes a moved
 * call again from them); a worker frees a call's arguments before it
 * encodes the result; and every buffer that grew past LARGE_BUFFER for one
 * frame is given back once that frame is sent or parsed.
 *
 * Stacks: the manager thread's is small (process_pool.c, MANAGER_STACK),
 * for every fork of the program copies it; the fork server, forked from
 * that thread, moves to a full-size stack of its own at once
 * (fork_server.c), and the workers inherit it.
 */
#ifndef CF_PROCESS_POOL_H
#define CF_PROCESS_POOL_H

#include "internal.h"

#include <poll.h>
#include <stdalign.h>
#include <sys/types.h>

#define BROKEN_TYPE "BrokenProcessPool"
#define BROKEN_MESSAGE                                                        \
    "A process in the process pool was terminated abruptly while the "        \
    "future was running or pending."
/* What a submit to a broken pool raises (Python's executor._broken). */
#define BROKEN_SUBMIT_MESSAGE                                                 \
    "A child process terminated abruptly, the process pool is not usable "    \
    "anymore"
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
/* How long a worker waits for an older call queued at another worker to
 * start before it hands its own back (process_worker.c). */
#define ORDER_WAIT_NS 50000
/* How long the manager stays awake, with nothing to do, before it sleeps:
 * about a thread wake-up and a submit, so that the next call of a caller
 * that submits as soon as it has a result finds it awake. */
#define LINGER_NS 50000
/* The frame the manager sends a worker it is done with, before it closes
 * its socket: an empty one (no task frame is). The worker then exits
 * without waiting for an end of file that a copy of the socket elsewhere
 * (a fork of the program) would hold back. */
#define QUIT_FRAME "\0\0\0\0"
/* queue_lo when no call waits in the queue that is older than one sent. */
#define QUEUE_LO_NONE UINT64_MAX
/* Octets read from a socket at a time. */
#define READ_CHUNK 65536
/* A buffer that grew past this many octets for one large frame is given
 * back once the frame is sent or parsed (cf__pp_stream_trim), and a BYTES
 * or STR result larger than this is read from the socket straight into
 * the buffer its value owns: a large value costs its size only while it
 * crosses, never for the life of the pool or the worker. */
#define LARGE_BUFFER (1u << 20)

/* ---- the memory shared with the workers ------------------------------- */

/* One call sent ahead. */
struct slot {
    /* Written by the worker before it counts the call done: the octets of
     * the outcome payload in data, or SENT_ON_SOCKET. */
    uint32_t len;
    unsigned char data[SLOT_DATA];
};

/* A worker's slots; slot number block * DEPTH + i is slots[i], claims[i]
 * and seqs[i]. */
struct block {
    alignas(64) atomic_uint done; /* calls finished, counted by the worker */
    /* The manager's ring of this block (head | count << 8): the slots
     * whose calls may be QUEUED, oldest first. */
    alignas(64) atomic_uint window;
    atomic_uint claims[DEPTH]; /* enum cf__claim */
    /* The calls' sequence numbers: written before their words are QUEUED
     * and increasing along the window among the QUEUED ones. */
    atomic_uint seqs[DEPTH];
    struct slot slots[DEPTH];
};

struct shared {
    /* The manager's sleeps, twice: odd while it is asleep in poll(). */
    alignas(64) atomic_uint sleeps;
    /* Odd while the manager moves a call between rings, or between the
     * queue and a ring. */
    alignas(64) atomic_uint moves;
    /* The sequence number of the queue's head if it is older than a call
     * sent (a call handed back), else QUEUE_LO_NONE: lowered before such a
     * call leaves its slot, raised after it is sent again. */
    atomic_ullong queue_lo;
    struct block blocks[]; /* [max_workers] */
};

/* ---- the pool --------------------------------------------------------- */

/* What the parent asks the fork server, one octet each: a worker, or to
 * kill what is left and exit (sent before the parent closes its socket, so
 * that the server never waits for an end of file that a copy of the
 * socket in a fork of the program would hold back). */
#define ASK_SPAWN 'S'
#define ASK_QUIT 'Q'
/* terminate_workers / kill_workers: signal every worker, and every one
 * forked from now on. The server sends them: it is their parent, so a pid
 * it has not reaped cannot belong to another process yet. */
#define ASK_TERM 'T'
#define ASK_KILL 'K'

/* What the fork server tells the parent. MSG_EXIT_UNREAD: the worker
 * ended, but its wait status could not be read. */
enum { MSG_SPAWNED = 1, MSG_SPAWN_FAILED, MSG_EXITED, MSG_EXIT_UNREAD };
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

/* A large BYTES or STR result being read straight into its value's
 * buffer (process_manager.c, start_large_result). */
struct large_result {
    char *data; /* malloc'd, len + 1 octets; NULL: none being read */
    size_t len, have;
    uint32_t slot;
    cf_type type;
};

struct worker {
    pid_t pid;
    int fd; /* -1 once closed */
    enum worker_state state;
    int nsent;          /* task frames sent, for max_tasks_per_child */
    size_t block;       /* its slots: shared->blocks[block] */
    bool exited;        /* the server reported its end */
    bool status_unread; /* ... but could not read its wait status */
    int wstatus;
    /* The calls sent and not collected, oldest first: ring[(head + i) %
     * DEPTH] uses slot (head + i) % DEPTH of the block; NULL for a call
     * revoked and sent elsewhere, or answered on the socket. */
    cf_future *ring[DEPTH];
    uint32_t last_seq; /* of the call sent to it last */
    unsigned head, count;
    unsigned live;      /* the non-NULL ones */
    unsigned collected; /* calls collected, to compare with block->done */
    struct stream in, out;
    struct large_result large; /* read instead of in while data is set */
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
    /* The errno of the last failed start of a worker while none was left
     * (then submits are refused with CF_EAGAIN), and a refused submit's
     * request that the manager try again. */
    int spawn_errno;
    bool probe;
    /* terminate_workers / kill_workers: the signal the manager is asked to
     * send every worker (0: none asked), and whether it did. */
    int force_signal;
    bool force_sent;
    atomic_uint events; /* submits and wake-ups, for a lingering manager */
    uint32_t next_seq;  /* the next call's sequence number */
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
    int forced; /* the signal the workers were sent: none starts again */
    uint32_t newest_sent; /* the youngest call's number sent, */
    bool sent_any;        /* ... once one was */
    struct pollfd *pfds;
    bool finished;
};

/* The pool whose manager thread this is. */
extern _Thread_local struct process_pool *cf__pp_current_pool;

static inline struct slot *cf__pp_slot_at(const struct process_pool *p,
                                          size_t slot) {
    return &p->shared->blocks[slot / DEPTH].slots[slot % DEPTH];
}

static inline atomic_uint *cf__pp_claim_at(const struct process_pool *p,
                                           size_t slot) {
    return &p->shared->blocks[slot / DEPTH].claims[slot % DEPTH];
}

static inline atomic_uint *cf__pp_seq_at(const struct process_pool *p,
                                         size_t slot) {
    return &p->shared->blocks[slot / DEPTH].seqs[slot % DEPTH];
}

/* ---- descriptors and streams (process_io.c) --------------------------- */

bool cf__pp_write_all(int fd, const void *data, size_t len);
/* Moves fd to CHILD_FD, close-on-exec, and closes every other descriptor
 * above 2. */
void cf__pp_keep_only(int fd);

/* Room for `room` more octets after what s holds, moving what is left to
 * parse to the front first; false if it cannot be allocated. */
bool cf__pp_stream_reserve(struct stream *s, size_t room);

/*
 * The next whole frame in s: its payload at *payload (valid until s is
 * read into again), its length at *len. Otherwise false, with *need set to
 * how many more octets s must hold for one, or 0 if that frame cannot be
 * allocated.
 */
bool cf__pp_stream_frame(struct stream *s, const unsigned char **payload,
                         size_t *len, size_t *need);

/* Reads what fd has (at least `need` octets' room); the octets read, 0 at
 * EOF, -1 with errno set (EAGAIN: nothing yet; ENOMEM: no room). */
ssize_t cf__pp_stream_read(struct stream *s, int fd, size_t need);

void cf__pp_stream_free(struct stream *s);

/* Gives back a buffer that grew past LARGE_BUFFER once what is left in it
 * (not yet parsed or sent) fits in READ_CHUNK octets: frees it if nothing
 * is left, else moves the rest to a new READ_CHUNK buffer (keeps it if
 * that cannot be allocated). */
void cf__pp_stream_trim(struct stream *s);

/* ---- the worker process (process_worker.c) ---------------------------- */

/* A worker's life, in the child server_spawn forked: fd is its end of
 * the socket to the manager, server the fork server's pid. */
_Noreturn void cf__pp_worker_main(const struct process_pool *p, int fd,
                                  pid_t server);

/* ---- the fork server (fork_server.c) ---------------------------------- */

/* Forks the server, from the manager thread. */
cf_status cf__pp_start_server(struct process_pool *p);
/* Closes the server's socket (it kills and reaps what is left of the
 * workers, then exits) and reaps the server. */
void cf__pp_stop_server(struct process_pool *p);

/* ---- the manager thread (process_manager.c) --------------------------- */

/* The manager thread's body; arg is the pool. */
void *cf__pp_manager_main(void *arg);
/* In shutdown(cancel_futures): cancels every call sent and not yet
 * claimed. */
void cf__pp_cancel_sent(struct process_pool *p);
/* Why no worker could be started (errno err), as Python's OSError for it:
 * its type name and "[Errno N] text". */
const char *cf__pp_errno_type(int err);
void cf__pp_errno_message(int err, char *buf, size_t size);
/* cf_refuse(CF_EAGAIN) with that OSError. */
cf_status cf__pp_refuse_spawn(int err);
/* For terminate_workers / kill_workers: has the fork server send sig
 * (SIGTERM or SIGKILL) to every worker, and to every worker that starts
 * from now on; none is asked for again. In the manager thread. */
void cf__pp_signal_workers(struct process_pool *p, int sig);
/*
 * From a submitting thread while the manager sleeps in poll() (io_lock
 * held): sends the one queued call to an idle worker, sparing the round
 * trip the manager's wake-up. Anything more (more calls, no idle worker,
 * octets left for a socket) is the manager's: true if it must be woken.
 */
bool cf__pp_submit_directly(struct process_pool *p);

#endif
