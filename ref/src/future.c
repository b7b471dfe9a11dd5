/*
 * future.c -- the future state machine, result waits and done callbacks.
 *
 * Locks: a future has no lock of its own. Its state lives under one of
 * CF__STRIPES stripe locks picked by its address; the stripe's condition
 * variable wakes result() and exception() waiters (a broadcast may wake a
 * waiter of another future on the same stripe, which just waits again).
 * This keeps a future small and its creation free of pthread calls. Never
 * hold two stripe locks at once. A stripe lock is taken after an executor's
 * lock and before a waiter's lock (internal.h).
 */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* 32: plenty for the threads a machine runs, and few enough that a fork can
 * hold them all (ThreadSanitizer tracks at most 64 locks held at once). */
#define CF__STRIPES 32

struct stripe {
    pthread_mutex_t lock;
    pthread_cond_t cond;
} __attribute__((aligned(64)));

static struct stripe stripes[CF__STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;
static bool stripes_ok;

/* fork() copies only the calling thread: a stripe (or the log lock) held
 * by another thread at that moment would stay locked in the child forever.
 * So the fork waits until it can hold them all. Taking every stripe in index
 * order cannot deadlock, since no thread ever holds two. */
static void before_fork(void) {
    cf__log_fork_lock();
    for (int i = 0; i < CF__STRIPES; i++)
        pthread_mutex_lock(&stripes[i].lock);
}

static void after_fork(void) {
    for (int i = CF__STRIPES - 1; i >= 0; i--)
        pthread_mutex_unlock(&stripes[i].lock);
    cf__log_fork_unlock();
}

static void stripes_init(void) {
    for (int i = 0; i < CF__STRIPES; i++)
        if (pthread_mutex_init(&stripes[i].lock, NULL) ||
            cf__cond_init(&stripes[i].cond))
            return;
    stripes_ok = pthread_atfork(before_fork, after_fork, after_fork) == 0;
}

void cf__fork_safety_init(void) {
    pthread_once(&stripes_once, stripes_init);
}

static struct stripe *stripe_of(const cf_future *f) {
    uintptr_t p = (uintptr_t)f;
    return &stripes[(p >> 6 ^ p >> 12) % CF__STRIPES];
}

static struct stripe *lock_future(const cf_future *f) {
    struct stripe *s = stripe_of(f);
    pthread_mutex_lock(&s->lock);
    return s;
}

static void unlock_stripe(struct stripe *s) {
    pthread_mutex_unlock(&s->lock);
}

/* After a future on s became done: waiters are woken once the lock is
 * free, so that they do not wake only to block on it. */
static void unlock_and_wake(struct stripe *s) {
    pthread_mutex_unlock(&s->lock);
    pthread_cond_broadcast(&s->cond);
}

/* ---- life cycle ------------------------------------------------------- */

/* The submit path allocates only the future, which is also the queue entry:
 * with one argument it fits in two cache lines. */
_Static_assert(sizeof(cf_future) + sizeof(cf_value) <= 128,
               "a one-argument call and its future fit in 128 bytes");

cf_future *cf__future_alloc(size_t nargs) {
    cf__fork_safety_init();
    if (!stripes_ok ||
        nargs > (SIZE_MAX - sizeof(cf_future)) / sizeof(cf_value))
        return NULL;
    cf_future *f = calloc(1, sizeof *f + nargs * sizeof(cf_value));
    if (!f)
        return NULL;
    f->magic = CF__FUTURE_MAGIC;
    atomic_init(&f->refs, 1);
    f->state = CF__PENDING;
    f->nargs = nargs;
    return f;
}

bool cf__future_valid(const cf_future *f) {
    return f && f->magic == CF__FUTURE_MAGIC;
}

cf_status cf_future_new(cf_future **out) {
    if (!out)
        return CF_EINVAL;
    cf_future *f = cf__future_alloc(0);
    if (!f)
        return CF_NOMEM;
    *out = f;
    return CF_OK;
}

cf_status cf_future_retain(cf_future *f) {
    if (!cf__future_valid(f))
        return CF_EINVAL;
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return CF_OK;
}

static void future_destroy(cf_future *f) {
    struct cf__callback *cb = f->callbacks;
    while (cb) {
        struct cf__callback *next = cb->next;
        free(cb);
        cb = next;
    }
    cf_value_free(&f->value);
    cf__error_free(f->error);
    for (size_t i = 0; i < f->nargs; i++)
        cf_value_free(&f->args[i]);
    f->magic = 0;
    free(f);
}

cf_status cf_future_release(cf_future *f) {
    if (!cf__future_valid(f))
        return CF_EINVAL;
    unsigned before =
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    if (before == 1)
        future_destroy(f);
    return CF_OK;
}

/* ---- state ------------------------------------------------------------ */

static bool is_done(const cf_future *f) {
    return f->state == CF__CANCELLED || f->state == CF__FINISHED;
}

/* With the stripe locked: the state, where a PENDING call its worker has
 * claimed is RUNNING. */
static unsigned char state_locked(const cf_future *f) {
    if (f->state == CF__PENDING && f->claim &&
        atomic_load_explicit(f->claim, memory_order_acquire) ==
            CF__CLAIM_RUNNING)
        return CF__RUNNING;
    return f->state;
}

static unsigned char read_state(const cf_future *f) {
    struct stripe *s = lock_future(f);
    unsigned char state = state_locked(f);
    unlock_stripe(s);
    return state;
}

bool cf_future_cancelled(const cf_future *f) {
    return cf__future_valid(f) && read_state(f) == CF__CANCELLED;
}

bool cf_future_running(const cf_future *f) {
    return cf__future_valid(f) && read_state(f) == CF__RUNNING;
}

bool cf_future_done(const cf_future *f) {
    if (!cf__future_valid(f))
        return false;
    unsigned char state = read_state(f);
    return state == CF__CANCELLED || state == CF__FINISHED;
}

/*
 * Called with the stripe lock held when the future has just become done:
 * notifies every waiter of wait() and as_completed() and hands back the
 * callbacks, oldest first, for the caller to run once it has unlocked with
 * unlock_and_wake.
 */
static struct cf__callback *complete_locked(cf_future *f) {
    bool raised = f->state == CF__FINISHED && f->error != NULL;
    for (struct cf__waiter_node *n = f->waiters, *next; n; n = next) {
        next = n->next;
        n->linked = false;
        cf__waiter_notify(n, raised);
    }
    f->waiters = NULL;
    struct cf__callback *newest = f->callbacks, *oldest = NULL;
    f->callbacks = NULL;
    while (newest) {
        struct cf__callback *next = newest->next;
        newest->next = oldest;
        oldest = newest;
        newest = next;
    }
    return oldest;
}

static void run_callback(cf_future *f, cf_done_callback fn, void *ctx) {
    cf_status st = fn(f, ctx);
    if (st != CF_OK)
        cf__log(CF_LOG_ERROR,
                "exception calling callback for <Future at %p state=%s>: "
                "callback returned %s",
                (void *)f, cf_future_cancelled(f) ? "cancelled" : "finished",
                cf_status_name(st));
}

/* The completing thread keeps the future alive across its callbacks, so a
 * callback may release any reference it owns. */
static void run_callbacks(cf_future *f, struct cf__callback *cb) {
    if (!cb)
        return;
    cf_future_retain(f);
    while (cb) {
        struct cf__callback *next = cb->next;
        run_callback(f, cb->fn, cb->ctx);
        free(cb);
        cb = next;
    }
    cf_future_release(f);
}

bool cf_future_cancel(cf_future *f) {
    if (!cf__future_valid(f))
        return false;
    struct stripe *s = lock_future(f);
    if (f->state == CF__PENDING && f->claim) {
        unsigned queued = CF__CLAIM_QUEUED;
        if (!atomic_compare_exchange_strong_explicit(
                f->claim, &queued, CF__CLAIM_CANCELLED, memory_order_acq_rel,
                memory_order_acquire))
            f->state = CF__RUNNING; /* its worker claimed it first */
    }
    if (f->state == CF__RUNNING || f->state == CF__FINISHED) {
        unlock_stripe(s);
        return false;
    }
    if (f->state == CF__CANCELLED) {
        unlock_stripe(s);
        return true;
    }
    f->state = CF__CANCELLED;
    struct cf__callback *cb = complete_locked(f);
    unlock_and_wake(s);
    run_callbacks(f, cb);
    return true;
}

/* A state as CPython's _base.py spells it, where set_running_or_notify_cancel
 * cannot go on: RUNNING, FINISHED, or cancelled and already notified. */
static const char *unexpected_state_name(const cf_future *f) {
    if (f->state == CF__RUNNING)
        return "RUNNING";
    return f->state == CF__FINISHED ? "FINISHED" : "CANCELLED_AND_NOTIFIED";
}

cf_status cf_future_set_running_or_notify_cancel(cf_future *f) {
    if (!cf__future_valid(f))
        return CF_EINVAL;
    cf_status st = CF_INVALID_STATE;
    const char *state = NULL;
    struct stripe *s = lock_future(f);
    if (f->state == CF__PENDING) {
        f->state = CF__RUNNING;
        st = CF_OK;
    } else if (f->state == CF__CANCELLED && !f->notified) {
        /* Waiters were woken at cancel (the documented semantics); only the
         * one-time notification is recorded. */
        f->notified = true;
        st = CF_CANCELLED;
    } else {
        state = unexpected_state_name(f);
    }
    unlock_stripe(s);
    /* Logged as CPython does before it raises RuntimeError, unlocked (the
     * hook may use the future); CPython's id() is the address. */
    if (state)
        cf__log(CF_LOG_CRITICAL, "Future %" PRIuPTR " in unexpected state: %s",
                (uintptr_t)f, state);
    return st;
}

bool cf__future_set_claim(cf_future *f, atomic_uint *claim) {
    struct stripe *s = lock_future(f);
    bool pending = f->state == CF__PENDING;
    if (pending) {
        atomic_store_explicit(claim, CF__CLAIM_QUEUED, memory_order_release);
        f->claim = claim;
    }
    unlock_stripe(s);
    return pending;
}

bool cf__future_move_claim(cf_future *f, atomic_uint *to) {
    struct stripe *s = lock_future(f);
    unsigned queued = CF__CLAIM_QUEUED;
    /* The new word is QUEUED before the old one is revoked, so that a
     * worker looking for older queued calls (process_worker.c) never sees
     * the call in neither. */
    bool moved = f->state == CF__PENDING && f->claim;
    if (moved)
        atomic_store(to, CF__CLAIM_QUEUED);
    moved = moved && atomic_compare_exchange_strong(f->claim, &queued,
                                                    CF__CLAIM_REVOKED);
    if (moved)
        f->claim = to;
    else
        atomic_store(to, 0);
    unlock_stripe(s);
    return moved;
}

bool cf__future_unclaim(cf_future *f) {
    struct stripe *s = lock_future(f);
    unsigned queued = CF__CLAIM_QUEUED;
    bool taken =
        f->state == CF__PENDING && f->claim &&
        atomic_compare_exchange_strong(f->claim, &queued, CF__CLAIM_REVOKED);
    if (taken)
        f->claim = NULL;
    unlock_stripe(s);
    return taken;
}

cf_status cf__future_finish(cf_future *f, cf_value *value, cf_error *error,
                            const struct cf__run_hooks *hooks) {
    struct stripe *s = lock_future(f);
    if (f->state != CF__PENDING && f->state != CF__RUNNING) {
        unlock_stripe(s);
        return CF_INVALID_STATE;
    }
    f->claim = NULL; /* the word is the pool's to reuse from now on */
    if (error) {
        f->error = error;
    } else {
        f->value = *value;
        *value = cf_none();
    }
    f->state = CF__FINISHED;
    struct cf__callback *cb = complete_locked(f);
    unlock_and_wake(s);
    if (cb && hooks && hooks->before_callbacks)
        hooks->before_callbacks(hooks->ctx);
    run_callbacks(f, cb);
    return CF_OK;
}

cf_status cf_future_set_result(cf_future *f, const cf_value *value) {
    cf_value copy;
    if (!cf__future_valid(f) || !value)
        return CF_EINVAL;
    cf_status st = cf_value_copy(&copy, value);
    if (st != CF_OK)
        return st;
    st = cf__future_finish(f, &copy, NULL, NULL);
    cf_value_free(&copy);
    return st;
}

cf_status cf_future_set_exception(cf_future *f, const char *type,
                                  const char *message) {
    if (!cf__future_valid(f) || !cf__type_name_valid(type) || !message)
        return CF_EINVAL;
    cf_error *e = cf__error_new(CF_RAISED, type, message);
    if (!e)
        return CF_NOMEM;
    cf_status st = cf__future_finish(f, NULL, e, NULL);
    if (st != CF_OK)
        cf__error_free(e);
    return st;
}

/* ---- waiting ---------------------------------------------------------- */

/* Waits until done or the deadline; returns with the stripe locked. */
static cf_status wait_done(cf_future *f, double timeout, struct stripe **s) {
    cf__deadline d;
    if (!cf__future_valid(f) || cf__deadline_make(timeout, &d) != CF_OK)
        return CF_EINVAL;
    *s = lock_future(f);
    while (!is_done(f) && cf__cond_wait(&(*s)->cond, &(*s)->lock, &d))
        ;
    if (!is_done(f)) {
        unlock_stripe(*s);
        return CF_TIMEOUT;
    }
    return CF_OK;
}

/* Waits until done; CF_OK with *error set (NULL: finished without one),
 * CF_CANCELLED, CF_TIMEOUT or CF_EINVAL. */
static cf_status wait_outcome(cf_future *f, double timeout,
                              const cf_error **error) {
    struct stripe *s;
    cf_status st = wait_done(f, timeout, &s);
    if (st != CF_OK)
        return st;
    bool cancelled = f->state == CF__CANCELLED;
    *error = f->error;
    unlock_stripe(s);
    return cancelled ? CF_CANCELLED : CF_OK;
}

cf_status cf_future_result(cf_future *f, double timeout, cf_value *out) {
    const cf_error *error;
    cf_status st = wait_outcome(f, timeout, &error);
    if (st != CF_OK)
        return st;
    if (error)
        return error->status;
    /* A finished future's outcome never changes again: read it unlocked. */
    return out ? cf_value_copy(out, &f->value) : CF_OK;
}

cf_status cf_future_exception(cf_future *f, double timeout,
                              const cf_error **out) {
    const cf_error *error;
    if (!out)
        return CF_EINVAL;
    cf_status st = wait_outcome(f, timeout, &error);
    if (st == CF_OK)
        *out = error;
    return st;
}

/* ---- callbacks -------------------------------------------------------- */

cf_status cf_future_add_done_callback(cf_future *f, cf_done_callback fn,
                                      void *ctx) {
    if (!cf__future_valid(f) || !fn)
        return CF_EINVAL;
    struct stripe *s = lock_future(f);
    if (is_done(f)) {
        unlock_stripe(s);
        run_callback(f, fn, ctx);
        return CF_OK;
    }
    unlock_stripe(s);
    struct cf__callback *cb = malloc(sizeof *cb);
    if (!cb)
        return CF_NOMEM;
    cb->fn = fn;
    cb->ctx = ctx;
    s = lock_future(f);
    if (is_done(f)) { /* it completed while we allocated */
        unlock_stripe(s);
        free(cb);
        run_callback(f, fn, ctx);
        return CF_OK;
    }
    cb->next = f->callbacks;
    f->callbacks = cb;
    unlock_stripe(s);
    return CF_OK;
}

/* ---- waiters ---------------------------------------------------------- */

bool cf__future_add_waiter(cf_future *f, struct cf__waiter_node *node,
                           bool *raised) {
    struct stripe *s = lock_future(f);
    if (is_done(f)) {
        *raised = f->state == CF__FINISHED && f->error != NULL;
        unlock_stripe(s);
        return true;
    }
    node->future = f;
    node->prev = NULL;
    node->next = f->waiters;
    if (f->waiters)
        f->waiters->prev = node;
    f->waiters = node;
    node->linked = true;
    unlock_stripe(s);
    return false;
}

void cf__future_remove_waiter(cf_future *f, struct cf__waiter_node *node) {
    struct stripe *s = lock_future(f);
    if (node->linked) {
        if (node->prev)
            node->prev->next = node->next;
        else
            f->waiters = node->next;
        if (node->next)
            node->next->prev = node->prev;
        node->linked = false;
    }
    unlock_stripe(s);
}
