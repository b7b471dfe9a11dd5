/*
 * wait.c -- cf_wait: Python's concurrent.futures.wait().
 *
 * One waiter is linked into every distinct future that is not yet done;
 * each completion counts itself there. Installing, waiting and removing
 * cost O(n) in all.
 */
#include "internal.h"

#include <stdlib.h>

struct wait_state {
    cf_return_when when;
    size_t nunique, done_before; /* done before the waiter was installed */
    bool raised_before;
};

static bool satisfied(const struct wait_state *ws,
                      const struct cf__waiter *w) {
    size_t done = ws->done_before + w->completed;
    switch (ws->when) {
    case CF_FIRST_COMPLETED:
        return done > 0 || ws->nunique == 0;
    case CF_FIRST_EXCEPTION:
        return ws->raised_before || w->raised || done == ws->nunique;
    case CF_ALL_COMPLETED:
        return done == ws->nunique;
    }
    return true;
}

static void install(struct wait_state *ws, struct cf__waiter *w,
                    struct cf__waiter_node *nodes, cf_future **unique) {
    for (size_t i = 0; i < ws->nunique; i++) {
        bool raised = false;
        nodes[i].waiter = w;
        nodes[i].linked = false;
        if (cf__future_add_waiter(unique[i], &nodes[i], &raised)) {
            ws->done_before++;
            ws->raised_before |= raised;
        }
    }
}

static void partition(cf_future **unique, size_t n, cf_future **done,
                      size_t *ndone, cf_future **not_done, size_t *nnot_done) {
    size_t d = 0, nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (cf_future_done(unique[i])) {
            if (done)
                done[d] = unique[i];
            d++;
        } else {
            if (not_done)
                not_done[nd] = unique[i];
            nd++;
        }
    }
    if (ndone)
        *ndone = d;
    if (nnot_done)
        *nnot_done = nd;
}

static bool return_when_valid(cf_return_when when) {
    return when == CF_FIRST_COMPLETED || when == CF_FIRST_EXCEPTION ||
           when == CF_ALL_COMPLETED;
}

cf_status cf_wait(cf_future *const *fs, size_t n, double timeout,
                  cf_return_when return_when, cf_future **done, size_t *ndone,
                  cf_future **not_done, size_t *nnot_done) {
    struct wait_state ws = {return_when, 0, 0, false};
    struct cf__waiter w;
    cf__deadline deadline;
    cf_future **unique;
    if (!return_when_valid(return_when) ||
        cf__deadline_make(timeout, &deadline) != CF_OK)
        return CF_EINVAL;
    cf_status st = cf__unique_futures(fs, n, &unique, &ws.nunique);
    if (st != CF_OK)
        return st;
    struct cf__waiter_node *nodes =
        calloc(ws.nunique ? ws.nunique : 1, sizeof *nodes);
    if (!nodes) {
        st = CF_NOMEM;
        goto out_free_unique;
    }
    if (cf__waiter_init(&w)) {
        st = CF_NOMEM;
        goto out_free_nodes;
    }
    install(&ws, &w, nodes, unique);
    pthread_mutex_lock(&w.lock);
    while (!satisfied(&ws, &w) && cf__cond_wait(&w.cond, &w.lock, &deadline))
        ;
    pthread_mutex_unlock(&w.lock);
    for (size_t i = 0; i < ws.nunique; i++)
        if (nodes[i].future)
            cf__future_remove_waiter(nodes[i].future, &nodes[i]);
    cf__waiter_destroy(&w);
    partition(unique, ws.nunique, done, ndone, not_done, nnot_done);
out_free_nodes:
    free(nodes);
out_free_unique:
    free(unique);
    return st;
}
