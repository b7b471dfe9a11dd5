/* spin.c -- see spin.h. */
#define _POSIX_C_SOURCE 200809L

#include "spin.h"

#include <time.h>

void spin(int64_t iterations) {
    /* volatile: each step is a load and a store the compiler must keep, so
     * the loop is neither removed nor folded into one addition. */
    for (volatile int64_t i = 0; i < iterations; i++)
        ;
}

/* The calling thread's processor time: time another process holds the
 * processor (the machine may be shared) does not count. */
static double cpu_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

double spin_calibrate(void) {
    int64_t n = 1000;
    double best = 0;
    /* Double the loop until one run takes 10 ms, then keep the fastest of
     * 5 runs of that size. */
    for (;;) {
        double t0 = cpu_us();
        spin(n);
        if (cpu_us() - t0 >= 10000)
            break;
        n *= 2;
    }
    for (int run = 0; run < 5; run++) {
        double t0 = cpu_us();
        spin(n);
        double rate = (double)n / (cpu_us() - t0);
        if (rate > best)
            best = rate;
    }
    return best;
}

bool spin_arg(cf_call *call, int64_t *iterations) {
    const cf_value *arg = cf_arg(call, 0);
    if (arg == NULL || arg->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "spin() takes one int");
        return false;
    }
    *iterations = arg->as.i;
    return true;
}

void spin_task(cf_call *call) {
    int64_t iterations;
    if (spin_arg(call, &iterations))
        spin(iterations);
}
