/*
 * internal.h -- what the reference library's files share and nobody else
 * sees. Names start with cf__.
 *
 * Locks, in the order they may be taken (never the other way round):
 *   1. an executor's own lock (thread_pool.c: pool->lock)
 *   2. a future's stripe lock (future.c: futures share a fixed table of
 *      mutex + condition pairs chosen by address, so a future carries no
 *      lock of its own; never hold two stripe locks at once)
 *   3. a waiter's lock (wait.c, as_completed.c)
 * The registry lock (executor.c) and the log hook lock (value.c) are leaves:
 * nothing else is taken while they are held. User code -- task functions,
 * done callbacks, the log hook -- always runs with no lock held.
 */
#ifndef CF_INTERNAL_H
#define CF_INTERNAL_H

/* POSIX clocks and threads under -std=c11 (thread_pool.c asks for more). */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "cfutures.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

/* ---- errors (value.c) ------------------------------------------------- */

struct cf_error {
    cf_status status;
    char *type;    /* points into the same allocation */
    char *message; /* likewise */
};

/* A static MemoryError given out when an error cannot be allocated; freeing
 * it does nothing. */
extern cf_error cf__nomem_error;

/* NULL only when out of memory. */
cf_error *cf__error_new(cf_status status, const char *type,
                        const char *message);
cf_error *cf__error_vformat(cf_status status, const char *type,
                            const char *fmt, va_list ap);
void cf__error_free(cf_error *error);
/* A Python type name: letters, digits, '_' and '.', not empty. */
bool cf__type_name_valid(const char *type);

/* ---- values (value.c) ------------------------------------------------- */

/* What breaks the header's rules in a BYTES or STR value (NULL data with a
 * length; a STR that is not UTF-8 or holds a NUL), as a phrase for a
 * message; NULL for a sound one and for every other type. Reads only
 * data[0, len). */
const char *cf__buffer_fault(const cf_value *v);

/* ---- the code points repr() escapes (unicode_table.c) ----------------- */

struct cf__range {
    uint32_t lo, hi;
};
extern const struct cf__range cf__unprintable[];
extern const size_t cf__unprintable_count;

/* ---- logging (value.c) ------------------------------------------------ */

void cf__log(cf_log_level level, const char *fmt, ...) CF_PRINTF(2, 3);
void cf__vlog(cf_log_level level, const char *fmt, va_list ap) CF_PRINTF(2, 0);
/* For the fork handlers (future.c). */
void cf__log_fork_lock(void);
void cf__log_fork_unlock(void);

/* ---- deadlines (deadline.c) ------------------------------------------- */

typedef struct cf__deadline {
    bool forever;
    struct timespec at; /* CLOCK_MONOTONIC */
} cf__deadline;

/* CF_EINVAL for NaN; CF_FOREVER and huge values never expire. */
cf_status cf__deadline_make(double timeout, cf__deadline *d);
bool cf__deadline_passed(const cf__deadline *d);
/* Seconds left: CF_FOREVER, or >= 0. */
double cf__deadline_remaining(const cf__deadline *d);
/* A condition variable that times out on CLOCK_MONOTONIC. */
int cf__cond_init(pthread_cond_t *cond);
/* Waits once; false when the deadline has passed. */
bool cf__cond_wait(pthread_cond_t *cond, pthread_mutex_t *lock,
                   const cf__deadline *d);

/* ---- futures (future.c) ----------------------------------------------- */

enum cf__state { CF__PENDING, CF__RUNNING, CF__CANCELLED, CF__FINISHED };

struct cf__callback {
    struct cf__callback *next;
    cf_done_callback fn;
    void *ctx;
};

struct cf__waiter;

/* One future's link to a waiter (wait.c, as_completed.c). */
struct cf__waiter_node {
    struct cf__waiter *waiter;
    cf_future *future;
    struct cf__waiter_node *prev, *next; /* in the future's list */
    struct cf__waiter_node *ready_next;  /* in the waiter's ready list */
    bool linked;                         /* in the future's list */
};

/*
 * A thread waiting on many futures. A future that completes, under its
 * stripe lock, takes the waiter's lock, counts itself and queues its node
 * on the ready list.
 */
struct cf__waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t completed; /* nodes notified */
    bool raised;      /* one of them finished with an error */
    struct cf__waiter_node *ready_head, *ready_tail;
};

struct cf_future {
    uint32_t magic;
    atomic_uint refs;
    unsigned char state;    /* enum cf__state */
    bool notified;          /* set_running_or_notify_cancel saw CANCELLED */
    atomic_bool work_ended; /* the executor's reference is gone */
    /* A process pool's submission order, modulo 2^32 (cf__seq_before). */
    uint32_t seq;
    cf_value value;                 /* FINISHED without error */
    cf_error *error;                /* FINISHED with error */
    struct cf__callback *callbacks; /* newest first */
    struct cf__waiter_node *waiters;
    /* The call, for futures made by cf_submit. */
    cf_fn fn;
    /* The executor that took the work: each live work holds a reference
     * on it (cf__executor_work_ended drops it). */
    cf_executor *executor;
    /* The executor's own word while it owns the work (cf_work_slot); the
     * reference pools link their queues through it. */
    union {
        void *slot;
        cf_future *queue_next;
    };
    /* A call sent ahead to a worker process: the word the worker claims it
     * with (see cf__future_set_claim); NULL otherwise. */
    atomic_uint *claim;
    size_t nargs;
    cf_value args[]; /* freed once the call has run */
};

#define CF__FUTURE_MAGIC 0x63667574u /* "cfut" */

/* Whether sequence number a comes before b, modulo 2^32 (the calls
 * compared are fewer than 2^31 submissions apart). */
static inline bool cf__seq_before(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

/* A PENDING future with room for nargs arguments (set to None); one
 * reference. NULL when out of memory. */
cf_future *cf__future_alloc(size_t nargs);
bool cf__future_valid(const cf_future *f);
/* Makes fork() wait for the stripe and log locks (once per process). */
void cf__fork_safety_init(void);
/* What an executor's worker wants to hear while it finishes a call. */
struct cf__run_hooks {
    /* the task returned; its outcome is not yet visible to anyone */
    void (*before_publish)(void *ctx);
    /* the outcome is visible and done callbacks are about to run here */
    void (*before_callbacks)(void *ctx);
    void *ctx;
};

/* Moves *value or error into a PENDING or RUNNING future and runs the
 * callbacks (calling hooks->before_callbacks first if there are any; hooks
 * may be NULL); CF_INVALID_STATE otherwise (ownership then stays with the
 * caller). */
cf_status cf__future_finish(cf_future *f, cf_value *value, cf_error *error,
                            const struct cf__run_hooks *hooks);
/*
 * Claims: a process pool sends calls ahead to a worker while they are still
 * PENDING and cancellable. Each such call has a claim word in memory the
 * worker shares; the worker may start the call only by moving its word from
 * QUEUED to RUNNING, and cf_future_cancel only by moving it from QUEUED to
 * CANCELLED, so exactly one of them wins. A future whose word says RUNNING
 * reads as RUNNING. REVOKED: the pool took the call back, to send it to
 * another worker under a new word.
 */
enum {
    CF__CLAIM_QUEUED = 1,
    CF__CLAIM_RUNNING,
    CF__CLAIM_CANCELLED,
    CF__CLAIM_REVOKED
};
/* Makes *claim QUEUED and f's claim word; false (nothing changed) unless f
 * is PENDING. */
bool cf__future_set_claim(cf_future *f, atomic_uint *claim);
/* Moves f's call to the word *to: revokes its current word and makes *to
 * QUEUED; false (nothing changed) if f is no longer PENDING or its worker
 * claimed it. */
bool cf__future_move_claim(cf_future *f, atomic_uint *to);
/* Takes f's call back from its worker to queue it again: revokes its word
 * and forgets it; false (nothing changed) if f is no longer PENDING or its
 * word is not QUEUED (it was cancelled). */
bool cf__future_unclaim(cf_future *f);
/* Links node into the future's waiters unless it is done: then returns true
 * and sets *raised to whether it finished with an error. */
bool cf__future_add_waiter(cf_future *f, struct cf__waiter_node *node,
                           bool *raised);
void cf__future_remove_waiter(cf_future *f, struct cf__waiter_node *node);

/* ---- waiters (waiter.c) ----------------------------------------------- */

int cf__waiter_init(struct cf__waiter *w);
void cf__waiter_destroy(struct cf__waiter *w);
/* Called by a completing future with its stripe lock held. */
void cf__waiter_notify(struct cf__waiter_node *node, bool raised);
/* Queues a node for a future found already done. */
void cf__waiter_push_ready(struct cf__waiter *w, struct cf__waiter_node *node);

/* Distinct futures of fs in first-listed order (O(n) with a hash set).
 * *out is malloc'd (NULL for n == 0); CF_EINVAL for a NULL or foreign
 * element, CF_NOMEM. */
cf_status cf__unique_futures(cf_future *const *fs, size_t n, cf_future ***out,
                             size_t *nout);

/* ---- works (work.c) --------------------------------------------------- */

/* A cf_work is the future of a submitted call, seen from the executor. */
static inline cf_future *cf__work_future(const cf_work *w) {
    return (cf_future *)w;
}
static inline cf_work *cf__future_work(cf_future *f) {
    return (cf_work *)f;
}

/* Runs fn(*args) in this thread. On return *value holds what it returned
 * (None if nothing) and *error what it raised (NULL if nothing); both the
 * caller's. Returns CF_OK, or the error's status. */
cf_status cf__call_invoke(cf_fn fn, const cf_value *args, size_t nargs,
                          cf_value *value, cf_error **error);

/* cf_work_run with hooks (see struct cf__run_hooks), called only when the
 * task ran (CF_OK). */
cf_status cf__work_run_hooked(cf_work *work,
                              const struct cf__run_hooks *hooks);

/* ---- what the executors share (queue.c) ------------------------------- */

/* A FIFO of queued works, linked through queue_next (their slot). */
struct cf__queue {
    cf_future *head, *tail;
    size_t len;
};

void cf__queue_push(struct cf__queue *q, cf_future *f);
/* Puts f back at the head, to be popped next. */
void cf__queue_push_front(struct cf__queue *q, cf_future *f);
/* NULL when empty. */
cf_future *cf__queue_pop(struct cf__queue *q);
/* Empties the queue and gives its works as a list linked by queue_next. */
cf_future *cf__queue_take_all(struct cf__queue *q);
/* Cancels and ends every work of such a list (callbacks run here): the
 * header's cancel-at-shutdown pattern, called with no lock held. */
void cf__works_cancel(cf_future *list);
/* A pool's lock, the lock serialising its joiners, and its condition
 * variable (on CLOCK_MONOTONIC): all made, or none (CF_EAGAIN). */
cf_status cf__pool_sync_init(pthread_mutex_t *lock, pthread_mutex_t *join_lock,
                             pthread_cond_t *cond);
void cf__pool_sync_destroy(pthread_mutex_t *lock, pthread_mutex_t *join_lock,
                           pthread_cond_t *cond);
/* Deep copies of n values (*out NULL when n is 0); CF_NOMEM, CF_EINVAL. */
cf_status cf__values_dup(const cf_value *src, size_t n, cf_value **out);
void cf__values_free(cf_value *values, size_t n);

/* ---- why a submit failed (last_error.c) ------------------------------ */

/* How many cf_refuse calls this thread has made. */
unsigned cf__refusals(void);
/* cf_refuse with the exception Python raises for status (RuntimeError
 * "cannot schedule new futures after shutdown", ...), for a refusal whose
 * executor did not say why. */
cf_status cf__refuse_by_status(cf_status status);

/* ---- executors (executor.c) ------------------------------------------- */

/* True when a public struct's reserved slots (room for what a later version
 * adds) are all NULL, as the header requires. */
bool cf__reserved_unset(void *const *reserved, size_t n);
#define CF__RESERVED_UNSET(s)                                                 \
    cf__reserved_unset((s)->reserved,                                         \
                       sizeof(s)->reserved / sizeof(s)->reserved[0])

/* cf_executor_new in two steps, for a pool whose worker processes must
 * find the executor in their copy of the program (a task calling its own
 * pool then meets a copy without threads: the documented deadlock, as in
 * CPython): an executor not yet listed for the exit-time wait (free() it
 * if the pool fails), then listed once the pool is ready. */
cf_executor *cf__executor_alloc(const cf_executor_ops *ops, void *self);
void cf__executor_register(cf_executor *ex);
/* The executor's own state if ops is its table (it is that kind of
 * executor), else NULL. */
void *cf__executor_self(const cf_executor *ex, const cf_executor_ops *ops);
/* True once the atexit wait began: submits are refused from then on. */
bool cf__exiting(void);
/* For the library's own pools, whose submit refuses work after shutdown
 * itself, naming a broken pool's error first, as Python's pools raise
 * BrokenThreadPool / BrokenProcessPool before "cannot schedule new futures
 * after shutdown": cf_submit then leaves the check to ops->submit. Call
 * before the executor is given out. */
void cf__executor_checks_shutdown(cf_executor *ex);
/* Set by cf_executor_set_chunked: cf_map sends ex its items in chunks. */
bool cf__executor_runs_chunks(const cf_executor *ex);
/* A work the executor took has ended (work.c): drops its reference. */
void cf__executor_work_ended(cf_executor *ex);

/* ---- executor misuse (misuse.c) --------------------------------------- */

/* Reports an executor breaking the header's contract: logs "executor
 * misuse: <message>" at CF_LOG_CRITICAL, then aborts in a debug build (or
 * as CF_MISUSE says). Call it with no lock held. */
void cf__misuse(const char *fmt, ...) CF_PRINTF(1, 2);

/* ---- crossing a process boundary (ipc.c, process_pool.c) -------------- */

/* A growable octet buffer; zero-initialise it. */
struct cf__buf {
    unsigned char *data;
    size_t len, cap;
};

/* What is left to decode: [at, end). */
struct cf__reader {
    const unsigned char *at, *end;
};

/* Octets before each frame's payload: its length, u32 little-endian. */
#define CF__FRAME_HEADER 4

/* What a worker sends back. */
enum cf__outcome {
    CF__OUT_VALUE = 1,   /* the call returned a value */
    CF__OUT_ERROR,       /* the call raised an error */
    CF__OUT_INIT_FAILED, /* the initializer raised; the worker exits */
    CF__OUT_SKIPPED,     /* the call was cancelled or revoked: not run */
    CF__OUT_WAKE,        /* nothing: outcomes wait in shared memory */
    CF__OUT_DEFERRED     /* not run, for an older call waits: handed back */
};

/* The slot of an outcome that answers no call. */
#define CF__NO_SLOT UINT32_MAX

/* Appends len octets; CF_NOMEM. */
cf_status cf__buf_put(struct cf__buf *b, const void *data, size_t len);
void cf__buf_free(struct cf__buf *b);
/* Appends one tagged value; CF_EINVAL for a PTR, an unknown type, or a
 * BYTES/STR that cf__buffer_fault faults. */
cf_status cf__encode_value(struct cf__buf *b, const cf_value *v);
/* Decodes one value into *out (the caller's); CF_EINVAL for a malformed
 * one, CF_NOMEM. */
cf_status cf__decode_value(struct cf__reader *r, cf_value *out);
/* Decodes n values, which must be all that r holds, into a new array *out
 * (the caller's, for cf__values_free); CF_EINVAL, CF_NOMEM. */
cf_status cf__decode_values(struct cf__reader *r, size_t n, cf_value **out);
/* Replaces b's contents with a whole frame (header included) for
 * fn(*args) under claim word `slot`; CF_EINVAL if an argument cannot be
 * encoded (a PTR). */
cf_status cf__frame_task(struct cf__buf *b, uint32_t slot, cf_fn fn,
                         const cf_value *args, size_t nargs);
/* The same frame appended to what b holds; on failure b holds what it
 * held (its capacity may have grown). */
cf_status cf__frame_task_append(struct cf__buf *b, uint32_t slot, cf_fn fn,
                                const cf_value *args, size_t nargs);
/* Replaces b's contents with a whole outcome frame for the call under
 * claim word `slot`: value for CF__OUT_VALUE (CF_EINVAL for a PTR), error
 * for CF__OUT_ERROR and CF__OUT_INIT_FAILED, nothing for the others. */
cf_status cf__frame_outcome(struct cf__buf *b, uint32_t slot,
                            enum cf__outcome kind, const cf_value *value,
                            const cf_error *error);
/* The payload length a frame header announces. */
uint32_t cf__frame_length(const unsigned char *header);
/* Decodes a task payload; *args (malloc'd, nargs values) is the caller's.
 * CF_EINVAL for a malformed payload, CF_NOMEM. */
cf_status cf__parse_task(const void *payload, size_t len, uint32_t *slot,
                         cf_fn *fn, cf_value **args, size_t *nargs);
/* Whether the first `have` octets of an outcome payload agree that it is
 * `len` octets long (its kind, and a value's or an error's own lengths,
 * say how long it must be), before len octets are reserved for it: 1 yes
 * (*slot is the call it answers), 0 not known yet (more octets needed, at
 * most 4 KiB and some), -1 no. */
int cf__outcome_length_check(const unsigned char *payload, size_t have,
                             size_t len, uint32_t *slot);
/* Decodes an outcome payload: its *slot and *kind, *value for
 * CF__OUT_VALUE, *error (the caller's; NULL for CF__OUT_SKIPPED,
 * CF__OUT_WAKE and CF__OUT_DEFERRED) otherwise. CF_EINVAL for a malformed
 * payload, CF_NOMEM. */
cf_status cf__parse_outcome(const void *payload, size_t len, uint32_t *slot,
                            enum cf__outcome *kind, cf_value *value,
                            cf_error **error);
/* Where a BYTES or STR result's octets start in its outcome payload; they
 * run to its end. */
#define CF__OUTCOME_BUFFER_AT 14
/* Whether the first `have` octets of an outcome payload `len` octets long
 * begin a BYTES or STR result (false if fewer than CF__OUTCOME_BUFFER_AT
 * are there): then sets *slot and *type. */
bool cf__outcome_buffer(const unsigned char *payload, size_t have, size_t len,
                        uint32_t *slot, cf_type *type);
/* Makes *out a BYTES or STR value owning data, a malloc'd block of len + 1
 * octets whose first len are the value's (data[len] becomes its
 * terminator), as if decoded: CF_EINVAL, data freed, for a STR that holds
 * a NUL or is not UTF-8. */
cf_status cf__decode_buffer(cf_value *out, cf_type type, char *data,
                            size_t len);

#endif
