/*
 * work.c -- a call as its task function sees it (cf_arg, cf_return,
 * cf_raise), run outside any work (cf_call_fn), and as an executor holds it
 * (cf_work_*).
 *
 * A cf_work is the future cf_submit made, seen from the executor, which owns
 * one reference to it until the work is ended. The task's outcome is kept in
 * the cf_call on the running thread's stack and moved into the future only
 * when the task returns, so a task never races anyone on the future.
 */
#include "internal.h"

#include <stdlib.h>

struct cf_call {
    const cf_value *args;
    size_t nargs;
    bool has_outcome;
    cf_value value;
    cf_error *error;
};

size_t cf_nargs(const cf_call *call) {
    return call ? call->nargs : 0;
}

const cf_value *cf_arg(const cf_call *call, size_t i) {
    return call && i < call->nargs ? &call->args[i] : NULL;
}

/* CF_OK for a value a pool can hand back. Otherwise the call raises
 * TypeError, decided here in the task's own thread (or worker process) so
 * that every pool gives the same outcome, and CF_EINVAL. */
static cf_status check_returned(cf_call *call, const cf_value *value) {
    const char *fault = cf__buffer_fault(value);
    if ((unsigned)value->type > CF_TYPE_PTR)
        cf_raise(call, "TypeError", "cf_return: a value of unknown type %d",
                 (int)value->type);
    else if (fault)
        cf_raise(call, "TypeError", "cf_return: %s", fault);
    else
        return CF_OK;
    return CF_EINVAL;
}

cf_status cf_return(cf_call *call, cf_value value) {
    cf_status st;
    if (!call)
        st = CF_EINVAL;
    else if (call->has_outcome)
        st = CF_INVALID_STATE;
    else
        st = check_returned(call, &value);
    if (st != CF_OK) {
        cf_value_free(&value); /* a buffer's, if any; nothing else is known */
        return st;
    }
    call->value = value;
    call->has_outcome = true;
    return CF_OK;
}

cf_status cf_raise(cf_call *call, const char *type, const char *fmt, ...) {
    if (!call || !cf__type_name_valid(type) || !fmt)
        return CF_EINVAL;
    if (call->has_outcome)
        return CF_INVALID_STATE;
    va_list ap;
    va_start(ap, fmt);
    cf_error *e = cf__error_vformat(CF_RAISED, type, fmt, ap);
    va_end(ap);
    call->error = e ? e : &cf__nomem_error;
    call->has_outcome = true;
    return e ? CF_OK : CF_NOMEM;
}

/* ---- the executor's side ---------------------------------------------- */

static bool work_valid(const cf_work *work) {
    const cf_future *f = cf__work_future(work);
    return cf__future_valid(f) && f->fn &&
           !atomic_load_explicit(&f->work_ended, memory_order_relaxed);
}

/* For the calls that end a work: whether it is valid, reporting a work
 * ended already whose future still lives (the others cannot be seen). */
static bool work_endable(const cf_work *work, const char *call) {
    if (work_valid(work))
        return true;
    const cf_future *f = cf__work_future(work);
    if (cf__future_valid(f) && f->fn)
        cf__misuse("%s on a work already ended (an executor ends each work "
                   "once); CF_EINVAL",
                   call);
    return false;
}

cf_future *cf_work_future(const cf_work *work) {
    return work_valid(work) ? cf__work_future(work) : NULL;
}

cf_fn cf_work_fn(const cf_work *work) {
    return work_valid(work) ? cf__work_future(work)->fn : NULL;
}

size_t cf_work_nargs(const cf_work *work) {
    return work_valid(work) ? cf__work_future(work)->nargs : 0;
}

const cf_value *cf_work_args(const cf_work *work) {
    return work_valid(work) ? cf__work_future(work)->args : NULL;
}

void **cf_work_slot(cf_work *work) {
    return work_valid(work) ? &cf__work_future(work)->slot : NULL;
}

/* Frees the arguments (nobody needs them once the call is over), drops the
 * work's reference to its future, then the one to its executor. */
static void work_end(cf_future *f) {
    cf_executor *ex = f->executor;
    for (size_t i = 0; i < f->nargs; i++)
        cf_value_free(&f->args[i]);
    atomic_store_explicit(&f->work_ended, true, memory_order_relaxed);
    cf_future_release(f);
    cf__executor_work_ended(ex);
}

/* Cleanup handler: the task ended its thread (pthread_exit) after
 * cf_return or cf_raise; nobody will read that outcome. */
static void discard_outcome(void *arg) {
    cf_call *call = arg;
    cf_value_free(&call->value);
    cf__error_free(call->error);
}

/* Its own function, so that no local of the caller is live across the
 * setjmp that pthread_cleanup_push may hide. */
static void invoke(cf_fn fn, cf_call *call) {
    pthread_cleanup_push(discard_outcome, call);
    fn(call);
    pthread_cleanup_pop(0);
}

cf_status cf__call_invoke(cf_fn fn, const cf_value *args, size_t nargs,
                          cf_value *value, cf_error **error) {
    cf_call call = {args, nargs, false, {CF_TYPE_NONE, {0}}, NULL};
    invoke(fn, &call);
    *value = call.value;
    *error = call.error;
    return call.error ? call.error->status : CF_OK;
}

cf_status cf_call_fn(cf_fn fn, const cf_value *args, size_t nargs,
                     cf_value *value, cf_error **error) {
    if (!fn || (!args && nargs) || !value || !error)
        return CF_EINVAL;
    for (size_t i = 0; i < nargs; i++)
        if ((unsigned)args[i].type > CF_TYPE_PTR || cf__buffer_fault(&args[i]))
            return CF_EINVAL;
    return cf__call_invoke(fn, args, nargs, value, error);
}

/* cf_work_run found the future RUNNING: someone else started it, and
 * nobody would ever finish it. */
static void fail_running(cf_future *f) {
    cf__misuse("%s: cf_work_run on a work whose future is already RUNNING "
               "(only its executor starts it, with cf_work_run); the call "
               "does not run, and its future fails with RuntimeError",
               cf_executor_name(f->executor));
    cf_error *e = cf__error_new(CF_RAISED, "RuntimeError",
                                "cf_work_run: the future was already running");
    if (cf__future_finish(f, NULL, e ? e : &cf__nomem_error, NULL) != CF_OK)
        cf__error_free(e);
}

cf_status cf__work_run_hooked(cf_work *work,
                              const struct cf__run_hooks *hooks) {
    if (!work_endable(work, "cf_work_run"))
        return CF_EINVAL;
    cf_future *f = cf__work_future(work);
    cf_status st = cf_future_set_running_or_notify_cancel(f);
    if (st == CF_INVALID_STATE && cf_future_running(f))
        fail_running(f);
    if (st != CF_OK) {
        work_end(f);
        return st;
    }
    cf_value value;
    cf_error *error;
    cf__call_invoke(f->fn, f->args, f->nargs, &value, &error);
    if (hooks && hooks->before_publish)
        hooks->before_publish(hooks->ctx);
    if (cf__future_finish(f, &value, error, hooks) != CF_OK) {
        cf__error_free(error); /* someone else finished it first */
        cf_value_free(&value);
    }
    work_end(f);
    return CF_OK;
}

cf_status cf_work_run(cf_work *work) {
    return cf__work_run_hooked(work, NULL);
}

cf_status cf_work_fail(cf_work *work, cf_status status, const char *type,
                       const char *message) {
    if (!work_endable(work, "cf_work_fail") ||
        (status != CF_RAISED && status != CF_BROKEN) ||
        !cf__type_name_valid(type) || !message)
        return CF_EINVAL;
    cf_future *f = cf__work_future(work);
    cf_error *e = cf__error_new(status, type, message);
    cf_status st = cf__future_finish(f, NULL, e ? e : &cf__nomem_error, NULL);
    if (st != CF_OK)
        cf__error_free(e);
    else if (!e)
        st = CF_NOMEM;
    work_end(f);
    return st;
}

cf_status cf_work_release(cf_work *work) {
    if (!work_endable(work, "cf_work_release"))
        return CF_EINVAL;
    cf_future *f = cf__work_future(work);
    if (!cf_future_done(f)) {
        cf_error *e = cf__error_new(CF_RAISED, "RuntimeError",
                                    "the executor dropped the call");
        if (cf__future_finish(f, NULL, e ? e : &cf__nomem_error, NULL) !=
            CF_OK)
            cf__error_free(e);
    }
    work_end(f);
    return CF_OK;
}
