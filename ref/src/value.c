/* value.c -- values, errors, status names, the version and the log hook. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cf_version(void) {
    return CF_VERSION;
}

#define CF__STR(x) #x
#define CF__XSTR(x) CF__STR(x)
const char *cf_implementation(void) {
    return "cfutures-ref " CF__XSTR(CF_VERSION_MAJOR) "." CF__XSTR(
        CF_VERSION_MINOR) "." CF__XSTR(CF_VERSION_PATCH);
}

/* ---- statuses --------------------------------------------------------- */

/* Indexed by value: the map's values run from 0 without a gap. */
#define CF__NAME(name, value, py, msg) [value] = "CF_" #name,
#define CF__PY(name, value, py, msg) [value] = py,
#define CF__MSG(name, value, py, msg) [value] = msg,
static const char *const status_names[] = {CF_STATUS_MAP(CF__NAME)};
static const char *const status_python[] = {CF_STATUS_MAP(CF__PY)};
static const char *const status_messages[] = {CF_STATUS_MAP(CF__MSG)};

static bool status_known(cf_status s) {
    return (unsigned)s < (unsigned)CF__STATUS_COUNT;
}

const char *cf_status_name(cf_status s) {
    return status_known(s) ? status_names[s] : "CF_UNKNOWN_STATUS";
}

const char *cf_status_message(cf_status s) {
    return status_known(s) ? status_messages[s] : "unknown status";
}

const char *cf_status_python(cf_status s) {
    return status_known(s) ? status_python[s] : "";
}

/* ---- values ----------------------------------------------------------- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF,
 * and no NUL (a str must survive as a C string). */
static bool utf8_valid(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t extra;
        unsigned cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3, cp = c & 0x07;
        else
            return false;
        if (len - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += extra + 1;
    }
    return true;
}

static cf_status make_buffer(cf_value *out, cf_type type, const void *data,
                             size_t len) {
    char *copy = malloc(len + 1);
    if (!copy)
        return CF_NOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    out->type = type;
    out->as.buf.data = copy;
    out->as.buf.len = len;
    return CF_OK;
}

cf_status cf_value_str(cf_value *out, const char *s) {
    if (!out || !s)
        return CF_EINVAL;
    size_t len = strlen(s);
    if (!utf8_valid((const unsigned char *)s, len))
        return CF_EINVAL;
    return make_buffer(out, CF_TYPE_STR, s, len);
}

cf_status cf_value_bytes(cf_value *out, const void *data, size_t len) {
    if (!out || (!data && len))
        return CF_EINVAL;
    return make_buffer(out, CF_TYPE_BYTES, data, len);
}

static bool type_known(cf_type t) {
    return (unsigned)t <= (unsigned)CF_TYPE_PTR;
}

/* What breaks the header's rules in a hand-made BYTES or STR, as a phrase
 * for a message; NULL for a sound one and for every other type. Reads only
 * data[0, len): a STR is checked without relying on its terminator. */
const char *cf__buffer_fault(const cf_value *v) {
    if (v->type != CF_TYPE_BYTES && v->type != CF_TYPE_STR)
        return NULL;
    const unsigned char *data = (const unsigned char *)v->as.buf.data;
    size_t len = v->as.buf.len;
    bool str = v->type == CF_TYPE_STR;
    if (!len)
        return NULL; /* data may be NULL then */
    if (!data)
        return str ? "a str with a length but no data"
                   : "bytes with a length but no data";
    if (!str)
        return NULL;
    if (memchr(data, '\0', len))
        return "a str with a NUL inside";
    return utf8_valid(data, len) ? NULL : "a str that is not valid UTF-8";
}

static bool value_sound(const cf_value *v) {
    return type_known(v->type) && !cf__buffer_fault(v);
}

cf_status cf_value_copy(cf_value *out, const cf_value *src) {
    if (!out || !src || !value_sound(src))
        return CF_EINVAL;
    if (src->type == CF_TYPE_BYTES || src->type == CF_TYPE_STR)
        return make_buffer(out, src->type, src->as.buf.data, src->as.buf.len);
    *out = *src;
    return CF_OK;
}

void cf_value_free(cf_value *v) {
    if (!v)
        return;
    if (v->type == CF_TYPE_BYTES || v->type == CF_TYPE_STR)
        free(v->as.buf.data);
    *v = cf_none();
}

bool cf_value_equal(const cf_value *a, const cf_value *b) {
    if (!a || !b || a->type != b->type)
        return false;
    switch (a->type) {
    case CF_TYPE_NONE:
        return true;
    case CF_TYPE_BOOL:
        return a->as.b == b->as.b;
    case CF_TYPE_INT:
        return a->as.i == b->as.i;
    case CF_TYPE_DOUBLE:
        return a->as.d == b->as.d;
    case CF_TYPE_BYTES:
    case CF_TYPE_STR:
        return a->as.buf.len == b->as.buf.len &&
               (!a->as.buf.len || /* data may be NULL then */
                memcmp(a->as.buf.data, b->as.buf.data, a->as.buf.len) == 0);
    case CF_TYPE_PTR:
        return a->as.ptr == b->as.ptr;
    }
    return false;
}

/* ---- repr ------------------------------------------------------------- */

/* An snprintf-like writer that keeps counting past the end of buf. */
struct writer {
    char *buf;
    size_t size, len;
};

static void put(struct writer *w, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++, w->len++)
        if (w->len + 1 < w->size)
            w->buf[w->len] = s[i];
}

static void puts_(struct writer *w, const char *s) {
    put(w, s, strlen(s));
}

/* Python's float repr: the shortest digits that read back to the same
 * double, in fixed notation for exponents -4..15, else d.ddde+XX. */
static void repr_double(struct writer *w, double d) {
    char digits[40], out[64];
    int exp = 0;
    if (isnan(d)) {
        puts_(w, "nan");
        return;
    }
    if (isinf(d)) {
        puts_(w, d < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d)
            break;
    }
    /* digits: [-]D[.DDD]e[+-]XX -> mantissa digits and exponent */
    char *e = strchr(digits, 'e');
    exp = atoi(e + 1);
    *e = '\0';
    char mant[32];
    size_t m = 0;
    bool neg = digits[0] == '-';
    for (char *p = digits + neg; *p; p++)
        if (*p != '.')
            mant[m++] = *p;
    mant[m] = '\0';
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            o += (size_t)sprintf(out + o, "0.");
            for (int k = -1; k > exp; k--)
                out[o++] = '0';
            o += (size_t)sprintf(out + o, "%s", mant);
        } else {
            for (int k = 0; k <= exp; k++)
                out[o++] = (size_t)k < m ? mant[k] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < m)
                o += (size_t)sprintf(out + o, "%s", mant + exp + 1);
            else
                out[o++] = '0';
        }
        out[o] = '\0';
    } else {
        out[o++] = mant[0];
        if (m > 1) {
            out[o++] = '.';
            o += (size_t)sprintf(out + o, "%s", mant + 1);
        }
        sprintf(out + o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    puts_(w, out);
}

/* Python's quoting: single quotes unless the text has ' and no ". */
static char pick_quote(const char *s, size_t n) {
    if (!n)
        return '\''; /* s may be NULL then */
    bool single = memchr(s, '\'', n) != NULL;
    bool dbl = memchr(s, '"', n) != NULL;
    return single && !dbl ? '"' : '\'';
}

static void put_escaped_byte(struct writer *w, unsigned char c, char quote) {
    char tmp[8];
    if (c == '\\' || c == (unsigned char)quote) {
        tmp[0] = '\\', tmp[1] = (char)c;
        put(w, tmp, 2);
    } else if (c == '\t') {
        puts_(w, "\\t");
    } else if (c == '\n') {
        puts_(w, "\\n");
    } else if (c == '\r') {
        puts_(w, "\\r");
    } else if (c < 0x20 || c >= 0x7f) {
        snprintf(tmp, sizeof tmp, "\\x%02x", c);
        puts_(w, tmp);
    } else {
        tmp[0] = (char)c;
        put(w, tmp, 1);
    }
}

static bool printable(uint32_t cp) {
    size_t lo = 0, hi = cf__unprintable_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp > cf__unprintable[mid].hi)
            lo = mid + 1;
        else if (cp < cf__unprintable[mid].lo)
            hi = mid;
        else
            return false;
    }
    return true;
}

/* Decodes one code point of valid UTF-8 (cf_value_repr checks first). */
static uint32_t decode_utf8(const unsigned char *s, size_t *len) {
    unsigned c = s[0];
    *len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    uint32_t cp = *len == 1 ? c : c & (0x3f >> (*len - 1));
    for (size_t k = 1; k < *len; k++)
        cp = (cp << 6) | (s[k] & 0x3f);
    return cp;
}

/* A str: as Python, printable code points as they are, the others as
 * \xhh, \uhhhh or \Uhhhhhhhh. */
static void repr_str(struct writer *w, const char *s, size_t n) {
    char quote = pick_quote(s, n), tmp[16];
    put(w, &quote, 1);
    for (size_t i = 0, len; i < n; i += len) {
        uint32_t cp = decode_utf8((const unsigned char *)s + i, &len);
        if (cp < 0x80)
            put_escaped_byte(w, (unsigned char)cp, quote);
        else if (printable(cp))
            put(w, s + i, len);
        else {
            snprintf(tmp, sizeof tmp,
                     cp < 0x100     ? "\\x%02x"
                     : cp < 0x10000 ? "\\u%04x"
                                    : "\\U%08x",
                     (unsigned)cp);
            puts_(w, tmp);
        }
    }
    put(w, &quote, 1);
}

static void repr_bytes(struct writer *w, const char *s, size_t n) {
    char quote = pick_quote(s, n);
    puts_(w, "b");
    put(w, &quote, 1);
    for (size_t i = 0; i < n; i++)
        put_escaped_byte(w, (unsigned char)s[i], quote);
    put(w, &quote, 1);
}

int cf_value_repr(const cf_value *v, char *buf, size_t size) {
    struct writer w = {buf, buf ? size : 0, 0};
    char tmp[64];
    if (!v || !value_sound(v))
        return -1;
    switch (v->type) {
    case CF_TYPE_NONE:
        puts_(&w, "None");
        break;
    case CF_TYPE_BOOL:
        puts_(&w, v->as.b ? "True" : "False");
        break;
    case CF_TYPE_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->as.i);
        puts_(&w, tmp);
        break;
    case CF_TYPE_DOUBLE:
        repr_double(&w, v->as.d);
        break;
    case CF_TYPE_BYTES:
        repr_bytes(&w, v->as.buf.data, v->as.buf.len);
        break;
    case CF_TYPE_STR:
        repr_str(&w, v->as.buf.data, v->as.buf.len);
        break;
    case CF_TYPE_PTR:
        snprintf(tmp, sizeof tmp, "<pointer %p>", v->as.ptr);
        puts_(&w, tmp);
        break;
    }
    if (w.size)
        w.buf[w.len < w.size ? w.len : w.size - 1] = '\0';
    return (int)w.len;
}

/* ---- errors ----------------------------------------------------------- */

cf_error cf__nomem_error = {CF_RAISED, "MemoryError", ""};

bool cf__type_name_valid(const char *type) {
    if (!type || !*type)
        return false;
    for (const char *p = type; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return false;
    }
    return true;
}

cf_error *cf__error_new(cf_status status, const char *type,
                        const char *message) {
    size_t tlen = strlen(type), mlen = strlen(message);
    cf_error *e = malloc(sizeof *e + tlen + mlen + 2);
    if (!e)
        return NULL;
    e->status = status;
    e->type = (char *)(e + 1);
    e->message = e->type + tlen + 1;
    memcpy(e->type, type, tlen + 1);
    memcpy(e->message, message, mlen + 1);
    return e;
}

cf_error *cf__error_vformat(cf_status status, const char *type,
                            const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int len = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (len < 0)
        return NULL;
    char *message = malloc((size_t)len + 1);
    if (!message)
        return NULL;
    vsnprintf(message, (size_t)len + 1, fmt, ap);
    cf_error *e = cf__error_new(status, type, message);
    free(message);
    return e;
}

void cf__error_free(cf_error *error) {
    if (error != &cf__nomem_error)
        free(error);
}

void cf_error_free(cf_error *error) {
    cf__error_free(error);
}

const char *cf_error_type(const cf_error *e) {
    return e ? e->type : "";
}

const char *cf_error_message(const cf_error *e) {
    return e ? e->message : "";
}

cf_status cf_error_status(const cf_error *e) {
    return e ? e->status : CF_EINVAL;
}

/* ---- logging ---------------------------------------------------------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static cf_log_fn log_fn;
static void *log_ctx;

void cf__log_fork_lock(void) {
    pthread_mutex_lock(&log_lock);
}
void cf__log_fork_unlock(void) {
    pthread_mutex_unlock(&log_lock);
}

cf_status cf_set_log_hook(cf_log_fn fn, void *ctx) {
    cf__fork_safety_init();
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&log_lock);
    return CF_OK;
}

void cf__log(cf_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cf__vlog(level, fmt, ap);
    va_end(ap);
}

cf_status cf_log(cf_log_level level, const char *fmt, ...) {
    if ((level != CF_LOG_ERROR && level != CF_LOG_CRITICAL) || !fmt)
        return CF_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    cf__vlog(level, fmt, ap);
    va_end(ap);
    return CF_OK;
}

void cf__vlog(cf_log_level level, const char *fmt, va_list ap) {
    char message[1024];
    vsnprintf(message, sizeof message, fmt, ap);
    pthread_mutex_lock(&log_lock);
    cf_log_fn fn = log_fn;
    void *ctx = log_ctx;
    pthread_mutex_unlock(&log_lock);
    if (fn)
        fn(level, message, ctx);
    else
        fprintf(stderr, "cfutures: %s\n", message);
}
