/*
 * cfutures.h -- Python's concurrent.futures as a C11 + pthreads library.
 *
 * This header is the whole public API. It reads top to bottom as the
 * documentation: version, status map, values and errors, futures, task
 * functions, executors (and how to write one), the thread pool, wait,
 * as_completed and map.
 *
 * Conventions that hold everywhere unless a function says otherwise:
 *  - Every function checks its arguments. One that returns a cf_status and
 *    fails with CF_EINVAL or CF_NOMEM changes nothing; when such a function
 *    takes a callback, the callback is then never called. (Functions that
 *    end a work, finish an iterator or make a call raise say so.)
 *  - Out-parameters come last (the cf_value constructors take theirs
 *    first) and are written only on CF_OK.
 *  - Timeouts are seconds as a double, measured on CLOCK_MONOTONIC:
 *    CF_FOREVER waits without limit, a value <= 0 polls (never blocks), NaN is
 *    rejected with CF_EINVAL (even where nothing would be waited for). A
 *    timed wait never returns CF_TIMEOUT early. A timeout above 1e9 seconds
 *    (about 31 years) is taken as CF_FOREVER.
 *  - "Python:" names the concurrent.futures call a function corresponds to.
 *
 * Where CPython and its documentation disagree, cfutures follows the
 * documentation; each such place is marked "Deliberate difference".
 */
#ifndef CFUTURES_H
#define CFUTURES_H

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------ */

/* The API version. The major number changes when a name, a signature or a
 * documented behaviour changes; the minor number when something is added;
 * the patch number for fixes that change no documented behaviour. Before
 * 1.0 a minor version may also change what exists, and the shared
 * library's name (libcfutures.so.0) does not say so: rebuild against the
 * header of the library you load. */
#define CF_VERSION_MAJOR 0
#define CF_VERSION_MINOR 2
#define CF_VERSION_PATCH 0
#define CF_VERSION                                                            \
    (CF_VERSION_MAJOR * 10000 + CF_VERSION_MINOR * 100 + CF_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define CF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
/* Marks what a cfutures library exports: the functions of this header and
 * nothing else (the reference builds with every other symbol hidden). */
#define CF_EXTERN extern __attribute__((visibility("default")))
#else
#define CF_PRINTF(fmt, args)
#define CF_EXTERN extern
#endif

/* The version of the library actually linked, as CF_VERSION is built. */
CF_EXTERN int cf_version(void);

/* Which implementation of this API is linked and its version, e.g.
 * "cfutures-ref 0.2.0" for the reference: a name, a space, a version.
 * Static storage, never NULL. A replacement library names itself here, so
 * that a conformance report says what it validated. */
CF_EXTERN const char *cf_implementation(void);

/* ------------------------------------------------------------------------
 * Statuses
 *
 * XX(name, value, Python exception, message); every value is fixed, and a
 * new status takes a new one. Every Python exception a
 * concurrent.futures call can raise becomes one of these; the Python name is
 * what a trace prints so that C and Python runs compare line by line.
 * ------------------------------------------------------------------------ */

#define CF_STATUS_MAP(XX)                                                     \
    XX(OK, 0, "", "success")                                                  \
    XX(TIMEOUT, 1, "TimeoutError", "the wait timed out")                      \
    XX(CANCELLED, 2, "CancelledError", "the future was cancelled")            \
    XX(RAISED, 3, "",                                                         \
       "the call raised an exception; its cf_error says which")               \
    XX(INVALID_STATE, 4, "InvalidStateError",                                 \
       "the future's state does not allow this operation")                    \
    XX(SHUTDOWN, 5, "RuntimeError",                                           \
       "cannot schedule new futures after shutdown")                          \
    XX(BROKEN, 6, "BrokenExecutor",                                           \
       "the executor is broken and cannot run calls")                         \
    XX(EINVAL, 7, "ValueError", "invalid argument")                           \
    XX(NOMEM, 8, "MemoryError", "out of memory")                              \
    XX(EAGAIN, 9, "RuntimeError", "could not start a thread or process")      \
    XX(STOP, 10, "StopIteration", "the iterator is exhausted")                \
    XX(DEADLOCK, 11, "RuntimeError",                                          \
       "the call would wait for the calling thread itself")

typedef enum cf_status {
#define CF__STATUS_ENUM(name, value, py, msg) CF_##name = value,
    CF_STATUS_MAP(CF__STATUS_ENUM)
#undef CF__STATUS_ENUM
        CF__STATUS_COUNT
} cf_status;

/* CF__STATUS_COUNT is one past the last status: it grows when a status is
 * added, and is not part of the ABI. */

/* "CF_TIMEOUT" for CF_TIMEOUT; "CF_UNKNOWN_STATUS" for a value that is not
 * a status of the map (CF__STATUS_COUNT included). Never NULL; static
 * storage. Thread-safety: any thread. */
CF_EXTERN const char *cf_status_name(cf_status status);

/* A one-line English description; same rules as cf_status_name. */
CF_EXTERN const char *cf_status_message(cf_status status);

/* The Python exception the status stands for ("TimeoutError"), or "" for
 * CF_OK and CF_RAISED (whose exception is the call's own). Same rules. */
CF_EXTERN const char *cf_status_python(cf_status status);

/* ------------------------------------------------------------------------
 * Timeouts
 * ------------------------------------------------------------------------ */

/* Python's timeout=None. */
#define CF_FOREVER ((double)INFINITY)

/* ------------------------------------------------------------------------
 * Values
 *
 * A cf_value is what a call takes and returns: the picklable objects of
 * Python that cross a process boundary (None, bool, int, float, bytes, str),
 * plus a raw pointer, which thread pools accept and process pools refuse the
 * way Python refuses an object it cannot pickle.
 *
 * Ownership: a value of type BYTES or STR owns its buffer; whoever holds the
 * cf_value frees it with cf_value_free(). The other types own nothing (the
 * memory a PTR points to stays the caller's). Copying the struct by
 * assignment does NOT copy the buffer: use cf_value_copy().
 * ------------------------------------------------------------------------ */

typedef enum cf_type {
    CF_TYPE_NONE = 0, /* Python None; a zeroed cf_value is None */
    CF_TYPE_BOOL = 1,
    CF_TYPE_INT = 2,    /* int64_t; Python ints beyond 64 bits do not fit */
    CF_TYPE_DOUBLE = 3, /* Python float */
    CF_TYPE_BYTES = 4,  /* Python bytes: any octets */
    CF_TYPE_STR = 5,    /* Python str: valid UTF-8, no NUL inside */
    CF_TYPE_PTR = 6     /* a raw pointer: thread pools only */
} cf_type;

typedef struct cf_value {
    cf_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            char *data; /* BYTES and STR (NULL only when len is 0); a STR
                         * is also NUL-terminated */
            size_t len; /* octets, without the terminating NUL */
        } buf;
        void *ptr;
    } as;
} cf_value;

/* Values that own nothing, built in place. */
static inline cf_value cf_none(void) {
    cf_value v;
    v.type = CF_TYPE_NONE;
    v.as.i = 0;
    return v;
}
static inline cf_value cf_bool(bool b) {
    cf_value v = cf_none();
    v.type = CF_TYPE_BOOL;
    v.as.b = b;
    return v;
}
static inline cf_value cf_int(int64_t i) {
    cf_value v;
    v.type = CF_TYPE_INT;
    v.as.i = i;
    return v;
}
static inline cf_value cf_double(double d) {
    cf_value v;
    v.type = CF_TYPE_DOUBLE;
    v.as.d = d;
    return v;
}
static inline cf_value cf_ptr(void *p) {
    cf_value v = cf_none();
    v.type = CF_TYPE_PTR;
    v.as.ptr = p;
    return v;
}

/*
 * Makes a str value holding a copy of the NUL-terminated UTF-8 string s.
 * Python: str
 * out:     set on CF_OK; the caller owns it (cf_value_free).
 * Returns: CF_OK; CF_EINVAL if s or out is NULL or s is not valid UTF-8;
 *          CF_NOMEM.
 * Thread-safety: any thread; does not block.
 */
CF_EXTERN cf_status cf_value_str(cf_value *out, const char *s);

/*
 * Makes a bytes value holding a copy of len octets at data (data may be NULL
 * only when len is 0). Python: bytes
 * out:     set on CF_OK; the caller owns it (cf_value_free).
 * Returns: CF_OK, CF_EINVAL, CF_NOMEM.
 * Thread-safety: any thread; does not block.
 */
CF_EXTERN cf_status cf_value_bytes(cf_value *out, const void *data,
                                   size_t len);

/*
 * Deep-copies src into out (a new buffer for BYTES and STR).
 * Returns: CF_OK; CF_EINVAL if either is NULL, src has an unknown type,
 *          src is BYTES or STR with NULL data and a non-zero len, or src is
 *          a STR whose len octets are not valid UTF-8 or hold a NUL;
 *          CF_NOMEM. Only data[0..len) is read (the copy gets its own
 *          terminator); NULL data with len 0 is an empty value.
 * Thread-safety: any thread, as long as nobody frees src meanwhile.
 */
CF_EXTERN cf_status cf_value_copy(cf_value *out, const cf_value *src);

/*
 * Frees what v owns and sets it to None. NULL and None are accepted and do
 * nothing, so freeing twice is harmless.
 * Thread-safety: not on the same value from two threads.
 */
CF_EXTERN void cf_value_free(cf_value *v);

/* True when a and b have the same type and the same contents (PTR: the same
 * address; DOUBLE: ==, so NaN differs from itself, as in Python). False if
 * either is NULL. */
CF_EXTERN bool cf_value_equal(const cf_value *a, const cf_value *b);

/*
 * Writes Python's repr() of v into buf (at most size octets, always
 * NUL-terminated when size > 0; buf may be NULL when size is 0): None, True,
 * 7, 1.5, b'a\x00', 'text'. A str escapes the code points Python's
 * str.isprintable() rejects (Unicode 14, as Python 3.11). A PTR prints as
 * <pointer 0x...>.
 * Returns: the length the whole repr needs, as snprintf does; -1, writing
 *          nothing, if v is NULL or is a value cf_value_copy refuses.
 *          Nothing past data[len] is read.
 * Thread-safety: any thread.
 */
CF_EXTERN int cf_value_repr(const cf_value *v, char *buf, size_t size);

/* ------------------------------------------------------------------------
 * Errors
 *
 * A cf_error is an exception a call raised: a Python exception type name
 * ("ValueError") and a message. Who owns it, and for how long:
 *  - a future's: the future, as long as the caller holds a reference;
 *  - an iterator's (cf_map_next, cf_as_completed_next): the iterator,
 *    until its next call or its free;
 *  - cf_last_error's: the thread, until the next cf_submit, cf_map,
 *    cf_map_next or cf_refuse of that thread that fails or refuses;
 *  - cf_call_fn's: the caller, who frees it with cf_error_free.
 * Out of memory, a MemoryError (status CF_RAISED) may stand in for any of
 * them.
 * ------------------------------------------------------------------------ */

typedef struct cf_error cf_error;

/* The exception's type name, e.g. "ValueError"; "" for NULL. */
CF_EXTERN const char *cf_error_type(const cf_error *error);

/* The exception's message (may be ""); "" for NULL. */
CF_EXTERN const char *cf_error_message(const cf_error *error);

/* The status the error stands for: for a future's, what result() returns
 * (CF_RAISED for an exception the call raised, CF_BROKEN when the executor
 * broke); CF_TIMEOUT for an iterator's TimeoutError; for cf_last_error's,
 * the status the failed call returned. CF_EINVAL for NULL (cf_error_type
 * tells NULL, "", from a ValueError). */
CF_EXTERN cf_status cf_error_status(const cf_error *error);

/* Frees an error cf_call_fn gave out; NULL is accepted and does nothing.
 * Never an error a future, an iterator or cf_last_error lends. */
CF_EXTERN void cf_error_free(cf_error *error);

/* ------------------------------------------------------------------------
 * Logging
 *
 * Where Python logs to the "concurrent.futures" logger -- a done callback
 * that failed, an initializer that failed -- cfutures calls the log hook.
 * ------------------------------------------------------------------------ */

/* Python's logging levels, with their values. */
typedef enum cf_log_level {
    CF_LOG_ERROR = 40,   /* logging.ERROR: a failed done callback */
    CF_LOG_CRITICAL = 50 /* logging.CRITICAL: a failed initializer, a
                          * future in an unexpected state, an executor's
                          * misuse ("Writing an executor") */
} cf_log_level;

typedef void (*cf_log_fn)(cf_log_level level, const char *message, void *ctx);

/*
 * Sets the log hook; fn == NULL restores the default, which writes
 * "cfutures: <message>\n" to stderr. The hook may be called from any thread,
 * at any time after this returns, and never with a cfutures lock held. A
 * hook being replaced may still be called by a log already under way after
 * this returns: keep its ctx valid. A message is cut to 1023 octets.
 * Returns: CF_OK.
 * Thread-safety: any thread.
 */
CF_EXTERN cf_status cf_set_log_hook(cf_log_fn fn, void *ctx);

/*
 * Logs a printf message through the log hook (or the default), as the
 * library itself does: for an executor written outside it that logs what
 * Python logs, e.g. "Exception in initializer: ...". A message longer than
 * 1023 octets is cut. Call it with none of your own locks held: the hook
 * may call any cfutures function, and so reach your executor.
 * Returns: CF_OK; CF_EINVAL (nothing logged) for a level other than
 *          CF_LOG_ERROR and CF_LOG_CRITICAL, or a NULL fmt.
 * Thread-safety: any thread.
 */
CF_EXTERN cf_status cf_log(cf_log_level level, const char *fmt, ...)
    CF_PRINTF(2, 3);

/* ------------------------------------------------------------------------
 * Futures
 *
 * A cf_future is a call's eventual outcome. States:
 *
 *     PENDING --set_running_or_notify_cancel--> RUNNING --set_*--> FINISHED
 *        |  \_____________________ set_result / set_exception ____/^
 *        '--cancel--> CANCELLED
 *
 * Futures are reference counted. Whoever receives a future from a function
 * documented as "a new reference" owns one reference and releases it with
 * cf_future_release() when done with it; each side (the submitter, the
 * executor, an iterator) holds its own, so either may release first. Using a
 * future after releasing one's last reference is undefined; a released or
 * foreign pointer is detected where the memory still says so (CF_EINVAL).
 *
 * Thread-safety: every future function may be called from any thread.
 * ------------------------------------------------------------------------ */

typedef struct cf_future cf_future;

/*
 * Makes a PENDING future, for executor writers and tests.
 * Python: Future()
 * out:     a new reference.
 * Returns: CF_OK, CF_EINVAL (out NULL), CF_NOMEM.
 */
CF_EXTERN cf_status cf_future_new(cf_future **out);

/* Adds a reference. Returns CF_OK, or CF_EINVAL for NULL or a non-future. */
CF_EXTERN cf_status cf_future_retain(cf_future *future);

/* Drops a reference; the last one frees the future (and its result, error
 * and any callbacks never called). Returns CF_OK or CF_EINVAL. */
CF_EXTERN cf_status cf_future_release(cf_future *future);

/*
 * Attempts to cancel the call. Python: Future.cancel()
 * Returns true if the future is now cancelled: it was PENDING (then its done
 * callbacks run in this thread before cancel returns, and every waiter
 * wakes), or it was already cancelled (nothing runs again). Returns false if
 * it is RUNNING or FINISHED, or future is NULL or not a future.
 * Deliberate difference: CPython's wait() and as_completed() keep a
 * cancelled future in not_done until its executor dequeues it (gh-92001);
 * here it counts as done for them at once, as the documentation says.
 */
CF_EXTERN bool cf_future_cancel(cf_future *future);

/* Python: Future.cancelled(). False for NULL. */
CF_EXTERN bool cf_future_cancelled(const cf_future *future);

/* Python: Future.running(): executing and cannot be cancelled. False for
 * NULL. */
CF_EXTERN bool cf_future_running(const cf_future *future);

/* Python: Future.done(): cancelled or finished. False for NULL. */
CF_EXTERN bool cf_future_done(const cf_future *future);

/*
 * Waits for the future and gives its value. Python: Future.result(timeout)
 * timeout: seconds; CF_FOREVER, or <= 0 to poll; NaN -> CF_EINVAL.
 * out:     on CF_OK a copy of the value, owned by the caller (cf_value_free);
 *          may be NULL to only wait.
 * Returns: CF_OK; CF_RAISED or CF_BROKEN when the call failed (read the error
 *          with cf_future_exception); CF_CANCELLED; CF_TIMEOUT; CF_NOMEM
 *          (copying a large value); CF_EINVAL.
 * Blocks up to timeout.
 */
CF_EXTERN cf_status cf_future_result(cf_future *future, double timeout,
                                     cf_value *out);

/*
 * Waits for the future and gives the error the call raised.
 * Python: Future.exception(timeout)
 * out:     on CF_OK the error, or NULL if the call finished without raising.
 *          The future owns it; it lives as long as the caller's reference.
 *          Required (NULL -> CF_EINVAL).
 * Returns: CF_OK, CF_CANCELLED, CF_TIMEOUT, CF_EINVAL. Blocks up to timeout.
 */
CF_EXTERN cf_status cf_future_exception(cf_future *future, double timeout,
                                        const cf_error **out);

/*
 * A done callback: called once with the future (borrowed for the duration of
 * the call: the thread completing the future holds a reference across its
 * callbacks, so a callback may release any reference it owns) and the ctx
 * given when it was added. Return CF_OK; any other status is logged at
 * CF_LOG_ERROR, "exception calling callback for <Future at %p
 * state=finished|cancelled>: callback returned CF_<STATUS>", and ignored,
 * and the callbacks after it still run -- as Python logs and ignores an
 * Exception raised by a callback.
 */
typedef cf_status (*cf_done_callback)(cf_future *future, void *ctx);

/*
 * Attaches fn(future, ctx), called when the future is cancelled or
 * finishes. Python: Future.add_done_callback(fn)
 * Callbacks run in the order added, each exactly once, in the thread that
 * completes the future (the worker that ran the call, or the thread calling
 * cancel / set_result / set_exception / shutdown(cancel_futures)), outside
 * every cfutures lock, and after result() waiters have been woken. If the
 * future is already done, fn runs in this thread before this returns -- so
 * a callback added from another thread while the completing thread is still
 * running earlier ones may run before or alongside them (as in CPython).
 * The future is done inside the callback. The callback may call any cfutures
 * function, including on the same future.
 * Returns: CF_OK, CF_EINVAL (NULL future or fn), CF_NOMEM (then fn is never
 *          called).
 */
CF_EXTERN cf_status cf_future_add_done_callback(cf_future *future,
                                                cf_done_callback fn,
                                                void *ctx);

/*
 * For executor writers and tests: marks the future as running, unless it was
 * cancelled. Python: Future.set_running_or_notify_cancel()
 * Returns: CF_OK (now RUNNING); CF_CANCELLED (it was cancelled: the executor
 *          must not run the call; its callbacks already ran at cancel);
 *          CF_INVALID_STATE when the future is RUNNING or FINISHED, or is
 *          cancelled and was already reported CF_CANCELLED once (each future
 *          answers CF_OK or CF_CANCELLED at most once), or after set_result /
 *          set_exception (Python raises RuntimeError there); each
 *          CF_INVALID_STATE is first logged at CF_LOG_CRITICAL, as Python
 *          logs it: "Future <id> in unexpected state: <state>", id being the
 *          future's address in decimal (Python's id()) and state RUNNING,
 *          FINISHED or CANCELLED_AND_NOTIFIED; CF_EINVAL.
 */
CF_EXTERN cf_status cf_future_set_running_or_notify_cancel(cf_future *future);

/*
 * For executor writers and tests: finishes the future with a copy of value,
 * from PENDING or RUNNING. Python: Future.set_result(result)
 * Wakes result() and wait() waiters, then runs the done callbacks in this
 * thread.
 * value: borrowed; the future stores its own copy.
 * Returns: CF_OK; CF_INVALID_STATE if the future is already finished or
 *          cancelled (the first outcome is kept); CF_NOMEM; CF_EINVAL.
 */
CF_EXTERN cf_status cf_future_set_result(cf_future *future,
                                         const cf_value *value);

/*
 * For executor writers and tests: finishes the future with an exception of
 * Python type `type` ("ValueError") and the given message.
 * Python: Future.set_exception(exception)
 * type, message: borrowed (copied). type must be a non-empty identifier
 *          (letters, digits, '_' and '.'); message may be "" but not NULL.
 * Returns: as cf_future_set_result.
 */
CF_EXTERN cf_status cf_future_set_exception(cf_future *future,
                                            const char *type,
                                            const char *message);

/* ------------------------------------------------------------------------
 * Calls and task functions
 *
 * A call is a task function with its arguments, as Python's fn(*args). The
 * task reads its arguments with cf_arg() and ends with cf_return() or
 * cf_raise(); a task that does neither returns None. The call pointer is
 * valid only while the task function runs, and only in the thread running
 * it.
 * ------------------------------------------------------------------------ */

typedef struct cf_call cf_call;
typedef void (*cf_fn)(cf_call *call);

/* The number of arguments; 0 for NULL. */
CF_EXTERN size_t cf_nargs(const cf_call *call);

/* Argument i, borrowed for the duration of the task; NULL if i is out of
 * range or call is NULL. */
CF_EXTERN const cf_value *cf_arg(const cf_call *call, size_t i);

/*
 * Sets the call's return value. Python: return value
 * value: moved into the call -- the call owns it whatever the status (a
 *          refused value's buffer is freed).
 * Returns: CF_OK; CF_INVALID_STATE if the call already returned or raised
 *          (the first outcome stands); CF_EINVAL for a NULL call, or for a
 *          value cf_value_copy refuses: the call then raises TypeError, the
 *          same on every executor, "cf_return: a value of unknown type N",
 *          "cf_return: a str that is not valid UTF-8", "cf_return: a str
 *          with a NUL inside", "cf_return: a str with a length but no data"
 *          or "cf_return: bytes with a length but no data".
 * A task that ends its thread (pthread_exit) after cf_return or cf_raise
 * loses that outcome (it is freed); see the pools for what its future
 * gets. In a process pool's worker, end a task by returning, never with
 * exit() (which would run the program's atexit handlers in the worker).
 */
CF_EXTERN cf_status cf_return(cf_call *call, cf_value value);

/*
 * Makes the call raise an exception of Python type `type` with a printf
 * message. Python: raise ValueError("...")
 * Returns: CF_OK; CF_INVALID_STATE if the call already returned or raised;
 *          CF_EINVAL (NULL or ill-formed type); CF_NOMEM: the call then
 *          raises MemoryError (its outcome is set, so a further cf_raise
 *          or cf_return gives CF_INVALID_STATE).
 */
CF_EXTERN cf_status cf_raise(cf_call *call, const char *type, const char *fmt,
                             ...) CF_PRINTF(3, 4);

/*
 * Runs fn(*args) in this thread, outside any work and future: for an
 * executor that runs a task function of its own, such as an initializer
 * (the reference pools run theirs this way), or one that decodes calls
 * in another process. Python: fn(*args)
 * args:    nargs values, borrowed for the call (NULL when nargs is 0).
 * value:   set to what fn returned (None if nothing, or if it raised); the
 *          caller's (cf_value_free).
 * error:   set to what fn raised, NULL if nothing; the caller's
 *          (cf_error_free).
 * Returns: CF_OK (fn returned), the error's status (CF_RAISED: fn raised;
 *          *value and *error are set in both cases); CF_EINVAL (fn, value or
 *          error NULL, NULL args with nargs > 0, an argument cf_value_copy
 *          refuses: fn not called, nothing written).
 * A task that ends the thread (pthread_exit) ends it here too, and its
 * outcome is freed. Thread-safety: any thread.
 */
CF_EXTERN cf_status cf_call_fn(cf_fn fn, const cf_value *args, size_t nargs,
                               cf_value *value, cf_error **error);

/* ------------------------------------------------------------------------
 * Executors
 *
 * A cf_executor is Python's abstract Executor: an operations table that a
 * concrete executor supplies, plus what every executor shares, which the
 * library supplies on top: futures, cf_submit's checks, cf_map,
 * cf_executor_free, and the wait at process exit. The library passes every
 * cf_executor_shutdown to ops->shutdown, which must make a second one
 * harmless.
 *
 * Process exit: as Python, a program does not exit until the pending futures
 * of every executor not yet freed are done. The library registers an atexit
 * handler that shuts each live executor down with wait (from a thread of
 * the executor itself it skips the join it cannot do). After it starts,
 * cf_submit returns CF_SHUTDOWN. A main thread that ends with
 * pthread_exit() does the same as it ends (as Python's main thread ending
 * shuts the executors down): the pending work finishes, the workers end,
 * and so does the process once the program's own threads have; from then
 * on cf_submit returns CF_SHUTDOWN in every thread. This is seen when the
 * library is loaded by the main thread (linked, or dlopen'ed from main).
 *
 * Done callbacks and shutdown: a callback that cf_executor_shutdown runs
 * (of a call it cancels) may free that very executor; the shutdown then
 * returns normally and the executor is freed when it does.
 *
 * fork(): the library's own locks are made fork-safe, so a child may use
 * cfutures for the futures and executors it makes itself. Executors and
 * futures inherited from the parent are the parent's: the child forgets the
 * executors (it neither waits for them at exit nor may use them), and must
 * not wait on the futures.
 * ------------------------------------------------------------------------ */

typedef struct cf_executor cf_executor;

/*
 * Schedules fn(*args). Python: Executor.submit(fn, *args)
 * args:    nargs values, borrowed; the call keeps its own deep copies (args
 *          may be NULL when nargs is 0).
 * out:     a new reference to the call's PENDING future.
 * Returns: CF_OK; CF_SHUTDOWN after shutdown (or once process exit began);
 *          CF_BROKEN if the executor is broken (a thread or process pool
 *          broken before its shutdown says so first, as Python's submit
 *          raises BrokenThreadPool / BrokenProcessPool before "cannot
 *          schedule new futures after shutdown"); CF_EAGAIN if no worker could
 *          be started; CF_NOMEM; CF_EINVAL (NULL ex, fn or out; NULL args
 *          with nargs > 0; an argument cf_value_copy refuses). On failure
 *          nothing was scheduled, and cf_last_error() says why.
 * Thread-safety: any thread, including the executor's own workers. Does not
 *          wait for the call.
 */
CF_EXTERN cf_status cf_submit(cf_executor *ex, cf_fn fn, const cf_value *args,
                              size_t nargs, cf_future **out);

/*
 * Why the last cf_submit or cf_map that failed in this thread failed, as
 * the exception Python would have raised: RuntimeError "cannot schedule new
 * futures after shutdown" (or "... after interpreter shutdown" once process
 * exit began), "BrokenThreadPool" / "BrokenProcessPool" with Python's
 * message, "BlockingIOError" "[Errno 11] Resource temporarily unavailable"
 * when no process could be started, ValueError for a bad argument, ... --
 * so that a trace compares it with CPython's. Its cf_error_status is the
 * status the call returned. NULL if no such call failed in this thread yet.
 * Calls that succeed leave it as it is.
 * Owned by the library, one per thread; valid in this thread until its next
 * failing cf_submit or cf_map, and freed when the thread ends.
 */
CF_EXTERN const cf_error *cf_last_error(void);

/*
 * For executor writers, in ops->submit: refuses the work saying why --
 * sets this thread's cf_last_error to an exception of Python type `type`
 * (as cf_raise) and returns status, so `return cf_refuse(CF_BROKEN,
 * "BrokenMyPool", "...");`. A submit that refuses without it gets the
 * exception Python raises for that status.
 * Returns: status; CF_EINVAL (nothing set) for CF_OK, a bad type or a NULL
 *          fmt.
 */
CF_EXTERN cf_status cf_refuse(cf_status status, const char *type,
                              const char *fmt, ...) CF_PRINTF(3, 4);

/*
 * Stops the executor taking work. Python: Executor.shutdown(wait,
 * cancel_futures)
 * cancel_futures: cancel every call that has not started, before this
 *          returns (their callbacks run in this thread; a process pool's
 *          calls already sent ahead to a worker are cancelled, and their
 *          callbacks run, in its manager thread).
 * wait:    return only once every pending call is done and the executor's
 *          workers have exited; without it, return at once while the
 *          accepted work still runs to the end.
 * A second shutdown is harmless (and with wait, waits).
 * Returns: CF_OK; CF_DEADLOCK if wait was asked from one of the executor's
 *          own workers (the executor is shut down but not waited for;
 *          Python raises RuntimeError "cannot join current thread");
 *          CF_EINVAL.
 * Thread-safety: any thread. Blocks while the work finishes when wait.
 */
CF_EXTERN cf_status cf_executor_shutdown(cf_executor *ex, bool wait,
                                         bool cancel_futures);

/*
 * Shuts down with wait (as Python's `with` block ends), then frees the
 * executor. Futures it made stay valid for whoever holds them. An executor
 * whose shutdown left works unended is reported ("Writing an executor").
 * Returns: CF_OK; CF_DEADLOCK from one of the executor's own workers
 *          (the executor is shut down but not freed: free it again from
 *          another thread); CF_EINVAL.
 * Thread-safety: call it until it returns CF_OK, each time when no other
 *          thread uses ex any more.
 */
CF_EXTERN cf_status cf_executor_free(cf_executor *ex);

/* The executor's kind for messages: "ThreadPoolExecutor", or the ops name;
 * "" for NULL. */
CF_EXTERN const char *cf_executor_name(const cf_executor *ex);

/* ---- Writing an executor ---------------------------------------------- */

/*
 * A work item: one call and its future, as the library hands it to an
 * executor's submit. The executor owns it from a CF_OK submit on, and must
 * end it exactly once with cf_work_run (run it here), or cf_work_fail /
 * cf_work_release (after finishing its future another way).
 */
typedef struct cf_work cf_work;

typedef struct cf_executor_ops {
    /* Shown in messages and cf_executor_name, e.g. "InlineExecutor". */
    const char *name;
    /* Queue one work item. Called with no cfutures lock held; it may call
     * any cfutures function, cf_submit on this same executor included, and
     * may end the work at once (cf_work_run in the caller's thread): once it
     * has ended the work it must return CF_OK. Return CF_OK to take it, or a
     * failure status, one of CF_SHUTDOWN, CF_BROKEN, CF_EAGAIN, CF_NOMEM
     * (nothing else), to refuse it; the library then frees it at once, so
     * a refused work must not be reachable by any other thread when submit
     * returns (unlink it first). Called
     * from any thread, concurrently with itself and with shutdown: an
     * executor must refuse, with CF_SHUTDOWN, a submit that reaches it
     * after its shutdown began. */
    cf_status (*submit)(void *self, cf_work *work);
    /* Stop taking work; with cancel_futures cancel what has not started
     * (the pattern below); with wait, return once every work taken has
     * ended -- each cf_work_* call ending one has returned (a done future
     * is not enough: its work ends when cf_work_run returns) -- except the
     * works another call of shutdown, outer or concurrent, has already
     * taken out to cancel: that call ends them. May be called more than
     * once and concurrently, and from a done callback that this very
     * shutdown runs. Return CF_OK, or CF_DEADLOCK as
     * cf_executor_shutdown. */
    cf_status (*shutdown)(void *self, bool wait, bool cancel_futures);
    /* Release the executor's own resources; called once, after a shutdown
     * with wait returned CF_OK and the last work ended, in the thread that
     * drops the last reference: the one calling cf_executor_free or
     * cf_executor_shutdown, the exit handler's, or, if works were left
     * unended, the thread ending the last of them. May be NULL. */
    void (*free)(void *self);
    /* Room for operations a later version adds: NULL. Initialise the table
     * with designated initializers ({.name = ..., .submit = ...}), which
     * leave them NULL. cf_executor_new refuses a table where one is set,
     * rather than ignore an operation it does not know. */
    void *reserved[4];
} cf_executor_ops;

/*
 * Makes an executor from an operations table and the executor's own state.
 * On failure nothing is kept: self stays the caller's and ops->free is not
 * called.
 * ops:     borrowed; must outlive the executor (a static table).
 * self:    passed to every operation; the executor's own.
 * out:     the new executor, owned by the caller (cf_executor_free).
 * Returns: CF_OK, CF_EINVAL (ops, its submit or shutdown, or out NULL; a
 *          reserved slot set), CF_NOMEM.
 */
CF_EXTERN cf_status cf_executor_new(const cf_executor_ops *ops, void *self,
                                    cf_executor **out);

/* The work's future, borrowed while the executor owns the work. NULL for
 * NULL. */
CF_EXTERN cf_future *cf_work_future(const cf_work *work);

/* The task function and its arguments, for executors that run the call
 * elsewhere (a process pool encodes them). Borrowed while the executor owns
 * the work. NULL / 0 for NULL. */
CF_EXTERN cf_fn cf_work_fn(const cf_work *work);
CF_EXTERN size_t cf_work_nargs(const cf_work *work);
CF_EXTERN const cf_value *cf_work_args(const cf_work *work);

/*
 * Runs the work in this thread and ends it: set_running_or_notify_cancel,
 * then (unless cancelled) the task function, then its outcome into the
 * future, whose done callbacks run here.
 * Returns: CF_OK (ran), CF_CANCELLED (was cancelled; not run),
 *          CF_INVALID_STATE (not run: the future was FINISHED, or was
 *          cancelled and already reported once -- logged as
 *          set_running_or_notify_cancel logs -- or was RUNNING, which is a
 *          misuse, see below), CF_EINVAL. The work is ended in every case
 *          but CF_EINVAL.
 */
CF_EXTERN cf_status cf_work_run(cf_work *work);

/*
 * Fails the work's future and ends the work. status is CF_BROKEN (the
 * executor broke: result() will return CF_BROKEN) or CF_RAISED (an ordinary
 * exception); type and message as for cf_future_set_exception, e.g.
 * "BrokenThreadPool". A future already cancelled or finished is left as it
 * is (the work is still ended).
 * Returns: CF_OK; CF_INVALID_STATE if the future was already done; CF_NOMEM
 *          (the work is still ended, and its future fails with MemoryError);
 *          CF_EINVAL (nothing ended).
 */
CF_EXTERN cf_status cf_work_fail(cf_work *work, cf_status status,
                                 const char *type, const char *message);

/*
 * Ends the work (for an executor that finished the future itself with
 * cf_future_set_*); a future not yet done is first failed with
 * RuntimeError "the executor dropped the call", so that nobody waits
 * forever (its result() gives CF_RAISED).
 * Returns CF_OK or CF_EINVAL.
 */
CF_EXTERN cf_status cf_work_release(cf_work *work);

/* A pointer-sized word in the work for the executor's own use while it
 * owns the work -- e.g. to link its queue through, so that a call costs no
 * allocation of the executor's. NULL when submit gets the work; NULL for
 * NULL and for an ended work. */
CF_EXTERN void **cf_work_slot(cf_work *work);

/*
 * Marks ex as an executor whose calls cross a process boundary, so that
 * cf_map groups the items into chunks of its chunksize (as Python's
 * ProcessPoolExecutor.map; the process pool is marked, other executors
 * ignore chunksize). cf_map then submits one call per chunk: a library
 * task function whose arguments are values (fn's address among them, as an
 * int that means the same in a forked image of the program) and whose
 * result is one BYTES that cf_map splits into the items' results. The
 * executor runs it as any other call. Call it right after cf_executor_new,
 * before the executor is used; a cf_map already made is not affected.
 * Returns: CF_OK; CF_EINVAL for NULL.
 */
CF_EXTERN cf_status cf_executor_set_chunked(cf_executor *ex);

/*
 * Lifetime. Each work an executor took holds a reference on it until the
 * work ends, and cf_executor_shutdown holds one across ops->shutdown: self
 * stays valid in every operation the library calls and while any work
 * lives, and ops->free runs only after the last one has ended.
 *
 * Cancelling at shutdown without touching freed memory: take the queued
 * works out under the executor's lock; then, unlocked, cancel and release
 * each, reading what is needed from it (its slot) first:
 *
 *     pthread_mutex_lock(&p->lock);
 *     p->shut = true;
 *     cf_work *w = cancel_futures ? p->head : NULL;
 *     if (cancel_futures)
 *         p->head = p->tail = NULL;
 *     pthread_mutex_unlock(&p->lock);
 *     while (w) {
 *         cf_work *next = *cf_work_slot(w);
 *         cf_future_cancel(cf_work_future(w));
 *         cf_work_release(w); // w is gone from here on
 *         w = next;
 *     }
 *
 * The done callbacks of those futures run inside cf_future_cancel, in this
 * thread, and may call back into the executor: cf_submit (refused:
 * CF_SHUTDOWN), another shutdown (which finds the queue empty), even
 * cf_executor_free -- which is why no lock of the executor may be held
 * there. The executor itself stays valid until ops->shutdown returns.
 *
 * Misuse the library sees: each is logged at CF_LOG_CRITICAL as
 * "executor misuse: " then the executor's name (where the library knows
 * it), what went wrong and what the library does about it; then the
 * process aborts in a debug build (the library compiled without NDEBUG).
 * Otherwise the library goes on as follows:
 *  - submit ended the work, then returned something else than CF_OK:
 *    cf_submit gives out the future as the work left it, and CF_OK;
 *  - submit returned a status outside CF_OK and the four refusals
 *    (CF_TIMEOUT, CF_EINVAL, ...): cf_submit takes it as CF_BROKEN
 *    (cf_last_error a BrokenExecutor);
 *  - works not ended when shutdown with wait returned CF_OK: checked by
 *    cf_executor_free, where no cf_submit may race the count (and not
 *    while another shutdown is under way, as when a done callback it runs
 *    frees the executor); it still returns CF_OK, and the executor lives
 *    until the last of those works ends;
 *  - cf_work_run on a work whose future someone else started (set it
 *    RUNNING): the call does not run, cf_work_run returns
 *    CF_INVALID_STATE, and the future fails with RuntimeError
 *    "cf_work_run: the future was already running";
 *  - cf_work_run, cf_work_fail or cf_work_release on a work already
 *    ended, while its future lives: CF_EINVAL, nothing changes. (Once the
 *    future is freed such a call reads freed memory, unseen.)
 * CF_MISUSE=abort or CF_MISUSE=log in the environment, read at the first
 * misuse, overrides the build: abort in any build, or only log.
 */

/* ------------------------------------------------------------------------
 * ThreadPoolExecutor
 * ------------------------------------------------------------------------ */

/* max_workers value asking for Python's default, min(32, cpus + 4), cpus
 * being the processors online (sysconf(_SC_NPROCESSORS_ONLN)). */
#define CF_DEFAULT_WORKERS INT_MIN

typedef struct cf_thread_pool_options {
    /* > 0, or CF_DEFAULT_WORKERS. Zero or negative -> CF_EINVAL, as Python
     * raises ValueError("max_workers must be greater than 0"). */
    int max_workers;
    /* Threads are named "<prefix>_<n>", n counting from 0. NULL or "" gives
     * Python's default "ThreadPoolExecutor-<k>", k counting pools. Copied. */
    const char *thread_name_prefix;
    /* Run once at the start of each worker thread, with initargs; if it
     * raises (cf_raise) the pool breaks: it logs CF_LOG_CRITICAL, every
     * queued call and every later submit fail with CF_BROKEN, error type
     * "BrokenThreadPool". An initializer that ends its thread
     * (pthread_exit) counts as one that raises SystemExit("the initializer
     * called pthread_exit"): the pool breaks the same way. NULL for none.
     * initargs are copied. */
    cf_fn initializer;
    const cf_value *initargs;
    size_t ninitargs;
    /* Room for options a later version adds: zero, as
     * cf_thread_pool_options_init leaves them; a pool is refused
     * (CF_EINVAL) if one is set, rather than ignore an option it does not
     * know. */
    void *reserved[4];
} cf_thread_pool_options;

/* Fills o with the defaults: CF_DEFAULT_WORKERS, no prefix, no
 * initializer. Returns CF_OK or CF_EINVAL. */
CF_EXTERN cf_status cf_thread_pool_options_init(cf_thread_pool_options *o);

/*
 * Makes a pool of at most max_workers threads.
 * Python: ThreadPoolExecutor(max_workers, thread_name_prefix, initializer,
 * initargs)
 * Threads start lazily, one per submit at most, and only when no idle
 * worker is left to take the call; an idle worker is always reused first.
 * A worker counts as idle from the moment its task returns (before anyone
 * can see the result), so a submit made after a result was seen reuses it;
 * the call then waits for that worker's done callbacks to finish.
 * A task that ends its thread (pthread_exit) fails its future with
 * CF_RAISED, error type "SystemExit", message "the task called
 * pthread_exit" (Python: a task raising SystemExit); its done callbacks run
 * once, on that thread as it exits (so they must not end the thread
 * themselves: that is undefined, as pthread_exit inside a cleanup handler).
 * The exited thread no longer counts toward max_workers: if calls are queued
 * that no idle worker will take, a new worker starts for them, even after
 * shutdown, so every queued call still runs. Should no thread be able to start
 * and none be left, the queued calls fail with RuntimeError("can't start new
 * thread"). A done callback that ends its thread is logged at CF_LOG_CRITICAL;
 * the callbacks after it never run (and that future's memory is lost). Exited
 * threads are joined at shutdown. options: borrowed; NULL means all defaults.
 * out:     owned by the caller (cf_executor_free).
 * Returns: CF_OK, CF_EINVAL (bad max_workers, initargs NULL with
 *          ninitargs > 0, a reserved slot set, out NULL), CF_NOMEM.
 * Thread-safety: any thread.
 */
CF_EXTERN cf_status cf_thread_pool_new(const cf_thread_pool_options *options,
                                       cf_executor **out);

/* The full name of the calling thread if it is a pool worker
 * ("ThreadPoolExecutor-0_1"), else NULL; valid until the thread exits. (The
 * OS name is cut to 15 characters.) Python: threading.current_thread().name
 */
CF_EXTERN const char *cf_current_thread_name(void);

/* ------------------------------------------------------------------------
 * ProcessPoolExecutor
 *
 * Calls run in worker processes. How they start: cf_process_pool_new forks
 * one fork server, a small process that stays single-threaded, and every
 * worker is forked from it, never from the caller's process. fork() in a
 * process that runs threads copies only the calling thread, so a lock
 * another thread held stays locked in the child (malloc's, stdio's, the
 * program's own); a server forked while the pool starts, which then never
 * starts a thread, gives workers that come from a one-thread process
 * whatever the program does later, and ThreadSanitizer can follow them. A
 * fresh image (exec, Python's "spawn") would need tasks registered by name;
 * a fork keeps the program's code. The one fork from the caller's process
 * remains: cfutures' own locks and glibc's malloc are made safe across it,
 * but a lock of the program's that another thread holds while
 * cf_process_pool_new runs is held forever in every worker, so a task
 * that takes such a lock hangs. Make process pools before starting threads
 * that hold locks, or do not take those locks in tasks.
 *
 * How a task is found: by its address. Every worker is a fork of the
 * caller's process image, so any function linked into the program (or in
 * a library loaded before the pool was made) works as a task; a function
 * in a library dlopen'ed after the pool was made does not exist in the
 * workers. Likewise a worker sees the program's memory as it was when the
 * pool was made, and nothing it writes comes back except the call's
 * outcome. That image holds a copy of the pool itself, without its threads:
 * a task that calls its pool or one of the parent's futures through a
 * pointer (Python: "Calling Executor or Future methods from a callable
 * submitted to a ProcessPoolExecutor will result in deadlock") waits
 * forever, as in CPython.
 *
 * What crosses: arguments and results of type NONE, BOOL, INT, DOUBLE,
 * BYTES and STR (up to 4 GiB encoded). A PTR argument or result fails that
 * one future with CF_RAISED, type "TypeError", message "cannot pickle
 * 'pointer' object" (as Python fails on an object it cannot pickle); the
 * pool carries on. An error the call raised comes back with its type and
 * message. What a large BYTES or STR value costs, in copies of its size,
 * for a call that takes it and returns it: in the parent, 3 at most, the
 * caller's own value included -- the caller's value, the call's copy of
 * its arguments (kept until its outcome is in: a call sent ahead may be
 * taken back and sent to another worker) and either the encoding queued
 * for the worker's socket or the result, which is read from the socket
 * straight into its value; then the result and the copy cf_future_result
 * makes. In the worker, 2 at most: the call's frame and its decoded
 * arguments, then the arguments and the result, then the result and its
 * encoding. Calls in flight add up. Once the values and the future are
 * freed, neither process keeps any of it: a buffer that grew past 1 MiB
 * for one call is given back once sent or decoded (smaller ones stay for
 * the pool's life, at most 1 MiB each, two per worker in the parent and
 * two in the worker).
 *
 * A broken pool (Python's BrokenProcessPool): a worker that dies (killed,
 * crashed, exits) or whose initializer raises, or a reply from a worker
 * that cannot be decoded or allocated in the parent (Python breaks the pool
 * when a result cannot be unpickled). Every pending and running future
 * then fails with CF_BROKEN, type "BrokenProcessPool", message "A process
 * in the process pool was terminated abruptly while the future was running
 * or pending." followed by what happened in parentheses, e.g. "(worker 1234
 * was killed by signal 9)", "(worker 1234 exited with status 3)", "(worker
 * 1234 ended; its exit status could not be read)"; later submits return
 * CF_BROKEN (cf_last_error: "A child process terminated abruptly, the
 * process pool is not usable anymore", as Python's); the remaining workers
 * are killed and reaped. A task must not write on its worker's descriptors
 * above 2: a stray frame header there is caught, before anything is
 * reserved for it, as a reply that "could not be decoded".
 *
 * No process can be started (fork fails, e.g. RLIMIT_NPROC): while other
 * workers live they run the calls. With none left, the calls waiting for
 * one fail with CF_RAISED, type "BlockingIOError" when fork failed with
 * EAGAIN, else "OSError", message "[Errno N] <strerror(N)>", e.g.
 * "[Errno 11] Resource temporarily unavailable" (Python's submit raises
 * that OSError), the pool is not broken, and each later cf_submit returns
 * CF_EAGAIN with that error in cf_last_error and makes the pool try again,
 * so a submit succeeds once processes can be made again.
 *
 * Other processes: the pool never waits for an end of file on its sockets,
 * so a fork() of the program (which holds copies of them) delays neither
 * cf_executor_free nor the breaking of the pool on a worker's death: the
 * parent tells its fork server and idle workers to exit, and acts on a
 * worker's end as the fork server reports it. Every descriptor of the pool
 * in a worker is close-on-exec, so a program a task starts (system(),
 * exec) holds none of them. A program that ignores SIGCHLD is fine too (the
 * fork server restores its default, so exit statuses can be read).
 *
 * Ending a task: return (or cf_raise). A task that calls exit() ends its
 * worker, which breaks the pool, and runs the program's atexit handlers and
 * stdio flushes in that worker (inherited buffers can print twice); _exit()
 * ends it without them. pthread_exit() in a task ends the worker too (the
 * task runs on its only thread), and so breaks the pool.
 *
 * Threads: each pool runs one manager thread in the parent, from
 * cf_process_pool_new until shutdown; it sends calls, receives outcomes and
 * completes the futures, so done callbacks of completed calls run in the
 * parent, in that thread, never in a worker, with no cfutures lock held.
 *
 * How calls reach workers: up to 32 calls are sent ahead to each worker,
 * so that a stream of short calls never waits for a round trip between
 * them. Calls still start in the order they were submitted, as from
 * Python's one call queue: a call never starts while an older one, still
 * pending and not cancelled, has not started, and a worker left idle gets
 * the oldest pending call, taking it back from a busier worker if it was
 * sent ahead there. (A worker about to start a call while an older one
 * waits at another worker waits up to 50 µs for that one to start, then
 * hands its own call back to the pool.) A call sent ahead is
 * still PENDING: the worker starts it only after claiming it through a
 * word in memory the pool shares with its workers, and cf_future_cancel
 * wins or loses that same race, so it returns true exactly when the call
 * never runs. cf_executor_shutdown with cancel_futures cancels these calls
 * too, and a pool that breaks fails them with CF_BROKEN.
 *
 * How outcomes come back: a worker leaves each outcome in that shared
 * memory (one larger than 240 octets encoded goes on its socket) and wakes
 * the manager thread only if it sleeps. On a machine with more than one
 * processor, the manager with nothing left to do stays awake for up to
 * 50 µs before it sleeps, yielding the processor to any other runnable
 * thread meanwhile, so that a caller who submits the next call as soon as
 * it has a result finds it awake. That can cost up to 50 µs of processor
 * time after each burst of activity.
 *
 * Deliberate difference: a queued future stays PENDING, and cancellable,
 * until a worker really starts it; CPython marks up to max_workers + 1
 * queued futures RUNNING early.
 * ------------------------------------------------------------------------ */

/* max_tasks_per_child value for "no limit", the default. */
#define CF_UNLIMITED_TASKS INT_MIN

typedef struct cf_process_pool_options {
    /* > 0, or CF_DEFAULT_WORKERS for the processors online
     * (sysconf(_SC_NPROCESSORS_ONLN)), as Python's os.cpu_count(). Zero or
     * negative -> CF_EINVAL. */
    int max_workers;
    /* Run once at the start of each worker process, with initargs; if it
     * raises, the worker exits with status 3, the failure is logged at
     * CF_LOG_CRITICAL in the parent ("Exception in initializer: ...") and
     * the pool breaks. NULL for none. initargs are copied when the pool is
     * made and reach the workers with the forked image (a PTR among them
     * points into the worker's copy of the program's memory). */
    cf_fn initializer;
    const cf_value *initargs;
    size_t ninitargs;
    /* A worker exits after this many calls and a new one replaces it when
     * needed (Python 3.11). > 0, or CF_UNLIMITED_TASKS; zero or negative
     * -> CF_EINVAL. */
    int max_tasks_per_child;
    /* Zero, as cf_process_pool_options_init leaves them: as for the thread
     * pool's options. */
    void *reserved[4];
} cf_process_pool_options;

/* Fills o with the defaults: CF_DEFAULT_WORKERS, no initializer,
 * CF_UNLIMITED_TASKS. Returns CF_OK or CF_EINVAL. */
CF_EXTERN cf_status cf_process_pool_options_init(cf_process_pool_options *o);

/*
 * Makes a pool of at most max_workers worker processes, and starts its fork
 * server and manager thread. Python: ProcessPoolExecutor(max_workers,
 * initializer=, initargs=, max_tasks_per_child=) with the fork server
 * described above as its start method.
 * Workers start on demand, one per waiting call while none is idle; an
 * idle worker is always reused first. Each runs one call at a time.
 * What it costs: it forks the calling process (the fork server is that
 * copy), which takes longer the more the process has mapped, and every
 * live pool adds some: its manager thread's stack and the memory it shares
 * with its workers are in every later fork. Each pool's fork server also
 * holds, for the pool's life, a copy-on-write snapshot of the process as
 * it was: page tables in the kernel, and a copy of each page the program
 * writes afterwards (the snapshot keeps the old one). So many live pools
 * cost more than linear time and kernel memory: in a small program on
 * Linux 6.18, creating a pool took about 1.5 ms with 200 pools alive,
 * 2.5 ms with 500 and 6 ms with 1000, whose fork servers' page tables
 * took about 20 MB, 90 MB and 300 MB. Make few pools, and reuse them.
 * Stacks: the manager thread runs the pool's done callbacks on its stack
 * of 256 KiB (beside its thread-local storage); a callback that needs more
 * must hand its work to another thread. Tasks run in the workers on a
 * stack of the size a new thread gets by default (glibc: RLIMIT_STACK's
 * soft limit, usually 8 MiB; 2 MiB if it is unlimited).
 * options: borrowed; NULL means all defaults.
 * out:     owned by the caller (cf_executor_free, which leaves no process
 *          of the pool running).
 * Returns: CF_OK; CF_EINVAL (bad max_workers or max_tasks_per_child,
 *          initargs NULL with ninitargs > 0, a reserved slot set, out
 *          NULL); CF_EAGAIN (no
 *          thread or process could be started); CF_NOMEM.
 * Thread-safety: any thread. Blocks until the fork server has started.
 * cf_submit on the pool never blocks on a worker; cf_executor_shutdown with
 * wait joins the manager thread (CF_DEADLOCK from a done callback, which
 * runs in that thread).
 */
CF_EXTERN cf_status cf_process_pool_new(const cf_process_pool_options *options,
                                        cf_executor **out);

/*
 * Stops the pool at once. Python: ProcessPoolExecutor.terminate_workers()
 * and kill_workers() (3.14): as cf_executor_shutdown(ex, false, true) --
 * every call that has not started is cancelled, and later submits return
 * CF_SHUTDOWN -- then SIGTERM (terminate) or SIGKILL (kill) to every
 * worker, and to any worker starting meanwhile; none starts again. The
 * calls that were running fail with CF_BROKEN, "BrokenProcessPool", their
 * message naming the signal (a worker may catch SIGTERM and finish its
 * call first). No error if there are no workers, or they are gone; a
 * second call is harmless (the first one's signal stands). Free the pool
 * as usual afterwards (cf_executor_free), which leaves no process.
 * Returns: CF_OK; CF_EINVAL if ex is not a process pool.
 * Thread-safety: any thread, a done callback included; does not wait for
 * the workers to end.
 */
CF_EXTERN cf_status cf_process_pool_terminate_workers(cf_executor *ex);
CF_EXTERN cf_status cf_process_pool_kill_workers(cf_executor *ex);

/* ------------------------------------------------------------------------
 * wait
 * ------------------------------------------------------------------------ */

typedef enum cf_return_when {
    CF_FIRST_COMPLETED = 1, /* any future finishes or is cancelled */
    CF_FIRST_EXCEPTION = 2, /* any future finishes by raising (a cancelled
                             * one does not count); if none does, as
                             * CF_ALL_COMPLETED */
    CF_ALL_COMPLETED = 3    /* every future finishes or is cancelled */
} cf_return_when;

/*
 * Waits for futures, possibly from different executors, to complete.
 * Python: wait(fs, timeout, return_when)
 * fs:      n futures, borrowed; a future listed twice counts once. n == 0 is
 *          allowed (fs may then be NULL) and returns at once with nothing.
 * done, not_done: arrays with room for n pointers each, or NULL if not
 *          wanted; filled with borrowed pointers from fs, each distinct
 *          future once, in the order first listed.
 * ndone, nnot_done: the counts written (may be NULL).
 * Returns: CF_OK, also when the timeout expired (as Python, a timeout does
 *          not raise: check nnot_done); CF_EINVAL (NaN timeout, unknown
 *          return_when, NULL fs with n > 0 or a NULL element); CF_NOMEM.
 * Deliberate differences: a cancelled future is done at once (CPython waits
 * for the executor to notice, gh-92001); an unknown return_when is always
 * CF_EINVAL (CPython raises only if it has to block).
 * Cost O(n). Blocks up to timeout. Thread-safety: any thread.
 */
CF_EXTERN cf_status cf_wait(cf_future *const *fs, size_t n, double timeout,
                            cf_return_when return_when, cf_future **done,
                            size_t *ndone, cf_future **not_done,
                            size_t *nnot_done);

/* ------------------------------------------------------------------------
 * as_completed
 * ------------------------------------------------------------------------ */

typedef struct cf_as_completed cf_as_completed;

/*
 * An iterator over futures that yields each distinct one once, as it
 * finishes or is cancelled; those already done are yielded first.
 * Python: as_completed(fs, timeout)
 * fs:      n futures, borrowed (the iterator takes its own references);
 *          n == 0 gives an iterator that stops at once.
 * timeout: for the whole iteration, counted from this call.
 * out:     owned by the caller (cf_as_completed_free).
 * Returns: CF_OK, CF_EINVAL (NaN timeout, NULL out, NULL fs with n > 0, a
 *          NULL element), CF_NOMEM.
 * Deliberate differences: the timeout counts from this call (CPython starts
 * it at the first next(), rule 41 of python-semantics.md; the documentation
 * says from the call); a cancelled future is yielded at once (gh-92001).
 */
CF_EXTERN cf_status cf_as_completed_new(cf_future *const *fs, size_t n,
                                        double timeout, cf_as_completed **out);

/*
 * The next completed future. Python: next(iterator)
 * out:     on CF_OK a new reference to the future (release it).
 * error:   on CF_TIMEOUT a TimeoutError whose message is "N (of M) futures
 *          unfinished", owned by the iterator until the next call; may be
 *          NULL.
 * Returns: CF_OK, CF_STOP (all yielded), CF_TIMEOUT (the iterator stays
 *          usable: a later call yields a future that completed since, or
 *          gives CF_TIMEOUT again), CF_EINVAL (NULL it or out).
 * Deliberate difference: CPython's generator is finished once it has
 * raised TimeoutError (later next() calls raise StopIteration); here the
 * iterator stays usable, as above.
 * Blocks until a future completes or the timeout expires.
 * Thread-safety: one thread at a time per iterator.
 */
CF_EXTERN cf_status cf_as_completed_next(cf_as_completed *it, cf_future **out,
                                         const cf_error **error);

/* Frees the iterator and its references. Returns CF_OK or CF_EINVAL. */
CF_EXTERN cf_status cf_as_completed_free(cf_as_completed *it);

/* ------------------------------------------------------------------------
 * map
 * ------------------------------------------------------------------------ */

typedef struct cf_map_iter cf_map_iter;

/*
 * Submits fn over the items and returns an iterator over the results in
 * input order. Python: Executor.map(fn, *iterables, timeout, chunksize,
 * buffersize)
 * args:    nitems * nargs values, borrowed (copied): item i's arguments are
 *          args[i * nargs] .. args[i * nargs + nargs - 1] -- Python's
 *          iterables zipped. nitems may be 0.
 * timeout: for the whole iteration, counted from this call.
 * chunksize: items per task for the process pool (Python's default is 1):
 *          the items are sent to the workers in chunks of chunksize items
 *          (the last may be shorter), one call of a worker per chunk, and
 *          the results still come back one by one in input order. If an
 *          item of a chunk raises, the whole chunk fails: its first item
 *          gives that error (the chunk's other results are lost) and the
 *          iteration ends as for any error; a PTR argument or result fails
 *          its chunk with the pool's pickling TypeError. On an executor
 *          marked by cf_executor_set_chunked (a process pool) 0 is refused
 *          (CF_EINVAL; Python: ValueError "chunksize must be >= 1.");
 *          every other executor ignores chunksize, 0 included, as in
 *          Python.
 * buffersize: 0 is Python's None: every call is submitted here, before
 *          the first cf_map_next. Otherwise (Python 3.14) only the first
 *          buffersize calls are submitted here, and each cf_map_next that
 *          has to wait for a call first submits the next call still to
 *          submit, then waits -- so buffersize + 1 calls can be in flight
 *          during a cf_map_next (CPython's gh-131466), and one more is
 *          submitted per result given out. It counts calls: with chunks,
 *          chunks (as CPython's ProcessPoolExecutor.map), and a
 *          cf_map_next that gives a later item of a chunk already received
 *          submits nothing. The iterator keeps its own copies of the
 *          arguments not yet submitted (every argument is checked before
 *          anything is submitted: one that cf_value_copy refuses fails
 *          cf_map with CF_EINVAL, and nothing is submitted); ex must stay
 *          alive (not freed) while the iterator may still submit, i.e.
 *          until it is finished or closed. Once the iteration ends (an
 *          error, a timeout, a failed submit, cf_map_close) the calls not
 *          yet submitted never are. A value above SIZE_MAX / 2 -- a
 *          negative number converted -- is refused (CF_EINVAL, checked
 *          before anything is submitted; cf_last_error: ValueError
 *          "buffersize must be None or > 0", as Python's).
 * out:     owned by the caller (cf_map_close).
 * Returns: CF_OK; CF_SHUTDOWN / CF_BROKEN / CF_EAGAIN / CF_NOMEM when a
 *          submit fails (what was already submitted is cancelled, and no
 *          iterator is made; with nitems == 0 nothing is submitted, so no
 *          error, as in Python); CF_EINVAL.
 */
CF_EXTERN cf_status cf_map(cf_executor *ex, cf_fn fn, const cf_value *args,
                           size_t nitems, size_t nargs, double timeout,
                           size_t chunksize, size_t buffersize,
                           cf_map_iter **out);

/*
 * The next result, in input order. Python: next(iterator)
 * With a buffersize, first submits the next call still to submit (see
 * cf_map), even once the timeout has expired, as CPython.
 * out:     on CF_OK the value, owned by the caller.
 * error:   on CF_RAISED / CF_BROKEN the call's error, on CF_TIMEOUT a
 *          TimeoutError with an empty message (as Python's), on a failed
 *          submit what Python's submit raises, as cf_submit's
 *          cf_last_error (RuntimeError "cannot schedule new futures after
 *          shutdown" for CF_SHUTDOWN, the pool's Broken error for
 *          CF_BROKEN); owned by the iterator until the next call; may be
 *          NULL.
 * Returns: CF_OK; CF_STOP at the end; CF_RAISED, CF_BROKEN, CF_CANCELLED,
 *          CF_TIMEOUT -- after any of these the iterator is finished (every
 *          later call gives CF_STOP) and every call not yet yielded,
 *          including the one waited for, is cancelled (Python 3.11+);
 *          with a buffersize, CF_SHUTDOWN / CF_BROKEN / CF_EAGAIN when the
 *          submit fails (e.g. the executor was shut down since cf_map):
 *          the iterator is then finished the same way, and the results of
 *          the calls already submitted are lost, as CPython's next()
 *          raises the submit's exception; CF_NOMEM (nothing changed: the
 *          call may be made again); CF_EINVAL.
 * Thread-safety: one thread at a time per iterator.
 */
CF_EXTERN cf_status cf_map_next(cf_map_iter *it, cf_value *out,
                                const cf_error **error);

/*
 * Frees the iterator. If cf_map_next was called at least once, every call
 * not yet yielded is cancelled first (calls already running finish); an
 * iterator never advanced cancels nothing, so all the calls cf_map
 * submitted still run -- as CPython, whose generator finalisation only
 * runs once it has started. With a buffersize, the calls not yet
 * submitted never are.
 * Returns CF_OK or CF_EINVAL.
 */
CF_EXTERN cf_status cf_map_close(cf_map_iter *it);

#ifdef __cplusplus
}
#endif

#endif /* CFUTURES_H */
