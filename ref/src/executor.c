/*
 * executor.c -- what every executor shares: the operations table, submit's
 * checks, shutdown and free, and the wait at process exit.
 *
 * Locks: registry_lock guards the list of live executors and each one's
 * `visited` mark; it is a leaf (no operation of an executor runs under it).
 * An executor is reference counted so that the exit handler can shut one
 * down, unlocked, while another thread frees it, and so that a done
 * callback run by a shutdown may free the executor: the last release
 * frees.
 */
#define _GNU_SOURCE /* gettid */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

struct cf_executor {
    const cf_executor_ops *ops;
    void *self;
    atomic_bool shutdown;
    atomic_uint refs;
    bool visited;     /* by the exit handler */
    bool runs_chunks; /* cf_map groups items into chunks (process pools) */
    struct cf_executor *prev, *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cf_executor *registry;
static atomic_bool exiting;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

bool cf__exiting(void) {
    return atomic_load(&exiting);
}

static void executor_release(cf_executor *ex) {
    if (atomic_fetch_sub(&ex->refs, 1) != 1)
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
        atomic_fetch_add(&ex->refs, 1);
        pthread_mutex_unlock(&registry_lock);
        atomic_store(&ex->shutdown, true);
        ex->ops->shutdown(ex->self, true, false); /* CF_DEADLOCK: skipped */
        executor_release(ex);
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
__attribute__((constructor)) static void watch_main_thread(void) {
    if (gettid() != getpid())
        return;
    if (pthread_key_create(&main_thread_key, main_thread_exited) == 0)
        pthread_setspecific(main_thread_key, &main_thread_key);
}

bool cf__reserved_unset(void *const *reserved, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (reserved[i])
            return false;
    return true;
}

cf_status cf_executor_new(const cf_executor_ops *ops, void *self,
                          cf_executor **out) {
    if (!ops || !ops->submit || !ops->shutdown || !out ||
        !CF__RESERVED_UNSET(ops))
        return CF_EINVAL;
    pthread_once(&registry_once, registry_init);
    cf_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return CF_NOMEM;
    ex->ops = ops;
    ex->self = self;
    atomic_init(&ex->shutdown, false);
    atomic_init(&ex->refs, 1);
    pthread_mutex_lock(&registry_lock);
    ex->next = registry;
    if (registry)
        registry->prev = ex;
    registry = ex;
    pthread_mutex_unlock(&registry_lock);
    *out = ex;
    return CF_OK;
}

void cf__executor_set_runs_chunks(cf_executor *ex) {
    ex->runs_chunks = true;
}

bool cf__executor_runs_chunks(const cf_executor *ex) {
    return ex->runs_chunks;
}

void *cf__executor_self(const cf_executor *ex, const cf_executor_ops *ops) {
    return ex && ex->ops == ops ? ex->self : NULL;
}

const char *cf_executor_name(const cf_executor *ex) {
    return ex && ex->ops->name ? ex->ops->name : "";
}

/* A future with its call: deep copies of the arguments, and two references,
 * the submitter's and the work's. */
static cf_status make_work(cf_fn fn, const cf_value *args, size_t nargs,
                           cf_future **out) {
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
    cf_future_retain(f);
    *out = f;
    return CF_OK;
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
    if (atomic_load(&ex->shutdown) || cf__exiting())
        return cf__refuse_by_status(CF_SHUTDOWN);
    cf_status st = make_work(fn, args, nargs, &f);
    if (st == CF_EINVAL)
        return cf_refuse(st, "ValueError",
                         "cf_submit: an argument is not a valid value");
    if (st != CF_OK)
        return cf__refuse_by_status(st);
    unsigned said = cf__refusals();
    st = ex->ops->submit(ex->self, cf__future_work(f));
    if (st != CF_OK) {
        /* refused: nobody else saw it, so drop both references */
        f->work_ended = true;
        cf_future_release(f);
        cf_future_release(f);
        return said == cf__refusals() ? cf__refuse_by_status(st) : st;
    }
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
    atomic_fetch_add(&ex->refs, 1);
    cf_status st = ex->ops->shutdown(ex->self, wait, cancel_futures);
    executor_release(ex);
    return st;
}

cf_status cf_executor_free(cf_executor *ex) {
    if (!ex)
        return CF_EINVAL;
    cf_status st = cf_executor_shutdown(ex, true, false);
    if (st != CF_OK)
        return st;
    pthread_mutex_lock(&registry_lock);
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (registry == ex)
        registry = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    pthread_mutex_unlock(&registry_lock);
    executor_release(ex);
    return CF_OK;
}
