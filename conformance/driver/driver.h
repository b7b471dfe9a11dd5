/*
 * driver.h -- what the parts of cf-scenario share: the run context that
 * the script thread, the pool's threads and the done callbacks see, the
 * task functions, the gates, and the messages a scenario's process sends
 * to its watchdog.
 *
 * Locks: one, sc_ctx.lock, guarding the futures table and the callback
 * record; nothing else is called with it held.
 */
#ifndef CF_SCENARIO_DRIVER_H
#define CF_SCENARIO_DRIVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "scenario.h"

/* One done-callback call, as `callbacks` prints it. */
typedef struct sc_cb_call {
    char callback[SC_NAME_MAX + 1];
    char future[SC_NAME_MAX + 1];
    bool adder; /* ran in the thread that added it */
} sc_cb_call;

typedef struct sc_ctx {
    const cf_scenario *sc;
    sc_pools pool;
    const char *folder; /* the gates' folder */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; a future defined, a callback */
    cf_executor *ex;     /* guarded by lock */
    cf_future **futures; /* by name index; guarded by lock */
    sc_cb_call *calls;   /* guarded by lock */
    size_t ncalls, cap_calls;
} sc_ctx;

/* The task function: arguments (program STR, gate folder STR) and, on
 * thread pools, a PTR to the sc_ctx. */
void sc_task(cf_call *call);

/* The initializer: the same, except that it does not count as a call. */
void sc_task_init(cf_call *call);

/* Maps the page a process pool's workers read their executor from; call
 * before the pool is made. Returns false if mmap failed. */
bool sc_task_shared_init(void);

/* Stores the process pool's executor in that page (after it is made). */
void sc_task_shared_set(cf_executor *ex);

/* A thread pool task's `result F`: waits until the script defined future
 * index idx, and returns a new reference to it. */
cf_future *sc_ctx_wait_future(sc_ctx *ctx, int idx);

/* ---- Gates (gate.c) ----------------------------------------------------- */

/* Makes a private folder for the gates (mkdtemp); malloc'd path or NULL. */
char *sc_gates_make(void);

/* Removes the folder and the gates in it. */
void sc_gates_remove(const char *folder);

/* Opens gate g (creates its file); it stays open. Returns 0 or an errno. */
int sc_gate_open(const char *folder, const char *g);

/* Waits until gate g is open (polls every millisecond). */
void sc_gate_wait(const char *folder, const char *g);

/* ---- The run and its watchdog ------------------------------------------- */

typedef struct sc_options {
    bool trace_only;
    bool quiet;
    double timeout; /* seconds */
} sc_options;

/* What a scenario's process tells its watchdog, on a pipe. */
enum {
    SC_MSG_LINE = 1,     /* value: the statement index about to run */
    SC_MSG_FINISH = 2,   /* the statements are done: gates, shutdown */
    SC_MSG_FAILED = 3,   /* value: expectations that failed so far */
    SC_MSG_DEADLOCK = 4, /* value: 1 reproduced, 0 not; then it blocks */
};

typedef struct sc_msg {
    int kind;
    int value;
} sc_msg;

/*
 * Runs the scenario on one pool in this process (the watchdog's child):
 * prints the trace, checks the expectations, tells fd before each
 * statement. Returns the exit status: 0, or 1 if an expectation failed.
 * A deadlock scenario never returns.
 */
int sc_run(const cf_scenario *sc, sc_pools pool, const char *folder,
           const sc_options *opt, int fd);

/* Runs the scenario on one pool under a watchdog, in a child process in
 * its own process group. Returns true if it passed. */
bool sc_watch(const cf_scenario *sc, sc_pools pool, const sc_options *opt);

#endif /* CF_SCENARIO_DRIVER_H */
