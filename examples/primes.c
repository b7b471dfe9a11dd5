/* The docs' is_prime and PRIMES; see primes.h. */
#include "primes.h"

#include <math.h>

const int64_t PRIMES[NPRIMES] = {
    112272535095293, 112582705942171, 112272535095293,
    115280095190773, 115797848077099, 1099726899285419,
};

const bool PRIMES_EXPECTED[NPRIMES] = {true, true, true, true, true, false};

void is_prime(cf_call *call) {
    const cf_value *arg = cf_arg(call, 0);
    int64_t n, sqrt_n;

    if (arg == NULL || arg->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "is_prime() takes one int");
        return;
    }
    n = arg->as.i;
    if (n % 2 == 0) {
        cf_return(call, cf_bool(false));
        return;
    }
    sqrt_n = (int64_t)floor(sqrt((double)n));
    for (int64_t i = 3; i <= sqrt_n; i += 2) {
        if (n % i == 0) {
            cf_return(call, cf_bool(false));
            return;
        }
    }
    cf_return(call, cf_bool(true));
}
