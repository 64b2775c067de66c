/*  transport/codec.c - msgpack frame codec (see codec.h).

    zr_hdr_decode first walks the bytes with s_check, which proves the
    frame is exactly one msgpack value whose every length and element
    count fits in the bytes that are left, nested at most
    ZR_CODEC_MAX_DEPTH deep. Only then does msgpack-c unpack it, so a
    hostile frame cannot make msgpack-c reserve memory for elements that
    are not there.
*/
#include <msgpack.h>
#include "transport/codec.h"

struct _zr_hdr_t {
    msgpack_unpacked unpacked;
};

struct _zr_enc_t {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
};

//  zr_obj_t is msgpack_object seen through an opaque name.
#define OBJ(o) ((const msgpack_object *) (o))

static uint64_t
s_be (const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

//  Returns NULL when data[0..size) is exactly one well-formed msgpack
//  value, else a reason.
static const char *
s_check (const uint8_t *data, size_t size)
{
    //  pending [d] = values still to read at depth d
    uint64_t pending [ZR_CODEC_MAX_DEPTH + 2];
    int depth = 0;
    pending [0] = 1;
    size_t pos = 0;

    while (depth >= 0) {
        if (pending [depth] == 0) {
            depth--;
            continue;
        }
        pending [depth]--;
        if (pos >= size)
            return "truncated msgpack";
        uint8_t b = data [pos++];
        size_t left = size - pos;
        uint64_t skip = 0;          //  bytes of payload to skip
        uint64_t children = 0;      //  nested values to read
        size_t lenbytes = 0;        //  size of a length field
        int kind = 0;               //  0 scalar, 1 bytes, 2 array, 3 map

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else
        if (b >= 0x80 && b <= 0x8f) {
            kind = 3;
            children = b & 0x0f;
        }
        else
        if (b >= 0x90 && b <= 0x9f) {
            kind = 2;
            children = b & 0x0f;
        }
        else
        if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else
        switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; kind = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; kind = 1; break;
            case 0xc6: case 0xdb: lenbytes = 4; kind = 1; break;
            case 0xc7: lenbytes = 1; kind = 1; skip = 1; break;
            case 0xc8: lenbytes = 2; kind = 1; skip = 1; break;
            case 0xc9: lenbytes = 4; kind = 1; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: lenbytes = 2; kind = 2; break;
            case 0xdd: lenbytes = 4; kind = 2; break;
            case 0xde: lenbytes = 2; kind = 3; break;
            case 0xdf: lenbytes = 4; kind = 3; break;
            default:
                return "invalid msgpack type byte";
        }
        if (lenbytes) {
            if (lenbytes > left)
                return "truncated msgpack length";
            uint64_t n = s_be (data + pos, lenbytes);
            pos += lenbytes;
            left -= lenbytes;
            if (kind == 1)
                skip += n;
            else
                children = n;
        }
        if (skip > left)
            return "truncated msgpack value";
        pos += skip;
        if (kind == 2 || kind == 3) {
            if (kind == 3)
                children *= 2;
            //  every element takes at least one byte
            if (children > size - pos)
                return "msgpack element count exceeds frame";
            if (children) {
                if (depth + 1 > ZR_CODEC_MAX_DEPTH)
                    return "msgpack nested too deep";
                pending [++depth] = children;
            }
        }
    }
    if (pos != size)
        return "trailing bytes after msgpack value";
    return NULL;
}

zr_hdr_t *
zr_hdr_decode (const void *data, size_t size, const char **err)
{
    const char *reason = NULL;
    if (!data || size == 0)
        reason = "empty frame";
    else
        reason = s_check ((const uint8_t *) data, size);
    if (reason) {
        if (err)
            *err = reason;
        return NULL;
    }
    zr_hdr_t *self = (zr_hdr_t *) zmalloc (sizeof (zr_hdr_t));
    msgpack_unpacked_init (&self->unpacked);
    size_t off = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (
        &self->unpacked, (const char *) data, size, &off);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != size) {
        if (err)
            *err = "msgpack decode failed";
        zr_hdr_destroy (&self);
        return NULL;
    }
    return self;
}

void
zr_hdr_destroy (zr_hdr_t **self_p)
{
    if (self_p && *self_p) {
        msgpack_unpacked_destroy (&(*self_p)->unpacked);
        free (*self_p);
        *self_p = NULL;
    }
}

const zr_obj_t *
zr_hdr_root (zr_hdr_t *self)
{
    return (const zr_obj_t *) &self->unpacked.data;
}

bool
zr_obj_is_map (const zr_obj_t *o)
{
    return o && OBJ (o)->type == MSGPACK_OBJECT_MAP;
}

bool
zr_obj_is_array (const zr_obj_t *o)
{
    return o && OBJ (o)->type == MSGPACK_OBJECT_ARRAY;
}

bool
zr_obj_is_str (const zr_obj_t *o)
{
    return o && OBJ (o)->type == MSGPACK_OBJECT_STR;
}

bool
zr_obj_is_nil (const zr_obj_t *o)
{
    return o && OBJ (o)->type == MSGPACK_OBJECT_NIL;
}

const zr_obj_t *
zr_obj_get (const zr_obj_t *map, const char *key)
{
    if (!zr_obj_is_map (map))
        return NULL;
    size_t keylen = strlen (key);
    const msgpack_object_map *m = &OBJ (map)->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == keylen
        &&  memcmp (k->via.str.ptr, key, keylen) == 0)
            return (const zr_obj_t *) &m->ptr [i].val;
    }
    return NULL;
}

size_t
zr_obj_size (const zr_obj_t *o)
{
    if (zr_obj_is_map (o))
        return OBJ (o)->via.map.size;
    if (zr_obj_is_array (o))
        return OBJ (o)->via.array.size;
    return 0;
}

const zr_obj_t *
zr_obj_at (const zr_obj_t *array, size_t i)
{
    if (!zr_obj_is_array (array) || i >= OBJ (array)->via.array.size)
        return NULL;
    return (const zr_obj_t *) &OBJ (array)->via.array.ptr [i];
}

const zr_obj_t *
zr_obj_key_at (const zr_obj_t *map, size_t i)
{
    if (!zr_obj_is_map (map) || i >= OBJ (map)->via.map.size)
        return NULL;
    return (const zr_obj_t *) &OBJ (map)->via.map.ptr [i].key;
}

const zr_obj_t *
zr_obj_val_at (const zr_obj_t *map, size_t i)
{
    if (!zr_obj_is_map (map) || i >= OBJ (map)->via.map.size)
        return NULL;
    return (const zr_obj_t *) &OBJ (map)->via.map.ptr [i].val;
}

int
zr_obj_str (const zr_obj_t *o, const char **s, size_t *len)
{
    if (!o)
        return ZR_FIELD_MISSING;
    if (OBJ (o)->type != MSGPACK_OBJECT_STR)
        return ZR_FIELD_TYPE;
    *s = OBJ (o)->via.str.ptr;
    *len = OBJ (o)->via.str.size;
    return ZR_FIELD_OK;
}

int
zr_obj_bin (const zr_obj_t *o, const void **data, size_t *len)
{
    if (!o)
        return ZR_FIELD_MISSING;
    if (OBJ (o)->type != MSGPACK_OBJECT_BIN)
        return ZR_FIELD_TYPE;
    *data = OBJ (o)->via.bin.ptr;
    *len = OBJ (o)->via.bin.size;
    return ZR_FIELD_OK;
}

int
zr_obj_int (const zr_obj_t *o, int64_t *v)
{
    if (!o)
        return ZR_FIELD_MISSING;
    if (OBJ (o)->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (OBJ (o)->via.u64 > (uint64_t) INT64_MAX)
            return ZR_FIELD_TYPE;
        *v = (int64_t) OBJ (o)->via.u64;
        return ZR_FIELD_OK;
    }
    if (OBJ (o)->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = OBJ (o)->via.i64;
        return ZR_FIELD_OK;
    }
    return ZR_FIELD_TYPE;
}

int
zr_obj_bool (const zr_obj_t *o, bool *v)
{
    if (!o)
        return ZR_FIELD_MISSING;
    if (OBJ (o)->type != MSGPACK_OBJECT_BOOLEAN)
        return ZR_FIELD_TYPE;
    *v = OBJ (o)->via.boolean;
    return ZR_FIELD_OK;
}

//  A nil value counts as missing for the field helpers: protocol.md says
//  nil means "not given".
static const zr_obj_t *
s_field (const zr_obj_t *map, const char *key)
{
    const zr_obj_t *o = zr_obj_get (map, key);
    return zr_obj_is_nil (o) ? NULL : o;
}

int
zr_field_str (const zr_obj_t *map, const char *key, const char **s,
              size_t *len)
{
    return zr_obj_str (s_field (map, key), s, len);
}

int
zr_field_int (const zr_obj_t *map, const char *key, int64_t *v)
{
    return zr_obj_int (s_field (map, key), v);
}

int
zr_field_bool (const zr_obj_t *map, const char *key, bool *v)
{
    return zr_obj_bool (s_field (map, key), v);
}

char *
zr_field_strdup (const zr_obj_t *map, const char *key)
{
    const char *s;
    size_t len;
    if (zr_field_str (map, key, &s, &len) != ZR_FIELD_OK)
        return NULL;
    char *copy = (char *) malloc (len + 1);
    if (copy) {
        memcpy (copy, s, len);
        copy [len] = 0;
    }
    return copy;
}

int
zr_field_strbuf (const zr_obj_t *map, const char *key, char *buf,
                 size_t size)
{
    const char *s;
    size_t len;
    int rc = zr_field_str (map, key, &s, &len);
    if (rc != ZR_FIELD_OK)
        return rc;
    if (len >= size || memchr (s, 0, len))
        return ZR_FIELD_TYPE;
    memcpy (buf, s, len);
    buf [len] = 0;
    return ZR_FIELD_OK;
}

//  --------------------------------------------------------------------
//  Encoder

zr_enc_t *
zr_enc_new (void)
{
    zr_enc_t *self = (zr_enc_t *) zmalloc (sizeof (zr_enc_t));
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, &self->buffer,
                         msgpack_sbuffer_write);
    return self;
}

void
zr_enc_destroy (zr_enc_t **self_p)
{
    if (self_p && *self_p) {
        msgpack_sbuffer_destroy (&(*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}

void
zr_enc_reset (zr_enc_t *self)
{
    msgpack_sbuffer_clear (&self->buffer);
}

void
zr_enc_map (zr_enc_t *self, size_t entries)
{
    msgpack_pack_map (&self->packer, entries);
}

void
zr_enc_array (zr_enc_t *self, size_t elements)
{
    msgpack_pack_array (&self->packer, elements);
}

void
zr_enc_strn (zr_enc_t *self, const char *s, size_t len)
{
    msgpack_pack_str (&self->packer, len);
    if (len)
        msgpack_pack_str_body (&self->packer, s, len);
}

void
zr_enc_str (zr_enc_t *self, const char *s)
{
    zr_enc_strn (self, s ? s : "", s ? strlen (s) : 0);
}

void
zr_enc_int (zr_enc_t *self, int64_t v)
{
    msgpack_pack_int64 (&self->packer, v);
}

void
zr_enc_bool (zr_enc_t *self, bool v)
{
    if (v)
        msgpack_pack_true (&self->packer);
    else
        msgpack_pack_false (&self->packer);
}

void
zr_enc_nil (zr_enc_t *self)
{
    msgpack_pack_nil (&self->packer);
}

void
zr_enc_bin (zr_enc_t *self, const void *data, size_t len)
{
    msgpack_pack_bin (&self->packer, len);
    if (len)
        msgpack_pack_bin_body (&self->packer, data, len);
}

void
zr_enc_raw (zr_enc_t *self, const void *data, size_t len)
{
    if (len)
        msgpack_sbuffer_write (&self->buffer, (const char *) data, len);
}

void
zr_enc_kstr (zr_enc_t *self, const char *key, const char *v)
{
    zr_enc_str (self, key);
    zr_enc_str (self, v);
}

void
zr_enc_kint (zr_enc_t *self, const char *key, int64_t v)
{
    zr_enc_str (self, key);
    zr_enc_int (self, v);
}

void
zr_enc_kbool (zr_enc_t *self, const char *key, bool v)
{
    zr_enc_str (self, key);
    zr_enc_bool (self, v);
}

const void *
zr_enc_data (zr_enc_t *self)
{
    return self->buffer.data;
}

size_t
zr_enc_size (zr_enc_t *self)
{
    return self->buffer.size;
}

zframe_t *
zr_enc_frame (zr_enc_t *self)
{
    return zframe_new (self->buffer.data, self->buffer.size);
}

//  --------------------------------------------------------------------
//  JSON-ish text for logs and the CLI

static void
s_json_str (zchunk_t *out, const char *s, size_t len)
{
    zchunk_extend (out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s [i];
        char esc [8];
        if (c == '"' || c == '\\') {
            esc [0] = '\\';
            esc [1] = (char) c;
            zchunk_extend (out, esc, 2);
        }
        else
        if (c < 0x20) {
            snprintf (esc, sizeof esc, "\\u%04x", c);
            zchunk_extend (out, esc, 6);
        }
        else
            zchunk_extend (out, &s [i], 1);
    }
    zchunk_extend (out, "\"", 1);
}

static void
s_json (zchunk_t *out, const msgpack_object *o)
{
    char num [64];
    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            zchunk_extend (out, "null", 4);
            break;
        case MSGPACK_OBJECT_BOOLEAN:
            if (o->via.boolean)
                zchunk_extend (out, "true", 4);
            else
                zchunk_extend (out, "false", 5);
            break;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            snprintf (num, sizeof num, "%" PRIu64, o->via.u64);
            zchunk_extend (out, num, strlen (num));
            break;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            snprintf (num, sizeof num, "%" PRId64, o->via.i64);
            zchunk_extend (out, num, strlen (num));
            break;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            snprintf (num, sizeof num, "%g", o->via.f64);
            zchunk_extend (out, num, strlen (num));
            break;
        case MSGPACK_OBJECT_STR:
            s_json_str (out, o->via.str.ptr, o->via.str.size);
            break;
        case MSGPACK_OBJECT_ARRAY:
            zchunk_extend (out, "[", 1);
            for (uint32_t i = 0; i < o->via.array.size; i++) {
                if (i)
                    zchunk_extend (out, ",", 1);
                s_json (out, &o->via.array.ptr [i]);
            }
            zchunk_extend (out, "]", 1);
            break;
        case MSGPACK_OBJECT_MAP:
            zchunk_extend (out, "{", 1);
            for (uint32_t i = 0; i < o->via.map.size; i++) {
                if (i)
                    zchunk_extend (out, ",", 1);
                s_json (out, &o->via.map.ptr [i].key);
                zchunk_extend (out, ":", 1);
                s_json (out, &o->via.map.ptr [i].val);
            }
            zchunk_extend (out, "}", 1);
            break;
        case MSGPACK_OBJECT_BIN:
            snprintf (num, sizeof num, "\"<%u bytes>\"", o->via.bin.size);
            zchunk_extend (out, num, strlen (num));
            break;
        default:
            snprintf (num, sizeof num, "\"<ext %u bytes>\"",
                      o->via.ext.size);
            zchunk_extend (out, num, strlen (num));
            break;
    }
}

char *
zr_obj_to_json (const zr_obj_t *o)
{
    zchunk_t *out = zchunk_new (NULL, 256);
    if (o)
        s_json (out, OBJ (o));
    else
        zchunk_extend (out, "null", 4);
    zchunk_extend (out, "", 1);
    char *text = strdup ((char *) zchunk_data (out));
    zchunk_destroy (&out);
    return text;
}
