/*
 * A program outside the project: submits one call to a thread pool of the
 * installed cfutures and checks its result. Exits 0 only if all went well.
 */
#include <cfutures.h>

#include <stdio.h>

static void square(cf_call *call) {
    int64_t n = cf_arg(call, 0)->as.i;
    cf_return(call, cf_int(n * n));
}

static int fail(const char *what, cf_status status) {
    fprintf(stderr, "consumer: %s: %s\n", what, cf_status_name(status));
    return 1;
}

int main(void) {
    cf_executor *pool = NULL;
    cf_future *future = NULL;
    cf_value arg = cf_int(7), result = cf_none();
    cf_status status;

    if (cf_version() != CF_VERSION) {
        fprintf(stderr, "consumer: header %d, library %d\n", CF_VERSION,
                cf_version());
        return 1;
    }
    status = cf_thread_pool_new(NULL, &pool);
    if (status != CF_OK)
        return fail("cf_thread_pool_new", status);
    status = cf_submit(pool, square, &arg, 1, &future);
    if (status != CF_OK)
        return fail("cf_submit", status);
    status = cf_future_result(future, CF_FOREVER, &result);
    if (status != CF_OK)
        return fail("cf_future_result", status);
    if (result.type != CF_TYPE_INT || result.as.i != 49) {
        fprintf(stderr, "consumer: square(7) gave a wrong value\n");
        return 1;
    }
    cf_future_release(future);
    status = cf_executor_free(pool);
    if (status != CF_OK)
        return fail("cf_executor_free", status);
    printf("consumer: square(7) = 49 on a thread pool, cfutures %d\n",
           cf_version());
    return 0;
}
