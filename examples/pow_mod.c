/*
 * pow_mod.c -- the first submit() example of the concurrent.futures
 * documentation (Python 3.2, section 16.4.1), ADAPTED:
 *
 *     with ThreadPoolExecutor(max_workers=1) as executor:
 *         future = executor.submit(pow, 323, 1235)
 *         print(future.result())
 *
 * pow(323, 1235) is a 3,100-digit Python int, which no cf_value holds (an
 * int is 64 bits). The adaptation uses Python's three-argument pow, which
 * stays in 64 bits:
 *
 *     with ThreadPoolExecutor(max_workers=1) as executor:
 *         future = executor.submit(pow, 323, 1235, 1000000007)
 *         print(future.result())                          # 412738484
 *         future = executor.submit(pow, 323, 1235, 0)
 *         print(future.exception())  # pow() 3rd argument cannot be 0
 *
 * It shows Executor.submit and Future.result / Future.exception, and that an
 * exception raised by the call comes back through the future with Python's
 * type and message. The `with` block is cf_thread_pool_new ...
 * cf_executor_free, which waits for the calls as the block's end does.
 *
 * The program checks its output against CPython's and exits non-zero if it
 * differs.
 */
#include "cfutures.h"
#include "common.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest modulus whose squares fit in an int64_t. */
#define POW_MOD_MAX_MODULUS INT64_C(3037000499)

/* python3 -c 'print(pow(323, 1235, 1000000007))' */
#define EXPECTED_RESULT INT64_C(412738484)

/* (base ** exp) % mod by repeated squaring; 0 < mod <= POW_MOD_MAX_MODULUS,
 * exp >= 0. The result is in [0, mod), as Python's. */
static int64_t pow_mod_value(int64_t base, int64_t exp, int64_t mod) {
    int64_t result = 1 % mod;

    base %= mod;
    if (base < 0)
        base += mod;
    while (exp > 0) {
        if (exp & 1)
            result = result * base % mod;
        base = base * base % mod;
        exp >>= 1;
    }
    return result;
}

/* The task: pow(base, exp, mod) with Python's error for mod == 0. */
static void pow_mod(cf_call *call) {
    const cf_value *base = cf_arg(call, 0);
    const cf_value *exp = cf_arg(call, 1);
    const cf_value *mod = cf_arg(call, 2);

    if (cf_nargs(call) != 3 || base->type != CF_TYPE_INT ||
        exp->type != CF_TYPE_INT || mod->type != CF_TYPE_INT) {
        cf_raise(call, "TypeError", "pow_mod() takes three ints");
        return;
    }
    if (mod->as.i == 0) {
        cf_raise(call, "ValueError", "pow() 3rd argument cannot be 0");
        return;
    }
    if (mod->as.i < 0 || mod->as.i > POW_MOD_MAX_MODULUS || exp->as.i < 0) {
        cf_raise(call, "ValueError",
                 "this example needs 0 < mod <= %" PRId64 " and exp >= 0",
                 POW_MOD_MAX_MODULUS);
        return;
    }
    cf_return(call, cf_int(pow_mod_value(base->as.i, exp->as.i, mod->as.i)));
}

/* future = executor.submit(pow, 323, 1235, mod). Returns the status. */
static cf_status submit_pow(cf_executor *executor, int64_t mod,
                            cf_future **future) {
    const cf_value args[3] = {cf_int(323), cf_int(1235), cf_int(mod)};

    return cf_submit(executor, pow_mod, args, 3, future);
}

/* print(future.result()), checked against CPython's 412738484. */
static bool print_result(cf_future *future) {
    cf_value result = cf_none();
    char text[32];
    cf_status st;
    bool ok;

    st = cf_future_result(future, CF_FOREVER, &result);
    if (st != CF_OK) {
        fprintf(stderr, "result(): %s\n", cf_status_name(st));
        return false;
    }
    cf_value_repr(&result, text, sizeof text);
    printf("%s\n", text);
    ok = result.type == CF_TYPE_INT && result.as.i == EXPECTED_RESULT;
    if (!ok)
        fprintf(stderr, "want %" PRId64 "\n", EXPECTED_RESULT);
    cf_value_free(&result);
    return ok;
}

/* print(future.exception()) for the mod == 0 call, checked: result() says
 * the call raised, and the exception is Python's ValueError. */
static bool print_exception(cf_future *future) {
    const cf_error *error = NULL;
    cf_status st;

    st = cf_future_result(future, CF_FOREVER, NULL);
    if (st != CF_RAISED) {
        fprintf(stderr, "result(): %s, want CF_RAISED\n", cf_status_name(st));
        return false;
    }
    st = cf_future_exception(future, CF_FOREVER, &error);
    if (st != CF_OK || error == NULL) {
        fprintf(stderr, "exception(): %s, no error\n", cf_status_name(st));
        return false;
    }
    printf("%s\n", cf_error_message(error));
    return strcmp(cf_error_type(error), "ValueError") == 0 &&
           strcmp(cf_error_message(error), "pow() 3rd argument cannot be 0") ==
               0;
}

/* The `with` block: both submits, then both prints. */
static int run(void) {
    cf_thread_pool_options pool;
    cf_future *good = NULL, *bad = NULL;
    cf_executor *executor;
    cf_status st;
    int rc = EXIT_FAILURE;

    cf_thread_pool_options_init(&pool);
    pool.max_workers = 1;
    st = cf_thread_pool_new(&pool, &executor);
    if (!example_ok(st, "cf_thread_pool_new"))
        return EXIT_FAILURE;
    st = submit_pow(executor, 1000000007, &good);
    if (st != CF_OK)
        goto out_free_executor;
    st = submit_pow(executor, 0, &bad);
    if (st != CF_OK)
        goto out_release_good;

    if (print_result(good) && print_exception(bad))
        rc = EXIT_SUCCESS;

    cf_future_release(bad);
out_release_good:
    cf_future_release(good);
out_free_executor:
    example_ok(st, "cf_submit");
    if (!example_ok(cf_executor_free(executor), "cf_executor_free"))
        rc = EXIT_FAILURE;
    return rc;
}

int main(int argc, char **argv) {
    return example_main(
        argc, argv,
        "The first Executor.submit example of Python's concurrent.futures\n"
        "documentation, adapted to 64-bit ints: submits pow(323, 1235,\n"
        "1000000007) to a one-thread pool and prints the result, then\n"
        "pow(323, 1235, 0) and prints the ValueError it raises. Exits 1\n"
        "if either differs from CPython's.\n",
        run);
}
