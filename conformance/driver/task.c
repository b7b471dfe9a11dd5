/*
 * task.c -- the task function that runs a task program (SCENARIOS.md "Task
 * programs") in a pool's thread or worker process. Its arguments are the
 * program and the gates' folder, and on a thread pool a pointer to the
 * script's run context; a process pool's worker has no context, and finds
 * its executor in a page shared with the script's process (`submit`).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

/* Task programs this thread (a process pool's worker: this process) has
 * started, initializers excluded. */
static _Thread_local int64_t calls;

/* The process pool's executor, as the script's process made it: a worker
 * reads its own copy of that executor from here. MAP_SHARED, mapped before
 * the pool is made, so the fork server and its workers share it. */
static cf_executor *volatile *shared_ex;

bool sc_task_shared_init(void) {
    void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return false;
    shared_ex = p;
    return true;
}

void sc_task_shared_set(cf_executor *ex) {
    if (shared_ex)
        *shared_ex = ex;
}

/* The outcome of future f, as this task's own outcome. */
static void return_outcome(cf_call *call, cf_future *f) {
    const cf_error *e = NULL;
    cf_value v = cf_none();
    cf_status st = cf_future_result(f, CF_FOREVER, &v);

    if (st == CF_OK) {
        cf_return(call, v);
    } else if (st == CF_RAISED || st == CF_BROKEN) {
        cf_future_exception(f, 0, &e);
        cf_raise(call, e ? cf_error_type(e) : "RuntimeError", "%s",
                 cf_error_message(e));
    } else {
        cf_raise(call,
                 *cf_status_python(st) ? cf_status_python(st) : "RuntimeError",
                 "%s", "");
    }
}

static void do_submit(cf_call *call, const sc_tstmt *s, const cf_value *args,
                      sc_ctx *ctx) {
    cf_value sub[3];
    cf_executor *ex;
    cf_future *f;
    size_t n = ctx ? 3 : 2;

    if (ctx) {
        pthread_mutex_lock(&ctx->lock);
        ex = ctx->ex;
        pthread_mutex_unlock(&ctx->lock);
    } else {
        ex = shared_ex ? *shared_ex : NULL;
    }
    sub[0].type = CF_TYPE_STR;
    sub[0].as.buf.data = s->sub;
    sub[0].as.buf.len = strlen(s->sub);
    sub[1] = args[1];
    if (ctx)
        sub[2] = cf_ptr(ctx);
    if (cf_submit(ex, sc_task, sub, n, &f) != CF_OK) {
        const cf_error *e = cf_last_error();
        cf_raise(call, e ? cf_error_type(e) : "RuntimeError", "%s",
                 cf_error_message(e));
        return;
    }
    return_outcome(call, f);
    cf_future_release(f);
}

static void do_result(cf_call *call, const sc_tstmt *s, sc_ctx *ctx) {
    size_t i;

    for (i = 0; i < ctx->sc->nnames; i++)
        if (strcmp(ctx->sc->names[i], s->name) == 0) {
            cf_future *f = sc_ctx_wait_future(ctx, (int)i);
            return_outcome(call, f);
            cf_future_release(f);
            return;
        }
    cf_raise(call, "NameError", "name '%s' is not defined", s->name);
}

static void do_sleep(double seconds) {
    struct timespec t;

    t.tv_sec = (time_t)seconds;
    t.tv_nsec = (long)((seconds - (double)t.tv_sec) * 1e9);
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

/* Runs statement s; returns true when it ended the task. */
static bool run_tstmt(cf_call *call, const sc_tstmt *s, const cf_value *args,
                      sc_ctx *ctx) {
    const char *folder = args[1].as.buf.data;
    cf_value v;
    int64_t i;

    switch (s->verb) {
    case SC_T_RETURN:
        if (cf_value_copy(&v, &s->value) != CF_OK)
            cf_raise(call, "MemoryError", "%s", "");
        else
            cf_return(call, v);
        return true;
    case SC_T_RAISE:
        cf_raise(call, s->type, "%s", s->message);
        return true;
    case SC_T_WAIT:
        sc_gate_wait(folder, s->name);
        return false;
    case SC_T_OPEN:
        sc_gate_open(folder, s->name);
        return false;
    case SC_T_SPIN: {
        volatile int64_t count = 0;
        for (i = 0; i < s->n; i++)
            count = count + 1;
        return false;
    }
    case SC_T_SLEEP:
        do_sleep(s->seconds);
        return false;
    case SC_T_CALLS:
        cf_return(call, cf_int(calls));
        return true;
    case SC_T_THREAD_NAME: {
        const char *name = cf_current_thread_name();
        if (!name)
            cf_return(call, cf_none());
        else if (cf_value_str(&v, name) == CF_OK)
            cf_return(call, v);
        return true;
    }
    case SC_T_RESULT:
        if (ctx)
            do_result(call, s, ctx);
        else
            cf_raise(call, "RuntimeError", "%s",
                     "result F needs a thread pool");
        return true;
    case SC_T_SUBMIT:
        do_submit(call, s, args, ctx);
        return true;
    case SC_T_EXIT:
        _exit((int)s->n);
    case SC_T_KILL:
        kill(getpid(), s->sig);
        return true;
    }
    return true;
}

static void run_program(cf_call *call) {
    const cf_value *args[3];
    cf_value argv[3];
    sc_ctx *ctx = NULL;
    sc_program prog;
    sc_diag d = {0};
    size_t i, n = cf_nargs(call);

    for (i = 0; i < 2; i++) {
        args[i] = cf_arg(call, i);
        if (!args[i] || args[i]->type != CF_TYPE_STR) {
            cf_raise(call, "TypeError", "%s",
                     "the task takes (program, gate folder[, context])");
            return;
        }
        argv[i] = *args[i];
    }
    if (n > 2 && cf_arg(call, 2)->type == CF_TYPE_PTR)
        ctx = cf_arg(call, 2)->as.ptr;
    if (!sc_program_parse(args[0]->as.buf.data, args[0]->as.buf.len, false,
                          &prog, &d)) {
        cf_raise(call, "RuntimeError", "the task program: %s", d.msg);
        return;
    }
    for (i = 0; i < prog.n; i++)
        if (run_tstmt(call, &prog.stmts[i], argv, ctx))
            break;
    sc_program_free(&prog);
}

void sc_task(cf_call *call) {
    calls++;
    run_program(call);
}

void sc_task_init(cf_call *call) {
    run_program(call);
}
