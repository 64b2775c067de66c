/*  tests/unit/test_codec.c - the msgpack frame codec: encoder/decoder
    round trips, the zr_field_* helpers, zr_obj_to_json, and hostile
    input (garbage, truncation at every length width, element counts that
    exceed the frame, nesting past ZR_CODEC_MAX_DEPTH, trailing bytes, and
    a deterministic random/mutation fuzz loop). Every rejection must come
    with a reason and without a crash or a sanitizer report.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"

//  Decodes the encoder's bytes; fails the test when they do not decode.
static zr_hdr_t *
s_decode_enc (zr_enc_t *enc)
{
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode (zr_enc_data (enc), zr_enc_size (enc),
                                   &err);
    if (!hdr)
        fail_msg ("decode failed: %s", err ? err : "?");
    return hdr;
}

//  Asserts that data is rejected with a non-empty reason; returns it.
static const char *
s_reject (const void *data, size_t size)
{
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode (data, size, &err);
    if (hdr) {
        char *json = zr_obj_to_json (zr_hdr_root (hdr));
        zr_hdr_destroy (&hdr);
        fail_msg ("%zu bytes decoded but should not have: %s", size, json);
    }
    assert_non_null (err);
    assert_true (strlen (err) > 0);
    return err;
}

static void
test_roundtrip_scalars (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    assert_non_null (enc);
    zr_enc_map (enc, 13);
    zr_enc_kstr (enc, "s", "hello");
    zr_enc_kstr (enc, "empty", "");
    zr_enc_str (enc, "null");
    zr_enc_str (enc, NULL);                 //  NULL encodes ""
    zr_enc_kint (enc, "zero", 0);
    zr_enc_kint (enc, "small", 7);
    zr_enc_kint (enc, "neg", -1);
    zr_enc_kint (enc, "negbig", -5000000000LL);
    zr_enc_kint (enc, "max", INT64_MAX);
    zr_enc_kint (enc, "min", INT64_MIN);
    zr_enc_kbool (enc, "t", true);
    zr_enc_kbool (enc, "f", false);
    zr_enc_str (enc, "nil");
    zr_enc_nil (enc);
    zr_enc_str (enc, "bin");
    zr_enc_bin (enc, "\x00\x01\x02", 3);

    zr_hdr_t *hdr = s_decode_enc (enc);
    const zr_obj_t *m = zr_hdr_root (hdr);
    assert_true (zr_obj_is_map (m));
    assert_int_equal (zr_obj_size (m), 13);

    const char *s;
    size_t len;
    assert_int_equal (zr_field_str (m, "s", &s, &len), ZR_FIELD_OK);
    assert_int_equal (len, 5);
    assert_memory_equal (s, "hello", 5);
    assert_int_equal (zr_field_str (m, "empty", &s, &len), ZR_FIELD_OK);
    assert_int_equal (len, 0);
    assert_int_equal (zr_field_str (m, "null", &s, &len), ZR_FIELD_OK);
    assert_int_equal (len, 0);

    int64_t v = 1;
    assert_int_equal (zr_field_int (m, "zero", &v), ZR_FIELD_OK);
    assert_true (v == 0);
    assert_int_equal (zr_field_int (m, "small", &v), ZR_FIELD_OK);
    assert_true (v == 7);
    assert_int_equal (zr_field_int (m, "neg", &v), ZR_FIELD_OK);
    assert_true (v == -1);
    assert_int_equal (zr_field_int (m, "negbig", &v), ZR_FIELD_OK);
    assert_true (v == -5000000000LL);
    assert_int_equal (zr_field_int (m, "max", &v), ZR_FIELD_OK);
    assert_true (v == INT64_MAX);
    assert_int_equal (zr_field_int (m, "min", &v), ZR_FIELD_OK);
    assert_true (v == INT64_MIN);

    bool b = false;
    assert_int_equal (zr_field_bool (m, "t", &b), ZR_FIELD_OK);
    assert_true (b);
    assert_int_equal (zr_field_bool (m, "f", &b), ZR_FIELD_OK);
    assert_false (b);

    assert_true (zr_obj_is_nil (zr_obj_get (m, "nil")));
    const void *data;
    assert_int_equal (zr_obj_bin (zr_obj_get (m, "bin"), &data, &len),
                      ZR_FIELD_OK);
    assert_int_equal (len, 3);
    assert_memory_equal (data, "\x00\x01\x02", 3);
    //  bin is not a str, str is not a bin
    assert_int_equal (zr_field_str (m, "bin", &s, &len), ZR_FIELD_TYPE);
    assert_int_equal (zr_obj_bin (zr_obj_get (m, "s"), &data, &len),
                      ZR_FIELD_TYPE);

    //  key/value access by index agrees with lookup by name
    const char *k;
    assert_int_equal (zr_obj_str (zr_obj_key_at (m, 0), &k, &len),
                      ZR_FIELD_OK);
    assert_int_equal (len, 1);
    assert_memory_equal (k, "s", 1);
    assert_ptr_equal (zr_obj_val_at (m, 0), zr_obj_get (m, "s"));
    assert_null (zr_obj_key_at (m, 13));
    assert_null (zr_obj_val_at (m, 13));
    assert_null (zr_obj_at (m, 0));         //  a map is not an array
    assert_null (zr_obj_get (m, "absent"));
    zr_hdr_destroy (&hdr);
    assert_null (hdr);
    zr_hdr_destroy (&hdr);                  //  idempotent

    //  reset empties the buffer; the encoder is reusable
    zr_enc_reset (enc);
    assert_int_equal (zr_enc_size (enc), 0);
    zr_enc_int (enc, 42);
    hdr = s_decode_enc (enc);
    assert_int_equal (zr_obj_int (zr_hdr_root (hdr), &v), ZR_FIELD_OK);
    assert_true (v == 42);
    zr_hdr_destroy (&hdr);

    //  zr_enc_frame copies the bytes
    zframe_t *frame = zr_enc_frame (enc);
    assert_non_null (frame);
    assert_int_equal (zframe_size (frame), zr_enc_size (enc));
    assert_memory_equal (zframe_data (frame), zr_enc_data (enc),
                         zr_enc_size (enc));
    zframe_destroy (&frame);
    zr_enc_destroy (&enc);
    assert_null (enc);
    zr_enc_destroy (&enc);
}

//  Integers in every msgpack encoding, hand-written.
static void
test_int_encodings (void **state)
{
    struct {
        const char *bytes;
        size_t size;
        int rc;
        int64_t value;
    } cases [] = {
        { "\x05", 1, ZR_FIELD_OK, 5 },
        { "\xff", 1, ZR_FIELD_OK, -1 },
        { "\xcc\xff", 2, ZR_FIELD_OK, 255 },
        { "\xcd\xff\xff", 3, ZR_FIELD_OK, 65535 },
        { "\xce\xff\xff\xff\xff", 5, ZR_FIELD_OK, 4294967295LL },
        { "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, ZR_FIELD_OK,
          INT64_MAX },
        { "\xd0\x80", 2, ZR_FIELD_OK, -128 },
        { "\xd0\x05", 2, ZR_FIELD_OK, 5 },
        { "\xd1\x80\x00", 3, ZR_FIELD_OK, -32768 },
        { "\xd2\x80\x00\x00\x00", 5, ZR_FIELD_OK, INT32_MIN },
        { "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, ZR_FIELD_OK,
          INT64_MIN },
        //  uint64 above INT64_MAX does not fit int64_t
        { "\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9, ZR_FIELD_TYPE, 0 },
        { "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, ZR_FIELD_TYPE, 0 },
        //  not ints
        { "\xc0", 1, ZR_FIELD_TYPE, 0 },
        { "\xc3", 1, ZR_FIELD_TYPE, 0 },
        { "\xa1" "1", 2, ZR_FIELD_TYPE, 0 },
        { "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9, ZR_FIELD_TYPE, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        const char *err = NULL;
        zr_hdr_t *hdr = zr_hdr_decode (cases [i].bytes, cases [i].size,
                                       &err);
        if (!hdr)
            fail_msg ("case %zu: %s", i, err);
        int64_t v = 12345;
        int rc = zr_obj_int (zr_hdr_root (hdr), &v);
        if (rc != cases [i].rc)
            fail_msg ("case %zu: rc %d, expected %d", i, rc, cases [i].rc);
        if (rc == ZR_FIELD_OK && v != cases [i].value)
            fail_msg ("case %zu: %" PRId64 ", expected %" PRId64, i, v,
                      cases [i].value);
        zr_hdr_destroy (&hdr);
    }
    int64_t v;
    assert_int_equal (zr_obj_int (NULL, &v), ZR_FIELD_MISSING);
}

static void
test_roundtrip_nested (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    //  {"list": [1, "two", [true, nil], {"k": "v"}], "map": {"a": {"b": -3}},
    //   "empty": [], "emap": {}}
    zr_enc_map (enc, 4);
    zr_enc_str (enc, "list");
    zr_enc_array (enc, 4);
    zr_enc_int (enc, 1);
    zr_enc_str (enc, "two");
    zr_enc_array (enc, 2);
    zr_enc_bool (enc, true);
    zr_enc_nil (enc);
    zr_enc_map (enc, 1);
    zr_enc_kstr (enc, "k", "v");
    zr_enc_str (enc, "map");
    zr_enc_map (enc, 1);
    zr_enc_str (enc, "a");
    zr_enc_map (enc, 1);
    zr_enc_kint (enc, "b", -3);
    zr_enc_str (enc, "empty");
    zr_enc_array (enc, 0);
    zr_enc_str (enc, "emap");
    zr_enc_map (enc, 0);

    zr_hdr_t *hdr = s_decode_enc (enc);
    const zr_obj_t *m = zr_hdr_root (hdr);
    const zr_obj_t *list = zr_obj_get (m, "list");
    assert_true (zr_obj_is_array (list));
    assert_int_equal (zr_obj_size (list), 4);
    int64_t v;
    assert_int_equal (zr_obj_int (zr_obj_at (list, 0), &v), ZR_FIELD_OK);
    assert_true (v == 1);
    const char *s;
    size_t len;
    assert_int_equal (zr_obj_str (zr_obj_at (list, 1), &s, &len),
                      ZR_FIELD_OK);
    assert_int_equal (len, 3);
    assert_memory_equal (s, "two", 3);
    const zr_obj_t *inner = zr_obj_at (list, 2);
    assert_true (zr_obj_is_array (inner));
    bool b = false;
    assert_int_equal (zr_obj_bool (zr_obj_at (inner, 0), &b), ZR_FIELD_OK);
    assert_true (b);
    assert_true (zr_obj_is_nil (zr_obj_at (inner, 1)));
    assert_null (zr_obj_at (inner, 2));
    char buf [8];
    assert_int_equal (zr_field_strbuf (zr_obj_at (list, 3), "k", buf,
                                       sizeof buf), ZR_FIELD_OK);
    assert_string_equal (buf, "v");
    assert_int_equal (zr_field_int (zr_obj_get (zr_obj_get (m, "map"), "a"),
                                    "b", &v), ZR_FIELD_OK);
    assert_true (v == -3);
    assert_true (zr_obj_is_array (zr_obj_get (m, "empty")));
    assert_int_equal (zr_obj_size (zr_obj_get (m, "empty")), 0);
    assert_true (zr_obj_is_map (zr_obj_get (m, "emap")));
    assert_int_equal (zr_obj_size (zr_obj_get (m, "emap")), 0);
    assert_int_equal (zr_obj_size (zr_obj_at (list, 1)), 0);  //  a str
    assert_null (zr_obj_get (list, "k"));   //  an array is not a map
    zr_hdr_destroy (&hdr);

    //  Raw bytes spliced into a message decode as part of it
    zr_enc_reset (enc);
    zr_enc_array (enc, 2);
    zr_enc_raw (enc, "\x93\x01\x02\x03", 4);
    zr_enc_raw (enc, "\xa2hi", 3);
    hdr = s_decode_enc (enc);
    assert_int_equal (zr_obj_size (zr_obj_at (zr_hdr_root (hdr), 0)), 3);
    assert_int_equal (zr_obj_str (zr_obj_at (zr_hdr_root (hdr), 1), &s,
                                  &len), ZR_FIELD_OK);
    assert_int_equal (len, 2);
    zr_hdr_destroy (&hdr);

    //  Long strings and bins use the 16- and 32-bit length forms
    size_t sizes [] = { 31, 32, 255, 256, 65535, 65536, 100000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes [0]; i++) {
        char *big = (char *) malloc (sizes [i]);
        for (size_t j = 0; j < sizes [i]; j++)
            big [j] = (char) ('a' + j % 26);
        zr_enc_reset (enc);
        zr_enc_map (enc, 2);
        zr_enc_str (enc, "s");
        zr_enc_strn (enc, big, sizes [i]);
        zr_enc_str (enc, "b");
        zr_enc_bin (enc, big, sizes [i]);
        hdr = s_decode_enc (enc);
        assert_int_equal (zr_field_str (zr_hdr_root (hdr), "s", &s, &len),
                          ZR_FIELD_OK);
        assert_int_equal (len, sizes [i]);
        assert_memory_equal (s, big, len);
        const void *data;
        assert_int_equal (zr_obj_bin (zr_obj_get (zr_hdr_root (hdr), "b"),
                                      &data, &len), ZR_FIELD_OK);
        assert_int_equal (len, sizes [i]);
        assert_memory_equal (data, big, len);
        zr_hdr_destroy (&hdr);
        free (big);
    }
    zr_enc_destroy (&enc);
}

static void
test_field_helpers (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    zr_enc_map (enc, 7);
    zr_enc_kstr (enc, "name", "orders");
    zr_enc_kint (enc, "n", 12);
    zr_enc_kbool (enc, "flag", true);
    zr_enc_str (enc, "nil");
    zr_enc_nil (enc);
    zr_enc_str (enc, "nul");
    zr_enc_strn (enc, "ab\0cd", 5);
    zr_enc_kstr (enc, "eight", "12345678");
    zr_enc_int (enc, 99);                   //  a non-string key
    zr_enc_str (enc, "int-key");
    zr_hdr_t *hdr = s_decode_enc (enc);
    const zr_obj_t *m = zr_hdr_root (hdr);

    const char *s;
    size_t len;
    int64_t v;
    bool b;
    //  missing
    assert_int_equal (zr_field_str (m, "absent", &s, &len),
                      ZR_FIELD_MISSING);
    assert_int_equal (zr_field_int (m, "absent", &v), ZR_FIELD_MISSING);
    assert_int_equal (zr_field_bool (m, "absent", &b), ZR_FIELD_MISSING);
    //  nil counts as missing
    assert_int_equal (zr_field_str (m, "nil", &s, &len), ZR_FIELD_MISSING);
    assert_int_equal (zr_field_int (m, "nil", &v), ZR_FIELD_MISSING);
    assert_int_equal (zr_field_bool (m, "nil", &b), ZR_FIELD_MISSING);
    assert_null (zr_field_strdup (m, "nil"));
    char buf [16] = "untouched";
    assert_int_equal (zr_field_strbuf (m, "nil", buf, sizeof buf),
                      ZR_FIELD_MISSING);
    //  wrong type
    assert_int_equal (zr_field_str (m, "n", &s, &len), ZR_FIELD_TYPE);
    assert_int_equal (zr_field_int (m, "name", &v), ZR_FIELD_TYPE);
    assert_int_equal (zr_field_bool (m, "n", &b), ZR_FIELD_TYPE);
    assert_int_equal (zr_field_int (m, "flag", &v), ZR_FIELD_TYPE);
    assert_null (zr_field_strdup (m, "n"));
    assert_int_equal (zr_field_strbuf (m, "n", buf, sizeof buf),
                      ZR_FIELD_TYPE);
    //  right type
    char *dup = zr_field_strdup (m, "name");
    assert_non_null (dup);
    assert_string_equal (dup, "orders");
    free (dup);
    assert_int_equal (zr_field_int (m, "n", &v), ZR_FIELD_OK);
    assert_true (v == 12);
    //  non-string keys are skipped by lookup, not matched
    assert_null (zr_obj_get (m, "99"));
    //  lookups on a non-map
    assert_null (zr_obj_get (zr_obj_get (m, "name"), "x"));
    assert_int_equal (zr_field_int (NULL, "n", &v), ZR_FIELD_MISSING);

    //  strbuf: exact fit (8 chars + NUL in 9), overflow by one, embedded NUL
    char nine [9];
    assert_int_equal (zr_field_strbuf (m, "eight", nine, sizeof nine),
                      ZR_FIELD_OK);
    assert_string_equal (nine, "12345678");
    char eight [8];
    memset (eight, 'x', sizeof eight);
    assert_int_equal (zr_field_strbuf (m, "eight", eight, sizeof eight),
                      ZR_FIELD_TYPE);
    char one [1];
    assert_int_equal (zr_field_strbuf (m, "name", one, sizeof one),
                      ZR_FIELD_TYPE);
    assert_int_equal (zr_field_strbuf (m, "nul", buf, sizeof buf),
                      ZR_FIELD_TYPE);
    //  strdup of a string with a NUL keeps its length in memory; the str
    //  view gives the real length
    assert_int_equal (zr_field_str (m, "nul", &s, &len), ZR_FIELD_OK);
    assert_int_equal (len, 5);
    zr_hdr_destroy (&hdr);
    zr_enc_destroy (&enc);
}

//  Every way a length or count can run past the frame.
static void
test_malformed (void **state)
{
    const char *err;
    err = s_reject (NULL, 0);
    err = s_reject ("", 0);
    assert_non_null (strstr (err, "empty"));
    err = s_reject ("\xc1", 1);
    assert_non_null (strstr (err, "invalid"));
    s_reject ("\x81\xa1k\xc1", 4);          //  0xc1 nested in a map

    //  truncated scalars
    s_reject ("\xcc", 1);
    s_reject ("\xcd\x01", 2);
    s_reject ("\xce\x01\x02\x03", 4);
    s_reject ("\xcf\x01\x02\x03\x04\x05\x06\x07", 8);
    s_reject ("\xd3\x01", 2);
    s_reject ("\xcb\x00\x00", 3);
    //  truncated str: fixstr, str8, str16, str32 (length field and payload)
    s_reject ("\xa5" "abcd", 5);
    s_reject ("\xd9", 1);
    s_reject ("\xd9\x05" "abcd", 6);
    s_reject ("\xda\x00", 2);
    s_reject ("\xda\x00\x05" "abcd", 7);
    s_reject ("\xdb\x00\x00\x00", 4);
    s_reject ("\xdb\x00\x00\x00\x05" "abcd", 9);
    s_reject ("\xdb\xff\xff\xff\xff", 5);
    //  truncated bin8/16/32
    s_reject ("\xc4", 1);
    s_reject ("\xc4\x03\x01\x02", 4);
    s_reject ("\xc5\x00", 2);
    s_reject ("\xc5\x00\x03\x01", 4);
    s_reject ("\xc6\x00\x00", 3);
    s_reject ("\xc6\x00\x00\x00\x03\x01\x02", 7);
    s_reject ("\xc6\xff\xff\xff\xff", 5);
    //  truncated ext
    s_reject ("\xd4\x01", 2);
    s_reject ("\xc7\x02\x01\x00", 4);
    s_reject ("\xc9\x00\x00\x00\x02", 5);
    //  truncated array: fixarray, array16, array32
    s_reject ("\x92\x01", 2);
    s_reject ("\xdc\x00", 2);
    s_reject ("\xdc\x00\x03\x01\x02", 5);
    s_reject ("\xdd\x00\x00\x00", 4);
    s_reject ("\xdd\x00\x00\x00\x02\x01", 6);
    //  array32 claiming 2^32-1 elements in a 5-byte frame
    err = s_reject ("\xdd\xff\xff\xff\xff", 5);
    assert_non_null (strstr (err, "count"));
    //  truncated map: fixmap, map16, map32 (a key without its value too)
    s_reject ("\x81", 1);
    s_reject ("\x81\xa1k", 3);
    s_reject ("\xde\x00", 2);
    s_reject ("\xde\x00\x01\xa1k", 5);
    s_reject ("\xdf\x00\x00\x00", 4);
    s_reject ("\xdf\x00\x00\x00\x01\xa1k", 7);
    s_reject ("\xdf\xff\xff\xff\xff", 5);
    s_reject ("\xdf\x80\x00\x00\x00\x01\x01", 7);

    //  trailing bytes after a valid value
    err = s_reject ("\x80\x80", 2);
    assert_non_null (strstr (err, "trailing"));
    s_reject ("\x01\x02", 2);
    s_reject ("\x81\xa1k\x01\x00", 5);
}

//  Nesting: ZR_CODEC_MAX_DEPTH levels of maps are fine, more are not.
static void
test_depth (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    for (int levels = 1; levels <= ZR_CODEC_MAX_DEPTH + 4; levels++) {
        zr_enc_reset (enc);
        for (int i = 0; i < levels; i++) {
            zr_enc_map (enc, 1);
            zr_enc_str (enc, "k");
        }
        zr_enc_int (enc, 1);
        const char *err = NULL;
        zr_hdr_t *hdr = zr_hdr_decode (zr_enc_data (enc), zr_enc_size (enc),
                                       &err);
        if (levels <= ZR_CODEC_MAX_DEPTH) {
            if (!hdr)
                fail_msg ("%d levels rejected: %s", levels, err);
        }
        else {
            if (hdr)
                fail_msg ("%d levels accepted (max %d)", levels,
                          ZR_CODEC_MAX_DEPTH);
            assert_non_null (strstr (err, "deep"));
        }
        zr_hdr_destroy (&hdr);
    }
    //  a deep array bomb: 100000 nested one-element arrays
    size_t size = 100001;
    uint8_t *bomb = (uint8_t *) malloc (size);
    memset (bomb, 0x91, size - 1);
    bomb [size - 1] = 0x01;
    const char *err = s_reject (bomb, size);
    assert_non_null (strstr (err, "deep"));
    free (bomb);
    zr_enc_destroy (&enc);
}

static void
test_to_json (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    zr_enc_map (enc, 8);
    zr_enc_kstr (enc, "s", "a\"b\\c\n");
    zr_enc_kint (enc, "i", -42);
    zr_enc_kint (enc, "u", 7);
    zr_enc_kbool (enc, "t", true);
    zr_enc_str (enc, "n");
    zr_enc_nil (enc);
    zr_enc_str (enc, "a");
    zr_enc_array (enc, 2);
    zr_enc_int (enc, 1);
    zr_enc_bool (enc, false);
    zr_enc_str (enc, "m");
    zr_enc_map (enc, 0);
    zr_enc_str (enc, "b");
    zr_enc_bin (enc, "xyz", 3);
    zr_hdr_t *hdr = s_decode_enc (enc);
    char *json = zr_obj_to_json (zr_hdr_root (hdr));
    assert_non_null (json);
    assert_string_equal (json,
        "{\"s\":\"a\\\"b\\\\c\\u000a\",\"i\":-42,\"u\":7,\"t\":true,"
        "\"n\":null,\"a\":[1,false],\"m\":{},\"b\":\"<3 bytes>\"}");
    free (json);
    zr_hdr_destroy (&hdr);

    json = zr_obj_to_json (NULL);
    assert_string_equal (json, "null");
    free (json);

    //  float
    const char *err = NULL;
    hdr = zr_hdr_decode ("\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9, &err);
    assert_non_null (hdr);
    json = zr_obj_to_json (zr_hdr_root (hdr));
    assert_string_equal (json, "1.5");
    free (json);
    zr_hdr_destroy (&hdr);
    zr_enc_destroy (&enc);
}

//  An ext value prints its length like bin does. (zr_obj_to_json once
//  read via.bin.size for MSGPACK_OBJECT_EXT, whose union member is laid
//  out { int8_t type; uint32_t size; ... }, and printed the type byte
//  plus padding instead of the size.)
static void
test_to_json_ext (void **state)
{
    //  fixext 4, type 5, 4 bytes of data
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode ("\xd6\x05\x01\x02\x03\x04", 6, &err);
    assert_non_null (hdr);
    char *json = zr_obj_to_json (zr_hdr_root (hdr));
    assert_non_null (json);
    if (!strstr (json, "4 bytes"))
        fail_msg ("ext of 4 bytes printed as %s", json);
    free (json);
    zr_hdr_destroy (&hdr);
}

//  A tiny deterministic PRNG (xorshift64*), so failures reproduce.
static uint64_t s_rng = 0x9E3779B97F4A7C15ULL;

static uint64_t
s_rand (void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545F4914F6CDD1DULL;
}

//  Decodes data; it must fail with a reason or yield a value that we can
//  walk and print.
static int
s_fuzz_one (const uint8_t *data, size_t size)
{
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode (data, size, &err);
    if (!hdr) {
        if (!err || !*err)
            fail_msg ("rejected without a reason");
        return 0;
    }
    const zr_obj_t *root = zr_hdr_root (hdr);
    //  read the fields a broker would read
    int64_t v;
    char buf [32];
    zr_field_int (root, "rid", &v);
    zr_field_strbuf (root, "cmd", buf, sizeof buf);
    char *json = zr_obj_to_json (root);
    if (!json)
        fail_msg ("to_json returned NULL");
    free (json);
    zr_hdr_destroy (&hdr);
    return 1;
}

static void
test_fuzz (void **state)
{
    //  A valid request header to mutate
    zr_enc_t *enc = zr_enc_new ();
    zr_enc_map (enc, 7);
    zr_enc_kint (enc, "v", 1);
    zr_enc_kstr (enc, "cmd", "SEND");
    zr_enc_kint (enc, "rid", 123456789);
    zr_enc_kstr (enc, "topic", "orders");
    zr_enc_kint (enc, "queue", -1);
    zr_enc_str (enc, "props");
    zr_enc_map (enc, 2);
    zr_enc_kstr (enc, "a", "b");
    zr_enc_str (enc, "list");
    zr_enc_array (enc, 3);
    zr_enc_int (enc, 70000);
    zr_enc_bin (enc, "zz", 2);
    zr_enc_nil (enc);
    zr_enc_kbool (enc, "oneway", false);
    size_t base_size = zr_enc_size (enc);
    uint8_t base [256];
    assert_true (base_size <= sizeof base);
    memcpy (base, zr_enc_data (enc), base_size);
    assert_int_equal (s_fuzz_one (base, base_size), 1);

    //  Interesting bytes: type bytes whose lengths matter most
    static const uint8_t special [] = {
        0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xd9, 0xda, 0xdb,
        0xdc, 0xdd, 0xde, 0xdf, 0xff, 0x00, 0x7f, 0x80, 0x8f, 0x90,
        0x9f, 0xa0, 0xbf
    };
    uint8_t frame [512];
    int decoded = 0, rejected = 0;
    const int rounds = 200000;
    for (int i = 0; i < rounds; i++) {
        size_t size;
        uint64_t r = s_rand ();
        switch (i % 4) {
            case 0: {               //  random short frame
                size = 1 + (size_t) (r % 24);
                for (size_t j = 0; j < size; j++)
                    frame [j] = (uint8_t) s_rand ();
                break;
            }
            case 1: {               //  bit flips in the valid header
                memcpy (frame, base, base_size);
                size = base_size;
                int flips = 1 + (int) (r % 4);
                for (int j = 0; j < flips; j++) {
                    uint64_t x = s_rand ();
                    frame [x % size] ^= (uint8_t) (1u << ((x >> 32) % 8));
                }
                break;
            }
            case 2: {               //  truncation (with a byte replaced)
                size = (size_t) (r % base_size);
                if (size == 0)
                    size = 1;
                memcpy (frame, base, size);
                if ((r >> 32) & 1)
                    frame [(r >> 40) % size] =
                        special [(r >> 16) % sizeof special];
                break;
            }
            default: {              //  special bytes spliced in, extension
                memcpy (frame, base, base_size);
                size = base_size;
                int n = 1 + (int) (r % 3);
                for (int j = 0; j < n; j++) {
                    uint64_t x = s_rand ();
                    frame [x % size] = special [(x >> 32) % sizeof special];
                }
                if ((r >> 48) & 1) {    //  append random bytes
                    size_t extra = (size_t) ((r >> 8) % 16);
                    for (size_t j = 0; j < extra; j++)
                        frame [size++] = (uint8_t) s_rand ();
                }
                break;
            }
        }
        if (s_fuzz_one (frame, size))
            decoded++;
        else
            rejected++;
    }
    assert_int_equal (decoded + rejected, rounds);
    //  both outcomes happen, so the loop explores something
    assert_true (decoded > 100);
    assert_true (rejected > 100);
    zr_enc_destroy (&enc);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_roundtrip_scalars),
        cmocka_unit_test (test_int_encodings),
        cmocka_unit_test (test_roundtrip_nested),
        cmocka_unit_test (test_field_helpers),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_depth),
        cmocka_unit_test (test_to_json),
        cmocka_unit_test (test_to_json_ext),
        cmocka_unit_test (test_fuzz),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
