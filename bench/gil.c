/*
 * gil.c -- see gil.h. The lock follows CPython's Python/ceval_gil.c
 * (take_gil, drop_gil, FORCE_SWITCHING):
 *  - a thread that has waited a whole switch interval while the same
 *    holder kept the lock sets drop_request (CPython's gil_drop_request,
 *    seen through the eval breaker);
 *  - the holder looks at that flag every CHECK_EVERY loop iterations, and
 *    when it is set releases the lock and takes it again;
 *  - a thread that releases while a drop is requested waits until another
 *    thread has taken the lock before it goes on, so it cannot take it
 *    straight back: the handover is fair.
 * Deadlines are on CLOCK_REALTIME, the default clock of a statically
 * initialised condition variable; a clock step only moves when a drop is
 * requested.
 */
#define _POSIX_C_SOURCE 200809L

#include "gil.h"
#include "spin.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SWITCH_INTERVAL_NS 5000000L /* 5 ms, CPython's default */
#define CHECK_EVERY 1024 /* loop iterations between looks at the flag (µs) */

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER; /* locked = 0 */
static pthread_cond_t switched = PTHREAD_COND_INITIALIZER; /* new holder */
static bool locked;
static const void *holder; /* the last thread to take the lock */
static unsigned long switches;
static atomic_bool drop_request;

/* Its address names the calling thread. */
static _Thread_local char self;

static void take(void) {
    pthread_mutex_lock(&mutex);
    while (locked) {
        unsigned long seen = switches;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += SWITCH_INTERVAL_NS;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&released, &mutex, &deadline) ==
                ETIMEDOUT &&
            locked && switches == seen)
            atomic_store_explicit(&drop_request, true, memory_order_relaxed);
    }
    locked = true;
    if (holder != &self) {
        holder = &self;
        switches++;
        pthread_cond_broadcast(&switched);
    }
    atomic_store_explicit(&drop_request, false, memory_order_relaxed);
    pthread_mutex_unlock(&mutex);
}

static void drop(void) {
    pthread_mutex_lock(&mutex);
    locked = false;
    pthread_cond_signal(&released);
    /* A request comes from a thread still waiting in take(), which resets
     * it as it takes the lock: so this wait ends. */
    while (atomic_load_explicit(&drop_request, memory_order_relaxed) &&
           holder == &self)
        pthread_cond_wait(&switched, &mutex);
    pthread_mutex_unlock(&mutex);
}

/* The eval breaker: one relaxed load unless a drop is requested. */
static void offer(void) {
    if (atomic_load_explicit(&drop_request, memory_order_relaxed)) {
        drop();
        take();
    }
}

void is_prime_gil(cf_call *call) {
    const cf_value *arg = cf_arg(call, 0);
    int64_t n, sqrt_n;
    bool prime;
    int countdown = CHECK_EVERY;

    if (arg == NULL || arg->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "is_prime() takes one int");
        return;
    }
    n = arg->as.i;
    take();
    prime = n % 2 != 0;
    sqrt_n = prime ? (int64_t)floor(sqrt((double)n)) : 0;
    for (int64_t i = 3; prime && i <= sqrt_n; i += 2) {
        prime = n % i != 0;
        if (--countdown == 0) {
            countdown = CHECK_EVERY;
            offer();
        }
    }
    drop();
    cf_return(call, cf_bool(prime));
}

void spin_gil(cf_call *call) {
    int64_t left;

    if (!spin_arg(call, &left))
        return;
    take();
    for (; left > 0; left -= CHECK_EVERY) {
        spin(left < CHECK_EVERY ? left : CHECK_EVERY);
        offer();
    }
    drop();
}

unsigned long gil_switches(void) {
    pthread_mutex_lock(&mutex);
    unsigned long n = switches;
    pthread_mutex_unlock(&mutex);
    return n;
}
