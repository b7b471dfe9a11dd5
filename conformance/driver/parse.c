/*
 * parse.c -- the scenario parser (SCENARIOS.md): the header, the
 * statements, their options and expectations, and every rule a file must
 * keep (names defined once and before use, one pool, statements and options
 * for the pools and Python versions the header allows).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

bool sc_raisable(const char *w, size_t n);

typedef struct pending {
    char name[SC_NAME_MAX + 1];
    int line, col;
    bool deadlock; /* else a task's `result F` */
} pending;

typedef struct parser {
    const char *file;
    int lineno;
    const char *line; /* the current line, raw */
    size_t linelen;
    char *error;
    bool oom;
    cf_scenario *sc;
    size_t cap_stmts, cap_names, cap_kinds, cap_gates;
    bool seen_stmt, seen_key[4];
    bool value_read; /* pools:, python: -- their one value was read */
    bool has_pool, with_open, ended;
    pending *pend;
    size_t npend, cap_pend;
} parser;

static const char *const keys[] = {"clauses", "pools", "python", "deadlock"};

/* ---- Errors ------------------------------------------------------------- */

static bool verr_at(parser *p, int line, int col, const char *fmt,
                    va_list ap) {
    char msg[512];
    int need;

    if (p->error)
        return false;
    vsnprintf(msg, sizeof msg, fmt, ap);
    need = snprintf(NULL, 0, "%s:%d:%d: %s", p->file, line, col, msg);
    p->error = malloc((size_t)need + 1);
    if (p->error)
        snprintf(p->error, (size_t)need + 1, "%s:%d:%d: %s", p->file, line,
                 col, msg);
    else
        p->oom = true;
    return false;
}

static bool err_at(parser *p, int line, int col, const char *fmt, ...)
    CF_PRINTF(4, 5);
static bool err_at(parser *p, int line, int col, const char *fmt, ...) {
    va_list ap;

    va_start(ap, fmt);
    verr_at(p, line, col, fmt, ap);
    va_end(ap);
    return false;
}

/* An error at offset off of the current line. */
static bool err(parser *p, size_t off, const char *fmt, ...) CF_PRINTF(3, 4);
static bool err(parser *p, size_t off, const char *fmt, ...) {
    va_list ap;

    if (off > p->linelen)
        off = p->linelen;
    va_start(ap, fmt);
    verr_at(p, p->lineno, sc_column(p->line, off), fmt, ap);
    va_end(ap);
    return false;
}

static bool err_diag(parser *p, size_t base, const sc_diag *d) {
    return err(p, base + d->off, "%s", d->msg);
}

static bool err_oom(parser *p, size_t off) {
    return err(p, off, "out of memory");
}

/* ---- Growing arrays ----------------------------------------------------- */

static bool grow(void **v, size_t *cap, size_t n, size_t size) {
    void *nv;
    size_t ncap;

    if (n < *cap)
        return true;
    ncap = *cap ? *cap * 2 : 8;
    nv = realloc(*v, ncap * size);
    if (!nv)
        return false;
    *v = nv;
    *cap = ncap;
    return true;
}

/* ---- Names and gates ---------------------------------------------------- */

static int name_find(const cf_scenario *sc, const char *w, size_t n) {
    size_t i;

    for (i = 0; i < sc->nnames; i++)
        if (strlen(sc->names[i]) == n && memcmp(sc->names[i], w, n) == 0)
            return (int)i;
    return -1;
}

static const char *kind_name(sc_kind k) {
    return k == SC_KIND_FUTURE ? "a future" : "an iterator";
}

static bool check_name(parser *p, const sc_token *t, const char *what) {
    if (t->kind != SC_TK_WORD || !sc_is_name(t->word, t->wlen))
        return err(p, t->off,
                   "%s must be a name ([a-z_][a-z0-9_]*, at most 31 "
                   "characters)",
                   what);
    return true;
}

/* Defines a future or iterator name; returns its index, or -1. */
static int name_define(parser *p, const sc_token *t, sc_kind kind) {
    cf_scenario *sc = p->sc;
    char *name;

    if (!check_name(p, t, kind == SC_KIND_FUTURE ? "a future" : "an iterator"))
        return -1;
    if (name_find(sc, t->word, t->wlen) >= 0) {
        err(p, t->off, "'%.*s' is already defined (a name is defined once)",
            (int)t->wlen, t->word);
        return -1;
    }
    if (!grow((void **)&sc->names, &p->cap_names, sc->nnames,
              sizeof *sc->names) ||
        !grow((void **)&sc->kinds, &p->cap_kinds, sc->nnames,
              sizeof *sc->kinds)) {
        err_oom(p, t->off);
        return -1;
    }
    name = sc_strndup(t->word, t->wlen);
    if (!name) {
        err_oom(p, t->off);
        return -1;
    }
    sc->names[sc->nnames] = name;
    sc->kinds[sc->nnames] = kind;
    return (int)sc->nnames++;
}

/* Uses a defined name of kind future (futures) or an iterator (!futures). */
static int name_use(parser *p, const sc_token *t, bool futures) {
    int i;

    if (!check_name(p, t, futures ? "a future" : "an iterator"))
        return -1;
    i = name_find(p->sc, t->word, t->wlen);
    if (i < 0) {
        err(p, t->off, "'%.*s' is not defined (yet)", (int)t->wlen, t->word);
        return -1;
    }
    if ((p->sc->kinds[i] == SC_KIND_FUTURE) != futures) {
        err(p, t->off, "'%.*s' is %s, not %s", (int)t->wlen, t->word,
            kind_name(p->sc->kinds[i]), futures ? "a future" : "an iterator");
        return -1;
    }
    return i;
}

static bool gate_add(parser *p, const char *g, size_t off) {
    cf_scenario *sc = p->sc;
    size_t i;

    for (i = 0; i < sc->ngates; i++)
        if (strcmp(sc->gates[i], g) == 0)
            return true;
    if (!grow((void **)&sc->gates, &p->cap_gates, sc->ngates,
              sizeof *sc->gates))
        return err_oom(p, off);
    sc->gates[sc->ngates] = sc_strndup(g, strlen(g));
    if (!sc->gates[sc->ngates])
        return err_oom(p, off);
    sc->ngates++;
    return true;
}

static bool pending_add(parser *p, const char *name, int line, int col,
                        bool deadlock) {
    pending *q;

    if (!grow((void **)&p->pend, &p->cap_pend, p->npend, sizeof *p->pend))
        return err_at(p, line, col, "out of memory");
    q = &p->pend[p->npend++];
    snprintf(q->name, sizeof q->name, "%s", name);
    q->line = line;
    q->col = col;
    q->deadlock = deadlock;
    return true;
}

/* ---- Task programs ------------------------------------------------------ */

static const char *pools_text(sc_pools pools) {
    return pools == SC_POOLS_BOTH ? "both" : sc_pool_name(pools);
}

/* Checks a parsed program against the header; base: the offset of its
 * text in the line (a nested program's statements are reported at its
 * submit). */
static bool program_check(parser *p, const sc_program *prog, size_t base,
                          bool nested) {
    static const char *const tnames[] = {
        "return", "raise",       "wait",   "open",   "spin", "sleep",
        "calls",  "thread_name", "result", "submit", "exit", "kill"};
    size_t i;

    for (i = 0; i < prog->n; i++) {
        const sc_tstmt *s = &prog->stmts[i];
        size_t off = nested ? base : base + s->off;
        sc_pools need = SC_POOLS_BOTH;

        if (s->verb == SC_T_THREAD_NAME || s->verb == SC_T_RESULT)
            need = SC_POOLS_THREAD;
        if (s->verb == SC_T_EXIT || s->verb == SC_T_KILL)
            need = SC_POOLS_PROCESS;
        if (need != SC_POOLS_BOTH && p->sc->pools != need)
            return err(p, off,
                       "the task statement '%s' needs pools: %s (this "
                       "scenario has pools: %s)",
                       tnames[s->verb], sc_pool_name(need),
                       pools_text(p->sc->pools));
        if ((s->verb == SC_T_WAIT || s->verb == SC_T_OPEN) &&
            !gate_add(p, s->name, off))
            return false;
        if (s->verb == SC_T_RESULT &&
            !pending_add(p, s->name, p->lineno, sc_column(p->line, off),
                         false))
            return false;
        if (s->verb == SC_T_SUBMIT && s->subprog &&
            !program_check(p, s->subprog, off, true))
            return false;
    }
    return true;
}

/* Parses and checks the program in token t: the text between its quotes
 * as written (its escapes are the program's own, as in b'\x00'); *out
 * gets a copy of that text. */
static bool program_arg(parser *p, const sc_token *t, char **out) {
    const char *text = p->line + t->raw_off;
    sc_program prog;
    sc_diag d = {0};
    bool ok;

    if (t->kind != SC_TK_STR || t->quote != '"')
        return err(p, t->off, "a task program is a double-quoted string");
    if (!sc_program_parse(text, t->raw_len, false, &prog, &d))
        return err(p, t->raw_off + d.off, "in the task program: %s", d.msg);
    ok = program_check(p, &prog, t->raw_off, false);
    sc_program_free(&prog);
    if (!ok)
        return false;
    *out = sc_strndup(text, t->raw_len);
    return *out ? true : err_oom(p, t->off);
}

/* ---- Arguments and options ---------------------------------------------- */

typedef struct args {
    const sc_token *pos; /* positional arguments, after the verb */
    size_t npos;
    const sc_token *opt; /* options, after them */
    size_t nopt;
    size_t verb_end; /* end of the verb, for "missing" errors */
} args;

static bool split_args(parser *p, const sc_tokens *toks, args *a) {
    size_t i;

    a->pos = toks->v + 1;
    a->npos = 0;
    a->verb_end = toks->v[0].end;
    for (i = 1; i < toks->n && toks->v[i].kind != SC_TK_OPTION; i++)
        a->npos++;
    a->opt = toks->v + i;
    a->nopt = toks->n - i;
    for (; i < toks->n; i++)
        if (toks->v[i].kind != SC_TK_OPTION)
            return err(p, toks->v[i].off,
                       "a positional argument after an option (options "
                       "come last)");
    return true;
}

/* Checks that the options are among the allowed (NULL-terminated), once. */
static bool check_options(parser *p, const args *a, const char *verb,
                          const char *const *allowed) {
    size_t i, j;

    for (i = 0; i < a->nopt; i++) {
        const sc_token *o = &a->opt[i];
        bool known = false;
        for (j = 0; allowed[j]; j++)
            if (strlen(allowed[j]) == o->wlen &&
                memcmp(allowed[j], o->word, o->wlen) == 0)
                known = true;
        if (!known)
            return err(p, o->off, "'%s' has no option '%.*s'", verb,
                       (int)(o->wlen > 40 ? 40 : o->wlen), o->word);
        for (j = 0; j < i; j++)
            if (a->opt[j].wlen == o->wlen &&
                memcmp(a->opt[j].word, o->word, o->wlen) == 0)
                return err(p, o->off, "the option '%.*s' is given twice",
                           (int)o->wlen, o->word);
    }
    return true;
}

static const sc_token *option(const args *a, const char *key) {
    size_t i;

    for (i = 0; i < a->nopt; i++)
        if (a->opt[i].wlen == strlen(key) &&
            memcmp(a->opt[i].word, key, a->opt[i].wlen) == 0)
            return a->opt[i].val;
    return NULL;
}

static bool npos(parser *p, const args *a, size_t lo, size_t hi,
                 const char *usage) {
    if (a->npos < lo)
        return err(p, a->npos ? a->pos[a->npos - 1].end : a->verb_end,
                   "missing argument: %s", usage);
    if (a->npos > hi)
        return err(p, a->pos[hi].off, "too many arguments: %s", usage);
    return true;
}

static bool opt_int(parser *p, const sc_token *v, const char *key,
                    bool none_ok, int64_t *out, bool *is_none) {
    cf_value x;

    if (v->kind == SC_TK_WORD &&
        sc_value_word(v->word, v->wlen, &x) == SC_VALUE_OK) {
        if (x.type == CF_TYPE_INT) {
            *out = x.as.i;
            return true;
        }
        if (none_ok && x.type == CF_TYPE_NONE) {
            *is_none = true;
            return true;
        }
    }
    return err(p, v->off, "%s must be an integer%s", key,
               none_ok ? " or None" : "");
}

static bool opt_bool(parser *p, const sc_token *v, const char *key,
                     bool *out) {
    if (sc_tok_is(v, "True") || sc_tok_is(v, "False")) {
        *out = sc_tok_is(v, "True");
        return true;
    }
    return err(p, v->off, "%s must be True or False", key);
}

static bool opt_timeout(parser *p, const args *a, sc_stmt *s) {
    const sc_token *v = option(a, "timeout");
    cf_value x;

    if (!v)
        return true;
    s->has_timeout = true;
    if (v->kind == SC_TK_WORD &&
        sc_value_word(v->word, v->wlen, &x) == SC_VALUE_OK) {
        if (x.type == CF_TYPE_NONE) {
            s->timeout = CF_FOREVER;
            return true;
        }
        if (x.type == CF_TYPE_INT) {
            s->timeout = (double)x.as.i;
            return true;
        }
        if (x.type == CF_TYPE_DOUBLE && x.as.d == x.as.d) {
            s->timeout = x.as.d;
            return true;
        }
    }
    return err(p, v->off, "timeout must be a number of seconds or None");
}

static bool need_python(parser *p, const sc_token *at, const char *what,
                        int minor) {
    if (p->sc->python_minor < minor)
        return err(p, at->off, "%s needs the header python: 3.%d (or later)",
                   what, minor);
    return true;
}

/* The key token of option `key` (for errors), NULL if not given. */
static const sc_token *option_key(const args *a, const char *key) {
    size_t i;

    for (i = 0; i < a->nopt; i++)
        if (a->opt[i].wlen == strlen(key) &&
            memcmp(a->opt[i].word, key, a->opt[i].wlen) == 0)
            return &a->opt[i];
    return NULL;
}

/* ---- Statements --------------------------------------------------------- */

static bool need_pool(parser *p, const sc_token *verb, bool after_end_ok) {
    if (!p->has_pool)
        return err(p, verb->off,
                   "there is no pool yet (make one with 'pool' or 'with')");
    if (p->ended && !after_end_ok)
        return err(p, verb->off, "the pool is used after 'end'");
    return true;
}

static bool stmt_pool(parser *p, const sc_token *verb, const args *a,
                      sc_stmt *s) {
    static const char *const allowed[] = {"max_workers", "initializer",
                                          "max_tasks_per_child",
                                          "thread_name_prefix", NULL};
    sc_pool_opts *o = &s->pool;
    const sc_token *v;

    if (!npos(p, a, 0, 0, "pool [OPTION=VALUE ...]") ||
        !check_options(p, a, sc_verb_name(s->verb), allowed))
        return false;
    if (p->has_pool)
        return err(p, verb->off, "a scenario makes at most one pool");
    p->has_pool = true;
    p->with_open = s->verb == SC_WITH;
    if ((v = option(a, "max_workers"))) {
        o->has_max_workers = true;
        if (!opt_int(p, v, "max_workers", true, &o->max_workers,
                     &o->max_workers_none))
            return false;
    }
    if ((v = option(a, "initializer")) && !program_arg(p, v, &o->initializer))
        return false;
    if ((v = option(a, "max_tasks_per_child"))) {
        const sc_token *k = option_key(a, "max_tasks_per_child");
        if (p->sc->pools != SC_POOLS_PROCESS)
            return err(p, k->off,
                       "max_tasks_per_child needs pools: process (this "
                       "scenario has pools: %s)",
                       pools_text(p->sc->pools));
        if (!need_python(p, k, "max_tasks_per_child", 11))
            return false;
        o->has_mtpc = true;
        if (!opt_int(p, v, "max_tasks_per_child", true, &o->mtpc,
                     &o->mtpc_none))
            return false;
    }
    if ((v = option(a, "thread_name_prefix"))) {
        const sc_token *k = option_key(a, "thread_name_prefix");
        if (p->sc->pools != SC_POOLS_THREAD)
            return err(p, k->off,
                       "thread_name_prefix needs pools: thread (this "
                       "scenario has pools: %s)",
                       pools_text(p->sc->pools));
        sc_diag d = {0};
        if (v->kind != SC_TK_STR)
            return err(p, v->off, "thread_name_prefix must be a string");
        if (!sc_str_ok(v, &d))
            return err_diag(p, 0, &d);
        o->has_prefix = true;
        o->prefix = sc_strndup(v->data, v->len);
        if (!o->prefix)
            return err_oom(p, v->off);
    }
    return true;
}

static bool stmt_shutdown(parser *p, const sc_token *verb, const args *a,
                          sc_stmt *s) {
    static const char *const allowed[] = {"wait", "cancel_futures", NULL};
    const sc_token *v;

    if (!npos(p, a, 0, 0,
              "shutdown [wait=True|False] "
              "[cancel_futures=True|False]") ||
        !check_options(p, a, "shutdown", allowed) ||
        !need_pool(p, verb, false))
        return false;
    s->wait = true;
    if ((v = option(a, "wait")) && !opt_bool(p, v, "wait", &s->wait))
        return false;
    if ((v = option(a, "cancel_futures"))) {
        if (!need_python(p, option_key(a, "cancel_futures"), "cancel_futures",
                         9) ||
            !opt_bool(p, v, "cancel_futures", &s->cancel_futures))
            return false;
    }
    return true;
}

/* Statements whose only argument is a defined future. */
static bool stmt_on_future(parser *p, const args *a, sc_stmt *s,
                           const char *usage) {
    static const char *const none[] = {NULL};

    if (!npos(p, a, 1, 1, usage) ||
        !check_options(p, a, sc_verb_name(s->verb), none))
        return false;
    s->name = name_use(p, &a->pos[0], true);
    return s->name >= 0;
}

static bool stmt_set_exception(parser *p, const args *a, sc_stmt *s) {
    static const char *const none[] = {NULL};
    const sc_token *t, *m;
    sc_diag d = {0};

    if (!npos(p, a, 3, 3, "set_exception F TYPE \"MESSAGE\"") ||
        !check_options(p, a, "set_exception", none))
        return false;
    s->name = name_use(p, &a->pos[0], true);
    if (s->name < 0)
        return false;
    t = &a->pos[1];
    m = &a->pos[2];
    if (t->kind != SC_TK_WORD || !sc_raisable(t->word, t->wlen))
        return err(p, t->off,
                   "set_exception needs one of the raisable types "
                   "(ValueError, KeyError, RuntimeError, ... see "
                   "SCENARIOS.md)");
    if (m->kind != SC_TK_STR || m->quote != '"')
        return err(p, m->off, "the message is a double-quoted string");
    if (!sc_str_ok(m, &d))
        return err_diag(p, 0, &d);
    s->type = sc_strndup(t->word, t->wlen);
    s->message = sc_strndup(m->data, m->len);
    return (s->type && s->message) || err_oom(p, t->off);
}

static bool stmt_submit(parser *p, const sc_token *verb, const args *a,
                        sc_stmt *s) {
    static const char *const none[] = {NULL};

    if (!npos(p, a, 2, 2, "submit F \"PROGRAM\"") ||
        !check_options(p, a, "submit", none) || !need_pool(p, verb, true))
        return false;
    if (!program_arg(p, &a->pos[1], &s->program))
        return false;
    s->name = name_define(p, &a->pos[0], SC_KIND_FUTURE);
    return s->name >= 0;
}

static bool stmt_result(parser *p, const args *a, sc_stmt *s) {
    static const char *const allowed[] = {"timeout", NULL};
    const char *usage = s->verb == SC_RESULT ? "result F [timeout=T]"
                                             : "exception F [timeout=T]";

    if (!npos(p, a, 1, 1, usage) ||
        !check_options(p, a, sc_verb_name(s->verb), allowed))
        return false;
    s->name = name_use(p, &a->pos[0], true);
    return s->name >= 0 && opt_timeout(p, a, s);
}

static bool stmt_callback(parser *p, const args *a, sc_stmt *s) {
    static const char *const none[] = {NULL};
    const sc_token *cb;

    if (!npos(p, a, 2, 3, "callback F CB [raises]") ||
        !check_options(p, a, "callback", none))
        return false;
    s->name = name_use(p, &a->pos[0], true);
    if (s->name < 0)
        return false;
    cb = &a->pos[1];
    if (!check_name(p, cb, "a callback"))
        return false;
    memcpy(s->callback, cb->word, cb->wlen);
    s->callback[cb->wlen] = '\0';
    if (a->npos == 3) {
        if (!sc_tok_is(&a->pos[2], "raises"))
            return err(p, a->pos[2].off,
                       "the third argument of callback is 'raises'");
        s->raises = true;
    }
    return true;
}

/* Reads a list [ ... ] at a->pos[*i]; names (futures) or programs. */
static bool list_arg(parser *p, const args *a, size_t *i, sc_stmt *s,
                     bool programs) {
    size_t start = *i, n = 0, k;

    if (*i >= a->npos || a->pos[*i].kind != SC_TK_LBRACK)
        return err(p, *i < a->npos ? a->pos[*i].off : a->verb_end,
                   "a list [...] was expected here");
    for (k = start + 1; k < a->npos && a->pos[k].kind != SC_TK_RBRACK; k++)
        n++;
    if (k >= a->npos)
        return err(p, a->pos[start].off, "the list is not closed with ']'");
    if (n) {
        if (programs)
            s->programs = calloc(n, sizeof *s->programs);
        else
            s->names = calloc(n, sizeof *s->names);
        if (!s->programs && !s->names)
            return err_oom(p, a->pos[start].off);
    }
    for (k = 0; k < n; k++) {
        const sc_token *t = &a->pos[start + 1 + k];
        if (t->kind == SC_TK_LBRACK)
            return err(p, t->off, "a list inside a list");
        if (programs) {
            if (!program_arg(p, t, &s->programs[s->nprograms]))
                return false;
            s->nprograms++;
        } else {
            int idx = name_use(p, t, true);
            if (idx < 0)
                return false;
            s->names[s->nnames++] = idx;
        }
    }
    *i = start + n + 2;
    return true;
}

static bool stmt_wait(parser *p, const args *a, sc_stmt *s) {
    static const char *const allowed[] = {"timeout", NULL};
    size_t i = 0;

    if (!check_options(p, a, "wait", allowed) || !list_arg(p, a, &i, s, false))
        return false;
    s->return_when = CF_ALL_COMPLETED;
    if (i < a->npos) {
        const sc_token *m = &a->pos[i++];
        if (sc_tok_is(m, "all"))
            s->return_when = CF_ALL_COMPLETED;
        else if (sc_tok_is(m, "first_completed"))
            s->return_when = CF_FIRST_COMPLETED;
        else if (sc_tok_is(m, "first_exception"))
            s->return_when = CF_FIRST_EXCEPTION;
        else
            return err(p, m->off,
                       "wait's mode is all, first_completed or "
                       "first_exception");
    }
    if (i < a->npos)
        return err(p, a->pos[i].off,
                   "too many arguments: wait [F ...] "
                   "[all|first_completed|first_exception] [timeout=T]");
    return opt_timeout(p, a, s);
}

static bool stmt_as_completed(parser *p, const args *a, sc_stmt *s) {
    static const char *const allowed[] = {"timeout", NULL};
    size_t i = 1;

    if (!npos(p, a, 1, (size_t)-1, "as_completed I [F ...] [timeout=T]") ||
        !check_options(p, a, "as_completed", allowed) ||
        !check_name(p, &a->pos[0], "an iterator") ||
        !list_arg(p, a, &i, s, false))
        return false;
    if (i < a->npos)
        return err(p, a->pos[i].off,
                   "too many arguments: as_completed I [F ...] [timeout=T]");
    if (!opt_timeout(p, a, s))
        return false;
    s->name = name_define(p, &a->pos[0], SC_KIND_AS_COMPLETED);
    return s->name >= 0;
}

static bool stmt_map(parser *p, const sc_token *verb, const args *a,
                     sc_stmt *s) {
    static const char *const allowed[] = {"timeout", "chunksize", "buffersize",
                                          NULL};
    const char *usage = "map I [\"PROGRAM\" ...] [timeout=T] [chunksize=N] "
                        "[buffersize=N]";
    const sc_token *v;
    size_t i = 1;
    bool none = false;

    if (!npos(p, a, 1, (size_t)-1, usage) ||
        !check_options(p, a, "map", allowed) || !need_pool(p, verb, true) ||
        !check_name(p, &a->pos[0], "an iterator") ||
        !list_arg(p, a, &i, s, true))
        return false;
    if (i < a->npos)
        return err(p, a->pos[i].off, "too many arguments: %s", usage);
    if (!opt_timeout(p, a, s))
        return false;
    if ((v = option(a, "chunksize"))) {
        s->has_chunksize = true;
        if (!opt_int(p, v, "chunksize", false, &s->chunksize, &none))
            return false;
    }
    if ((v = option(a, "buffersize"))) {
        if (!need_python(p, option_key(a, "buffersize"), "buffersize", 14))
            return false;
        s->has_buffersize = true;
        if (!opt_int(p, v, "buffersize", true, &s->buffersize,
                     &s->buffersize_none))
            return false;
    }
    s->name = name_define(p, &a->pos[0], SC_KIND_MAP);
    return s->name >= 0;
}

static bool stmt_iter(parser *p, const args *a, sc_stmt *s) {
    static const char *const none[] = {NULL};
    char usage[32];

    snprintf(usage, sizeof usage, "%s I", sc_verb_name(s->verb));
    if (!npos(p, a, 1, 1, usage) ||
        !check_options(p, a, sc_verb_name(s->verb), none))
        return false;
    s->name = name_use(p, &a->pos[0], false);
    if (s->name >= 0 && s->verb == SC_CLOSE &&
        p->sc->kinds[s->name] != SC_KIND_MAP)
        return err(p, a->pos[0].off,
                   "'%.*s' is an as_completed iterator: close is for map "
                   "iterators",
                   (int)a->pos[0].wlen, a->pos[0].word);
    return s->name >= 0;
}

static bool stmt_gate(parser *p, const args *a, sc_stmt *s) {
    static const char *const none[] = {NULL};
    const sc_token *g;

    if (!npos(p, a, 1, 1, s->verb == SC_OPEN ? "open G" : "await G") ||
        !check_options(p, a, sc_verb_name(s->verb), none))
        return false;
    g = &a->pos[0];
    if (!check_name(p, g, "a gate"))
        return false;
    memcpy(s->gate, g->word, g->wlen);
    s->gate[g->wlen] = '\0';
    return gate_add(p, s->gate, g->off);
}

static bool stmt_noargs(parser *p, const sc_token *verb, const args *a,
                        sc_stmt *s) {
    static const char *const none[] = {NULL};

    if (!npos(p, a, 0, 0, sc_verb_name(s->verb)) ||
        !check_options(p, a, sc_verb_name(s->verb), none))
        return false;
    if (s->verb == SC_END) {
        if (!p->with_open)
            return err(p, verb->off, "'end' without an open 'with'");
        p->with_open = false;
        p->ended = true;
    }
    return true;
}

static const struct {
    const char *name;
    sc_verb verb;
} verbs[] = {
    {"pool", SC_POOL},
    {"with", SC_WITH},
    {"end", SC_END},
    {"shutdown", SC_SHUTDOWN},
    {"future", SC_FUTURE},
    {"set_running", SC_SET_RUNNING},
    {"set_result", SC_SET_RESULT},
    {"set_exception", SC_SET_EXCEPTION},
    {"submit", SC_SUBMIT},
    {"cancel", SC_CANCEL},
    {"cancelled", SC_CANCELLED},
    {"running", SC_RUNNING},
    {"done", SC_DONE},
    {"result", SC_RESULT},
    {"exception", SC_EXCEPTION},
    {"callback", SC_CALLBACK},
    {"callbacks", SC_CALLBACKS},
    {"wait", SC_WAIT},
    {"as_completed", SC_AS_COMPLETED},
    {"next", SC_NEXT},
    {"rest", SC_REST},
    {"map", SC_MAP},
    {"close", SC_CLOSE},
    {"open", SC_OPEN},
    {"await", SC_AWAIT},
};

const char *sc_verb_name(sc_verb verb) {
    size_t i;

    for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].verb == verb)
            return verbs[i].name;
    return "?";
}

const char *sc_pool_name(sc_pools pool) {
    return pool == SC_POOLS_PROCESS ? "process" : "thread";
}

static bool stmt_args(parser *p, const sc_token *verb, const args *a,
                      sc_stmt *s) {
    static const char *const none[] = {NULL};

    switch (s->verb) {
    case SC_POOL:
    case SC_WITH:
        return stmt_pool(p, verb, a, s);
    case SC_END:
    case SC_CALLBACKS:
        return stmt_noargs(p, verb, a, s);
    case SC_SHUTDOWN:
        return stmt_shutdown(p, verb, a, s);
    case SC_FUTURE:
        if (!npos(p, a, 1, 1, "future F") ||
            !check_options(p, a, "future", none))
            return false;
        s->name = name_define(p, &a->pos[0], SC_KIND_FUTURE);
        return s->name >= 0;
    case SC_SET_RUNNING:
        return stmt_on_future(p, a, s, "set_running F");
    case SC_CANCEL:
    case SC_CANCELLED:
    case SC_RUNNING:
    case SC_DONE:
        return stmt_on_future(p, a, s, "cancel|cancelled|running|done F");
    case SC_SET_RESULT:
        if (!npos(p, a, 2, 2, "set_result F VALUE") ||
            !check_options(p, a, "set_result", none))
            return false;
        s->name = name_use(p, &a->pos[0], true);
        if (s->name < 0)
            return false;
        {
            sc_diag d = {0};
            if (!sc_token_value(&a->pos[1], &s->value, &d))
                return err_diag(p, 0, &d);
        }
        return true;
    case SC_SET_EXCEPTION:
        return stmt_set_exception(p, a, s);
    case SC_SUBMIT:
        return stmt_submit(p, verb, a, s);
    case SC_RESULT:
    case SC_EXCEPTION:
        return stmt_result(p, a, s);
    case SC_CALLBACK:
        return stmt_callback(p, a, s);
    case SC_WAIT:
        return stmt_wait(p, a, s);
    case SC_AS_COMPLETED:
        return stmt_as_completed(p, a, s);
    case SC_NEXT:
    case SC_REST:
    case SC_CLOSE:
        return stmt_iter(p, a, s);
    case SC_MAP:
        return stmt_map(p, verb, a, s);
    case SC_OPEN:
    case SC_AWAIT:
        return stmt_gate(p, a, s);
    }
    return false;
}

/* ---- Expectations ------------------------------------------------------- */

/* Canonical form of the expectation text[0..n): tokens single-spaced,
 * strings and bytes as Python's repr. base: its offset in the line. */
static bool expectation(parser *p, const char *text, size_t n, size_t base,
                        char **out) {
    sc_tokens toks;
    sc_diag d = {0};
    size_t i, len = 0, cap = 64;
    char *buf;

    if (!sc_lex(text, n, SC_LX_EXPECT, &toks, &d))
        return err_diag(p, base, &d);
    if (toks.n == 0) {
        sc_tokens_free(&toks);
        return err(p, base, "nothing follows '=>'");
    }
    buf = malloc(cap);
    for (i = 0; buf && i < toks.n; i++) {
        const sc_token *t = &toks.v[i];
        char *r = NULL;
        const char *w = t->word;
        size_t wl = t->wlen;
        if (t->kind != SC_TK_WORD) {
            cf_value v;
            sc_diag vd = {0};
            if (!sc_token_value(t, &v, &vd)) {
                free(buf);
                sc_tokens_free(&toks);
                return err_diag(p, base, &vd);
            }
            r = sc_repr(&v);
            cf_value_free(&v);
            if (!r) {
                free(buf);
                buf = NULL;
                break;
            }
            w = r;
            wl = strlen(r);
        }
        while (buf && len + wl + 2 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
            cap *= 2;
        }
        if (buf) {
            if (i)
                buf[len++] = ' ';
            memcpy(buf + len, w, wl);
            len += wl;
            buf[len] = '\0';
        }
        free(r);
    }
    sc_tokens_free(&toks);
    if (!buf)
        return err_oom(p, base);
    *out = buf;
    return true;
}

/* ---- Lines -------------------------------------------------------------- */

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

static bool header_id_ok(const char *w, size_t n) {
    size_t i, seg = 0, parts = 1;

    for (i = 0; i < n; i++) {
        char c = w[i];
        if (c == '.') {
            if (seg == 0)
                return false;
            seg = 0;
            parts++;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            seg++;
        } else {
            return false;
        }
    }
    return seg > 0 && parts >= 2;
}

/* Splits the header value into words (up to '#'), calls fn for each. */
typedef bool (*word_fn)(parser *p, const char *w, size_t n, size_t off);

static size_t header_words(parser *p, size_t off, word_fn fn) {
    size_t count = 0;

    for (;;) {
        size_t start;
        while (off < p->linelen && is_blank(p->line[off]))
            off++;
        if (off >= p->linelen || p->line[off] == '#')
            return count;
        start = off;
        while (off < p->linelen && !is_blank(p->line[off]) &&
               p->line[off] != '#')
            off++;
        if (!fn(p, p->line + start, off - start, start))
            return (size_t)-1;
        count++;
    }
}

static bool clause_word(parser *p, const char *w, size_t n, size_t off) {
    cf_scenario *sc = p->sc;
    size_t cap = sc->nclauses;
    char **v;

    if (!header_id_ok(w, n))
        return err(p, off,
                   "'%.*s' is not a clause id (lowercase words of a-z0-9- "
                   "joined by '.', at least two)",
                   (int)(n > 60 ? 60 : n), w);
    v = realloc(sc->clauses, (cap + 1) * sizeof *v);
    if (!v)
        return err_oom(p, off);
    sc->clauses = v;
    v[sc->nclauses] = sc_strndup(w, n);
    if (!v[sc->nclauses])
        return err_oom(p, off);
    sc->nclauses++;
    return true;
}

static bool pools_word(parser *p, const char *w, size_t n, size_t off) {
    if (p->value_read)
        return err(p, off, "pools: takes one value");
    p->value_read = true;
    if (n == 6 && memcmp(w, "thread", 6) == 0)
        p->sc->pools = SC_POOLS_THREAD;
    else if (n == 7 && memcmp(w, "process", 7) == 0)
        p->sc->pools = SC_POOLS_PROCESS;
    else if (n == 4 && memcmp(w, "both", 4) == 0)
        p->sc->pools = SC_POOLS_BOTH;
    else
        return err(p, off, "pools: is thread, process or both");
    return true;
}

static bool python_word(parser *p, const char *w, size_t n, size_t off) {
    size_t i;
    int minor = 0;

    if (p->value_read)
        return err(p, off, "python: takes one value");
    p->value_read = true;
    if (n < 3 || n > 4 || w[0] != '3' || w[1] != '.')
        return err(p, off, "python: is a version 3.N, e.g. 3.9");
    for (i = 2; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return err(p, off, "python: is a version 3.N, e.g. 3.9");
        minor = minor * 10 + (w[i] - '0');
    }
    if (minor < 2)
        return err(p, off, "python: is 3.2 or later");
    p->sc->python_minor = minor;
    return true;
}

static bool deadlock_word(parser *p, const char *w, size_t n, size_t off) {
    char name[SC_NAME_MAX + 1];

    if (!sc_is_name(w, n))
        return err(p, off, "deadlock: lists future names");
    memcpy(name, w, n);
    name[n] = '\0';
    return pending_add(p, name, p->lineno, sc_column(p->line, off), true);
}

static bool header_line(parser *p, size_t off, size_t keylen) {
    static const word_fn fns[] = {clause_word, pools_word, python_word,
                                  deadlock_word};
    size_t k, count;

    for (k = 0; k < 4; k++)
        if (strlen(keys[k]) == keylen &&
            memcmp(keys[k], p->line + off, keylen) == 0)
            break;
    if (k == 4)
        return err(p, off,
                   "unknown header key '%.*s:' (clauses, pools, python, "
                   "deadlock)",
                   (int)keylen, p->line + off);
    if (p->seen_stmt)
        return err(p, off,
                   "the header line '%s:' comes after the first statement",
                   keys[k]);
    if (p->seen_key[k])
        return err(p, off, "the header key '%s:' appears twice", keys[k]);
    p->seen_key[k] = true;
    if (k == 3)
        p->sc->deadlock_line = p->lineno;
    p->value_read = false;
    count = header_words(p, off + keylen + 1, fns[k]);
    if (count == (size_t)-1)
        return false;
    if (count == 0)
        return err(p, off + keylen + 1, "'%s:' needs a value", keys[k]);
    return true;
}

/* Length of a header key at line[off] ([a-z_]+ then ':'), or 0. */
static size_t header_key(const parser *p, size_t off) {
    size_t i = off;

    while (i < p->linelen &&
           ((p->line[i] >= 'a' && p->line[i] <= 'z') || p->line[i] == '_'))
        i++;
    if (i > off && i < p->linelen && p->line[i] == ':')
        return i - off;
    return 0;
}

static bool statement_line(parser *p, size_t off) {
    cf_scenario *sc = p->sc;
    sc_tokens toks;
    sc_diag d = {0};
    sc_stmt *s;
    size_t k, tend;
    args a;
    bool ok, was_ended;

    if (!sc_lex(p->line + off, p->linelen - off, SC_LX_STMT, &toks, &d))
        return err_diag(p, off, &d);
    if (toks.n == 0) {
        sc_tokens_free(&toks);
        return err(p, off, "'=>' without a statement");
    }
    /* offsets of the tokens are relative to off from here on */
    for (k = 0; k < toks.n; k++) {
        toks.v[k].off += off;
        toks.v[k].end += off;
        toks.v[k].raw_off += off;
        if (toks.v[k].val) {
            toks.v[k].val->off += off;
            toks.v[k].val->end += off;
            toks.v[k].val->raw_off += off;
        }
        if (toks.v[k].srcoff) {
            size_t j;
            for (j = 0; j <= toks.v[k].len; j++)
                toks.v[k].srcoff[j] += off;
        }
        if (toks.v[k].val && toks.v[k].val->srcoff) {
            size_t j;
            for (j = 0; j <= toks.v[k].val->len; j++)
                toks.v[k].val->srcoff[j] += off;
        }
    }
    if (!p->seen_key[0]) {
        sc_tokens_free(&toks);
        return err(p, off,
                   "the header needs 'clauses:' before the first "
                   "statement");
    }
    p->seen_stmt = true;
    if (!grow((void **)&sc->stmts, &p->cap_stmts, sc->nstmts,
              sizeof *sc->stmts)) {
        sc_tokens_free(&toks);
        return err_oom(p, off);
    }
    s = &sc->stmts[sc->nstmts++];
    memset(s, 0, sizeof *s);
    s->name = -1;
    s->line = p->lineno;
    s->col = sc_column(p->line, off);
    ok = false;
    if (toks.v[0].kind != SC_TK_WORD) {
        err(p, toks.v[0].off, "a statement starts with a verb");
        goto out;
    }
    for (k = 0; k < sizeof verbs / sizeof verbs[0]; k++)
        if (sc_tok_is(&toks.v[0], verbs[k].name))
            break;
    if (k == sizeof verbs / sizeof verbs[0]) {
        err(p, toks.v[0].off, "unknown statement '%.*s'",
            (int)(toks.v[0].wlen > 40 ? 40 : toks.v[0].wlen), toks.v[0].word);
        goto out;
    }
    s->verb = verbs[k].verb;
    was_ended = p->ended;
    if (!split_args(p, &toks, &a) || !stmt_args(p, &toks.v[0], &a, s))
        goto out;
    tend = off + toks.rest;
    while (tend > off && is_blank(p->line[tend - 1]))
        tend--;
    s->text = sc_strndup(p->line + off, tend - off);
    if (!s->text) {
        err_oom(p, off);
        goto out;
    }
    if (toks.arrow && !expectation(p, p->line + off + toks.rest + 2,
                                   p->linelen - off - toks.rest - 2,
                                   off + toks.rest + 2, &s->expected))
        goto out;
    /* after 'end' a submit or map only shows the error it gets */
    if (was_ended && (s->verb == SC_SUBMIT || s->verb == SC_MAP) &&
        (!s->expected || strncmp(s->expected, "raises ", 7) != 0)) {
        err(p, toks.v[0].off,
            "the pool is used after 'end' (only a submit or map expecting "
            "the error may follow)");
        goto out;
    }
    ok = true;
out:
    sc_tokens_free(&toks);
    return ok;
}

static bool parse_line(parser *p) {
    size_t off = 0, bad, keylen;
    const char *nul = memchr(p->line, '\0', p->linelen);

    if (nul)
        return err(p, (size_t)(nul - p->line), "a NUL character");
    if (!sc_utf8_valid(p->line, p->linelen, &bad))
        return err(p, bad, "the file is not valid UTF-8 here");
    while (off < p->linelen && is_blank(p->line[off]))
        off++;
    if (off < p->linelen && p->line[off] == '\r')
        return err(p, off, "a carriage return (use \\n line ends)");
    if (off >= p->linelen || p->line[off] == '#')
        return true;
    keylen = header_key(p, off);
    if (keylen)
        return header_line(p, off, keylen);
    return statement_line(p, off);
}

/* The checks that need the whole file. */
static bool finish(parser *p) {
    cf_scenario *sc = p->sc;
    size_t i;

    if (!p->seen_key[0])
        return err_at(p, 1, 1, "the header needs 'clauses:'");
    for (i = 0; i < p->npend; i++) {
        const pending *q = &p->pend[i];
        int idx = name_find(sc, q->name, strlen(q->name));
        if (idx < 0 || sc->kinds[idx] != SC_KIND_FUTURE)
            return err_at(p, q->line, q->col,
                          "'%s' is not a future of this scenario%s", q->name,
                          q->deadlock ? " (deadlock: names futures)" : "");
        if (q->deadlock) {
            size_t j;
            for (j = 0; j < sc->ndeadlock; j++)
                if (sc->deadlock[j] == idx)
                    return err_at(p, q->line, q->col, "'%s' is listed twice",
                                  q->name);
            sc->deadlock[sc->ndeadlock++] = idx;
        }
    }
    return true;
}

void cf_scenario_free(cf_scenario *sc) {
    size_t i;

    if (!sc)
        return;
    for (i = 0; i < sc->nstmts; i++) {
        sc_stmt *s = &sc->stmts[i];
        size_t k;
        free(s->text);
        free(s->expected);
        free(s->pool.initializer);
        free(s->pool.prefix);
        cf_value_free(&s->value);
        free(s->type);
        free(s->message);
        free(s->program);
        free(s->names);
        for (k = 0; k < s->nprograms; k++)
            free(s->programs[k]);
        free(s->programs);
    }
    free(sc->stmts);
    for (i = 0; i < sc->nclauses; i++)
        free(sc->clauses[i]);
    free(sc->clauses);
    for (i = 0; i < sc->nnames; i++)
        free(sc->names[i]);
    free(sc->names);
    free(sc->kinds);
    for (i = 0; i < sc->ngates; i++)
        free(sc->gates[i]);
    free(sc->gates);
    free(sc->deadlock);
    free(sc->file);
    free(sc);
}

static char *oom_message(const char *name) {
    const char *fmt = "%s:1:1: out of memory";
    int need = snprintf(NULL, 0, fmt, name);
    char *m = malloc((size_t)need + 1);

    if (m)
        snprintf(m, (size_t)need + 1, fmt, name);
    return m;
}

int cf_scenario_parse(const char *name, const char *text, size_t len,
                      cf_scenario **out, char **error) {
    parser p;
    size_t pos = 0, i, ndl = 0;
    bool ok = true;

    memset(&p, 0, sizeof p);
    *out = NULL;
    *error = NULL;
    p.file = name;
    p.sc = calloc(1, sizeof *p.sc);
    if (!p.sc || !(p.sc->file = sc_strndup(name, strlen(name)))) {
        cf_scenario_free(p.sc);
        *error = oom_message(name);
        return -1;
    }
    p.sc->python_minor = 2;
    while (ok && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        p.lineno++;
        p.line = text + pos;
        p.linelen = end - pos;
        if (p.linelen && p.line[p.linelen - 1] == '\r' && nl)
            p.linelen--;
        ok = parse_line(&p);
        pos = end + 1;
    }
    for (i = 0; i < p.npend; i++)
        ndl += p.pend[i].deadlock;
    if (ok && ndl) {
        p.sc->deadlock = calloc(ndl, sizeof *p.sc->deadlock);
        if (!p.sc->deadlock)
            ok = err_at(&p, p.sc->deadlock_line, 1, "out of memory");
    }
    if (ok)
        ok = finish(&p);
    free(p.pend);
    if (!ok) {
        cf_scenario_free(p.sc);
        *error = p.error ? p.error : oom_message(name);
        return -1;
    }
    *out = p.sc;
    return 0;
}
