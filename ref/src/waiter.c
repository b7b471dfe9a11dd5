/*
 * waiter.c -- what wait() and as_completed() share: a waiter that many
 * futures notify, and the O(n) removal of duplicate futures.
 *
 * Locks: a waiter's lock is taken by a completing future while that future's
 * stripe lock is held (internal.h), so the waiter's owner never takes a
 * stripe lock while holding its waiter's lock.
 */
#include "internal.h"

#include <stdlib.h>

int cf__waiter_init(struct cf__waiter *w) {
    int rc = pthread_mutex_init(&w->lock, NULL);
    if (rc)
        return rc;
    rc = cf__cond_init(&w->cond);
    if (rc) {
        pthread_mutex_destroy(&w->lock);
        return rc;
    }
    w->completed = 0;
    w->raised = false;
    w->ready_head = w->ready_tail = NULL;
    return 0;
}

void cf__waiter_destroy(struct cf__waiter *w) {
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

static void push_locked(struct cf__waiter *w, struct cf__waiter_node *node) {
    node->ready_next = NULL;
    if (w->ready_tail)
        w->ready_tail->ready_next = node;
    else
        w->ready_head = node;
    w->ready_tail = node;
}

void cf__waiter_notify(struct cf__waiter_node *node, bool raised) {
    struct cf__waiter *w = node->waiter;
    pthread_mutex_lock(&w->lock);
    w->completed++;
    w->raised |= raised;
    push_locked(w, node);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void cf__waiter_push_ready(struct cf__waiter *w,
                           struct cf__waiter_node *node) {
    pthread_mutex_lock(&w->lock);
    push_locked(w, node);
    pthread_mutex_unlock(&w->lock);
}

/* ---- duplicates ------------------------------------------------------- */

static size_t hash_ptr(const void *p, size_t mask) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & mask;
}

/* Inserts p into an open-addressing table; false if it was there. */
static bool set_insert(const void **table, size_t mask, const void *p) {
    for (size_t i = hash_ptr(p, mask);; i = (i + 1) & mask) {
        if (table[i] == p)
            return false;
        if (!table[i]) {
            table[i] = p;
            return true;
        }
    }
}

cf_status cf__unique_futures(cf_future *const *fs, size_t n, cf_future ***out,
                             size_t *nout) {
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return CF_OK;
    if (!fs)
        return CF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!cf__future_valid(fs[i]))
            return CF_EINVAL;
    size_t cap = 16;
    while (cap < 2 * n) {
        if (cap > SIZE_MAX / 4)
            return CF_NOMEM;
        cap *= 2;
    }
    const void **table = calloc(cap, sizeof *table);
    cf_future **unique = malloc(n * sizeof *unique);
    if (!table || !unique) {
        free(table);
        free(unique);
        return CF_NOMEM;
    }
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (set_insert(table, cap - 1, fs[i]))
            unique[u++] = fs[i];
    free(table);
    *out = unique;
    *nout = u;
    return CF_OK;
}
