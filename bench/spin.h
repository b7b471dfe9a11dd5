/*
 * spin.h -- a calibrated busy loop: the CPU-bound task of cpu_bench's
 * Granularity rows. A task's size is a number of loop iterations, passed as
 * its int argument, so that a process pool's workers (which see the
 * program's memory as it was when their pool was made) run it as sized.
 */
#ifndef CF_BENCH_SPIN_H
#define CF_BENCH_SPIN_H

#include "cfutures.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the loop for `iterations` steps (none if it is <= 0). */
void spin(int64_t iterations);

/* How many steps of spin() take a microsecond of the calling thread's
 * processor time, as measured now (the fastest of a few runs of 10 to
 * 20 ms each). */
double spin_calibrate(void);

/* The iterations a spin task was given: its one int argument. False, with
 * the call raising TypeError, without one. */
bool spin_arg(cf_call *call, int64_t *iterations);

/* The task: spin(its one int argument); returns None. */
void spin_task(cf_call *call);

#ifdef __cplusplus
}
#endif

#endif
