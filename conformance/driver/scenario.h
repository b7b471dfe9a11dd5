/*
 * scenario.h -- the parsed form of a scenario file (conformance/SCENARIOS.md)
 * and the parser's entry points: the static library cf_scenario_parse.
 *
 * The parser starts no thread and does no I/O: it reads the text it is
 * given and either returns a scenario, every part of it checked (names,
 * options, pools, task programs, expectations in canonical form), or one
 * error message "NAME:LINE:COL: what is wrong". The driver (run.c, task.c)
 * runs what it returns without meeting a syntax error again.
 */
#ifndef CF_SCENARIO_H
#define CF_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfutures.h"

/* Names are [a-z_][a-z0-9_]*, at most 31 characters. */
#define SC_NAME_MAX 31

typedef enum sc_pools {
    SC_POOLS_BOTH = 0,
    SC_POOLS_THREAD = 1,
    SC_POOLS_PROCESS = 2
} sc_pools;

/* ---- Task programs ------------------------------------------------------ */

typedef enum sc_tverb {
    SC_T_RETURN,
    SC_T_RAISE,
    SC_T_WAIT,
    SC_T_OPEN,
    SC_T_SPIN,
    SC_T_SLEEP,
    SC_T_CALLS,
    SC_T_THREAD_NAME,
    SC_T_RESULT,
    SC_T_SUBMIT,
    SC_T_EXIT,
    SC_T_KILL
} sc_tverb;

typedef struct sc_program sc_program;

typedef struct sc_tstmt {
    sc_tverb verb;
    size_t off;                 /* where it starts in the program text */
    cf_value value;             /* return */
    char name[SC_NAME_MAX + 1]; /* wait, open (gate); result (future) */
    char *type;                 /* raise: an exception type */
    char *message;              /* raise: str, NUL-terminated */
    int64_t n;                  /* spin, exit */
    double seconds;             /* sleep */
    int sig;                    /* kill */
    char *sub;                  /* submit: the program's text */
    sc_program *subprog;        /* submit: that program, parsed */
} sc_tstmt;

struct sc_program {
    sc_tstmt *stmts;
    size_t n;
};

/* Where a program statement failed to parse: an offset in the program
 * text and a message. */
typedef struct sc_diag {
    bool set;
    size_t off;
    char msg[256];
} sc_diag;

/*
 * Parses a task program (SCENARIOS.md "Task programs"). nested: the
 * program of a task's `submit`, which has no strings. Pool rules are not
 * checked here (the scenario parser does it).
 * Returns true with *out filled (free it with sc_program_free), or false
 * with diag set and nothing to free.
 */
bool sc_program_parse(const char *text, size_t len, bool nested,
                      sc_program *out, sc_diag *diag);
void sc_program_free(sc_program *p);

/* ---- Statements of the script ------------------------------------------ */

typedef enum sc_verb {
    SC_POOL,
    SC_WITH,
    SC_END,
    SC_SHUTDOWN,
    SC_FUTURE,
    SC_SET_RUNNING,
    SC_SET_RESULT,
    SC_SET_EXCEPTION,
    SC_SUBMIT,
    SC_CANCEL,
    SC_CANCELLED,
    SC_RUNNING,
    SC_DONE,
    SC_RESULT,
    SC_EXCEPTION,
    SC_CALLBACK,
    SC_CALLBACKS,
    SC_WAIT,
    SC_AS_COMPLETED,
    SC_NEXT,
    SC_REST,
    SC_MAP,
    SC_CLOSE,
    SC_OPEN,
    SC_AWAIT
} sc_verb;

typedef enum sc_kind {
    SC_KIND_FUTURE,
    SC_KIND_AS_COMPLETED,
    SC_KIND_MAP
} sc_kind;

/* pool / with options; has_* says the option was written. */
typedef struct sc_pool_opts {
    bool has_max_workers, has_mtpc, has_prefix;
    int64_t max_workers; /* has_max_workers and max_workers_none: None */
    bool max_workers_none;
    char *initializer; /* a task program, or NULL */
    int64_t mtpc;      /* max_tasks_per_child */
    bool mtpc_none;
    char *prefix; /* thread_name_prefix (a str) */
} sc_pool_opts;

typedef struct sc_stmt {
    sc_verb verb;
    int line, col;
    char *text;     /* the line as written, without expectation and comment */
    char *expected; /* canonical expectation, or NULL */
    int name; /* future / iterator index (the name's definition or use) */
    char gate[SC_NAME_MAX + 1];     /* open, await */
    char callback[SC_NAME_MAX + 1]; /* callback */
    bool raises;                    /* callback ... raises */
    sc_pool_opts pool;              /* pool, with */
    bool wait, cancel_futures;      /* shutdown */
    cf_value value;                 /* set_result */
    char *type, *message;           /* set_exception */
    char *program;                  /* submit */
    int *names;                     /* wait, as_completed: future indexes */
    size_t nnames;
    char **programs; /* map */
    size_t nprograms;
    cf_return_when return_when; /* wait */
    bool has_timeout;
    double timeout; /* CF_FOREVER for None */
    bool has_chunksize, has_buffersize, buffersize_none;
    int64_t chunksize, buffersize;
} sc_stmt;

typedef struct cf_scenario {
    char *file;
    char **clauses;
    size_t nclauses;
    sc_pools pools;
    int python_minor; /* python: 3.N */
    int *deadlock;    /* future indexes of deadlock:, or NULL */
    size_t ndeadlock;
    int deadlock_line;
    char **names; /* futures and iterators, by index */
    sc_kind *kinds;
    size_t nnames;
    char **gates; /* every gate the file names (tasks' included) */
    size_t ngates;
    sc_stmt *stmts;
    size_t nstmts;
} cf_scenario;

/*
 * Parses a scenario file. name: how errors name it (the path as given);
 * text, len: its contents, which may hold anything (NUL bytes included).
 * Returns: 0 with *out set (free it with cf_scenario_free) and *error NULL;
 *          or -1 with *error set to one malloc'd message
 *          "NAME:LINE:COL: what is wrong" and *out NULL. (Out of memory
 *          gives "NAME:1:1: out of memory".)
 */
int cf_scenario_parse(const char *name, const char *text, size_t len,
                      cf_scenario **out, char **error);

void cf_scenario_free(cf_scenario *sc);

/* The pool names, as traces print them: "thread", "process". */
const char *sc_pool_name(sc_pools pool);

/* The statement's verb as written. */
const char *sc_verb_name(sc_verb verb);

#endif /* CF_SCENARIO_H */
