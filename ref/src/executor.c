/*
 * executor.c -- what every executor shares: the operations table, submit's
 * checks, shutdown and free, and the wait at process exit.
 *
 * Locks: registry_lock guards the list of live executors and each one's
 * `visited` mark; it is a leaf (no operation of an executor runs under it).
 *
 * An executor is reference counted so that the exit handler can shut one
 * down, unlocked, while another thread frees it, so that a done callback
 * run by a shutdown may free the executor, and so that a work ending late
 * (an executor breaking the contract) finds it still there: the last
 * release frees. One word counts both kinds of reference -- holders (the
 * owner, each shutdown under way, the exit handler) in its low half, and
 * the works taken and not yet ended in its high half -- so that a submit
 * and a work's end cost one atomic add each, and cf_executor_free can tell
 * a work left unended from a holder.
 */
#define _GNU_SOURCE /* gettid */
#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLDER ((uint64_t)1)
#define WORK ((uint64_t)1 << 32)

struct cf_executor {
    const cf_executor_ops *ops;
    void *self;
    atomic_bool shutdown;
    bool visited;            /* by the exit handler */
    atomic_bool runs_chunks; /* cf_map groups items into chunks */
    /* its submit refuses after shutdown itself: cf__executor_checks_shutdown
     * (set once, before anyone else has the executor) */
    bool checks_shutdown;
    struct cf_executor *prev, *next;
    /* HOLDERs and WORKs. Every submit and every work's end writes it: on a
     * cache line of its own, away from what every submit reads. */
    _Alignas(64) _Atomic uint64_t refs;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cf_executor *registry;
static atomic_bool exiting;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

bool cf__exiting(void) {
    return atomic_load(&exiting);
}

static void executor_release(cf_executor *ex, uint64_t ref) {
    if (atomic_fetch_sub_explicit(&ex->refs, ref, memory_order_acq_rel) != ref)
        return;
    if (ex->ops->free)
        ex->ops->free(ex->self);
    free(ex);
}

static cf_executor *next_unvisited_locked(void) {
    for (cf_executor *ex = registry; ex; ex = ex->next)
        if (!ex->visited)
            return ex;
    return NULL;
}

/* As Python, the program does not end before the pending work of every
 * executor is done. Each is shut down with the registry unlocked, since its
 * tasks may make and free executors of their own. */
static void wait_at_exit(void) {
    atomic_store(&exiting, true);
    pthread_mutex_lock(&registry_lock);
    for (cf_executor *ex; (ex = next_unvisited_locked());) {
        ex->visited = true;
        atomic_fetch_add(&ex->refs, HOLDER);
        pthread_mutex_unlock(&registry_lock);
        atomic_store(&ex->shutdown, true);
        ex->ops->shutdown(ex->self, true, false); /* CF_DEADLOCK: skipped */
        executor_release(ex, HOLDER);
        pthread_mutex_lock(&registry_lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

/* fork() copies only the calling thread: the child forgets the parent's
 * executors (their workers did not come along) and must not wait for them. */
static void before_fork(void) {
    pthread_mutex_lock(&registry_lock);
}
static void after_fork_parent(void) {
    pthread_mutex_unlock(&registry_lock);
}
static void after_fork_child(void) {
    registry = NULL;
    pthread_mutex_unlock(&registry_lock);
}

static void registry_init(void) {
    atexit(wait_at_exit);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* A main thread that ends with pthread_exit() leaves the process running
 * until its last thread ends, and atexit handlers run only then; idle pool
 * workers never end on their own. Python's main thread, ending, shuts the
 * executors down with wait (threading's atexit hooks), so a key whose
 * destructor runs when the main thread exits does the same here. */
static pthread_key_t main_thread_key;

static void main_thread_exited(void *unused) {
    (void)unused;
    wait_at_exit();
}

/* Runs as the library loads: in the main thread, unless the library is
 * dlopen'ed by another thread (then pthread_exit from main is not seen). */
static bool watching_main_thread;

__attribute__((constructor)) static void watch_main_thread(void) {
    if (gettid() != getpid())
        return;
    watching_main_thread =
        pthread_key_create(&main_thread_key, main_thread_exited) == 0;
    if (watching_main_thread)
        pthread_setspecific(main_thread_key, &main_thread_key);
}

/* A library dlclose'd must not leave the key's destructor pointing into
 * code that is gone. */
__attribute__((destructor)) static void unwatch_main_thread(void) {
    if (watching_main_thread)
        pthread_key_delete(main_thread_key);
}

bool cf__reserved_unset(void *const *reserved, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (reserved[i])
            return false;
    return true;
}

cf_executor *cf__executor_alloc(const cf_executor_ops *ops, void *self) {
    cf_executor *ex = aligned_alloc(_Alignof(cf_executor), sizeof *ex);
    if (!ex)
        return NULL;
    memset(ex, 0, sizeof *ex);
    ex->ops = ops;
    ex->self = self;
    atomic_init(&ex->shutdown, false);
    atomic_init(&ex->refs, HOLDER);
    atomic_init(&ex->runs_chunks, false);
    return ex;
}

void cf__executor_register(cf_executor *ex) {
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    ex->next = registry;
    if (registry)
        registry->prev = ex;
    registry = ex;
    pthread_mutex_unlock(&registry_lock);
}

cf_status cf_executor_new(const cf_executor_ops *ops, void *self,
                          cf_executor **out) {
    if (!ops || !ops->submit || !ops->shutdown || !out ||
        !CF__RESERVED_UNSET(ops))
        return CF_EINVAL;
    cf_executor *ex = cf__executor_alloc(ops, self);
    if (!ex)
        return CF_NOMEM;
    cf__executor_register(ex);
    *out = ex;
    return CF_OK;
}

cf_status cf_executor_set_chunked(cf_executor *ex) {
    if (!ex)
        return CF_EINVAL;
    atomic_store_explicit(&ex->runs_chunks, true, memory_order_relaxed);
    return CF_OK;
}

void cf__executor_checks_shutdown(cf_executor *ex) {
    ex->checks_shutdown = true;
}

bool cf__executor_runs_chunks(const cf_executor *ex) {
    return atomic_load_explicit(&ex->runs_chunks, memory_order_relaxed);
}

void cf__executor_work_ended(cf_executor *ex) {
    executor_release(ex, WORK);
}

void *cf__executor_self(const cf_executor *ex, const cf_executor_ops *ops) {
    return ex && ex->ops == ops ? ex->self : NULL;
}

const char *cf_executor_name(const cf_executor *ex) {
    return ex && ex->ops->name ? ex->ops->name : "";
}

/* A future with its call: deep copies of the arguments, and two references,
 * the submitter's and the work's. */
static cf_status make_work(cf_executor *ex, cf_fn fn, const cf_value *args,
                           size_t nargs, cf_future **out) {
    cf_future *f = cf__future_alloc(nargs);
    if (!f)
        return CF_NOMEM;
    for (size_t i = 0; i < nargs; i++) {
        cf_status st = cf_value_copy(&f->args[i], &args[i]);
        if (st != CF_OK) {
            cf_future_release(f);
            return st;
        }
    }
    f->fn = fn;
    f->executor = ex;
    cf_future_retain(f);
    *out = f;
    return CF_OK;
}

/* What ops->submit may return besides CF_OK. */
static bool is_refusal(cf_status st) {
    return st == CF_SHUTDOWN || st == CF_BROKEN || st == CF_EAGAIN ||
           st == CF_NOMEM;
}

/* ops->submit returned st, not CF_OK. If it ended the work all the same,
 * the work's references are gone already: the future is given out as the
 * work left it, since its call may well have run. Otherwise nobody else
 * saw the work, so both references go. */
static cf_status refused(cf_executor *ex, cf_future *f, cf_status st,
                         unsigned said, cf_future **out) {
    if (atomic_exchange(&f->work_ended, true)) {
        cf__misuse("%s: submit ended the work, then returned %s; cf_submit "
                   "gives out its future (CF_OK)",
                   cf_executor_name(ex), cf_status_name(st));
        *out = f;
        return CF_OK;
    }
    cf_future_release(f);
    cf_future_release(f);
    executor_release(ex, WORK);
    if (!is_refusal(st)) {
        cf__misuse("%s: submit returned %s (%d), not CF_OK or a refusal "
                   "(CF_SHUTDOWN, CF_BROKEN, CF_EAGAIN, CF_NOMEM); cf_submit "
                   "returns CF_BROKEN",
                   cf_executor_name(ex), cf_status_name(st), (int)st);
        return cf__refuse_by_status(CF_BROKEN);
    }
    return said == cf__refusals() ? cf__refuse_by_status(st) : st;
}

cf_status cf_submit(cf_executor *ex, cf_fn fn, const cf_value *args,
                    size_t nargs, cf_future **out) {
    cf_future *f;
    if (!ex || !fn || !out || (!args && nargs))
        return cf_refuse(CF_EINVAL, "ValueError", "cf_submit: %s is NULL",
                         !ex    ? "the executor"
                         : !fn  ? "fn"
                         : !out ? "out"
                                : "args");
    if ((atomic_load(&ex->shutdown) && !ex->checks_shutdown) || cf__exiting())
        return cf__refuse_by_status(CF_SHUTDOWN);
    cf_status st = make_work(ex, fn, args, nargs, &f);
    if (st == CF_EINVAL)
        return cf_refuse(st, "ValueError",
                         "cf_submit: an argument is not a valid value");
    if (st != CF_OK)
        return cf__refuse_by_status(st);
    unsigned said = cf__refusals();
    atomic_fetch_add_explicit(&ex->refs, WORK, memory_order_relaxed);
    st = ex->ops->submit(ex->self, cf__future_work(f));
    if (st != CF_OK)
        return refused(ex, f, st, said, out);
    *out = f;
    return CF_OK;
}

/* Holds a reference across the executor's shutdown: a done callback it
 * runs (of a call it cancels) may free the executor, and the last release,
 * this one then, frees it once the shutdown is over. */
cf_status cf_executor_shutdown(cf_executor *ex, bool wait,
                               bool cancel_futures) {
    if (!ex)
        return CF_EINVAL;
    atomic_store(&ex->shutdown, true);
    atomic_fetch_add(&ex->refs, HOLDER);
    cf_status st = ex->ops->shutdown(ex->self, wait, cancel_futures);
    executor_release(ex, HOLDER);
    return st;
}

/*
 * After a shutdown with wait returned CF_OK every work the executor took
 * has ended, unless another holder is inside a shutdown of its own (a done
 * callback it runs is freeing ex, or the exit handler is under way), whose
 * works may still be on their way out. Checked here and not in every
 * shutdown: cf_executor_free is where no other thread may use ex, so no
 * cf_submit races the count with a work its executor is about to refuse.
 */
static void check_works_ended(cf_executor *ex) {
    uint64_t refs = atomic_load_explicit(&ex->refs, memory_order_acquire);
    if (refs % WORK == HOLDER && refs / WORK)
        cf__misuse("%s: shutdown(wait=true) returned CF_OK with %" PRIu64
                   " work(s) not ended; the executor is freed when the last "
                   "one ends",
                   cf_executor_name(ex), refs / WORK);
}

cf_status cf_executor_free(cf_executor *ex) {
    if (!ex)
        return CF_EINVAL;
    cf_status st = cf_executor_shutdown(ex, true, false);
    if (st != CF_OK)
        return st;
    check_works_ended(ex);
    pthread_mutex_lock(&registry_lock);
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (registry == ex)
        registry = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    pthread_mutex_unlock(&registry_lock);
    executor_release(ex, HOLDER);
    return CF_OK;
}
