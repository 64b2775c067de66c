/*  transport/codec.h - msgpack frame codec for the zrocket wire protocol.

    A request or reply header is one msgpack map (docs/protocol.md). The
    decoder validates a frame before msgpack-c sees it (every length and
    element count is checked against the bytes left, nesting is bounded)
    so nothing from the network can make it allocate without bound or
    crash. Decoded values are read through zr_obj_t views that live as
    long as their zr_hdr_t.

    The encoder writes msgpack into a growable buffer that is reused
    between messages.
*/
#ifndef ZR_CODEC_H_INCLUDED
#define ZR_CODEC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <czmq.h>

//  Field lookup results (negative, shared by callers).
#define ZR_FIELD_OK 0
#define ZR_FIELD_MISSING -1
#define ZR_FIELD_TYPE -2

//  Most nesting the decoder accepts (maps in arrays in maps...).
#define ZR_CODEC_MAX_DEPTH 8

typedef struct _zr_hdr_t zr_hdr_t;
typedef struct _zr_obj_t zr_obj_t;     //  view of one decoded value

//  Decodes one msgpack value from data. Returns NULL and sets *err to a
//  static human reason when the bytes are not exactly one valid msgpack
//  value (garbage, truncated, trailing bytes, too deep). The caller
//  destroys the result. Strings and binaries point into data (msgpack-c
//  does not copy them): keep data alive as long as the result.
zr_hdr_t *
    zr_hdr_decode (const void *data, size_t size, const char **err);

void
    zr_hdr_destroy (zr_hdr_t **self_p);

//  Root value of a decoded header (borrowed).
const zr_obj_t *
    zr_hdr_root (zr_hdr_t *self);

//  Type tests.
bool zr_obj_is_map (const zr_obj_t *o);
bool zr_obj_is_array (const zr_obj_t *o);
bool zr_obj_is_str (const zr_obj_t *o);
bool zr_obj_is_nil (const zr_obj_t *o);

//  Value of key in a map (string keys only), or NULL when o is not a map
//  or has no such key.
const zr_obj_t *
    zr_obj_get (const zr_obj_t *map, const char *key);

//  Elements of an array or map (0 for other types).
size_t zr_obj_size (const zr_obj_t *o);
//  Element i of an array, or NULL.
const zr_obj_t *zr_obj_at (const zr_obj_t *array, size_t i);
//  Key and value of entry i of a map, or NULL.
const zr_obj_t *zr_obj_key_at (const zr_obj_t *map, size_t i);
const zr_obj_t *zr_obj_val_at (const zr_obj_t *map, size_t i);

//  Scalar reads: return ZR_FIELD_OK, or ZR_FIELD_TYPE when o has another
//  type (ZR_FIELD_MISSING when o is NULL). Strings are not NUL-
//  terminated: use the length. zr_obj_int accepts msgpack positive and
//  negative ints that fit int64_t.
int zr_obj_str (const zr_obj_t *o, const char **s, size_t *len);
int zr_obj_bin (const zr_obj_t *o, const void **data, size_t *len);
int zr_obj_int (const zr_obj_t *o, int64_t *v);
int zr_obj_bool (const zr_obj_t *o, bool *v);

//  Same, looked up by key in a map.
int zr_field_str (const zr_obj_t *map, const char *key,
                  const char **s, size_t *len);
int zr_field_int (const zr_obj_t *map, const char *key, int64_t *v);
int zr_field_bool (const zr_obj_t *map, const char *key, bool *v);

//  Copies a string field into a fresh NUL-terminated string (caller
//  frees), or NULL when missing or not a string.
char *zr_field_strdup (const zr_obj_t *map, const char *key);

//  Copies a string field into buf (size bytes, NUL-terminated). Returns
//  ZR_FIELD_OK, ZR_FIELD_MISSING, or ZR_FIELD_TYPE (also when the string
//  does not fit or contains a NUL).
int zr_field_strbuf (const zr_obj_t *map, const char *key,
                     char *buf, size_t size);

//  --------------------------------------------------------------------
//  Encoder

typedef struct _zr_enc_t zr_enc_t;

zr_enc_t *zr_enc_new (void);
void zr_enc_destroy (zr_enc_t **self_p);
//  Empties the buffer for the next message.
void zr_enc_reset (zr_enc_t *self);

void zr_enc_map (zr_enc_t *self, size_t entries);
void zr_enc_array (zr_enc_t *self, size_t elements);
void zr_enc_str (zr_enc_t *self, const char *s);   //  NULL encodes ""
void zr_enc_strn (zr_enc_t *self, const char *s, size_t len);
void zr_enc_int (zr_enc_t *self, int64_t v);
void zr_enc_bool (zr_enc_t *self, bool v);
void zr_enc_nil (zr_enc_t *self);
void zr_enc_bin (zr_enc_t *self, const void *data, size_t len);
//  Appends bytes that already are msgpack (one or more values).
void zr_enc_raw (zr_enc_t *self, const void *data, size_t len);

//  Key/value shorthands for maps.
void zr_enc_kstr (zr_enc_t *self, const char *key, const char *v);
void zr_enc_kint (zr_enc_t *self, const char *key, int64_t v);
void zr_enc_kbool (zr_enc_t *self, const char *key, bool v);

//  Encoded bytes (borrowed until the next call) and their size.
const void *zr_enc_data (zr_enc_t *self);
size_t zr_enc_size (zr_enc_t *self);
//  A new frame holding a copy of the encoded bytes.
zframe_t *zr_enc_frame (zr_enc_t *self);

//  Writes a msgpack value as JSON-like text into a new string (caller
//  frees), for logs and `zrocket stats`; binary values print as their
//  length.
char *zr_obj_to_json (const zr_obj_t *o);

#endif
