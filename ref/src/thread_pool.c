/*
 * thread_pool.c -- ThreadPoolExecutor: at most max_workers threads taking
 * calls from one FIFO queue.
 *
 * Locks: pool->lock guards the queue, the counters, the thread table and
 * the shutdown/broken flags; work_cond wakes idle workers. join_lock
 * serialises joiners (shutdown may be called from several threads) and is
 * never taken with pool->lock held. Tasks, callbacks and the initializer run
 * with no lock held.
 *
 * Lazy start and idle reuse (Python 3.8+): a worker counts as idle while it
 * waits for work, and also from the moment its task returns until it looks
 * at the queue again -- so a call submitted as soon as the previous result
 * is seen reuses that worker instead of starting a thread. Submit starts a
 * new thread only while the queue holds more calls than there are idle
 * workers to take them.
 *
 * A thread that ends itself (pthread_exit in a task, a done callback or the
 * initializer) unwinds through a cleanup handler pushed around the call,
 * which does what Python does with a SystemExit there: the task's future
 * fails with SystemExit, an initializer's breaks the pool. The thread then
 * stops counting toward max_workers, and if queued calls are left that no
 * idle worker will take, a new worker starts for them (even after
 * shutdown, which promises to run them). Exited threads stay in the table
 * until shutdown joins them.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BROKEN_MESSAGE                                                        \
    "A thread initializer failed, the thread pool is not usable anymore"
/* A thread that ends itself: Python's SystemExit. */
#define EXIT_TYPE "SystemExit"
#define TASK_EXIT_MESSAGE "the task called pthread_exit"
#define INIT_EXIT_MESSAGE "the initializer called pthread_exit"
/* The queued calls when a worker exits and no thread can start to take
 * them (Python's RuntimeError from Thread.start). */
#define NO_THREAD_MESSAGE "can't start new thread"

struct worker {
    pthread_t tid;
    bool joined;
};

struct thread_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cond;
    pthread_mutex_t join_lock;
    struct cf__queue queue;
    size_t idle;
    size_t live; /* workers still taking calls: at most max_workers */
    size_t max_workers;
    struct worker *workers; /* every thread started, until joined */
    size_t nworkers, cap;
    bool shutdown, broken;
    char *prefix;
    cf_fn initializer;
    cf_value *initargs;
    size_t ninitargs;
};

/* The pool and name of the calling worker thread. */
static _Thread_local struct thread_pool *current_pool;
static _Thread_local char *current_name;
static atomic_uint pool_counter;

const char *cf_current_thread_name(void) {
    return current_name;
}

/* ---- workers ---------------------------------------------------------- */

static cf_status start_worker_locked(struct thread_pool *p);

/* Fails every work of a list linked by queue_next (callbacks run here). */
static void fail_all(cf_future *list, cf_status status, const char *type,
                     const char *message) {
    for (cf_future *f = list, *next; f; f = next) {
        next = f->queue_next;
        cf_work_fail(cf__future_work(f), status, type, message);
    }
}

/* Breaks the pool (Python's BrokenThreadPool): the queued calls fail, and
 * so does every later submit. */
static void break_pool(struct thread_pool *p) {
    pthread_mutex_lock(&p->lock);
    p->broken = true;
    cf_future *all = cf__queue_take_all(&p->queue);
    pthread_mutex_unlock(&p->lock);
    fail_all(all, CF_BROKEN, "BrokenThreadPool", BROKEN_MESSAGE);
}

/* With the lock held: starts a worker if calls are queued that no idle
 * worker will take and the pool has room for one. */
static void start_if_needed_locked(struct thread_pool *p) {
    if (p->queue.len > p->idle && p->live < p->max_workers &&
        start_worker_locked(p) == CF_OK)
        pthread_cond_signal(&p->work_cond);
}

/*
 * The calling worker leaves for good, by returning or by pthread_exit: it
 * no longer counts toward max_workers. Calls still queued that no idle
 * worker will take get a new worker, even after shutdown (which waits for
 * them; join_workers joins the newcomer too) but not in a broken pool; if
 * none can start and no worker is left, nobody would ever run them, so
 * they fail. Then the thread's name goes.
 */
static void worker_leaves(struct thread_pool *p) {
    cf_future *stranded = NULL;
    pthread_mutex_lock(&p->lock);
    p->live--;
    if (!p->broken) {
        start_if_needed_locked(p);
        if (p->live == 0)
            stranded = cf__queue_take_all(&p->queue);
    }
    pthread_mutex_unlock(&p->lock);
    fail_all(stranded, CF_RAISED, "RuntimeError", NO_THREAD_MESSAGE);
    free(current_name);
    current_name = NULL;
    current_pool = NULL;
}

/* Cleanup handler: the initializer ended its thread. As Python with an
 * initializer that raises SystemExit: logged, and the pool breaks. */
static void initializer_exited(void *arg) {
    struct thread_pool *p = arg;
    cf_log(CF_LOG_CRITICAL, "Exception in initializer: %s: %s", EXIT_TYPE,
           INIT_EXIT_MESSAGE);
    break_pool(p);
    worker_leaves(p);
}

/* Runs the initializer; on failure breaks the pool (Python's
 * BrokenThreadPool) and returns false. */
static bool initialize(struct thread_pool *p) {
    cf_value value;
    cf_error *error;
    if (!p->initializer)
        return true;
    /* The push and pop are macros that open and close one block. */
    pthread_cleanup_push(initializer_exited, p);
    cf_call_fn(p->initializer, p->initargs, p->ninitargs, &value, &error);
    pthread_cleanup_pop(0);
    cf_value_free(&value);
    if (!error)
        return true;
    cf_log(CF_LOG_CRITICAL, "Exception in initializer: %s: %s",
           cf_error_type(error), cf_error_message(error));
    cf_error_free(error);
    break_pool(p);
    return false;
}

/* A worker running a call, as its run hooks and its exit handler see it. */
struct finishing {
    struct thread_pool *pool;
    cf_future *future;
    bool counted_idle;
    bool in_callbacks; /* count_busy ran: the done callbacks are running */
};

/* The task has returned: the worker is available before anyone can see the
 * result, so a submit made once the result is seen reuses it. */
static void count_idle(void *arg) {
    struct finishing *fin = arg;
    pthread_mutex_lock(&fin->pool->lock);
    fin->pool->idle++;
    fin->counted_idle = true;
    pthread_mutex_unlock(&fin->pool->lock);
}

/* Done callbacks are about to run on this worker: it is busy again, and a
 * call queued meanwhile gets a thread of its own if the pool may start one
 * (the callback may be waiting for that very call). If no thread can start,
 * this worker takes the call once its callbacks return. */
static void count_busy(void *arg) {
    struct finishing *fin = arg;
    struct thread_pool *p = fin->pool;
    pthread_mutex_lock(&p->lock);
    p->idle--;
    fin->counted_idle = false;
    fin->in_callbacks = true;
    if (!p->shutdown)
        start_if_needed_locked(p);
    pthread_mutex_unlock(&p->lock);
}

/* The done callbacks of a call whose task ended its thread are about to run
 * on it: as count_busy, the thread still being busy. */
static void exiting_busy(void *arg) {
    struct thread_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    if (!p->shutdown)
        start_if_needed_locked(p);
    pthread_mutex_unlock(&p->lock);
}

/*
 * Cleanup handler: the task, or one of its done callbacks, ended the thread
 * (pthread_exit). No cfutures lock is held: user code runs unlocked. The run
 * hooks may not have run (the task itself exited) or may have run both (a
 * callback exited). As Python's _WorkItem.run with a SystemExit, the future
 * fails with it and its callbacks run here; the work is ended; the thread
 * leaves the pool, which replaces it if calls are waiting.
 */
static void task_exited(void *arg) {
    struct finishing *fin = arg;
    struct thread_pool *p = fin->pool;
    cf_future *f = fin->future;
    if (fin->counted_idle) {
        pthread_mutex_lock(&p->lock);
        p->idle--;
        fin->counted_idle = false;
        pthread_mutex_unlock(&p->lock);
    }
    if (fin->in_callbacks) {
        /* The future is done; its callbacks not yet run never will be. */
        cf_log(CF_LOG_CRITICAL,
               "Exception in worker: %s: a done callback called pthread_exit",
               EXIT_TYPE);
    } else {
        cf_error *e = cf__error_new(CF_RAISED, EXIT_TYPE, TASK_EXIT_MESSAGE);
        struct cf__run_hooks hooks = {NULL, exiting_busy, p};
        if (cf__future_finish(f, NULL, e ? e : &cf__nomem_error, &hooks) !=
            CF_OK)
            cf__error_free(e); /* someone else finished it first */
    }
    cf_work_release(cf__future_work(f)); /* the future is done by now */
    worker_leaves(p);
}

/* Runs fin's call; if the thread ends inside it, task_exited finishes up.
 * (Its own function, so that no local of the caller is live across the
 * setjmp that pthread_cleanup_push may hide.) */
static void run_task(struct finishing *fin) {
    struct cf__run_hooks hooks = {count_idle, count_busy, fin};
    pthread_cleanup_push(task_exited, fin);
    cf__work_run_hooked(cf__future_work(fin->future), &hooks);
    pthread_cleanup_pop(0);
}

static void *worker_main(void *arg) {
    struct thread_pool *p = arg;
    current_pool = p;
    if (!initialize(p)) {
        worker_leaves(p);
        return NULL;
    }
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->queue.head && !p->shutdown) {
            p->idle++;
            pthread_cond_wait(&p->work_cond, &p->lock);
            p->idle--;
        }
        if (!p->queue.head)
            break; /* shut down and drained */
        struct finishing fin = {p, cf__queue_pop(&p->queue), false, false};
        pthread_mutex_unlock(&p->lock);
        run_task(&fin);
        pthread_mutex_lock(&p->lock);
        if (fin.counted_idle)
            p->idle--;
    }
    pthread_mutex_unlock(&p->lock);
    worker_leaves(p);
    return NULL;
}

/* Thread start-up: the name is set here, before the thread runs. */
struct start {
    struct thread_pool *pool;
    char *name;
};

static void *worker_start(void *arg) {
    struct start s = *(struct start *)arg;
    free(arg);
    char os_name[16];
    current_name = s.name;
    snprintf(os_name, sizeof os_name, "%s", s.name); /* Linux: 15 chars */
    pthread_setname_np(pthread_self(), os_name);
    return worker_main(s.pool);
}

static cf_status start_worker_locked(struct thread_pool *p) {
    if (p->nworkers == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        struct worker *w = realloc(p->workers, cap * sizeof *w);
        if (!w)
            return CF_NOMEM;
        p->workers = w;
        p->cap = cap;
    }
    struct start *s = malloc(sizeof *s);
    int len = snprintf(NULL, 0, "%s_%zu", p->prefix, p->nworkers);
    char *name = s ? malloc((size_t)len + 1) : NULL;
    if (!name) {
        free(s);
        return CF_NOMEM;
    }
    snprintf(name, (size_t)len + 1, "%s_%zu", p->prefix, p->nworkers);
    s->pool = p;
    s->name = name;
    struct worker *w = &p->workers[p->nworkers];
    if (pthread_create(&w->tid, NULL, worker_start, s)) {
        free(name);
        free(s);
        return CF_EAGAIN;
    }
    w->joined = false;
    p->nworkers++;
    p->live++;
    return CF_OK;
}

/* ---- operations ------------------------------------------------------- */

static cf_status pool_submit(void *self, cf_work *work) {
    struct thread_pool *p = self;
    cf_status st = CF_OK;
    pthread_mutex_lock(&p->lock);
    if (p->broken || p->shutdown) {
        st = p->broken ? CF_BROKEN : CF_SHUTDOWN;
        goto out_unlock;
    }
    cf__queue_push(&p->queue, cf__work_future(work));
    if (p->queue.len > p->idle && p->live < p->max_workers) {
        st = start_worker_locked(p);
        if (st != CF_OK && p->live > 0)
            st = CF_OK; /* a running worker will get to it */
        if (st != CF_OK) {
            cf__queue_take_all(&p->queue); /* it was the only queued call */
            goto out_unlock;
        }
    }
    pthread_cond_signal(&p->work_cond);
out_unlock:
    pthread_mutex_unlock(&p->lock);
    if (st == CF_BROKEN)
        return cf_refuse(st, "BrokenThreadPool", BROKEN_MESSAGE);
    return st;
}

/* Joins every worker; called after shutdown, by a thread that is not one
 * of them. A worker leaving by pthread_exit may start another even after
 * shutdown (worker_leaves), always before it ends, so the table (which
 * start_worker_locked may move) is read again, locked, after each join. */
static void join_workers(struct thread_pool *p) {
    pthread_mutex_lock(&p->join_lock);
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&p->lock);
        bool more = i < p->nworkers, joined = more && p->workers[i].joined;
        pthread_t tid = more ? p->workers[i].tid : pthread_self();
        pthread_mutex_unlock(&p->lock);
        if (!more)
            break;
        if (joined || pthread_join(tid, NULL) != 0)
            continue;
        pthread_mutex_lock(&p->lock);
        p->workers[i].joined = true;
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&p->join_lock);
}

static cf_status pool_shutdown(void *self, bool wait, bool cancel_futures) {
    struct thread_pool *p = self;
    cf_future *cancelled = NULL;
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    if (cancel_futures)
        cancelled = cf__queue_take_all(&p->queue);
    pthread_cond_broadcast(&p->work_cond);
    pthread_mutex_unlock(&p->lock);
    cf__works_cancel(cancelled);
    if (!wait)
        return CF_OK;
    if (current_pool == p)
        return CF_DEADLOCK; /* a worker cannot wait for itself */
    join_workers(p);
    return CF_OK;
}

/* Frees what copy_options made, the thread table and the pool. */
static void free_pool_memory(struct thread_pool *p) {
    cf__values_free(p->initargs, p->ninitargs);
    free(p->workers);
    free(p->prefix);
    free(p);
}

static void pool_free(void *self) {
    struct thread_pool *p = self;
    cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->work_cond);
    free_pool_memory(p);
}

static const cf_executor_ops thread_pool_ops = {.name = "ThreadPoolExecutor",
                                                .submit = pool_submit,
                                                .shutdown = pool_shutdown,
                                                .free = pool_free};

/* ---- construction ----------------------------------------------------- */

cf_status cf_thread_pool_options_init(cf_thread_pool_options *o) {
    if (!o)
        return CF_EINVAL;
    memset(o, 0, sizeof *o);
    o->max_workers = CF_DEFAULT_WORKERS;
    return CF_OK;
}

static size_t default_workers(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    return cpus + 4 < 32 ? (size_t)cpus + 4 : 32;
}

static cf_status copy_options(struct thread_pool *p,
                              const cf_thread_pool_options *o) {
    const char *prefix = o->thread_name_prefix;
    char fallback[48];
    if (!prefix || !*prefix) {
        snprintf(fallback, sizeof fallback, "ThreadPoolExecutor-%u",
                 atomic_fetch_add(&pool_counter, 1));
        prefix = fallback;
    }
    p->prefix = strdup(prefix);
    if (!p->prefix)
        return CF_NOMEM;
    p->initializer = o->initializer;
    if (!o->initializer)
        return CF_OK;
    cf_status st = cf__values_dup(o->initargs, o->ninitargs, &p->initargs);
    if (st == CF_OK)
        p->ninitargs = o->ninitargs;
    return st;
}

cf_status cf_thread_pool_new(const cf_thread_pool_options *options,
                             cf_executor **out) {
    cf_thread_pool_options defaults;
    cf_thread_pool_options_init(&defaults);
    const cf_thread_pool_options *o = options ? options : &defaults;
    if (!out ||
        (o->max_workers <= 0 && o->max_workers != CF_DEFAULT_WORKERS) ||
        (o->ninitargs && !o->initargs) || !CF__RESERVED_UNSET(o))
        return CF_EINVAL;
    struct thread_pool *p = calloc(1, sizeof *p);
    if (!p)
        return CF_NOMEM;
    p->max_workers = o->max_workers == CF_DEFAULT_WORKERS
                         ? default_workers()
                         : (size_t)o->max_workers;
    cf_status st = copy_options(p, o);
    if (st == CF_OK)
        st = cf__pool_sync_init(&p->lock, &p->join_lock, &p->work_cond);
    if (st != CF_OK)
        goto err_free_options;
    st = cf_executor_new(&thread_pool_ops, p, out);
    if (st == CF_OK) {
        cf__executor_checks_shutdown(*out);
        return CF_OK;
    }
    cf__pool_sync_destroy(&p->lock, &p->join_lock, &p->work_cond);
err_free_options:
    free_pool_memory(p);
    return st;
}
