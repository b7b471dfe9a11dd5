/*
 * lex.h -- the scenario parser's lexer (internal to cf_scenario_parse):
 * tokens of a statement line, of a task program and of an expectation;
 * strings with their escapes; value literals; names.
 */
#ifndef CF_SCENARIO_LEX_H
#define CF_SCENARIO_LEX_H

#include "scenario.h"

typedef enum sc_lex_mode {
    SC_LX_STMT,   /* a statement line: options, lists, "=>", "#" */
    SC_LX_PROG,   /* a task program: ';', single-quoted strings */
    SC_LX_EXPECT, /* an expectation: words and strings, "#" */
} sc_lex_mode;

typedef enum sc_tk_kind {
    SC_TK_WORD,
    SC_TK_STR,
    SC_TK_BYTES,
    SC_TK_LBRACK,
    SC_TK_RBRACK,
    SC_TK_SEMI,
    SC_TK_OPTION
} sc_tk_kind;

typedef struct sc_token sc_token;
struct sc_token {
    sc_tk_kind kind;
    size_t off, end;  /* [off, end) in the text lexed */
    const char *word; /* WORD: the text; OPTION: the key */
    size_t wlen;
    char quote;     /* STR, BYTES: the quote used */
    char *data;     /* STR, BYTES: decoded (NUL-terminated), owned */
    size_t len;     /* STR, BYTES: decoded length */
    size_t *srcoff; /* STR: offset in the text of each decoded octet */
    size_t raw_off; /* STR, BYTES: the text between the quotes, escapes */
    size_t raw_len; /* as written: [raw_off, raw_off + raw_len) */
    sc_token *val;  /* OPTION: the value (WORD, STR or BYTES), owned */
};

typedef struct sc_tokens {
    sc_token *v;
    size_t n, cap;
    size_t rest; /* STMT: where "=>" starts, or the end */
    bool arrow;  /* STMT: "=>" was found */
    size_t end;  /* where lexing stopped (the comment, or the end) */
    bool oom;    /* out of memory */
} sc_tokens;

/* Lexes text[0..n) in the given mode. Returns false with diag set on a
 * lexical error (toks is then freed). */
bool sc_lex(const char *text, size_t n, sc_lex_mode mode, sc_tokens *toks,
            sc_diag *diag);
void sc_tokens_free(sc_tokens *toks);

/* Sets diag (the first error wins). */
void sc_diag_set(sc_diag *diag, size_t off, const char *fmt, ...)
    CF_PRINTF(3, 4);

/* True when s[0..n) is valid UTF-8; else *bad is the offending offset. */
bool sc_utf8_valid(const char *s, size_t n, size_t *bad);

/* 1 + the number of characters (UTF-8 lead octets) in line[0..off). */
int sc_column(const char *line, size_t off);

/* True for a name: [a-z_][a-z0-9_]*, at most SC_NAME_MAX characters. */
bool sc_is_name(const char *w, size_t n);

typedef enum sc_value_status {
    SC_VALUE_OK,
    SC_VALUE_NOT_A_VALUE,
    SC_VALUE_TOO_BIG
} sc_value_status;

/* Parses a word as None, True, False, an integer or a float. */
sc_value_status sc_value_word(const char *w, size_t n, cf_value *out);

/* True when a STR token holds no NUL (a str value may not; a task
 * program, read as written, may hold "\x00"). Else sets diag. */
bool sc_str_ok(const sc_token *t, sc_diag *diag);

/* Makes a value from a token (WORD, STR or BYTES). Returns false with
 * diag set (at the token) if it is not one. */
bool sc_token_value(const sc_token *t, cf_value *out, sc_diag *diag);

/* Python's repr() of a str/bytes of len octets; malloc'd, NULL on error. */
char *sc_repr(const cf_value *v);

/* malloc'd copy of s[0..n), NUL-terminated. */
char *sc_strndup(const char *s, size_t n);

/* True when the token is the WORD w. */
bool sc_tok_is(const sc_token *t, const char *w);

#endif /* CF_SCENARIO_LEX_H */
