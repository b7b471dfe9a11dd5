/*
 * lex.c -- tokens, strings, values and names of the scenario language
 * (SCENARIOS.md "Names, values and strings" and "Grammar").
 */
#include "lex.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

void sc_diag_set(sc_diag *diag, size_t off, const char *fmt, ...) {
    va_list ap;

    if (diag->set)
        return;
    diag->set = true;
    diag->off = off;
    va_start(ap, fmt);
    vsnprintf(diag->msg, sizeof diag->msg, fmt, ap);
    va_end(ap);
}

char *sc_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);

    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

bool sc_tok_is(const sc_token *t, const char *w) {
    return t->kind == SC_TK_WORD && t->wlen == strlen(w) &&
           memcmp(t->word, w, t->wlen) == 0;
}

/* The length of the UTF-8 sequence at s[0..n), or 0 if it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool sc_utf8_valid(const char *s, size_t n, size_t *bad) {
    size_t i = 0;

    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            if (bad)
                *bad = i;
            return false;
        }
        i += k;
    }
    return true;
}

int sc_column(const char *line, size_t off) {
    int col = 1;
    size_t i;

    for (i = 0; i < off; i++)
        if (((unsigned char)line[i] & 0xC0) != 0x80)
            col++;
    return col;
}

bool sc_is_name(const char *w, size_t n) {
    size_t i;

    if (n == 0 || n > SC_NAME_MAX)
        return false;
    if (!(w[0] == '_' || (w[0] >= 'a' && w[0] <= 'z')))
        return false;
    for (i = 1; i < n; i++)
        if (!(w[i] == '_' || (w[i] >= 'a' && w[i] <= 'z') ||
              (w[i] >= '0' && w[i] <= '9')))
            return false;
    return true;
}

/* ---- Strings ------------------------------------------------------------ */

typedef struct sbuf {
    char *data;
    size_t *srcoff;
    size_t len, cap;
    bool oom;
} sbuf;

static void sbuf_put(sbuf *b, char c, size_t src) {
    if (b->oom)
        return;
    if (b->len + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        char *d = realloc(b->data, cap);
        size_t *o;
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        o = realloc(b->srcoff, cap * sizeof *o);
        if (!o) {
            b->oom = true;
            return;
        }
        b->srcoff = o;
        b->cap = cap;
    }
    b->srcoff[b->len] = src;
    b->data[b->len++] = c;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Puts code point cp (< 0x100, from \xNN) as UTF-8. */
static void sbuf_put_cp(sbuf *b, unsigned cp, size_t src) {
    if (cp < 0x80) {
        sbuf_put(b, (char)cp, src);
    } else {
        sbuf_put(b, (char)(0xC0 | cp >> 6), src);
        sbuf_put(b, (char)(0x80 | (cp & 0x3F)), src);
    }
}

/* Decodes one escape at text[*i] (just after the backslash). */
static bool lex_escape(const char *text, size_t n, size_t *i, bool bytes,
                       sbuf *b, sc_diag *diag) {
    size_t at = *i - 1;
    int h1, h2;
    char c;

    if (*i >= n) {
        sc_diag_set(diag, at, "a backslash ends the line");
        return false;
    }
    c = text[(*i)++];
    switch (c) {
    case '\\':
    case '\'':
    case '"':
        sbuf_put(b, c, at);
        return true;
    case 'n':
        sbuf_put(b, '\n', at);
        return true;
    case 't':
        sbuf_put(b, '\t', at);
        return true;
    case 'r':
        sbuf_put(b, '\r', at);
        return true;
    case 'x':
        h1 = *i < n ? hexval(text[*i]) : -1;
        h2 = *i + 1 < n ? hexval(text[*i + 1]) : -1;
        if (h1 < 0 || h2 < 0) {
            sc_diag_set(diag, at, "\\x needs two hexadecimal digits");
            return false;
        }
        *i += 2;
        if (bytes)
            sbuf_put(b, (char)(h1 * 16 + h2), at);
        else
            sbuf_put_cp(b, (unsigned)(h1 * 16 + h2), at);
        return true;
    default:
        sc_diag_set(diag, at,
                    "unknown escape (use \\\\, \\', \\\", \\n, \\t, \\r or "
                    "\\xNN)");
        return false;
    }
}

/* Lexes a string whose quote is at text[*i]; leaves *i after the closing
 * quote. */
static bool lex_string(const char *text, size_t n, size_t *i, bool bytes,
                       sc_token *t, sc_diag *diag) {
    size_t start = *i, bad;
    char q = text[(*i)++];
    sbuf b = {0};

    for (;;) {
        char c;
        if (*i >= n) {
            sc_diag_set(diag, start, "a string is not closed");
            goto fail;
        }
        c = text[*i];
        if (c == q) {
            (*i)++;
            break;
        }
        if (c == '\\') {
            (*i)++;
            if (!lex_escape(text, n, i, bytes, &b, diag))
                goto fail;
            continue;
        }
        if (bytes && (unsigned char)c >= 0x80) {
            sc_diag_set(diag, *i,
                        "bytes can only hold ASCII characters "
                        "(use \\xNN)");
            goto fail;
        }
        sbuf_put(&b, c, *i);
        (*i)++;
    }
    sbuf_put(&b, '\0', *i);
    if (b.oom) {
        sc_diag_set(diag, start, "out of memory");
        goto fail;
    }
    b.len--;
    if (!bytes) {
        if (!sc_utf8_valid(b.data, b.len, &bad)) {
            sc_diag_set(diag, b.srcoff[bad], "a str must be valid UTF-8");
            goto fail;
        }
    }
    t->kind = bytes ? SC_TK_BYTES : SC_TK_STR;
    t->quote = q;
    t->raw_off = start + 1;
    t->raw_len = *i - start - 2;
    t->data = b.data;
    t->len = b.len;
    t->srcoff = b.srcoff;
    return true;
fail:
    free(b.data);
    free(b.srcoff);
    return false;
}

/* ---- Tokens ------------------------------------------------------------- */

static void token_free(sc_token *t) {
    if (!t)
        return;
    free(t->data);
    free(t->srcoff);
    if (t->val) {
        token_free(t->val);
        free(t->val);
    }
}

void sc_tokens_free(sc_tokens *toks) {
    size_t i;

    for (i = 0; i < toks->n; i++)
        token_free(&toks->v[i]);
    free(toks->v);
    toks->v = NULL;
    toks->n = toks->cap = 0;
}

static sc_token *tokens_push(sc_tokens *toks) {
    if (toks->n == toks->cap) {
        size_t cap = toks->cap ? toks->cap * 2 : 8;
        sc_token *v = realloc(toks->v, cap * sizeof *v);
        if (!v) {
            toks->oom = true;
            return NULL;
        }
        toks->v = v;
        toks->cap = cap;
    }
    memset(&toks->v[toks->n], 0, sizeof toks->v[0]);
    return &toks->v[toks->n++];
}

static bool is_quote(char c) {
    return c == '\'' || c == '"';
}

/* True where a string starts: a quote, or b and a quote. */
static bool string_starts(const char *text, size_t n, size_t i) {
    return is_quote(text[i]) ||
           (text[i] == 'b' && i + 1 < n && is_quote(text[i + 1]));
}

static bool ends_word(const char *text, size_t n, size_t i, sc_lex_mode mode) {
    char c = text[i];

    if (is_blank(c) || is_quote(c))
        return true;
    if (mode != SC_LX_PROG && c == '#')
        return true;
    if (mode == SC_LX_STMT && (c == '[' || c == ']' ||
                               (c == '=' && i + 1 < n && text[i + 1] == '>')))
        return true;
    if (mode == SC_LX_PROG && c == ';')
        return true;
    return false;
}

/* Lexes a string token at text[*i] (quote or b-quote) in the given mode. */
static bool lex_string_tok(const char *text, size_t n, size_t *i,
                           sc_lex_mode mode, sc_token *t, sc_diag *diag) {
    bool bytes = text[*i] == 'b';
    size_t at = *i;

    t->off = at;
    if (bytes)
        (*i)++;
    if (mode == SC_LX_PROG && text[*i] == '"') {
        sc_diag_set(diag, at, "strings in a task program are single-quoted");
        return false;
    }
    if (!lex_string(text, n, i, bytes, t, diag))
        return false;
    t->end = *i;
    if (*i < n && !ends_word(text, n, *i, mode)) {
        sc_diag_set(diag, *i, "a blank must follow a string");
        return false;
    }
    return true;
}

/* Lexes a word, or in a statement line an option key=value. */
static bool lex_word(const char *text, size_t n, size_t *i, sc_lex_mode mode,
                     sc_token *t, sc_diag *diag) {
    size_t start = *i;

    t->kind = SC_TK_WORD;
    t->off = start;
    t->word = text + start;
    while (*i < n && !ends_word(text, n, *i, mode)) {
        if (mode == SC_LX_STMT && text[*i] == '=') {
            sc_token *v = calloc(1, sizeof *v);
            if (!v) {
                sc_diag_set(diag, start, "out of memory");
                return false;
            }
            t->kind = SC_TK_OPTION;
            t->wlen = *i - start;
            t->val = v;
            (*i)++;
            if (*i < n && string_starts(text, n, *i))
                return lex_string_tok(text, n, i, mode, v, diag) &&
                       ((t->end = *i), true);
            v->kind = SC_TK_WORD;
            v->off = *i;
            v->word = text + *i;
            while (*i < n && !ends_word(text, n, *i, mode))
                (*i)++;
            v->wlen = *i - v->off;
            v->end = t->end = *i;
            if (*i < n && is_quote(text[*i])) {
                sc_diag_set(diag, *i, "a quote inside a word");
                return false;
            }
            return true;
        }
        (*i)++;
    }
    if (*i < n && is_quote(text[*i])) {
        sc_diag_set(diag, *i, "a quote inside a word");
        return false;
    }
    t->wlen = *i - start;
    t->end = *i;
    return true;
}

bool sc_lex(const char *text, size_t n, sc_lex_mode mode, sc_tokens *toks,
            sc_diag *diag) {
    size_t i = 0;

    memset(toks, 0, sizeof *toks);
    toks->rest = n;
    for (;;) {
        sc_token *t;
        while (i < n && is_blank(text[i]))
            i++;
        if (i >= n || (mode != SC_LX_PROG && text[i] == '#'))
            break;
        if (mode == SC_LX_STMT && text[i] == '=' && i + 1 < n &&
            text[i + 1] == '>') {
            toks->arrow = true;
            toks->rest = i;
            break;
        }
        t = tokens_push(toks);
        if (!t) {
            sc_diag_set(diag, i, "out of memory");
            goto fail;
        }
        if (string_starts(text, n, i)) {
            if (!lex_string_tok(text, n, &i, mode, t, diag))
                goto fail;
        } else if (mode == SC_LX_STMT && (text[i] == '[' || text[i] == ']')) {
            t->kind = text[i] == '[' ? SC_TK_LBRACK : SC_TK_RBRACK;
            t->off = i;
            t->end = ++i;
        } else if (mode == SC_LX_PROG && text[i] == ';') {
            t->kind = SC_TK_SEMI;
            t->off = i;
            t->end = ++i;
        } else if (!lex_word(text, n, &i, mode, t, diag)) {
            goto fail;
        }
    }
    toks->end = i;
    if (!toks->arrow)
        toks->rest = i;
    return true;
fail:
    sc_tokens_free(toks);
    return false;
}

/* ---- Values ------------------------------------------------------------- */

static bool all_digits(const char *w, size_t n) {
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if (w[i] < '0' || w[i] > '9')
            return false;
    return true;
}

/* A float literal: digits with a '.' or an exponent or both. */
static bool is_float(const char *w, size_t n) {
    size_t i = 0, mant = 0;
    bool dot = false, exp = false;

    if (i < n && w[i] == '-')
        i++;
    for (; i < n && ((w[i] >= '0' && w[i] <= '9') || w[i] == '.'); i++) {
        if (w[i] == '.') {
            if (dot)
                return false;
            dot = true;
        } else {
            mant++;
        }
    }
    if (mant == 0)
        return false;
    if (i < n && (w[i] == 'e' || w[i] == 'E')) {
        exp = true;
        i++;
        if (i < n && (w[i] == '+' || w[i] == '-'))
            i++;
        if (!all_digits(w + i, n - i))
            return false;
        i = n;
    }
    return i == n && (dot || exp);
}

sc_value_status sc_value_word(const char *w, size_t n, cf_value *out) {
    char buf[64];
    size_t neg = n > 0 && w[0] == '-';

    if (n == 4 && memcmp(w, "None", 4) == 0) {
        *out = cf_none();
        return SC_VALUE_OK;
    }
    if (n == 4 && memcmp(w, "True", 4) == 0) {
        *out = cf_bool(true);
        return SC_VALUE_OK;
    }
    if (n == 5 && memcmp(w, "False", 5) == 0) {
        *out = cf_bool(false);
        return SC_VALUE_OK;
    }
    if (all_digits(w + neg, n - neg)) {
        long long v;
        if (n - neg > 1 && w[neg] == '0')
            return SC_VALUE_NOT_A_VALUE; /* leading zeros: not Python */
        if (n >= sizeof buf)
            return SC_VALUE_TOO_BIG;
        memcpy(buf, w, n);
        buf[n] = '\0';
        errno = 0;
        v = strtoll(buf, NULL, 10);
        if (errno == ERANGE)
            return SC_VALUE_TOO_BIG;
        *out = cf_int((int64_t)v);
        return SC_VALUE_OK;
    }
    if (is_float(w, n)) {
        char *big;
        double d;
        big = sc_strndup(w, n);
        if (!big)
            return SC_VALUE_NOT_A_VALUE;
        d = strtod(big, NULL);
        free(big);
        *out = cf_double(d);
        return SC_VALUE_OK;
    }
    return SC_VALUE_NOT_A_VALUE;
}

bool sc_str_ok(const sc_token *t, sc_diag *diag) {
    if (memchr(t->data, '\0', t->len)) {
        sc_diag_set(diag, t->off, "a str must not hold a NUL character");
        return false;
    }
    return true;
}

bool sc_token_value(const sc_token *t, cf_value *out, sc_diag *diag) {
    cf_status st;

    switch (t->kind) {
    case SC_TK_STR:
        if (!sc_str_ok(t, diag))
            return false;
        st = cf_value_str(out, t->data);
        break;
    case SC_TK_BYTES:
        st = cf_value_bytes(out, t->data, t->len);
        break;
    case SC_TK_WORD:
        switch (sc_value_word(t->word, t->wlen, out)) {
        case SC_VALUE_OK:
            return true;
        case SC_VALUE_TOO_BIG:
            sc_diag_set(diag, t->off, "the integer does not fit in 64 bits");
            return false;
        default:
            sc_diag_set(diag, t->off,
                        "'%.*s' is not a value (None, True, False, an "
                        "integer, a float, a string or bytes)",
                        (int)(t->wlen > 40 ? 40 : t->wlen), t->word);
            return false;
        }
    default:
        sc_diag_set(diag, t->off, "a value was expected here");
        return false;
    }
    if (st != CF_OK) {
        sc_diag_set(diag, t->off, "cannot make the value: %s",
                    cf_status_name(st));
        return false;
    }
    return true;
}

char *sc_repr(const cf_value *v) {
    int need = cf_value_repr(v, NULL, 0);
    char *p;

    if (need < 0)
        return NULL;
    p = malloc((size_t)need + 1);
    if (p)
        cf_value_repr(v, p, (size_t)need + 1);
    return p;
}
