/*
 * Values, errors, statuses and the version: cf_value_* (Python's None, bool,
 * int, float, bytes, str and a raw pointer), cf_value_repr (Python's repr()),
 * the CF_STATUS_MAP accessors, cf_version and the cf_error accessors.
 *
 * Every repr expectation below was checked against python3 -c
 * 'print(repr(...))'.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "support.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

/* ---- helpers ----------------------------------------------------------- */

/* A value no successful call would produce, to see that a failed call left
 * its out-parameter alone. */
static cf_value sentinel(void) {
    return cf_int(-424242);
}

static void assert_sentinel_(const char *file, int line, const cf_value *v) {
    if (v->type != CF_TYPE_INT || v->as.i != -424242)
        test_fail(file, line, "a failed call wrote its out-parameter");
}
#define assert_sentinel(v) assert_sentinel_(__FILE__, __LINE__, v)

/* Checks that repr(v) is want: the returned length, the text with a roomy
 * buffer, and the length alone with a NULL buffer of size 0. */
static void check_repr_(const char *file, int line, const cf_value *v,
                        const char *want) {
    char buf[512];
    memset(buf, 'Z', sizeof buf);
    int n = cf_value_repr(v, buf, sizeof buf);
    if (n != (int)strlen(want) || strcmp(buf, want) != 0)
        test_fail(file, line, "repr = \"%s\" (returned %d), want \"%s\" (%d)",
                  n >= 0 ? buf : "", n, want, (int)strlen(want));
    n = cf_value_repr(v, NULL, 0);
    if (n != (int)strlen(want))
        test_fail(file, line, "repr(v, NULL, 0) returned %d, want %d", n,
                  (int)strlen(want));
}
#define check_repr(v, want) check_repr_(__FILE__, __LINE__, v, want)

static void check_repr_double_(const char *file, int line, double d,
                               const char *want) {
    cf_value v = cf_double(d);
    check_repr_(file, line, &v, want);
}
#define check_repr_double(d, want)                                            \
    check_repr_double_(__FILE__, __LINE__, d, want)

static void check_repr_bytes_(const char *file, int line, const void *data,
                              size_t len, const char *want) {
    cf_value v = cf_none();
    if (cf_value_bytes(&v, data, len) != CF_OK)
        test_fail(file, line, "cf_value_bytes failed");
    check_repr_(file, line, &v, want);
    cf_value_free(&v);
}
#define check_repr_bytes(data, len, want)                                     \
    check_repr_bytes_(__FILE__, __LINE__, data, len, want)

static void check_repr_str_(const char *file, int line, const char *s,
                            const char *want) {
    cf_value v = cf_none();
    if (cf_value_str(&v, s) != CF_OK)
        test_fail(file, line, "cf_value_str(\"%s\") failed", s);
    check_repr_(file, line, &v, want);
    cf_value_free(&v);
}
#define check_repr_str(s, want) check_repr_str_(__FILE__, __LINE__, s, want)

static void check_str_rejected_(const char *file, int line, const char *s) {
    cf_value v = sentinel();
    cf_status st = cf_value_str(&v, s);
    if (st != CF_EINVAL)
        test_fail(file, line, "cf_value_str accepted invalid UTF-8: %s",
                  cf_status_name(st));
    assert_sentinel_(file, line, &v);
}
#define check_str_rejected(s) check_str_rejected_(__FILE__, __LINE__, s)

static void check_str_accepted_(const char *file, int line, const char *s) {
    cf_value v = cf_none();
    cf_status st = cf_value_str(&v, s);
    if (st != CF_OK)
        test_fail(file, line, "cf_value_str rejected valid UTF-8: %s",
                  cf_status_name(st));
    if (v.type != CF_TYPE_STR || v.as.buf.len != strlen(s) ||
        memcmp(v.as.buf.data, s, strlen(s) + 1) != 0)
        test_fail(file, line, "cf_value_str stored something else");
    cf_value_free(&v);
}
#define check_str_accepted(s) check_str_accepted_(__FILE__, __LINE__, s)

/* A hand-made BYTES or STR owning a malloc'd copy of exactly len (> 0)
 * octets of s and nothing after them, so that the ASan build catches a read
 * at or past data[len]. cf_value_free frees it. */
static cf_value hand_made(cf_type type, const char *s, size_t len) {
    cf_value v = cf_none();
    v.type = type;
    v.as.buf.data = malloc(len);
    ASSERT_NOT_NULL(v.as.buf.data);
    memcpy(v.as.buf.data, s, len);
    v.as.buf.len = len;
    return v;
}

/* A hand-made BYTES or STR with NULL data and this length. */
static cf_value no_data(cf_type type, size_t len) {
    cf_value v = cf_none();
    v.type = type;
    v.as.buf.data = NULL;
    v.as.buf.len = len;
    return v;
}

/* Hand-made STRs that break the header's rule: not valid UTF-8 (a lead
 * octet cut short at the very end, a stray octet, an overlong form, a
 * surrogate), or a NUL inside the length. */
static const struct {
    const char *octets;
    size_t len;
} invalid_strs[] = {
    {"ab\xf0", 3},   {"\xe2\x82", 2},     {"a\xff", 2},
    {"\xc0\x80", 2}, {"\xed\xa0\x80", 3}, {"a\0b", 3},
};
#define NINVALID_STRS (sizeof invalid_strs / sizeof invalid_strs[0])

/* ---- the value constructors that own nothing --------------------------- */

/* cf_none() is None, and a zeroed cf_value is None too.
 * clause: value.none.zeroed-is-none */
TEST(value_none_and_zeroed_value_are_none) {
    cf_value z;
    memset(&z, 0, sizeof z);
    cf_value n = cf_none();
    ASSERT_EQ(n.type, CF_TYPE_NONE);
    ASSERT_EQ(z.type, CF_TYPE_NONE);
    ASSERT_TRUE(cf_value_equal(&n, &z));
    check_repr(&z, "None");
}

/* cf_bool, cf_int, cf_double and cf_ptr build values of their type holding
 * the given contents.
 * clause: value.scalar.constructors */
TEST(value_scalar_constructors_hold_their_contents) {
    int x;
    cf_value b = cf_bool(true), f = cf_bool(false);
    cf_value i = cf_int(INT64_MIN), d = cf_double(-2.5), p = cf_ptr(&x);
    ASSERT_EQ(b.type, CF_TYPE_BOOL);
    ASSERT_TRUE(b.as.b);
    ASSERT_EQ(f.type, CF_TYPE_BOOL);
    ASSERT_FALSE(f.as.b);
    ASSERT_EQ(i.type, CF_TYPE_INT);
    ASSERT_TRUE(i.as.i == INT64_MIN);
    ASSERT_EQ(d.type, CF_TYPE_DOUBLE);
    ASSERT_TRUE(d.as.d == -2.5);
    ASSERT_EQ(p.type, CF_TYPE_PTR);
    ASSERT_TRUE(p.as.ptr == &x);
}

/* ---- cf_value_str ------------------------------------------------------- */

/* cf_value_str makes a STR value holding its own NUL-terminated copy of s.
 * clause: value.str.copies */
TEST(value_str_copies_the_string) {
    char src[] = "hello";
    cf_value v = cf_none();
    ASSERT_OK(cf_value_str(&v, src));
    ASSERT_EQ(v.type, CF_TYPE_STR);
    ASSERT_EQ(v.as.buf.len, 5);
    ASSERT_TRUE(v.as.buf.data != src);
    src[0] = 'J';
    ASSERT_STREQ(v.as.buf.data, "hello");
    ASSERT_EQ(v.as.buf.data[5], '\0');
    cf_value_free(&v);
}

/* cf_value_str accepts the empty string, giving a STR of length 0.
 * clause: value.str.empty */
TEST(value_str_accepts_empty_string) {
    cf_value v = cf_none();
    ASSERT_OK(cf_value_str(&v, ""));
    ASSERT_EQ(v.type, CF_TYPE_STR);
    ASSERT_EQ(v.as.buf.len, 0);
    ASSERT_NOT_NULL(v.as.buf.data);
    ASSERT_EQ(v.as.buf.data[0], '\0');
    cf_value_free(&v);
}

/* cf_value_str accepts every well-formed UTF-8 sequence length, up to
 * U+10FFFF, and the code points next to the surrogate range.
 * clause: value.str.accepts-valid-utf8 */
TEST(value_str_accepts_valid_utf8) {
    check_str_accepted("plain ASCII ~\x7f");
    check_str_accepted("\xc2\x80 \xc3\xa9 \xdf\xbf"); /* 2 octets */
    check_str_accepted("\xe0\xa0\x80 \xe2\x82\xac \xef\xbf\xbf"); /* 3 */
    check_str_accepted("\xed\x9f\xbf \xee\x80\x80"); /* U+D7FF, U+E000 */
    check_str_accepted("\xf0\x90\x80\x80 \xf0\x9f\x98\x80"); /* 4 octets */
    check_str_accepted("\xf4\x8f\xbf\xbf");                  /* U+10FFFF */
}

/* cf_value_str rejects a NULL string or a NULL out with CF_EINVAL.
 * clause: value.str.rejects-null */
TEST(value_str_rejects_null) {
    cf_value v = sentinel();
    ASSERT_STATUS(cf_value_str(&v, NULL), CF_EINVAL);
    assert_sentinel(&v);
    ASSERT_STATUS(cf_value_str(NULL, "x"), CF_EINVAL);
}

/* cf_value_str rejects stray continuation octets and octets that never
 * occur in UTF-8 with CF_EINVAL, leaving out unwritten.
 * clause: value.str.rejects-invalid-utf8 */
TEST(value_str_rejects_invalid_octets) {
    check_str_rejected("\x80");
    check_str_rejected("a\xbf!");
    check_str_rejected("\xff");
    check_str_rejected("\xfe");
    check_str_rejected("\xf8\x88\x80\x80\x80");
}

/* cf_value_str rejects a multi-octet sequence cut short, at the end of the
 * string or by a non-continuation octet.
 * clause: value.str.rejects-invalid-utf8 */
TEST(value_str_rejects_truncated_sequences) {
    check_str_rejected("\xc3");
    check_str_rejected("\xc3(");
    check_str_rejected("\xe2\x82");
    check_str_rejected("\xe2\x82x");
    check_str_rejected("\xf0\x9f\x98");
}

/* cf_value_str rejects overlong encodings (including the overlong NUL
 * 0xC0 0x80).
 * clause: value.str.rejects-invalid-utf8 */
TEST(value_str_rejects_overlong_encodings) {
    check_str_rejected("\xc0\x80");
    check_str_rejected("\xc1\xbf");
    check_str_rejected("\xe0\x80\xaf");
    check_str_rejected("\xe0\x9f\xbf");
    check_str_rejected("\xf0\x80\x80\xaf");
    check_str_rejected("\xf0\x8f\xbf\xbf");
}

/* cf_value_str rejects UTF-16 surrogates encoded as UTF-8 (U+D800..U+DFFF).
 * clause: value.str.rejects-invalid-utf8 */
TEST(value_str_rejects_surrogates) {
    check_str_rejected("\xed\xa0\x80");
    check_str_rejected("\xed\xbf\xbf");
}

/* cf_value_str rejects code points above U+10FFFF.
 * clause: value.str.rejects-invalid-utf8 */
TEST(value_str_rejects_code_points_above_max) {
    check_str_rejected("\xf4\x90\x80\x80");
    check_str_rejected("\xf5\x80\x80\x80");
    check_str_rejected("\xf7\xbf\xbf\xbf");
}

/* ---- cf_value_bytes ----------------------------------------------------- */

/* cf_value_bytes makes a BYTES value holding its own copy of the octets.
 * clause: value.bytes.copies */
TEST(value_bytes_copies_the_octets) {
    unsigned char src[3] = {1, 2, 3};
    cf_value v = cf_none();
    ASSERT_OK(cf_value_bytes(&v, src, sizeof src));
    ASSERT_EQ(v.type, CF_TYPE_BYTES);
    ASSERT_EQ(v.as.buf.len, 3);
    ASSERT_TRUE((void *)v.as.buf.data != (void *)src);
    src[0] = 9;
    ASSERT_EQ((unsigned char)v.as.buf.data[0], 1);
    ASSERT_EQ((unsigned char)v.as.buf.data[2], 3);
    cf_value_free(&v);
}

/* cf_value_bytes keeps octets after an embedded NUL: the length counts, not
 * a terminator.
 * clause: value.bytes.embedded-nul */
TEST(value_bytes_keeps_embedded_nul) {
    const char src[5] = {'a', '\0', 'b', '\0', 'c'};
    cf_value v = cf_none();
    ASSERT_OK(cf_value_bytes(&v, src, sizeof src));
    ASSERT_EQ(v.as.buf.len, 5);
    ASSERT_EQ(memcmp(v.as.buf.data, src, 5), 0);
    cf_value_free(&v);
}

/* cf_value_bytes accepts NULL data when len is 0, giving empty bytes.
 * clause: value.bytes.empty-null-data */
TEST(value_bytes_accepts_null_data_with_len_zero) {
    cf_value v = sentinel();
    ASSERT_OK(cf_value_bytes(&v, NULL, 0));
    ASSERT_EQ(v.type, CF_TYPE_BYTES);
    ASSERT_EQ(v.as.buf.len, 0);
    check_repr(&v, "b''");
    cf_value_free(&v);
}

/* cf_value_bytes rejects NULL data with a non-zero len, and a NULL out, with
 * CF_EINVAL.
 * clause: value.bytes.rejects-null */
TEST(value_bytes_rejects_null_data_with_len) {
    cf_value v = sentinel();
    ASSERT_STATUS(cf_value_bytes(&v, NULL, 3), CF_EINVAL);
    assert_sentinel(&v);
    ASSERT_STATUS(cf_value_bytes(NULL, "abc", 3), CF_EINVAL);
}

/* ---- cf_value_copy ------------------------------------------------------ */

/* cf_value_copy of a STR makes a new buffer that outlives the original.
 * clause: value.copy.deep */
TEST(value_copy_str_is_deep) {
    cf_value a = cf_none(), b = cf_none();
    ASSERT_OK(cf_value_str(&a, "d\xc3\xa9j\xc3\xa0"));
    ASSERT_OK(cf_value_copy(&b, &a));
    ASSERT_EQ(b.type, CF_TYPE_STR);
    ASSERT_TRUE(b.as.buf.data != a.as.buf.data);
    ASSERT_TRUE(cf_value_equal(&a, &b));
    cf_value_free(&a);
    ASSERT_EQ(b.as.buf.len, 6);
    ASSERT_STREQ(b.as.buf.data, "d\xc3\xa9j\xc3\xa0");
    cf_value_free(&b);
}

/* cf_value_copy of BYTES makes a new buffer with every octet, NULs
 * included, that outlives the original.
 * clause: value.copy.deep */
TEST(value_copy_bytes_is_deep) {
    const char src[4] = {'x', '\0', '\n', '\xff'};
    cf_value a = cf_none(), b = cf_none();
    ASSERT_OK(cf_value_bytes(&a, src, sizeof src));
    ASSERT_OK(cf_value_copy(&b, &a));
    ASSERT_EQ(b.type, CF_TYPE_BYTES);
    ASSERT_TRUE(b.as.buf.data != a.as.buf.data);
    cf_value_free(&a);
    ASSERT_EQ(b.as.buf.len, 4);
    ASSERT_EQ(memcmp(b.as.buf.data, src, 4), 0);
    cf_value_free(&b);
}

/* cf_value_copy of empty bytes gives empty bytes.
 * clause: value.copy.deep */
TEST(value_copy_empty_bytes) {
    cf_value a = cf_none(), b = sentinel();
    ASSERT_OK(cf_value_bytes(&a, NULL, 0));
    ASSERT_OK(cf_value_copy(&b, &a));
    ASSERT_EQ(b.type, CF_TYPE_BYTES);
    ASSERT_EQ(b.as.buf.len, 0);
    ASSERT_TRUE(cf_value_equal(&a, &b));
    cf_value_free(&a);
    cf_value_free(&b);
}

/* cf_value_copy copies None, bool, int, double and pointer values exactly.
 * clause: value.copy.scalars */
TEST(value_copy_scalars) {
    int x;
    cf_value vs[] = {cf_none(),       cf_bool(true), cf_int(-7),
                     cf_double(0.25), cf_ptr(&x),    cf_ptr(NULL)};
    for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
        cf_value out = sentinel();
        ASSERT_OK(cf_value_copy(&out, &vs[k]));
        ASSERT_EQ(out.type, vs[k].type);
        ASSERT_TRUE(cf_value_equal(&out, &vs[k]));
        cf_value_free(&out);
    }
}

/* cf_value_copy rejects a NULL out, a NULL src or a src of unknown type with
 * CF_EINVAL, leaving out unwritten.
 * clause: value.copy.rejects-invalid */
TEST(value_copy_rejects_null_and_unknown_type) {
    cf_value src = cf_int(1), out = sentinel(), bad = cf_none();
    bad.type = (cf_type)42;
    ASSERT_STATUS(cf_value_copy(NULL, &src), CF_EINVAL);
    ASSERT_STATUS(cf_value_copy(&out, NULL), CF_EINVAL);
    assert_sentinel(&out);
    ASSERT_STATUS(cf_value_copy(&out, &bad), CF_EINVAL);
    assert_sentinel(&out);
}

/* cf_value_copy rejects BYTES or STR whose data is NULL with a non-zero
 * length (CF_EINVAL, out unwritten) instead of reading through NULL; NULL
 * data with length 0 is empty, and the copy has its own terminated buffer.
 * clause: value.copy.rejects-invalid */
TEST(value_copy_rejects_null_data_with_len) {
    cf_type types[] = {CF_TYPE_BYTES, CF_TYPE_STR};
    for (size_t k = 0; k < 2; k++) {
        cf_value bad = no_data(types[k], 5), empty = no_data(types[k], 0);
        cf_value out = sentinel();
        ASSERT_STATUS(cf_value_copy(&out, &bad), CF_EINVAL);
        assert_sentinel(&out);
        ASSERT_OK(cf_value_copy(&out, &empty));
        ASSERT_EQ(out.type, types[k]);
        ASSERT_EQ(out.as.buf.len, 0);
        ASSERT_NOT_NULL(out.as.buf.data);
        ASSERT_EQ(out.as.buf.data[0], '\0');
        cf_value_free(&out);
    }
}

/* cf_value_copy rejects a hand-made STR that is not valid UTF-8 or holds a
 * NUL inside its length (what cf_value_str refuses) with CF_EINVAL, leaving
 * out unwritten; a valid one with no terminator after its octets is copied
 * with one.
 * clause: value.copy.rejects-invalid */
TEST(value_copy_rejects_invalid_str) {
    for (size_t k = 0; k < NINVALID_STRS; k++) {
        cf_value v = hand_made(CF_TYPE_STR, invalid_strs[k].octets,
                               invalid_strs[k].len);
        cf_value out = sentinel();
        ASSERT_STATUS(cf_value_copy(&out, &v), CF_EINVAL);
        assert_sentinel(&out);
        cf_value_free(&v);
    }
    cf_value v = hand_made(CF_TYPE_STR, "d\xc3\xa9j\xc3\xa0", 6),
             out = sentinel();
    ASSERT_OK(cf_value_copy(&out, &v));
    ASSERT_STREQ(out.as.buf.data, "d\xc3\xa9j\xc3\xa0");
    ASSERT_TRUE(cf_value_equal(&out, &v));
    cf_value_free(&v);
    cf_value_free(&out);
}

/* ---- cf_value_free ------------------------------------------------------ */

/* cf_value_free releases a STR or BYTES buffer and resets the value to None
 * (the ASan build proves the buffer is freed).
 * clause: value.free.resets-to-none */
TEST(value_free_resets_to_none) {
    cf_value s = cf_none(), b = cf_none();
    ASSERT_OK(cf_value_str(&s, "owned"));
    ASSERT_OK(cf_value_bytes(&b, "\0\1", 2));
    cf_value_free(&s);
    cf_value_free(&b);
    ASSERT_EQ(s.type, CF_TYPE_NONE);
    ASSERT_EQ(b.type, CF_TYPE_NONE);
    cf_value n = cf_none();
    ASSERT_TRUE(cf_value_equal(&s, &n));
}

/* cf_value_free accepts NULL and None, and freeing twice is harmless.
 * clause: value.free.null-and-twice */
TEST(value_free_null_and_twice_are_harmless) {
    cf_value v = cf_none();
    cf_value_free(NULL);
    cf_value_free(&v);
    ASSERT_EQ(v.type, CF_TYPE_NONE);
    ASSERT_OK(cf_value_str(&v, "twice"));
    cf_value_free(&v);
    cf_value_free(&v);
    ASSERT_EQ(v.type, CF_TYPE_NONE);
}

/* cf_value_free of a PTR sets it to None but leaves the pointed-to memory
 * the caller's (freeing it here afterwards must not be a double free).
 * clause: value.free.ptr-owns-nothing */
TEST(value_free_ptr_leaves_pointee_alone) {
    int *mem = malloc(sizeof *mem);
    ASSERT_NOT_NULL(mem);
    *mem = 5;
    cf_value v = cf_ptr(mem);
    cf_value_free(&v);
    ASSERT_EQ(v.type, CF_TYPE_NONE);
    ASSERT_EQ(*mem, 5);
    free(mem);
}

/* cf_value_free of a bool, int or double value sets it to None.
 * clause: value.free.resets-to-none */
TEST(value_free_scalar_resets_to_none) {
    cf_value vs[] = {cf_bool(true), cf_int(3), cf_double(1.5)};
    for (size_t k = 0; k < 3; k++) {
        cf_value_free(&vs[k]);
        ASSERT_EQ(vs[k].type, CF_TYPE_NONE);
    }
}

/* ---- cf_value_equal ----------------------------------------------------- */

/* cf_value_equal is true for the same type and contents and false when the
 * contents differ.
 * clause: value.equal.same-type-same-contents */
TEST(value_equal_compares_contents) {
    cf_value a, b;
    a = cf_none(), b = cf_none();
    ASSERT_TRUE(cf_value_equal(&a, &b));
    a = cf_bool(true), b = cf_bool(true);
    ASSERT_TRUE(cf_value_equal(&a, &b));
    b = cf_bool(false);
    ASSERT_FALSE(cf_value_equal(&a, &b));
    a = cf_int(INT64_MAX), b = cf_int(INT64_MAX);
    ASSERT_TRUE(cf_value_equal(&a, &b));
    b = cf_int(INT64_MAX - 1);
    ASSERT_FALSE(cf_value_equal(&a, &b));
    a = cf_double(1.5), b = cf_double(1.5);
    ASSERT_TRUE(cf_value_equal(&a, &b));
    b = cf_double(1.25);
    ASSERT_FALSE(cf_value_equal(&a, &b));
}

/* cf_value_equal is false between different types, even where Python's ==
 * would say equal (1 and True, 1 and 1.0, b'x' and 'x').
 * clause: value.equal.type-differs */
TEST(value_equal_false_across_types) {
    cf_value i = cf_int(1), t = cf_bool(true), d = cf_double(1.0);
    cf_value n = cf_none(), z = cf_int(0), p = cf_ptr(NULL);
    cf_value s = cf_none(), b = cf_none();
    ASSERT_OK(cf_value_str(&s, "x"));
    ASSERT_OK(cf_value_bytes(&b, "x", 1));
    ASSERT_FALSE(cf_value_equal(&i, &t));
    ASSERT_FALSE(cf_value_equal(&i, &d));
    ASSERT_FALSE(cf_value_equal(&s, &b));
    ASSERT_FALSE(cf_value_equal(&n, &z));
    ASSERT_FALSE(cf_value_equal(&n, &p));
    cf_value_free(&s);
    cf_value_free(&b);
}

/* cf_value_equal compares DOUBLE with ==: NaN differs from itself and 0.0
 * equals -0.0, as in Python.
 * clause: value.equal.double-nan */
TEST(value_equal_double_follows_ieee) {
    cf_value nan1 = cf_double(NAN), zero = cf_double(0.0);
    cf_value negzero = cf_double(-0.0);
    ASSERT_FALSE(cf_value_equal(&nan1, &nan1));
    ASSERT_TRUE(cf_value_equal(&zero, &negzero));
}

/* cf_value_equal compares PTR by address.
 * clause: value.equal.ptr-address */
TEST(value_equal_ptr_compares_address) {
    int x, y;
    cf_value a = cf_ptr(&x), a2 = cf_ptr(&x), b = cf_ptr(&y);
    ASSERT_TRUE(cf_value_equal(&a, &a2));
    ASSERT_FALSE(cf_value_equal(&a, &b));
}

/* cf_value_equal compares BYTES by length and every octet, past embedded
 * NULs, and STR by contents.
 * clause: value.equal.buffer-contents */
TEST(value_equal_compares_buffers_fully) {
    cf_value a = cf_none(), b = cf_none(), c = cf_none(), d = cf_none();
    cf_value s = cf_none(), t = cf_none(), u = cf_none();
    ASSERT_OK(cf_value_bytes(&a, "a\0b", 3));
    ASSERT_OK(cf_value_bytes(&b, "a\0b", 3));
    ASSERT_OK(cf_value_bytes(&c, "a\0c", 3));
    ASSERT_OK(cf_value_bytes(&d, "a\0b\0", 4));
    ASSERT_TRUE(cf_value_equal(&a, &b));
    ASSERT_FALSE(cf_value_equal(&a, &c));
    ASSERT_FALSE(cf_value_equal(&a, &d));
    ASSERT_OK(cf_value_str(&s, "abc"));
    ASSERT_OK(cf_value_str(&t, "abc"));
    ASSERT_OK(cf_value_str(&u, "abd"));
    ASSERT_TRUE(cf_value_equal(&s, &t));
    ASSERT_FALSE(cf_value_equal(&s, &u));
    cf_value x = cf_none(), y = cf_none();
    ASSERT_OK(cf_value_bytes(&x, NULL, 0));
    ASSERT_OK(cf_value_bytes(&y, "q", 0));
    ASSERT_TRUE(cf_value_equal(&x, &y));
    cf_value *all[] = {&a, &b, &c, &d, &s, &t, &u, &x, &y};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        cf_value_free(all[k]);
}

/* cf_value_equal takes hand-made empty BYTES or STR with NULL data (a sound
 * value, as cf_value_copy accepts it) as equal to any empty one of its type,
 * without handing NULL to memcmp (the UBSan build checks).
 * clause: value.equal.buffer-contents */
TEST(value_equal_empty_buffers_without_data) {
    cf_value eb = no_data(CF_TYPE_BYTES, 0), es = no_data(CF_TYPE_STR, 0);
    cf_value b = cf_none(), s = cf_none();
    ASSERT_OK(cf_value_bytes(&b, "", 0));
    ASSERT_OK(cf_value_str(&s, ""));
    ASSERT_TRUE(cf_value_equal(&eb, &b));
    ASSERT_TRUE(cf_value_equal(&b, &eb));
    ASSERT_TRUE(cf_value_equal(&es, &s));
    ASSERT_FALSE(cf_value_equal(&eb, &es));
    cf_value_free(&b);
    cf_value_free(&s);
}

/* cf_value_equal with one NULL argument returns false instead of crashing.
 * clause: value.equal.null */
TEST(value_equal_null_is_false) {
    cf_value a = cf_none();
    ASSERT_FALSE(cf_value_equal(&a, NULL));
    ASSERT_FALSE(cf_value_equal(NULL, &a));
}

/* ---- cf_value_repr ------------------------------------------------------ */

/* repr(None) is "None".
 * clause: value.repr.none */
TEST(value_repr_none) {
    cf_value v = cf_none();
    check_repr(&v, "None");
}

/* repr of bools is "True" and "False".
 * clause: value.repr.bool */
TEST(value_repr_bool) {
    cf_value t = cf_bool(true), f = cf_bool(false);
    check_repr(&t, "True");
    check_repr(&f, "False");
}

/* repr of an int is its decimal form, across the whole int64 range.
 * clause: value.repr.int */
TEST(value_repr_int) {
    cf_value a = cf_int(-7), b = cf_int(0), c = cf_int(INT64_MAX);
    cf_value d = cf_int(INT64_MIN);
    check_repr(&a, "-7");
    check_repr(&b, "0");
    check_repr(&c, "9223372036854775807");
    check_repr(&d, "-9223372036854775808");
}

/* repr of an integral or simple float keeps a ".0" or its short decimal
 * form: 2.0, 1.5, -0.0, 100.0.
 * clause: value.repr.float-simple */
TEST(value_repr_float_simple) {
    check_repr_double(1.5, "1.5");
    check_repr_double(-1.5, "-1.5");
    check_repr_double(2.0, "2.0");
    check_repr_double(0.0, "0.0");
    check_repr_double(-0.0, "-0.0");
    check_repr_double(100.0, "100.0");
    check_repr_double(123456789.125, "123456789.125");
}

/* repr of a float is the shortest string that reads back as the same
 * double, as Python: 0.1, 0.30000000000000004, 0.3333333333333333.
 * clause: value.repr.float-shortest-round-trip */
TEST(value_repr_float_shortest_round_trip) {
    volatile double a = 0.1, b = 0.2, three = 3.0;
    check_repr_double(0.1, "0.1");
    check_repr_double(a + b, "0.30000000000000004");
    check_repr_double(1.0 / three, "0.3333333333333333");
    check_repr_double(1.7976931348623157e308, "1.7976931348623157e+308");
    check_repr_double(5e-324, "5e-324");
}

/* repr of a float switches to exponent form, as Python, when the decimal
 * exponent is below -4 or at least 16: 1e+300, 1e+16, 1e-05, but 0.0001 and
 * 9007199254740992.0 stay positional.
 * clause: value.repr.float-exponent-form */
TEST(value_repr_float_exponent_form) {
    check_repr_double(1e300, "1e+300");
    check_repr_double(1e16, "1e+16");
    check_repr_double(1e22, "1e+22");
    check_repr_double(123456789012345678.0, "1.2345678901234568e+17");
    check_repr_double(1e-5, "1e-05");
    check_repr_double(1.5e-7, "1.5e-07");
    check_repr_double(0.0001, "0.0001");
    check_repr_double(1e15, "1000000000000000.0");
    check_repr_double(9007199254740992.0, "9007199254740992.0");
}

/* repr of infinities and NaN is inf, -inf and nan (a negative NaN too).
 * clause: value.repr.float-inf-nan */
TEST(value_repr_float_inf_nan) {
    check_repr_double(INFINITY, "inf");
    check_repr_double(-INFINITY, "-inf");
    check_repr_double(NAN, "nan");
    check_repr_double(copysign(NAN, -1.0), "nan");
}

/* repr of bytes uses b'' with Python's escapes: \t \n \r \\, \xhh for the
 * other octets below 0x20 and from 0x7f, the rest as is.
 * clause: value.repr.bytes-escapes */
TEST(value_repr_bytes_escapes) {
    check_repr_bytes("a\0\n", 3, "b'a\\x00\\n'");
    check_repr_bytes("", 0, "b''");
    check_repr_bytes("\t\n\r\\", 4, "b'\\t\\n\\r\\\\'");
    check_repr_bytes("\x01\x0b\x0c\x1f ~\x7f\x80\xff", 9,
                     "b'\\x01\\x0b\\x0c\\x1f ~\\x7f\\x80\\xff'");
}

/* repr of bytes quotes as Python: double quotes when the octets hold a
 * single quote and no double quote, else single quotes with \' escaped.
 * clause: value.repr.bytes-quotes */
TEST(value_repr_bytes_quotes) {
    check_repr_bytes("'", 1, "b\"'\"");
    check_repr_bytes("\"", 1, "b'\"'");
    check_repr_bytes("'\"", 2, "b'\\'\"'");
    check_repr_bytes("it's", 4, "b\"it's\"");
}

/* repr of a str is quoted text: 'text', and '' for the empty string.
 * clause: value.repr.str */
TEST(value_repr_str_plain) {
    check_repr_str("text", "'text'");
    check_repr_str("", "''");
}

/* repr of a str quotes as Python: "it's" in double quotes, 'a"b' in single,
 * and 'it\'s "q"' escaping the single quote when both appear.
 * clause: value.repr.str-quotes */
TEST(value_repr_str_quotes) {
    check_repr_str("it's", "\"it's\"");
    check_repr_str("a\"b", "'a\"b'");
    check_repr_str("it's \"q\"", "'it\\'s \"q\"'");
}

/* repr of a str escapes \t \n \r \\ and the other ASCII controls and DEL as
 * \xhh, as Python.
 * clause: value.repr.str-escapes */
TEST(value_repr_str_escapes) {
    check_repr_str("tab\there", "'tab\\there'");
    check_repr_str("\t\n\r\\", "'\\t\\n\\r\\\\'");
    check_repr_str("\x01\x0b\x0c\x1f ~\x7f", "'\\x01\\x0b\\x0c\\x1f ~\\x7f'");
}

/* repr of a str keeps printable non-ASCII characters as they are (é, €, an
 * emoji), as Python 3 does.
 * clause: value.repr.str-non-ascii */
TEST(value_repr_str_keeps_printable_non_ascii) {
    check_repr_str("\xc3\xa9", "'\xc3\xa9'");
    check_repr_str("\xe2\x82\xac\xf0\x9f\x98\x80",
                   "'\xe2\x82\xac\xf0\x9f\x98\x80'");
}

/* repr of a str escapes the Latin-1 controls U+0080..U+009F, the no-break
 * space and the soft hyphen as \xhh, and keeps ¡ and ÿ, as Python.
 * clause: value.repr.str-escapes */
TEST(value_repr_str_escapes_latin1_non_printable) {
    check_repr_str("\xc2\x85", "'\\x85'");
    check_repr_str("\xc2\x80\xc2\x9f", "'\\x80\\x9f'");
    check_repr_str("\xc2\xa0", "'\\xa0'");
    check_repr_str("\xc2\xad", "'\\xad'");
    check_repr_str("\xc2\xa1\xc3\xbf", "'\xc2\xa1\xc3\xbf'");
}

/* repr of a str escapes the other code points Python does not print (line
 * separator, zero-width space, private use, unassigned, U+10FFFF) as \uXXXX
 * or \UXXXXXXXX, as the header's "Python's repr()" promises.
 * clause: value.repr.str-escapes */
TEST(value_repr_str_escapes_non_printable_unicode) {
    check_repr_str("x\xe2\x80\xa8y", "'x\\u2028y'");
    check_repr_str("\xe2\x80\x8b", "'\\u200b'");
    check_repr_str("\xe3\x80\x80", "'\\u3000'");
    check_repr_str("\xee\x80\x80", "'\\ue000'");
    check_repr_str("\xcd\xb8", "'\\u0378'");
    check_repr_str("\xf4\x8f\xbf\xbf", "'\\U0010ffff'");
}

/* repr of a PTR is <pointer 0x...> with the address in hex.
 * clause: value.repr.ptr */
TEST(value_repr_ptr) {
    int x;
    char buf[128];
    cf_value v = cf_ptr(&x);
    int n = cf_value_repr(&v, buf, sizeof buf);
    ASSERT_EQ(n, (int)strlen(buf));
    ASSERT_EQ(strncmp(buf, "<pointer 0x", 11), 0);
    ASSERT_EQ(buf[n - 1], '>');
    char *end = NULL;
    unsigned long long addr = strtoull(buf + 11, &end, 16);
    ASSERT_TRUE(end == buf + n - 1);
    ASSERT_TRUE((uintptr_t)addr == (uintptr_t)&x);
}

/* cf_value_repr returns the length the whole repr needs, as snprintf, and
 * writes a NUL-terminated prefix when the buffer is too small.
 * clause: value.repr.snprintf-truncation */
TEST(value_repr_truncates_like_snprintf) {
    cf_value v = cf_none();
    char buf[8];
    memset(buf, 'Z', sizeof buf);
    ASSERT_EQ(cf_value_repr(&v, buf, 4), 4);
    ASSERT_STREQ(buf, "Non");
    ASSERT_EQ(buf[4], 'Z');
    ASSERT_EQ(cf_value_repr(&v, buf, 5), 4);
    ASSERT_STREQ(buf, "None");
    ASSERT_EQ(cf_value_repr(&v, buf, 1), 4);
    ASSERT_EQ(buf[0], '\0');
    ASSERT_EQ(buf[1], 'o');
}

/* cf_value_repr of a long value returns its full length however small the
 * buffer, writing only a terminated prefix.
 * clause: value.repr.snprintf-truncation */
TEST(value_repr_long_value_returns_full_length) {
    char zeros[1000] = {0}, buf[16];
    cf_value v = cf_none();
    ASSERT_OK(cf_value_bytes(&v, zeros, sizeof zeros));
    memset(buf, 'Z', sizeof buf);
    ASSERT_EQ(cf_value_repr(&v, buf, 12), 3 + 4 * 1000);
    ASSERT_STREQ(buf, "b'\\x00\\x00\\");
    ASSERT_EQ(buf[12], 'Z');
    cf_value_free(&v);
}

/* cf_value_repr with size 0 writes nothing, not even a NUL, and still
 * returns the needed length.
 * clause: value.repr.snprintf-truncation */
TEST(value_repr_size_zero_writes_nothing) {
    cf_value v = cf_bool(false);
    char buf[4] = {'Z', 'Z', 'Z', 'Z'};
    ASSERT_EQ(cf_value_repr(&v, buf, 0), 5);
    ASSERT_EQ(buf[0], 'Z');
    ASSERT_EQ(cf_value_repr(&v, NULL, 0), 5);
}

/* cf_value_repr returns -1 for a NULL value or one of unknown type.
 * clause: value.repr.rejects-invalid */
TEST(value_repr_rejects_null_and_unknown_type) {
    char buf[32];
    cf_value bad = cf_none();
    bad.type = (cf_type)42;
    ASSERT_EQ(cf_value_repr(NULL, buf, sizeof buf), -1);
    ASSERT_EQ(cf_value_repr(&bad, buf, sizeof buf), -1);
    bad.type = (cf_type)-1;
    ASSERT_EQ(cf_value_repr(&bad, buf, sizeof buf), -1);
}

/* cf_value_repr returns -1 and writes nothing for a STR that is not valid
 * UTF-8 or holds a NUL inside its length, and for BYTES or STR with NULL
 * data and a non-zero length -- as cf_value_copy refuses them. It reads
 * nothing at or past data[len] meanwhile (the octets are allocated exactly,
 * with no terminator: the ASan build catches an overread).
 * clause: value.repr.rejects-invalid */
TEST(value_repr_rejects_invalid_buffers) {
    char buf[64];
    cf_value nulls[] = {no_data(CF_TYPE_BYTES, 4), no_data(CF_TYPE_STR, 4)};
    for (size_t k = 0; k < NINVALID_STRS; k++) {
        cf_value v = hand_made(CF_TYPE_STR, invalid_strs[k].octets,
                               invalid_strs[k].len);
        memset(buf, 'Z', sizeof buf);
        ASSERT_EQ(cf_value_repr(&v, buf, sizeof buf), -1);
        ASSERT_EQ(buf[0], 'Z');
        ASSERT_EQ(cf_value_repr(&v, NULL, 0), -1);
        cf_value_free(&v);
    }
    for (size_t k = 0; k < 2; k++) {
        memset(buf, 'Z', sizeof buf);
        ASSERT_EQ(cf_value_repr(&nulls[k], buf, sizeof buf), -1);
        ASSERT_EQ(buf[0], 'Z');
    }
}

/* cf_value_repr of a valid hand-made STR or BYTES reads only its len octets
 * (none after them is needed, not even the terminator), and NULL data with
 * length 0 is empty: b'' and ''.
 * clause: value.repr.str */
TEST(value_repr_reads_only_len_octets) {
    cf_value s = hand_made(CF_TYPE_STR, "it's \xc3\xa9", 7);
    cf_value b = hand_made(CF_TYPE_BYTES, "\xf0", 1);
    cf_value eb = no_data(CF_TYPE_BYTES, 0), es = no_data(CF_TYPE_STR, 0);
    check_repr(&s, "\"it's \xc3\xa9\"");
    check_repr(&b, "b'\\xf0'");
    check_repr(&eb, "b''");
    check_repr(&es, "''");
    cf_value_free(&s);
    cf_value_free(&b);
}

/* ---- statuses ----------------------------------------------------------- */

#define STATUS_ROW(name, value, py, msg) {CF_##name, "CF_" #name, py, msg},
static const struct {
    cf_status status;
    const char *name, *python, *message;
} status_rows[] = {CF_STATUS_MAP(STATUS_ROW)};
#undef STATUS_ROW
#define NSTATUS (sizeof status_rows / sizeof status_rows[0])

/* cf_status_name gives "CF_<NAME>" for every status of the map.
 * clause: status.name */
TEST(status_name_for_every_status) {
    ASSERT_EQ(NSTATUS, CF__STATUS_COUNT);
    for (size_t k = 0; k < NSTATUS; k++)
        ASSERT_STREQ(cf_status_name(status_rows[k].status),
                     status_rows[k].name);
    ASSERT_STREQ(cf_status_name(CF_TIMEOUT), "CF_TIMEOUT");
}

/* cf_status_message gives the map's one-line message for every status.
 * clause: status.message */
TEST(status_message_for_every_status) {
    for (size_t k = 0; k < NSTATUS; k++)
        ASSERT_STREQ(cf_status_message(status_rows[k].status),
                     status_rows[k].message);
}

/* cf_status_python gives the map's Python exception for every status, ""
 * for CF_OK and CF_RAISED.
 * clause: status.python */
TEST(status_python_for_every_status) {
    for (size_t k = 0; k < NSTATUS; k++)
        ASSERT_STREQ(cf_status_python(status_rows[k].status),
                     status_rows[k].python);
    ASSERT_STREQ(cf_status_python(CF_OK), "");
    ASSERT_STREQ(cf_status_python(CF_RAISED), "");
    ASSERT_STREQ(cf_status_python(CF_TIMEOUT), "TimeoutError");
}

/* For a value outside the enum, cf_status_name gives "CF_UNKNOWN_STATUS" and
 * cf_status_message and cf_status_python give a string, never NULL.
 * clause: status.out-of-range */
TEST(status_accessors_out_of_range) {
    cf_status bad[] = {CF__STATUS_COUNT, (cf_status)(CF__STATUS_COUNT + 7),
                       (cf_status)-1, (cf_status)INT_MAX, (cf_status)INT_MIN};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ASSERT_STREQ(cf_status_name(bad[k]), "CF_UNKNOWN_STATUS");
        ASSERT_NOT_NULL(cf_status_message(bad[k]));
        ASSERT_NOT_NULL(cf_status_python(bad[k]));
    }
}

/* ---- version ------------------------------------------------------------ */

/* cf_version() is the CF_VERSION the header was built with.
 * clause: version.linked-matches-header */
TEST(version_matches_header) {
    ASSERT_EQ(cf_version(), CF_VERSION);
    ASSERT_EQ(CF_VERSION, CF_VERSION_MAJOR * 10000 + CF_VERSION_MINOR * 100 +
                              CF_VERSION_PATCH);
}

/* cf_implementation names the reference and the version it was built as:
 * "cfutures-ref MAJOR.MINOR.PATCH".
 * clause: version.implementation */
TEST(implementation_names_reference_and_version) {
    char want[64];
    snprintf(want, sizeof want, "cfutures-ref %d.%d.%d", CF_VERSION_MAJOR,
             CF_VERSION_MINOR, CF_VERSION_PATCH);
    ASSERT_STREQ(cf_implementation(), want);
}

/* ---- errors ------------------------------------------------------------- */

/* The cf_error accessors accept NULL: type and message "", status
 * CF_EINVAL.
 * clause: error.accessors-null */
TEST(error_accessors_accept_null) {
    ASSERT_STREQ(cf_error_type(NULL), "");
    ASSERT_STREQ(cf_error_message(NULL), "");
    ASSERT_STATUS(cf_error_status(NULL), CF_EINVAL);
}

/* An error a future holds reports its type, its message (possibly "") and
 * CF_RAISED through the accessors.
 * clause: error.accessors */
TEST(error_accessors_report_type_message_status) {
    cf_future *f = NULL;
    const cf_error *e = NULL;
    ASSERT_OK(cf_future_new(&f));
    ASSERT_OK(cf_future_set_exception(f, "KeyError", ""));
    ASSERT_OK(cf_future_exception(f, 0, &e));
    check_error(e, CF_RAISED, "KeyError", "");
    ASSERT_OK(cf_future_release(f));
}
