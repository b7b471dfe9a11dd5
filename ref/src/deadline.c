/* deadline.c -- timeouts as absolute CLOCK_MONOTONIC deadlines. */
#include "internal.h"

#include <errno.h>

/* Beyond this a timeout is as good as forever, and adding it to the clock
 * would overflow time_t. */
#define CF__MAX_TIMEOUT 1e9

static struct timespec now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

cf_status cf__deadline_make(double timeout, cf__deadline *d) {
    if (isnan(timeout))
        return CF_EINVAL;
    d->forever = timeout > CF__MAX_TIMEOUT;
    d->at = now();
    if (d->forever || timeout <= 0)
        return CF_OK;
    double whole = floor(timeout);
    d->at.tv_sec += (time_t)whole;
    d->at.tv_nsec += (long)((timeout - whole) * 1e9);
    if (d->at.tv_nsec >= 1000000000L) {
        d->at.tv_sec++;
        d->at.tv_nsec -= 1000000000L;
    }
    return CF_OK;
}

static double seconds_until(const struct timespec *at) {
    struct timespec t = now();
    return (double)(at->tv_sec - t.tv_sec) +
           (double)(at->tv_nsec - t.tv_nsec) / 1e9;
}

bool cf__deadline_passed(const cf__deadline *d) {
    return !d->forever && seconds_until(&d->at) <= 0;
}

double cf__deadline_remaining(const cf__deadline *d) {
    if (d->forever)
        return CF_FOREVER;
    double left = seconds_until(&d->at);
    return left > 0 ? left : 0;
}

int cf__cond_init(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

bool cf__cond_wait(pthread_cond_t *cond, pthread_mutex_t *lock,
                   const cf__deadline *d) {
    if (d->forever) {
        pthread_cond_wait(cond, lock);
        return true;
    }
    if (cf__deadline_passed(d))
        return false;
    return pthread_cond_timedwait(cond, lock, &d->at) != ETIMEDOUT ||
           !cf__deadline_passed(d);
}
