/*
 * The encoding that carries calls and outcomes across a process boundary
 * (ipc.c): every value type round trips, and a truncated frame, a corrupt
 * tag or a length beyond the frame is a clean CF_EINVAL, never an overread
 * (the ASan build checks that the decoder reads only what it was given: each
 * payload is copied into a buffer of exactly its length).
 */
#include "../ref/src/internal.h"
#include "support.h"

#include <math.h>

/* ---- helpers ----------------------------------------------------------- */

static cf_value sample(size_t i) {
    cf_value v = cf_none();
    switch (i) {
    case 0:
        return cf_none();
    case 1:
        return cf_bool(true);
    case 2:
        return cf_int(INT64_MIN);
    case 3:
        return cf_double(-1.5e300);
    case 4:
        ASSERT_OK(cf_value_bytes(&v, "a\0b\xff", 4));
        return v;
    case 5:
        ASSERT_OK(cf_value_str(&v, "h\xc3\xa9llo"));
        return v;
    default:
        ASSERT_OK(cf_value_bytes(&v, NULL, 0));
        return v;
    }
}
#define NSAMPLES 7

/* A task frame for task_dummy(samples...). */
static void task_dummy(cf_call *call) {
    (void)call;
}

static struct cf__buf task_frame(void) {
    cf_value args[NSAMPLES];
    struct cf__buf b = {0};
    for (size_t i = 0; i < NSAMPLES; i++)
        args[i] = sample(i);
    ASSERT_OK(cf__frame_task(&b, 7, task_dummy, args, NSAMPLES));
    for (size_t i = 0; i < NSAMPLES; i++)
        cf_value_free(&args[i]);
    return b;
}

/* Parses len octets from a private copy, so that any overread is caught. */
static cf_status parse_task_copy(const unsigned char *data, size_t len) {
    unsigned char *copy = malloc(len ? len : 1);
    ASSERT_NOT_NULL(copy);
    memcpy(copy, data, len);
    cf_fn fn;
    cf_value *args;
    size_t nargs;
    uint32_t slot;
    cf_status st = cf__parse_task(copy, len, &slot, &fn, &args, &nargs);
    if (st == CF_OK) {
        for (size_t i = 0; i < nargs; i++)
            cf_value_free(&args[i]);
        free(args);
    }
    free(copy);
    return st;
}

static cf_status parse_outcome_copy(const unsigned char *data, size_t len) {
    unsigned char *copy = malloc(len ? len : 1);
    ASSERT_NOT_NULL(copy);
    memcpy(copy, data, len);
    enum cf__outcome kind;
    cf_value v;
    cf_error *e;
    uint32_t slot;
    cf_status st = cf__parse_outcome(copy, len, &slot, &kind, &v, &e);
    if (st == CF_OK) {
        cf_value_free(&v);
        cf__error_free(e);
    }
    free(copy);
    return st;
}

/* parse_outcome_copy of an outcome for slot 0 whose octets after the slot
 * are `body`. */
static cf_status parse_outcome_body(const unsigned char *body, size_t len) {
    unsigned char payload[64] = {0};
    ASSERT_TRUE(len <= sizeof payload - 4);
    memcpy(payload + 4, body, len);
    return parse_outcome_copy(payload, 4 + len);
}

/* ---- tests ------------------------------------------------------------- */

/* Every encodable value decodes to an equal value.
 * clause: process-pool.values-cross */
TEST(ipc_value_round_trip) {
    for (size_t i = 0; i < NSAMPLES; i++) {
        cf_value v = sample(i), back = cf_int(99);
        struct cf__buf b = {0};
        ASSERT_OK(cf__encode_value(&b, &v));
        struct cf__reader r = {b.data, b.data + b.len};
        ASSERT_OK(cf__decode_value(&r, &back));
        ASSERT_TRUE(r.at == r.end);
        ASSERT_TRUE(cf_value_equal(&v, &back));
        cf_value_free(&back);
        cf_value_free(&v);
        cf__buf_free(&b);
    }
}

/* A PTR has no encoding. clause: process-pool.ptr-refused */
TEST(ipc_ptr_refused) {
    struct cf__buf b = {0};
    int x;
    cf_value v = cf_ptr(&x);
    ASSERT_STATUS(cf__encode_value(&b, &v), CF_EINVAL);
    ASSERT_STATUS(cf__frame_task(&b, 7, task_dummy, &v, 1), CF_EINVAL);
    ASSERT_STATUS(cf__frame_outcome(&b, 7, CF__OUT_VALUE, &v, NULL),
                  CF_EINVAL);
    cf__buf_free(&b);
}

/* A task frame gives back the function and every argument.
 * clause: process-pool.values-cross */
TEST(ipc_task_round_trip) {
    struct cf__buf b = task_frame();
    ASSERT_EQ(cf__frame_length(b.data), b.len - CF__FRAME_HEADER);
    cf_fn fn;
    cf_value *args;
    size_t nargs;
    uint32_t slot;
    ASSERT_OK(cf__parse_task(b.data + CF__FRAME_HEADER,
                             b.len - CF__FRAME_HEADER, &slot, &fn, &args,
                             &nargs));
    ASSERT_EQ(slot, 7);
    ASSERT_TRUE(fn == task_dummy);
    ASSERT_EQ(nargs, NSAMPLES);
    for (size_t i = 0; i < nargs; i++) {
        cf_value want = sample(i);
        ASSERT_TRUE(cf_value_equal(&args[i], &want));
        cf_value_free(&want);
        cf_value_free(&args[i]);
    }
    free(args);
    cf__buf_free(&b);
}

/* Parses outcome frame b, which must answer `slot` with `kind`. */
static void parse_frame(const struct cf__buf *b, uint32_t slot,
                        enum cf__outcome kind, cf_value *value,
                        cf_error **error) {
    uint32_t got_slot;
    enum cf__outcome got_kind;
    ASSERT_EQ(cf__frame_length(b->data), b->len - CF__FRAME_HEADER);
    ASSERT_OK(cf__parse_outcome(b->data + CF__FRAME_HEADER,
                                b->len - CF__FRAME_HEADER, &got_slot,
                                &got_kind, value, error));
    ASSERT_EQ(got_slot, slot);
    ASSERT_EQ(got_kind, kind);
}

/* A value outcome, an error outcome, a skipped call and a wake-up round
 * trip, each with its slot. clause: process-pool.errors-cross */
TEST(ipc_outcome_round_trip) {
    struct cf__buf b = {0};
    cf_value v = sample(5), back;
    cf_error *e = cf__error_new(CF_RAISED, "KeyError", "no 'k' here"), *got;
    ASSERT_NOT_NULL(e);
    ASSERT_OK(cf__frame_outcome(&b, 3, CF__OUT_VALUE, &v, NULL));
    parse_frame(&b, 3, CF__OUT_VALUE, &back, &got);
    ASSERT_NULL(got);
    ASSERT_TRUE(cf_value_equal(&v, &back));
    cf_value_free(&back);
    ASSERT_OK(cf__frame_outcome(&b, 70000, CF__OUT_ERROR, NULL, e));
    parse_frame(&b, 70000, CF__OUT_ERROR, &back, &got);
    check_error(got, CF_RAISED, "KeyError", "no 'k' here");
    cf__error_free(got);
    ASSERT_OK(cf__frame_outcome(&b, 9, CF__OUT_SKIPPED, NULL, NULL));
    ASSERT_EQ(b.len, CF__FRAME_HEADER + 5);
    parse_frame(&b, 9, CF__OUT_SKIPPED, &back, &got);
    ASSERT_NULL(got);
    ASSERT_OK(cf__frame_outcome(&b, CF__NO_SLOT, CF__OUT_WAKE, NULL, NULL));
    ASSERT_EQ(b.len, CF__FRAME_HEADER + 5);
    parse_frame(&b, CF__NO_SLOT, CF__OUT_WAKE, &back, &got);
    ASSERT_NULL(got);
    cf__error_free(e);
    cf_value_free(&v);
    cf__buf_free(&b);
}

/* Every proper prefix of a task or outcome payload is CF_EINVAL.
 * clause: process-pool.corrupt-frame */
TEST(ipc_truncated_frames) {
    struct cf__buf b = task_frame(), o = {0};
    const unsigned char *payload = b.data + CF__FRAME_HEADER;
    size_t len = b.len - CF__FRAME_HEADER;
    for (size_t cut = 0; cut < len; cut++)
        ASSERT_STATUS(parse_task_copy(payload, cut), CF_EINVAL);
    ASSERT_OK(parse_task_copy(payload, len));
    cf_error *e = cf__error_new(CF_RAISED, "ValueError", "boom");
    ASSERT_OK(cf__frame_outcome(&o, 1, CF__OUT_ERROR, NULL, e));
    for (size_t cut = 0; cut < o.len - CF__FRAME_HEADER; cut++)
        ASSERT_STATUS(parse_outcome_copy(o.data + CF__FRAME_HEADER, cut),
                      CF_EINVAL);
    cf__error_free(e);
    cf__buf_free(&o);
    cf__buf_free(&b);
}

/* Unknown tags, a bad bool, trailing octets, a NULL function, a bad error
 * status or type and an invalid UTF-8 str are CF_EINVAL.
 * clause: process-pool.corrupt-frame */
TEST(ipc_corrupt_tags) {
    static const unsigned char bad_tag[] = {CF__OUT_VALUE, 42};
    static const unsigned char ptr_tag[] = {CF__OUT_VALUE, CF_TYPE_PTR};
    static const unsigned char bad_bool[] = {CF__OUT_VALUE, CF_TYPE_BOOL, 2};
    static const unsigned char trailing[] = {CF__OUT_VALUE, CF_TYPE_NONE, 0};
    static const unsigned char bad_kind[] = {9, CF_TYPE_NONE};
    static const unsigned char bad_utf8[] = {
        CF__OUT_VALUE, CF_TYPE_STR, 2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28};
    static const unsigned char nul_str[] = {
        CF__OUT_VALUE, CF_TYPE_STR, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char bad_status[] = {
        CF__OUT_ERROR, CF_OK, 1, 0, 0, 0, 'E', 0, 0, 0, 0};
    static const unsigned char bad_type[] = {
        CF__OUT_ERROR, CF_RAISED, 1, 0, 0, 0, '-', 0, 0, 0, 0};
    static const unsigned char null_fn[16] = {0};
    ASSERT_STATUS(parse_outcome_body(bad_tag, sizeof bad_tag), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(ptr_tag, sizeof ptr_tag), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(bad_bool, sizeof bad_bool), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(trailing, sizeof trailing), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(bad_kind, sizeof bad_kind), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(bad_utf8, sizeof bad_utf8), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(nul_str, sizeof nul_str), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(bad_status, sizeof bad_status),
                  CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(bad_type, sizeof bad_type), CF_EINVAL);
    ASSERT_STATUS(parse_task_copy(null_fn, sizeof null_fn), CF_EINVAL);
}

/* Lengths larger than what is left (up to 2^64 - 1) are CF_EINVAL, never
 * an allocation or an overread. clause: process-pool.corrupt-frame */
TEST(ipc_oversize_lengths) {
    unsigned char bytes[] = {CF__OUT_VALUE, CF_TYPE_BYTES, 0xff, 0xff,
                             0xff,          0xff,          0xff, 0xff,
                             0xff,          0xff,          'x'};
    unsigned char text[] = {CF__OUT_ERROR, CF_RAISED, 0xff, 0xff,
                            0xff,          0xff,      'E'};
    unsigned char task[] = {0, 0, 0, 0,    1,    0,    0,    0,           0,
                            0, 0, 0, 0xff, 0xff, 0xff, 0xff, CF_TYPE_NONE};
    ASSERT_STATUS(parse_outcome_body(bytes, sizeof bytes), CF_EINVAL);
    bytes[2] = 2; /* 2^64 - 255 */
    ASSERT_STATUS(parse_outcome_body(bytes, sizeof bytes), CF_EINVAL);
    ASSERT_STATUS(parse_outcome_body(text, sizeof text), CF_EINVAL);
    ASSERT_STATUS(parse_task_copy(task, sizeof task), CF_EINVAL);
    unsigned char header[CF__FRAME_HEADER] = {0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(cf__frame_length(header), UINT32_MAX);
}

/* The encoder that carries values to and from workers refuses what
 * cf_value_copy refuses -- a STR not valid UTF-8 or with a NUL inside, BYTES
 * or STR with NULL data and a length -- with CF_EINVAL, writing nothing
 * (defence in depth: such a value must not reach a worker).
 * clause: ipc.encode.rejects-invalid-value */
TEST(encode_refuses_invalid_buffers) {
    cf_value bad[] = {hand_made_buffer(CF_TYPE_STR, "x\xed\xa0\x80", 4),
                      hand_made_buffer(CF_TYPE_STR, "a\0b", 3),
                      hand_made_buffer(CF_TYPE_STR, NULL, 2),
                      hand_made_buffer(CF_TYPE_BYTES, NULL, 5)};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct cf__buf b = {0};
        ASSERT_STATUS(cf__encode_value(&b, &bad[k]), CF_EINVAL);
        ASSERT_EQ(b.len, 0);
        cf__buf_free(&b);
        cf_value_free(&bad[k]);
    }
}
