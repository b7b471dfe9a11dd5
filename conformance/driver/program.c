/*
 * program.c -- the parser of task programs (SCENARIOS.md "Task programs"):
 * statements separated by ';', run in order by the task function.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

static const char *const raisable[] = {
    "ArithmeticError",  "AssertionError",      "AttributeError",
    "Exception",        "IndexError",          "KeyError",
    "LookupError",      "NotImplementedError", "OSError",
    "RuntimeError",     "TypeError",           "ValueError",
    "ZeroDivisionError"};

static const struct {
    const char *name;
    int sig;
} signals[] = {{"SIGKILL", SIGKILL},
               {"SIGTERM", SIGTERM},
               {"SIGSEGV", SIGSEGV},
               {"SIGABRT", SIGABRT}};

static const struct {
    const char *name;
    sc_tverb verb;
    int nargs;
} tverbs[] = {{"return", SC_T_RETURN, 1}, {"raise", SC_T_RAISE, 2},
              {"wait", SC_T_WAIT, 1},     {"open", SC_T_OPEN, 1},
              {"spin", SC_T_SPIN, 1},     {"sleep", SC_T_SLEEP, 1},
              {"calls", SC_T_CALLS, 0},   {"thread_name", SC_T_THREAD_NAME, 0},
              {"result", SC_T_RESULT, 1}, {"submit", SC_T_SUBMIT, 1},
              {"exit", SC_T_EXIT, 1},     {"kill", SC_T_KILL, 1}};

/* True when the exception type may be raised (and set_exception'ed). */
bool sc_raisable(const char *w, size_t n);
bool sc_raisable(const char *w, size_t n) {
    size_t i;

    for (i = 0; i < sizeof raisable / sizeof raisable[0]; i++)
        if (strlen(raisable[i]) == n && memcmp(raisable[i], w, n) == 0)
            return true;
    return false;
}

static void tstmt_free(sc_tstmt *s) {
    cf_value_free(&s->value);
    free(s->type);
    free(s->message);
    free(s->sub);
    if (s->subprog) {
        sc_program_free(s->subprog);
        free(s->subprog);
    }
}

void sc_program_free(sc_program *p) {
    size_t i;

    if (!p)
        return;
    for (i = 0; i < p->n; i++)
        tstmt_free(&p->stmts[i]);
    free(p->stmts);
    p->stmts = NULL;
    p->n = 0;
}

/* True for the statements that end the task. */
static bool ends_task(sc_tverb v) {
    return v == SC_T_RETURN || v == SC_T_RAISE || v == SC_T_CALLS ||
           v == SC_T_THREAD_NAME || v == SC_T_RESULT || v == SC_T_SUBMIT ||
           v == SC_T_EXIT || v == SC_T_KILL;
}

static bool arg_name(const sc_token *t, char *out, const char *what,
                     sc_diag *d) {
    if (t->kind != SC_TK_WORD || !sc_is_name(t->word, t->wlen)) {
        sc_diag_set(d, t->off,
                    "%s must be a name ([a-z_][a-z0-9_]*, "
                    "at most 31 characters)",
                    what);
        return false;
    }
    memcpy(out, t->word, t->wlen);
    out[t->wlen] = '\0';
    return true;
}

static bool arg_int(const sc_token *t, int64_t lo, int64_t hi,
                    const char *what, int64_t *out, sc_diag *d) {
    cf_value v;

    if (t->kind != SC_TK_WORD ||
        sc_value_word(t->word, t->wlen, &v) != SC_VALUE_OK ||
        v.type != CF_TYPE_INT || v.as.i < lo || v.as.i > hi) {
        sc_diag_set(d, t->off, "%s must be an integer from %lld to %lld", what,
                    (long long)lo, (long long)hi);
        return false;
    }
    *out = v.as.i;
    return true;
}

/* Fills s from the statement's argument tokens a[0..n). */
static bool tstmt_args(sc_tstmt *s, const sc_token *a, sc_diag *d) {
    cf_value v;
    size_t i;

    switch (s->verb) {
    case SC_T_RETURN:
        return sc_token_value(&a[0], &s->value, d);
    case SC_T_RAISE:
        if (a[0].kind != SC_TK_WORD || !sc_raisable(a[0].word, a[0].wlen)) {
            sc_diag_set(d, a[0].off,
                        "raise needs one of the raisable types (ValueError, "
                        "KeyError, RuntimeError, ... see SCENARIOS.md)");
            return false;
        }
        if (a[1].kind != SC_TK_STR) {
            sc_diag_set(d, a[1].off, "raise needs a message 'MESSAGE'");
            return false;
        }
        s->type = sc_strndup(a[0].word, a[0].wlen);
        s->message = sc_strndup(a[1].data, a[1].len);
        if (!s->type || !s->message) {
            sc_diag_set(d, a[0].off, "out of memory");
            return false;
        }
        return true;
    case SC_T_WAIT:
    case SC_T_OPEN:
        return arg_name(&a[0], s->name, "a gate", d);
    case SC_T_RESULT:
        return arg_name(&a[0], s->name, "a future", d);
    case SC_T_SPIN:
        return arg_int(&a[0], 0, INT64_MAX, "spin's count", &s->n, d);
    case SC_T_EXIT:
        return arg_int(&a[0], 0, 255, "exit's status", &s->n, d);
    case SC_T_SLEEP:
        if (a[0].kind != SC_TK_WORD ||
            sc_value_word(a[0].word, a[0].wlen, &v) != SC_VALUE_OK ||
            (v.type != CF_TYPE_INT && v.type != CF_TYPE_DOUBLE) ||
            (v.type == CF_TYPE_INT ? v.as.i < 0 || v.as.i > 3600
                                   : !(v.as.d >= 0 && v.as.d <= 3600))) {
            sc_diag_set(d, a[0].off, "sleep needs seconds from 0 to 3600");
            return false;
        }
        s->seconds = v.type == CF_TYPE_INT ? (double)v.as.i : v.as.d;
        return true;
    case SC_T_KILL:
        for (i = 0; i < sizeof signals / sizeof signals[0]; i++)
            if (sc_tok_is(&a[0], signals[i].name)) {
                s->sig = signals[i].sig;
                return true;
            }
        sc_diag_set(d, a[0].off,
                    "kill needs SIGKILL, SIGTERM, SIGSEGV or SIGABRT");
        return false;
    case SC_T_SUBMIT:
        if (a[0].kind != SC_TK_STR) {
            sc_diag_set(d, a[0].off, "submit needs a program 'PROGRAM'");
            return false;
        }
        s->sub = sc_strndup(a[0].data, a[0].len);
        s->subprog = calloc(1, sizeof *s->subprog);
        if (!s->sub || !s->subprog) {
            sc_diag_set(d, a[0].off, "out of memory");
            return false;
        }
        if (!sc_program_parse(a[0].data, a[0].len, true, s->subprog, d)) {
            free(s->subprog);
            s->subprog = NULL;
            /* map the inner offset back into this program's text */
            d->off = a[0].srcoff[d->off < a[0].len ? d->off : a[0].len];
            return false;
        }
        return true;
    default:
        return true;
    }
}

/* Parses one statement from toks[*i..) up to ';' or the end. */
static bool parse_tstmt(const sc_tokens *toks, size_t *i, bool nested,
                        sc_tstmt *s, sc_diag *d) {
    const sc_token *t = &toks->v[*i];
    size_t k, nargs = 0;

    if (t->kind != SC_TK_WORD) {
        sc_diag_set(d, t->off,
                    t->kind == SC_TK_SEMI
                        ? "an empty statement in a task program"
                        : "a task statement starts with a verb");
        return false;
    }
    for (k = 0; k < sizeof tverbs / sizeof tverbs[0]; k++)
        if (sc_tok_is(t, tverbs[k].name))
            break;
    if (k == sizeof tverbs / sizeof tverbs[0]) {
        sc_diag_set(d, t->off, "unknown task statement '%.*s'",
                    (int)(t->wlen > 40 ? 40 : t->wlen), t->word);
        return false;
    }
    s->verb = tverbs[k].verb;
    s->off = t->off;
    while (*i + 1 + nargs < toks->n &&
           toks->v[*i + 1 + nargs].kind != SC_TK_SEMI)
        nargs++;
    if ((int)nargs != tverbs[k].nargs) {
        size_t at = nargs > (size_t)tverbs[k].nargs
                        ? toks->v[*i + 1 + tverbs[k].nargs].off
                        : t->end;
        sc_diag_set(d, at, "'%s' takes %d argument%s, not %zu", tverbs[k].name,
                    tverbs[k].nargs, tverbs[k].nargs == 1 ? "" : "s", nargs);
        return false;
    }
    for (k = 0; k < nargs; k++)
        if (nested && (toks->v[*i + 1 + k].kind == SC_TK_STR ||
                       toks->v[*i + 1 + k].kind == SC_TK_BYTES)) {
            sc_diag_set(d, toks->v[*i + 1 + k].off,
                        "the program of a task's submit has no strings");
            return false;
        }
    if (!tstmt_args(s, &toks->v[*i + 1], d))
        return false;
    *i += 1 + nargs;
    return true;
}

bool sc_program_parse(const char *text, size_t len, bool nested,
                      sc_program *out, sc_diag *d) {
    sc_tokens toks;
    size_t i = 0;

    memset(out, 0, sizeof *out);
    if (memchr(text, '\0', len)) {
        sc_diag_set(d, (size_t)((const char *)memchr(text, '\0', len) - text),
                    "a NUL character in a task program");
        return false;
    }
    if (!sc_lex(text, len, SC_LX_PROG, &toks, d))
        return false;
    if (toks.n)
        out->stmts = calloc(toks.n, sizeof *out->stmts);
    if (toks.n && !out->stmts) {
        sc_diag_set(d, 0, "out of memory");
        goto fail;
    }
    while (i < toks.n) {
        sc_tstmt *s = &out->stmts[out->n];
        if (out->n && ends_task(out->stmts[out->n - 1].verb)) {
            sc_diag_set(d, toks.v[i].off,
                        "this statement is never run: the one before it "
                        "ends the task");
            goto fail;
        }
        out->n++;
        if (!parse_tstmt(&toks, &i, nested, s, d))
            goto fail;
        if (i < toks.n) { /* a ';' */
            i++;
            if (i == toks.n) {
                sc_diag_set(d, toks.v[i - 1].off,
                            "a ';' ends the program: a statement must "
                            "follow it");
                goto fail;
            }
        }
    }
    sc_tokens_free(&toks);
    return true;
fail:
    sc_tokens_free(&toks);
    sc_program_free(out);
    return false;
}
