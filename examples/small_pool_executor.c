/*
 * small_pool_executor.c -- SmallPool, written on cfutures.h alone as its
 * "Writing an executor" section says (see small_pool_executor.h).
 *
 * nthreads threads, all started with the pool, take works from one FIFO
 * linked through each work's slot (cf_work_slot), so a call costs this
 * executor no allocation; each runs its work with cf_work_run, which also
 * ends it. Shutdown stops the queue taking works; with cancel_futures it
 * takes the queue out under the lock and cancels what it held unlocked
 * (the header's pattern: done callbacks run there and may call back in);
 * with wait it joins the threads, which first drain what is still queued.
 *
 * Locks: pool->lock guards the queue and the shutdown flag; join_lock
 * serialises joiners and is never taken with lock held. Tasks and done
 * callbacks run with no lock held.
 */
#define _POSIX_C_SOURCE 200809L

#include "small_pool_executor.h"

#include <pthread.h>
#include <stdlib.h>

struct small_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* a work was queued, or shutdown began */
    pthread_mutex_t join_lock;
    cf_work *head, *tail; /* the FIFO, linked through cf_work_slot */
    bool shutdown;
    bool joined; /* guarded by join_lock */
    size_t nthreads;
    pthread_t threads[];
};

/* The pool the calling thread belongs to, if any. */
static _Thread_local const struct small_pool *current_pool;

static cf_work *pop_locked(struct small_pool *p) {
    cf_work *w = p->head;
    if (w) {
        p->head = (cf_work *)*cf_work_slot(w);
        if (!p->head)
            p->tail = NULL;
    }
    return w;
}

static void *worker_main(void *arg) {
    struct small_pool *p = arg;
    cf_work *w;
    current_pool = p;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!(w = pop_locked(p)) && !p->shutdown)
            pthread_cond_wait(&p->work_cond, &p->lock);
        if (!w)
            break; /* shut down, and nothing left to run */
        pthread_mutex_unlock(&p->lock);
        cf_work_run(w); /* the call, its outcome, its done callbacks */
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static cf_status pool_submit(void *self, cf_work *work) {
    struct small_pool *p = self;
    pthread_mutex_lock(&p->lock);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->lock);
        return CF_SHUTDOWN;
    }
    /* The work's slot is NULL as it arrives: the end of the list. */
    if (p->tail)
        *cf_work_slot(p->tail) = work;
    else
        p->head = work;
    p->tail = work;
    pthread_cond_signal(&p->work_cond);
    pthread_mutex_unlock(&p->lock);
    return CF_OK;
}

/* Tells the threads to leave once the queue is empty. */
static void stop_taking_work(struct small_pool *p, cf_work **queued) {
    pthread_mutex_lock(&p->lock);
    p->shutdown = true;
    if (queued) {
        *queued = p->head;
        p->head = p->tail = NULL;
    }
    pthread_cond_broadcast(&p->work_cond);
    pthread_mutex_unlock(&p->lock);
}

/* Joins the first n threads, once: a second joiner waits for the first. */
static void join_threads(struct small_pool *p, size_t n) {
    pthread_mutex_lock(&p->join_lock);
    for (size_t i = 0; i < n && !p->joined; i++)
        pthread_join(p->threads[i], NULL);
    p->joined = true;
    pthread_mutex_unlock(&p->join_lock);
}

static cf_status pool_shutdown(void *self, bool wait, bool cancel_futures) {
    struct small_pool *p = self;
    cf_work *w = NULL;
    stop_taking_work(p, cancel_futures ? &w : NULL);
    while (w) {
        cf_work *next = (cf_work *)*cf_work_slot(w);
        cf_future_cancel(cf_work_future(w));
        cf_work_release(w); /* w is gone from here on */
        w = next;
    }
    if (!wait)
        return CF_OK;
    if (current_pool == p)
        return CF_DEADLOCK; /* a thread cannot join itself */
    join_threads(p, p->nthreads);
    return CF_OK;
}

static void destroy(struct small_pool *p) {
    pthread_mutex_destroy(&p->join_lock);
    pthread_cond_destroy(&p->work_cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void pool_free(void *self) {
    destroy(self);
}

static const cf_executor_ops small_pool_ops = {.name = "SmallPool",
                                               .submit = pool_submit,
                                               .shutdown = pool_shutdown,
                                               .free = pool_free};

/* Starts the threads; if one cannot start, stops those that did. */
static cf_status start_threads(struct small_pool *p) {
    for (size_t i = 0; i < p->nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            stop_taking_work(p, NULL);
            join_threads(p, i);
            return CF_EAGAIN;
        }
    }
    return CF_OK;
}

cf_status small_pool_new(int nthreads, cf_executor **out) {
    struct small_pool *p;
    cf_status st;
    if (nthreads < 1 || !out)
        return CF_EINVAL;
    p = calloc(1, sizeof *p + (size_t)nthreads * sizeof p->threads[0]);
    if (!p)
        return CF_NOMEM;
    p->nthreads = (size_t)nthreads;
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        goto err_free;
    if (pthread_cond_init(&p->work_cond, NULL) != 0)
        goto err_destroy_lock;
    if (pthread_mutex_init(&p->join_lock, NULL) != 0)
        goto err_destroy_cond;
    st = start_threads(p);
    if (st != CF_OK) {
        destroy(p);
        return st;
    }
    st = cf_executor_new(&small_pool_ops, p, out);
    if (st != CF_OK) {
        pool_shutdown(p, true, false); /* no work was ever queued */
        destroy(p);
    }
    return st;

err_destroy_cond:
    pthread_cond_destroy(&p->work_cond);
err_destroy_lock:
    pthread_mutex_destroy(&p->lock);
err_free:
    free(p);
    return CF_NOMEM;
}
