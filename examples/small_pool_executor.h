/*
 * small_pool_executor.h -- SmallPool, an executor written outside cfutures
 * on its public header alone: a fixed pool of threads taking calls from one
 * FIFO. The library's tests run their executor tests on it too
 * (CF_TEST_POOL=outside); examples/small_pool.c shows it in use.
 */
#ifndef SMALL_POOL_EXECUTOR_H
#define SMALL_POOL_EXECUTOR_H

#include "cfutures.h"

/*
 * Makes a pool of nthreads threads, all started here, named by the ops
 * table "SmallPool". Calls run in submission order as threads come free.
 * shutdown(wait) from one of the pool's own threads is CF_DEADLOCK; a task
 * must return (not end its thread).
 * out:     owned by the caller (cf_executor_free).
 * Returns: CF_OK; CF_EINVAL (nthreads < 1, out NULL); CF_EAGAIN (a thread
 *          could not start); CF_NOMEM.
 */
cf_status small_pool_new(int nthreads, cf_executor **out);

#endif
