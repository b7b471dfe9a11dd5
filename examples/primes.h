/*
 * primes.h -- the workload of the docs' ProcessPoolExecutor example
 * (Python 3.2, section 16.4.3.1): is_prime() and the six PRIMES. The
 * is_prime example prints it; the benchmarks time it on both pools.
 */
#ifndef CF_EXAMPLE_PRIMES_H
#define CF_EXAMPLE_PRIMES_H

#include "cfutures.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NPRIMES 6
extern const int64_t PRIMES[NPRIMES];
/* What Python's is_prime answers for each (python3 ran the docs' code). */
extern const bool PRIMES_EXPECTED[NPRIMES];

/*
 * The docs' is_prime(n), as a task function: one int argument, returns a
 * bool. Trial division by odd numbers up to floor(sqrt(n)); raises
 * TypeError without one int argument.
 */
void is_prime(cf_call *call);

#ifdef __cplusplus
}
#endif

#endif
