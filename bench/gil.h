/*
 * gil.h -- the GIL emulation of cpu_bench's thread-gil pool: cfutures'
 * thread pool running CPU-bound task bodies under one process-wide lock,
 * as CPython's threads run bytecode. The body holds the lock and offers it
 * to a waiting thread every 5 ms (sys.getswitchinterval()); the pool's
 * machinery (submit, futures, the worker loop) runs outside it. Only these
 * tasks take the lock, so it costs nothing to the other pools.
 */
#ifndef CF_BENCH_GIL_H
#define CF_BENCH_GIL_H

#include "cfutures.h"

#ifdef __cplusplus
extern "C" {
#endif

/* examples/primes.c's is_prime (same argument, result and arithmetic),
 * its loop run under the lock. */
void is_prime_gil(cf_call *call);

/* spin.h's spin_task, its loop run under the lock. */
void spin_gil(cf_call *call);

/* How many times the lock has changed hands so far, in the whole
 * process: a thread took it that was not its last holder. */
unsigned long gil_switches(void);

#ifdef __cplusplus
}
#endif

#endif
