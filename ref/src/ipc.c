/*
 * ipc.c -- how calls and outcomes cross a process boundary: values encoded
 * into length-prefixed frames, as Python pickles them.
 *
 * A frame is a 4-byte little-endian payload length, then the payload. Every
 * integer is little-endian. A value is a 1-byte type tag (enum cf_type)
 * followed by:
 *   NONE: nothing; BOOL: 1 byte (0 or 1); INT: 8 bytes; DOUBLE: 8 bytes
 *   (IEEE 754 bits); BYTES, STR: an 8-byte length, then the octets (a STR
 *   is valid UTF-8 without NUL, checked when encoded and again when
 *   decoded).
 * PTR has no encoding: a raw pointer means nothing in another process.
 *
 * Payloads:
 *   task:    u32 claim slot (the index of the call's claim word in the
 *            memory the pool shares with its workers), u64 function
 *            address, u32 nargs, nargs values
 *   outcome: u32 claim slot of the call it answers (CF__NO_SLOT for
 *            CF__OUT_INIT_FAILED and CF__OUT_WAKE), u8 kind (enum
 *            cf__outcome), then for CF__OUT_VALUE a value, for
 *            CF__OUT_ERROR and CF__OUT_INIT_FAILED a u8 status, then the
 *            type and the message, each a u32 length and its octets;
 *            nothing for CF__OUT_SKIPPED, CF__OUT_WAKE and
 *            CF__OUT_DEFERRED.
 * Decoding checks every length against what is left, so a corrupt or
 * truncated frame is an error (CF_EINVAL), never an overread; trailing
 * octets after the last field are an error too.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- building buffers ------------------------------------------------- */

cf_status cf__buf_put(struct cf__buf *b, const void *data, size_t len) {
    if (len > SIZE_MAX - b->len)
        return CF_NOMEM;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len)
            cap = cap > SIZE_MAX / 2 ? b->len + len : cap * 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p)
            return CF_NOMEM;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return CF_OK;
}

void cf__buf_free(struct cf__buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static cf_status put_u8(struct cf__buf *b, unsigned v) {
    unsigned char byte = (unsigned char)v;
    return cf__buf_put(b, &byte, 1);
}

static cf_status put_le(struct cf__buf *b, uint64_t v, int size) {
    unsigned char le[8];
    for (int i = 0; i < size; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    return cf__buf_put(b, le, (size_t)size);
}

/* A u32 length and the octets. */
static cf_status put_text(struct cf__buf *b, const char *s) {
    size_t len = strlen(s);
    if (len > UINT32_MAX)
        return CF_NOMEM;
    cf_status st = put_le(b, len, 4);
    return st == CF_OK ? cf__buf_put(b, s, len) : st;
}

cf_status cf__encode_value(struct cf__buf *b, const cf_value *v) {
    cf_status st;
    /* A malformed STR or BYTES is refused here too, not only by
     * cf_value_copy and cf_return: the worker could not decode it and
     * would exit, breaking the whole pool. */
    if (v->type == CF_TYPE_PTR || (unsigned)v->type > CF_TYPE_PTR ||
        cf__buffer_fault(v))
        return CF_EINVAL;
    st = put_u8(b, (unsigned)v->type);
    if (st != CF_OK)
        return st;
    switch (v->type) {
    case CF_TYPE_BOOL:
        return put_u8(b, v->as.b ? 1 : 0);
    case CF_TYPE_INT:
        return put_le(b, (uint64_t)v->as.i, 8);
    case CF_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->as.d, sizeof bits);
        return put_le(b, bits, 8);
    }
    case CF_TYPE_BYTES:
    case CF_TYPE_STR:
        st = put_le(b, v->as.buf.len, 8);
        return st == CF_OK ? cf__buf_put(b, v->as.buf.data, v->as.buf.len)
                           : st;
    default:
        return CF_OK;
    }
}

/* Reserves the frame header; frame_end fills it in. */
static cf_status frame_begin(struct cf__buf *b) {
    b->len = 0;
    return put_le(b, 0, CF__FRAME_HEADER);
}

static cf_status frame_end(struct cf__buf *b) {
    size_t len = b->len - CF__FRAME_HEADER;
    if (len > UINT32_MAX)
        return CF_NOMEM;
    for (int i = 0; i < CF__FRAME_HEADER; i++)
        b->data[i] = (unsigned char)(len >> (8 * i));
    return CF_OK;
}

cf_status cf__frame_task_append(struct cf__buf *b, uint32_t slot, cf_fn fn,
                                const cf_value *args, size_t nargs) {
    size_t start = b->len;
    if (nargs > UINT32_MAX)
        return CF_NOMEM;
    cf_status st = put_le(b, 0, CF__FRAME_HEADER);
    if (st == CF_OK)
        st = put_le(b, slot, 4);
    if (st == CF_OK)
        st = put_le(b, (uint64_t)(uintptr_t)fn, 8);
    if (st == CF_OK)
        st = put_le(b, nargs, 4);
    for (size_t i = 0; st == CF_OK && i < nargs; i++)
        st = cf__encode_value(b, &args[i]);
    size_t len = b->len - start - CF__FRAME_HEADER;
    if (st == CF_OK && len > UINT32_MAX)
        st = CF_NOMEM;
    if (st != CF_OK) {
        b->len = start;
        return st;
    }
    for (int i = 0; i < CF__FRAME_HEADER; i++)
        b->data[start + i] = (unsigned char)(len >> (8 * i));
    return CF_OK;
}

cf_status cf__frame_task(struct cf__buf *b, uint32_t slot, cf_fn fn,
                         const cf_value *args, size_t nargs) {
    b->len = 0;
    return cf__frame_task_append(b, slot, fn, args, nargs);
}

cf_status cf__frame_outcome(struct cf__buf *b, uint32_t slot,
                            enum cf__outcome kind, const cf_value *value,
                            const cf_error *error) {
    cf_status st = frame_begin(b);
    if (st == CF_OK)
        st = put_le(b, slot, 4);
    if (st == CF_OK)
        st = put_u8(b, (unsigned)kind);
    if (st != CF_OK)
        return st;
    if (kind == CF__OUT_VALUE) {
        st = cf__encode_value(b, value);
    } else if (kind == CF__OUT_ERROR || kind == CF__OUT_INIT_FAILED) {
        st = put_u8(b, (unsigned)cf_error_status(error));
        if (st == CF_OK)
            st = put_text(b, cf_error_type(error));
        if (st == CF_OK)
            st = put_text(b, cf_error_message(error));
    }
    return st == CF_OK ? frame_end(b) : st;
}

uint32_t cf__frame_length(const unsigned char *header) {
    uint32_t len = 0;
    for (int i = CF__FRAME_HEADER - 1; i >= 0; i--)
        len = (len << 8) | header[i];
    return len;
}

/* ---- decoding --------------------------------------------------------- */

static bool read_bytes(struct cf__reader *r, void *out, size_t len) {
    if ((size_t)(r->end - r->at) < len)
        return false;
    memcpy(out, r->at, len);
    r->at += len;
    return true;
}

static bool read_le(struct cf__reader *r, uint64_t *v, int size) {
    unsigned char le[8];
    if (!read_bytes(r, le, (size_t)size))
        return false;
    *v = 0;
    for (int i = size - 1; i >= 0; i--)
        *v = (*v << 8) | le[i];
    return true;
}

cf_status cf__decode_buffer(cf_value *out, cf_type type, char *data,
                            size_t len) {
    cf_value v;
    data[len] = '\0';
    v.type = type;
    v.as.buf.data = data;
    v.as.buf.len = len;
    if (cf__buffer_fault(&v)) { /* a STR with a NUL, or not UTF-8 */
        free(data);
        return CF_EINVAL;
    }
    *out = v;
    return CF_OK;
}

/* A STR's octets, copied once: valid UTF-8 without NUL. */
static cf_status decode_str(const char *data, size_t len, cf_value *out) {
    if (memchr(data, '\0', len))
        return CF_EINVAL;
    char *s = malloc(len + 1);
    if (!s)
        return CF_NOMEM;
    memcpy(s, data, len);
    return cf__decode_buffer(out, CF_TYPE_STR, s, len);
}

cf_status cf__decode_value(struct cf__reader *r, cf_value *out) {
    unsigned char tag, byte;
    uint64_t u;
    if (!read_bytes(r, &tag, 1))
        return CF_EINVAL;
    switch (tag) {
    case CF_TYPE_NONE:
        *out = cf_none();
        return CF_OK;
    case CF_TYPE_BOOL:
        if (!read_bytes(r, &byte, 1) || byte > 1)
            return CF_EINVAL;
        *out = cf_bool(byte);
        return CF_OK;
    case CF_TYPE_INT:
        if (!read_le(r, &u, 8))
            return CF_EINVAL;
        *out = cf_int((int64_t)u);
        return CF_OK;
    case CF_TYPE_DOUBLE: {
        double d;
        if (!read_le(r, &u, 8))
            return CF_EINVAL;
        memcpy(&d, &u, sizeof d);
        *out = cf_double(d);
        return CF_OK;
    }
    case CF_TYPE_BYTES:
    case CF_TYPE_STR: {
        if (!read_le(r, &u, 8) || u > (uint64_t)(r->end - r->at))
            return CF_EINVAL;
        const char *data = (const char *)r->at;
        r->at += u;
        if (tag == CF_TYPE_BYTES)
            return cf_value_bytes(out, u ? data : NULL, (size_t)u);
        return decode_str(data, (size_t)u, out);
    }
    default:
        return CF_EINVAL;
    }
}

cf_status cf__decode_values(struct cf__reader *r, size_t n, cf_value **out) {
    cf_value *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return CF_NOMEM;
    cf_status st = CF_OK;
    size_t i;
    for (i = 0; i < n && st == CF_OK; i++)
        st = cf__decode_value(r, &v[i]);
    if (st == CF_OK && r->at != r->end)
        st = CF_EINVAL;
    if (st != CF_OK) {
        cf__values_free(v, i);
        return st;
    }
    *out = v;
    return CF_OK;
}

cf_status cf__parse_task(const void *payload, size_t len, uint32_t *slot,
                         cf_fn *fn, cf_value **args, size_t *nargs) {
    struct cf__reader r = {payload, (const unsigned char *)payload + len};
    uint64_t claim, addr, n;
    if (!read_le(&r, &claim, 4) || !read_le(&r, &addr, 8) || !addr ||
        !read_le(&r, &n, 4) ||
        n > (uint64_t)(r.end - r.at)) /* each value takes an octet at least */
        return CF_EINVAL;
    cf_value *v;
    cf_status st = cf__decode_values(&r, (size_t)n, &v);
    if (st != CF_OK)
        return st;
    *slot = (uint32_t)claim;
    *fn = (cf_fn)(uintptr_t)addr;
    *args = v;
    *nargs = (size_t)n;
    return CF_OK;
}

/* A u32 length and that many octets, no NUL among them, as a new string. */
static cf_status read_text(struct cf__reader *r, char **out) {
    uint64_t len;
    if (!read_le(r, &len, 4) || len > (uint64_t)(r->end - r->at) ||
        memchr(r->at, '\0', (size_t)len))
        return CF_EINVAL;
    char *s = malloc((size_t)len + 1);
    if (!s)
        return CF_NOMEM;
    memcpy(s, r->at, (size_t)len);
    s[len] = '\0';
    r->at += len;
    *out = s;
    return CF_OK;
}

/* An error's fields; the status must be one a failed call can carry. */
static cf_status decode_error(struct cf__reader *r, cf_error **error) {
    unsigned char status;
    char *type = NULL, *message = NULL;
    if (!read_bytes(r, &status, 1) ||
        (status != CF_RAISED && status != CF_BROKEN))
        return CF_EINVAL;
    cf_status st = read_text(r, &type);
    if (st == CF_OK)
        st = read_text(r, &message);
    if (st == CF_OK && (!cf__type_name_valid(type) || r->at != r->end))
        st = CF_EINVAL;
    if (st == CF_OK) {
        *error = cf__error_new((cf_status)status, type, message);
        st = *error ? CF_OK : CF_NOMEM;
    }
    free(type);
    free(message);
    return st;
}

/* The longest exception type name cf__outcome_length_check waits for. */
#define TYPE_NAME_MAX 4096

int cf__outcome_length_check(const unsigned char *payload, size_t have,
                             size_t len, uint32_t *slot) {
    struct cf__reader r = {payload, payload + have};
    uint64_t at, n = 0, type_len;
    unsigned char kind, tag;
    if (!read_le(&r, &at, 4) || !read_bytes(&r, &kind, 1))
        return 0;
    *slot = (uint32_t)at;
    if (kind == CF__OUT_SKIPPED || kind == CF__OUT_WAKE ||
        kind == CF__OUT_DEFERRED)
        return len == 5 ? 1 : -1;
    if (kind == CF__OUT_VALUE) {
        if (!read_bytes(&r, &tag, 1))
            return 0;
        if (tag != CF_TYPE_BYTES && tag != CF_TYPE_STR)
            return len <= 14 ? 1 : -1; /* the fixed-size types */
        if (!read_le(&r, &n, 8))
            return 0;
        return n <= len && 14 + n == len ? 1 : -1;
    }
    if (kind != CF__OUT_ERROR && kind != CF__OUT_INIT_FAILED)
        return -1;
    if (!read_bytes(&r, &tag, 1) || !read_le(&r, &type_len, 4))
        return 0;
    if (type_len > TYPE_NAME_MAX || 14 + type_len > len)
        return -1;
    if ((size_t)(r.end - r.at) < type_len + 4)
        return 0;
    r.at += type_len;
    read_le(&r, &n, 4);
    return 14 + type_len + n == len ? 1 : -1;
}

bool cf__outcome_buffer(const unsigned char *payload, size_t have, size_t len,
                        uint32_t *slot, cf_type *type) {
    struct cf__reader r = {payload, payload + have};
    uint64_t at, n;
    unsigned char kind, tag;
    if (!read_le(&r, &at, 4) || !read_bytes(&r, &kind, 1) ||
        kind != CF__OUT_VALUE || !read_bytes(&r, &tag, 1) ||
        (tag != CF_TYPE_BYTES && tag != CF_TYPE_STR) || !read_le(&r, &n, 8) ||
        len < CF__OUTCOME_BUFFER_AT || n != len - CF__OUTCOME_BUFFER_AT)
        return false;
    *slot = (uint32_t)at;
    *type = (cf_type)tag;
    return true;
}

cf_status cf__parse_outcome(const void *payload, size_t len, uint32_t *slot,
                            enum cf__outcome *kind, cf_value *value,
                            cf_error **error) {
    struct cf__reader r = {payload, (const unsigned char *)payload + len};
    uint64_t at;
    unsigned char k;
    cf_value v = cf_none();
    cf_error *e = NULL;
    cf_status st;
    if (!read_le(&r, &at, 4) || !read_bytes(&r, &k, 1))
        return CF_EINVAL;
    if (k == CF__OUT_VALUE) {
        st = cf__decode_value(&r, &v);
        if (st == CF_OK && r.at != r.end) {
            cf_value_free(&v);
            st = CF_EINVAL;
        }
    } else if (k == CF__OUT_ERROR || k == CF__OUT_INIT_FAILED) {
        st = decode_error(&r, &e);
    } else if (k == CF__OUT_SKIPPED || k == CF__OUT_WAKE ||
               k == CF__OUT_DEFERRED) {
        st = r.at == r.end ? CF_OK : CF_EINVAL;
    } else {
        st = CF_EINVAL;
    }
    if (st != CF_OK)
        return st;
    *slot = (uint32_t)at;
    *kind = (enum cf__outcome)k;
    *value = v;
    *error = e;
    return CF_OK;
}
