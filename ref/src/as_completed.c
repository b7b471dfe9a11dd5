/*
 * as_completed.c -- Python's concurrent.futures.as_completed().
 *
 * Each distinct future gets a node holding a reference. Futures already
 * done go straight onto the waiter's ready list; the others are linked to
 * the waiter and join the ready list as they complete, so the list is the
 * yield order. A yielded node hands its reference to the caller.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

struct cf_as_completed {
    struct cf__waiter waiter;
    struct cf__waiter_node *nodes;
    size_t total, yielded;
    cf__deadline deadline;
    cf_error *timeout_error;
};

static void install(cf_as_completed *it, cf_future **unique) {
    for (size_t i = 0; i < it->total; i++) {
        struct cf__waiter_node *node = &it->nodes[i];
        bool raised;
        cf_future_retain(unique[i]);
        node->waiter = &it->waiter;
        if (cf__future_add_waiter(unique[i], node, &raised)) {
            node->future = unique[i];
            cf__waiter_push_ready(&it->waiter, node);
        }
    }
}

cf_status cf_as_completed_new(cf_future *const *fs, size_t n, double timeout,
                              cf_as_completed **out) {
    cf_future **unique;
    size_t nunique;
    if (!out)
        return CF_EINVAL;
    cf_as_completed *it = calloc(1, sizeof *it);
    if (!it)
        return CF_NOMEM;
    cf_status st = cf__deadline_make(timeout, &it->deadline);
    if (st != CF_OK)
        goto err_free_it;
    st = cf__unique_futures(fs, n, &unique, &nunique);
    if (st != CF_OK)
        goto err_free_it;
    it->total = nunique;
    it->nodes = calloc(nunique ? nunique : 1, sizeof *it->nodes);
    if (!it->nodes || cf__waiter_init(&it->waiter)) {
        st = CF_NOMEM;
        goto err_free_nodes;
    }
    install(it, unique);
    free(unique);
    *out = it;
    return CF_OK;
err_free_nodes:
    free(it->nodes);
    free(unique);
err_free_it:
    free(it);
    return st;
}

static cf_status timed_out(cf_as_completed *it, const cf_error **error) {
    char message[96];
    snprintf(message, sizeof message, "%zu (of %zu) futures unfinished",
             it->total - it->yielded, it->total);
    cf__error_free(it->timeout_error);
    it->timeout_error = cf__error_new(CF_TIMEOUT, "TimeoutError", message);
    if (error)
        *error = it->timeout_error ? it->timeout_error : &cf__nomem_error;
    return CF_TIMEOUT;
}

cf_status cf_as_completed_next(cf_as_completed *it, cf_future **out,
                               const cf_error **error) {
    struct cf__waiter *w;
    if (!it || !out)
        return CF_EINVAL;
    w = &it->waiter;
    pthread_mutex_lock(&w->lock);
    while (!w->ready_head && it->yielded < it->total &&
           cf__cond_wait(&w->cond, &w->lock, &it->deadline))
        ;
    struct cf__waiter_node *node = w->ready_head;
    if (node) {
        w->ready_head = node->ready_next;
        if (!w->ready_head)
            w->ready_tail = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    if (node) {
        it->yielded++;
        *out = node->future; /* the node's reference goes to the caller */
        node->future = NULL;
        return CF_OK;
    }
    if (it->yielded == it->total)
        return CF_STOP;
    return timed_out(it, error);
}

cf_status cf_as_completed_free(cf_as_completed *it) {
    if (!it)
        return CF_EINVAL;
    for (size_t i = 0; i < it->total; i++) {
        cf_future *f = it->nodes[i].future;
        if (!f)
            continue;
        cf__future_remove_waiter(f, &it->nodes[i]);
        cf_future_release(f);
    }
    cf__waiter_destroy(&it->waiter);
    cf__error_free(it->timeout_error);
    free(it->nodes);
    free(it);
    return CF_OK;
}
