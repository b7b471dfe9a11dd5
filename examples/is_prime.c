/*
 * is_prime.c -- the ProcessPoolExecutor example of the concurrent.futures
 * documentation (Python 3.2, section 16.4.3.1), on cfutures:
 *
 *     def main():
 *         with concurrent.futures.ProcessPoolExecutor() as executor:
 *             for number, prime in zip(PRIMES, executor.map(is_prime,
 * PRIMES)): print('%d is prime: %s' % (number, prime))
 *
 * It shows Executor.map as an iterator (cf_map, cf_map_next, cf_map_close):
 * every call is submitted at once, results come back in input order, and
 * the lines printed are exactly Python's.
 *
 * The calls run in worker processes, as in Python: is_prime and PRIMES
 * (primes.c) are found in the workers because they are forked from this
 * program.
 *
 * The program checks its own results and exits non-zero if one is wrong.
 */
#include "cfutures.h"
#include "common.h"
#include "primes.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The one place the executor is chosen: ProcessPoolExecutor(), as the docs
 * write it (as many workers as CPUs).
 */
static cf_status make_executor(cf_executor **out) {
    cf_process_pool_options pool;
    cf_status st;

    st = cf_process_pool_options_init(&pool);
    if (st != CF_OK)
        return st;
    return cf_process_pool_new(&pool, out);
}

/*
 * Prints one result as Python does ("%d is prime: %s") and checks it.
 * Returns true when the value is the bool Python gives.
 */
static bool print_result(size_t i, const cf_value *prime) {
    char text[8];

    if (prime->type != CF_TYPE_BOOL) {
        fprintf(stderr, "is_prime(%" PRId64 ") did not return a bool\n",
                PRIMES[i]);
        return false;
    }
    /* Python's %s of a bool is its repr: True or False. */
    cf_value_repr(prime, text, sizeof text);
    printf("%" PRId64 " is prime: %s\n", PRIMES[i], text);
    if (prime->as.b != PRIMES_EXPECTED[i] ||
        strcmp(text, PRIMES_EXPECTED[i] ? "True" : "False") != 0) {
        fprintf(stderr, "wrong answer for %" PRId64 ": want %s\n", PRIMES[i],
                PRIMES_EXPECTED[i] ? "True" : "False");
        return false;
    }
    return true;
}

/*
 * zip(PRIMES, executor.map(is_prime, PRIMES)): takes the results in input
 * order and prints them. Returns true when all six are right and the
 * iterator then stops.
 */
static bool print_map(cf_map_iter *it) {
    const cf_error *error = NULL;
    cf_value prime = cf_none();
    cf_status st;
    bool ok = true;

    for (size_t i = 0; i < NPRIMES; i++) {
        st = cf_map_next(it, &prime, &error);
        if (st != CF_OK) {
            fprintf(stderr, "map result %zu: %s %s: %s\n", i,
                    cf_status_name(st), cf_error_type(error),
                    cf_error_message(error));
            return false;
        }
        ok = print_result(i, &prime) && ok;
        cf_value_free(&prime);
    }
    st = cf_map_next(it, &prime, &error);
    if (st != CF_STOP) {
        fprintf(stderr, "map did not stop after %d results: %s\n", NPRIMES,
                cf_status_name(st));
        cf_value_free(&prime);
        return false;
    }
    return ok;
}

/* The body of main(): the `with` block. */
static int run(void) {
    cf_value args[NPRIMES];
    cf_executor *executor;
    cf_map_iter *it;
    cf_status st;
    int rc = EXIT_FAILURE;

    for (size_t i = 0; i < NPRIMES; i++)
        args[i] = cf_int(PRIMES[i]);

    st = make_executor(&executor);
    if (!example_ok(st, "cannot make the executor"))
        return EXIT_FAILURE;
    st = cf_map(executor, is_prime, args, NPRIMES, 1, CF_FOREVER, 1, 0, &it);
    if (!example_ok(st, "cf_map"))
        goto out_free_executor;
    if (print_map(it))
        rc = EXIT_SUCCESS;

    cf_map_close(it);
out_free_executor:
    if (!example_ok(cf_executor_free(executor), "cf_executor_free"))
        rc = EXIT_FAILURE;
    return rc;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "The ProcessPoolExecutor example of Python's concurrent.futures\n"
        "documentation: is_prime() over six large numbers with\n"
        "Executor.map, printing '<n> is prime: True/False' in input\n"
        "order. Runs on a process pool of the default size; exits 1 if a\n"
        "result differs from Python's.\n",
        run);
}
