/*
 * queue.c -- what the executors share: the FIFO of queued works (linked
 * through each future's queue_next, so queueing allocates nothing), copies
 * of initializer arguments, and the set-up of a pool's locks. The caller
 * provides the locking.
 */
#include "internal.h"

#include <stdlib.h>

void cf__queue_push_front(struct cf__queue *q, cf_future *f) {
    f->queue_next = q->head;
    q->head = f;
    if (!q->tail)
        q->tail = f;
    q->len++;
}

void cf__queue_push(struct cf__queue *q, cf_future *f) {
    f->queue_next = NULL;
    if (q->tail)
        q->tail->queue_next = f;
    else
        q->head = f;
    q->tail = f;
    q->len++;
}

cf_future *cf__queue_pop(struct cf__queue *q) {
    cf_future *f = q->head;
    if (!f)
        return NULL;
    q->head = f->queue_next;
    if (!q->head)
        q->tail = NULL;
    q->len--;
    return f;
}

cf_future *cf__queue_take_all(struct cf__queue *q) {
    cf_future *all = q->head;
    q->head = q->tail = NULL;
    q->len = 0;
    return all;
}

void cf__works_cancel(cf_future *list) {
    for (cf_future *f = list, *next; f; f = next) {
        next = f->queue_next;
        cf_future_cancel(f);
        cf_work_release(cf__future_work(f));
    }
}

cf_status cf__pool_sync_init(pthread_mutex_t *lock, pthread_mutex_t *join_lock,
                             pthread_cond_t *cond) {
    if (pthread_mutex_init(lock, NULL))
        return CF_EAGAIN;
    if (pthread_mutex_init(join_lock, NULL))
        goto err_destroy_lock;
    if (cf__cond_init(cond))
        goto err_destroy_join_lock;
    return CF_OK;
err_destroy_join_lock:
    pthread_mutex_destroy(join_lock);
err_destroy_lock:
    pthread_mutex_destroy(lock);
    return CF_EAGAIN;
}

void cf__pool_sync_destroy(pthread_mutex_t *lock, pthread_mutex_t *join_lock,
                           pthread_cond_t *cond) {
    pthread_cond_destroy(cond);
    pthread_mutex_destroy(join_lock);
    pthread_mutex_destroy(lock);
}

cf_status cf__values_dup(const cf_value *src, size_t n, cf_value **out) {
    *out = NULL;
    if (n == 0)
        return CF_OK;
    cf_value *copy = calloc(n, sizeof *copy);
    if (!copy)
        return CF_NOMEM;
    for (size_t i = 0; i < n; i++) {
        cf_status st = cf_value_copy(&copy[i], &src[i]);
        if (st != CF_OK) {
            cf__values_free(copy, i);
            return st;
        }
    }
    *out = copy;
    return CF_OK;
}

void cf__values_free(cf_value *values, size_t n) {
    for (size_t i = 0; i < n; i++)
        cf_value_free(&values[i]);
    free(values);
}
