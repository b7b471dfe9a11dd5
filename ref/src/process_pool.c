/*
 * process_pool.c -- ProcessPoolExecutor's operations and construction;
 * what a pool is and how its rooms share the work: process_pool.h.
 *
 * Runs in: the caller's threads (cf_process_pool_new, submits, shutdown,
 * free), and the manager thread for a submit or shutdown from a done
 * callback (cf__pp_current_pool tells which). It takes pool->lock for the
 * queue and the flags, and join_lock to join the manager; a submit that
 * finds the manager asleep tries io_lock, to send the call itself
 * (cf__pp_submit_directly). It makes the shared memory and the wake-up
 * pipe before the manager starts, writes the pipe to wake the manager, and
 * frees them once the manager is gone.
 */
#define _GNU_SOURCE
#include "process_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- operations ------------------------------------------------------- */

static void wake(struct process_pool *p) {
    atomic_fetch_add_explicit(&p->events, 1, memory_order_release);
    ssize_t r = write(p->wake[1], "w", 1); /* full: a wake-up is pending */
    (void)r;
}

static cf_status pool_submit(void *self, cf_work *work) {
    struct process_pool *p = self;
    cf_status st = CF_OK;
    int spawn_errno = 0;
    pthread_mutex_lock(&p->lock);
    if (p->broken || p->shutdown) {
        st = p->broken ? CF_BROKEN : CF_SHUTDOWN;
    } else if (p->spawn_errno) {
        /* no worker, and none could be started last time: refuse, and have
         * the manager try again for the next submit */
        st = CF_EAGAIN;
        spawn_errno = p->spawn_errno;
        p->spawn_errno = 0;
        p->probe = true;
    } else {
        cf__work_future(work)->seq = p->next_seq++; /* submission order */
        cf__queue_push(&p->queue, cf__work_future(work));
    }
    if (st == CF_OK)
        atomic_fetch_add_explicit(&p->events, 1, memory_order_release);
    bool sleeping = st == CF_OK && p->sleeping;
    pthread_mutex_unlock(&p->lock);
    if (st == CF_EAGAIN) {
        wake(p);
        return cf__pp_refuse_spawn(spawn_errno);
    }
    if (st == CF_BROKEN)
        return cf_refuse(st, BROKEN_TYPE, "%s", BROKEN_SUBMIT_MESSAGE);
    if (!sleeping)
        return st;
    if (cf__pp_current_pool != p && pthread_mutex_trylock(&p->io_lock) == 0) {
        bool wake_manager = cf__pp_submit_directly(p);
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
        /* never cleared here: another thread may be waiting on it */
        if (cf__pp_current_pool != p)
            p->cancel_sent = true;
    }
    pthread_mutex_unlock(&p->lock);
    wake(p);
    cf__works_cancel(cancelled);
    /* Calls sent ahead to workers are still pending too: the manager, which
     * owns them, cancels those its workers have not claimed. */
    if (cancel_futures && cf__pp_current_pool == p) {
        cf__pp_cancel_sent(p);
    } else if (cancel_futures) {
        pthread_mutex_lock(&p->lock);
        while (p->cancel_sent && !p->manager_gone)
            pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    if (!wait)
        return CF_OK;
    if (cf__pp_current_pool == p)
        return CF_DEADLOCK; /* the manager cannot wait for itself */
    join_manager(p);
    return CF_OK;
}

static void free_pool_memory(struct process_pool *p) {
    cf__values_free(p->initargs, p->ninitargs);
    free(p->workers);
    free(p->blocks_used);
    free(p->pfds);
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

static const cf_executor_ops process_pool_ops = {.name = "ProcessPoolExecutor",
                                                 .submit = pool_submit,
                                                 .shutdown = pool_shutdown,
                                                 .free = pool_free};

/* ---- terminate_workers, kill_workers ---------------------------------- */

/* Python: ProcessPoolExecutor.terminate_workers() / kill_workers() (3.14):
 * shutdown(wait=False, cancel_futures=True), then sig to every worker. */
static cf_status force_shutdown(cf_executor *ex, int sig) {
    struct process_pool *p = cf__executor_self(ex, &process_pool_ops);
    if (!p)
        return CF_EINVAL;
    cf_status st = cf_executor_shutdown(ex, false, true);
    if (st != CF_OK)
        return st;
    if (cf__pp_current_pool == p) {
        cf__pp_signal_workers(p, sig); /* a callback in the manager */
        return CF_OK;
    }
    pthread_mutex_lock(&p->lock);
    if (!p->force_signal) /* the first of two calls decides */
        p->force_signal = sig;
    pthread_mutex_unlock(&p->lock);
    wake(p);
    pthread_mutex_lock(&p->lock);
    while (!p->force_sent && !p->manager_gone)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return CF_OK;
}

cf_status cf_process_pool_terminate_workers(cf_executor *ex) {
    return force_shutdown(ex, SIGTERM);
}

cf_status cf_process_pool_kill_workers(cf_executor *ex) {
    return force_shutdown(ex, SIGKILL);
}

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
           (!o->ninitargs || o->initargs) && CF__RESERVED_UNSET(o);
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
    atomic_store(&p->shared->queue_lo, QUEUE_LO_NONE);
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC))
        return CF_EAGAIN;
    if (!o->initializer)
        return CF_OK;
    cf_status st = cf__values_dup(o->initargs, o->ninitargs, &p->initargs);
    if (st == CF_OK)
        p->ninitargs = o->ninitargs;
    return st;
}

/*
 * The manager thread's stack: room for the manager and for the done
 * callbacks it runs (the header promises them 256 KiB), on top of the
 * thread-local storage, which glibc keeps in a thread's stack (a sanitizer
 * runtime may keep much there: ThreadSanitizer's takes 768 KiB). Small,
 * because every fork of the program copies the page tables of every live
 * pool's manager stack, the fork that starts each new pool's server among
 * them: with the default 8 MiB (and its guard), each stack takes page
 * tables of its own, and creating many pools costs time and kernel memory
 * that grow with the square of their number. The fork server, forked from
 * this thread, moves to a stack of the default size (fork_server.c), so
 * tasks do not run on this one.
 */
#define MANAGER_STACK (256 * 1024)

/* dl_iterate_phdr's callback: adds an object's thread-local storage (as
 * much as it could take in a thread's stack, alignment included). */
static int add_tls_size(struct dl_phdr_info *info, size_t size, void *ctx) {
    size_t *total = ctx;
    (void)size;
    for (size_t i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_TLS)
            *total += info->dlpi_phdr[i].p_memsz + info->dlpi_phdr[i].p_align;
    return 0;
}

static int create_manager(struct process_pool *p) {
    pthread_attr_t attr;
    size_t tls = 0;
    dl_iterate_phdr(add_tls_size, &tls);
    size_t size = MANAGER_STACK + tls;
    if (size < (size_t)PTHREAD_STACK_MIN)
        size = (size_t)PTHREAD_STACK_MIN;
    int err = pthread_attr_init(&attr);
    if (err)
        return err;
    err = pthread_attr_setstacksize(&attr, size);
    if (!err)
        err = pthread_create(&p->manager, &attr, cf__pp_manager_main, p);
    pthread_attr_destroy(&attr);
    /* EINVAL: too small after all (glibc's own needs): the default one */
    if (err == EINVAL)
        err = pthread_create(&p->manager, NULL, cf__pp_manager_main, p);
    return err;
}

/* Starts the manager thread, every signal blocked in it (it inherits the
 * mask), and waits until it has forked the server. */
static cf_status start_manager(struct process_pool *p) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = create_manager(p);
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
    /* made before the fork server, so that it is in every worker's image */
    cf_executor *ex = p ? cf__executor_alloc(&process_pool_ops, p) : NULL;
    if (!ex) {
        free(p);
        return CF_NOMEM;
    }
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
    cf_executor_set_chunked(ex);
    cf__executor_checks_shutdown(ex);
    cf__executor_register(ex);
    *out = ex;
    return CF_OK;
err_destroy_sync:
    destroy_sync(p);
err_free_memory:
    free_pool_memory(p);
    free(ex);
    return st;
}
