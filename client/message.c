/*  client/message.c - zr_message_t: one message as a producer builds it
    or as a consumer receives it (docs/protocol.md, SEND and the message
    map of PULL / GET_MSG).

    Not thread-safe: a message belongs to one thread at a time.
*/
#include "client/client.h"

struct _zr_message_t {
    char topic [ZR_NAME_MAX + 1];
    byte *body;                 //  copy; NULL when size is 0
    size_t size;
    char *tags;                 //  NULL when not set
    char *keys;
    char *shard;
    zhashx_t *props;            //  name -> value (strings); NULL when none
    int queue;                  //  -1: broker chooses / unknown
    char id [ZR_MSG_ID_LEN + 1];
    char store_id [ZR_STORE_ID_MAX + 1];
    int64_t offset;             //  -1 when unknown
    int64_t born;               //  ms since epoch, 0 when unknown
    int64_t stored;
    int delay_kind;             //  0 none, 1 delay_ms, 2 deliver_at, 3 level
    int64_t delay_value;
};

//  True when name is 1..ZR_NAME_MAX characters of A-Z a-z 0-9 _ - % |.
bool
zr_name_valid (const char *name, size_t len)
{
    if (!name || len == 0 || len > ZR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || c == '%' || c == '|'))
            return false;
    }
    return true;
}

static void
s_set_str (char **field, const char *value)
{
    free (*field);
    *field = value && *value ? strdup (value) : NULL;
}

zr_message_t *
zr_message_new (const char *topic, const void *body, size_t size)
{
    if (!topic || !zr_name_valid (topic, strlen (topic)))
        return NULL;
    if (!body && size > 0)
        return NULL;
    zr_message_t *self = (zr_message_t *) zmalloc (sizeof (zr_message_t));
    assert (self);
    strcpy (self->topic, topic);
    if (size > 0) {
        self->body = (byte *) malloc (size);
        assert (self->body);
        memcpy (self->body, body, size);
    }
    self->size = size;
    self->queue = -1;
    self->offset = -1;
    return self;
}

void
zr_message_destroy (zr_message_t **self_p)
{
    assert (self_p);
    zr_message_t *self = *self_p;
    if (!self)
        return;
    free (self->body);
    free (self->tags);
    free (self->keys);
    free (self->shard);
    zhashx_destroy (&self->props);
    free (self);
    *self_p = NULL;
}

void
zr_message_set_tags (zr_message_t *self, const char *tags)
{
    assert (self);
    s_set_str (&self->tags, tags);
}

void
zr_message_set_keys (zr_message_t *self, const char *keys)
{
    assert (self);
    s_set_str (&self->keys, keys);
}

void
zr_message_set_prop (zr_message_t *self, const char *name, const char *value)
{
    assert (self);
    if (!name)
        return;
    if (!self->props) {
        self->props = zhashx_new ();
        assert (self->props);
        zhashx_set_destructor (self->props, (zhashx_destructor_fn *) zstr_free);
        zhashx_set_duplicator (self->props, (zhashx_duplicator_fn *) strdup);
    }
    if (value)
        zhashx_update (self->props, name, (void *) value);
    else
        zhashx_delete (self->props, name);
}

void
zr_message_set_queue (zr_message_t *self, int queue)
{
    assert (self);
    self->queue = queue < 0 ? -1 : queue;
}

void
zr_message_set_sharding_key (zr_message_t *self, const char *key)
{
    assert (self);
    s_set_str (&self->shard, key);
}

void
zr_message_set_id (zr_message_t *self, const char *id)
{
    assert (self);
    if (!id)
        id = "";
    snprintf (self->id, sizeof (self->id), "%s", id);
}

void
zr_message_set_born (zr_message_t *self, int64_t born)
{
    assert (self);
    self->born = born;
}

const char *
zr_message_topic (zr_message_t *self)
{
    assert (self);
    return self->topic;
}

const void *
zr_message_body (zr_message_t *self)
{
    assert (self);
    return self->body;
}

size_t
zr_message_size (zr_message_t *self)
{
    assert (self);
    return self->size;
}

const char *
zr_message_tags (zr_message_t *self)
{
    assert (self);
    return self->tags ? self->tags : "";
}

const char *
zr_message_keys (zr_message_t *self)
{
    assert (self);
    return self->keys ? self->keys : "";
}

const char *
zr_message_sharding_key (zr_message_t *self)
{
    assert (self);
    return self->shard ? self->shard : "";
}

//  Delays (docs/protocol.md section 12): one kind at a time.
static void
s_set_delay (zr_message_t *self, int kind, int64_t value)
{
    assert (self);
    self->delay_kind = value < 0 ? 0 : kind;
    self->delay_value = value < 0 ? 0 : value;
}

void
zr_message_set_delay (zr_message_t *self, int64_t ms)
{
    s_set_delay (self, 1, ms);
}

void
zr_message_set_deliver_at (zr_message_t *self, int64_t ms_epoch)
{
    s_set_delay (self, 2, ms_epoch);
}

void
zr_message_set_delay_level (zr_message_t *self, int level)
{
    s_set_delay (self, 3, level);
}

void
zr_message_delay (zr_message_t *self, const char **name, int64_t *value)
{
    assert (self);
    static const char *names [] = { NULL, "delay_ms", "deliver_at",
                                    "delay_level" };
    *name = names [self->delay_kind];
    *value = self->delay_value;
}

const char *
zr_message_prop (zr_message_t *self, const char *name)
{
    assert (self);
    if (!self->props || !name)
        return NULL;
    return (const char *) zhashx_lookup (self->props, name);
}

zhashx_t *
zr_message_props (zr_message_t *self)
{
    assert (self);
    return self->props;
}

const char *
zr_message_id (zr_message_t *self)
{
    assert (self);
    return self->id;
}

const char *
zr_message_store_id (zr_message_t *self)
{
    assert (self);
    return self->store_id;
}

int
zr_message_queue (zr_message_t *self)
{
    assert (self);
    return self->queue;
}

int64_t
zr_message_offset (zr_message_t *self)
{
    assert (self);
    return self->offset;
}

int64_t
zr_message_born (zr_message_t *self)
{
    assert (self);
    return self->born;
}

int64_t
zr_message_stored (zr_message_t *self)
{
    assert (self);
    return self->stored;
}

//  Copies an optional string field into a fresh string, NULL when absent,
//  empty or not a string.
static char *
s_field_opt (const zr_obj_t *map, const char *key)
{
    char *value = zr_field_strdup (map, key);
    if (value && !*value)
        zstr_free (&value);
    return value;
}

zr_message_t *
zr_message_from_wire (const zr_obj_t *map, zframe_t *body)
{
    if (!map || !zr_obj_is_map (map))
        return NULL;
    char topic [ZR_NAME_MAX + 1];
    int64_t queue, offset;
    if (zr_field_strbuf (map, "topic", topic, sizeof (topic)) != ZR_FIELD_OK
        || !zr_name_valid (topic, strlen (topic))
        || zr_field_int (map, "queue", &queue) != ZR_FIELD_OK
        || queue < 0 || queue > INT32_MAX
        || zr_field_int (map, "offset", &offset) != ZR_FIELD_OK
        || offset < 0)
        return NULL;

    zr_message_t *self = zr_message_new (
        topic, body ? zframe_data (body) : NULL, body ? zframe_size (body) : 0);
    if (!self)
        return NULL;
    self->queue = (int) queue;
    self->offset = offset;
    //  Optional fields: a missing or mistyped one reads as "not set".
    if (zr_field_strbuf (map, "id", self->id, sizeof (self->id))
        != ZR_FIELD_OK)
        self->id [0] = 0;
    if (zr_field_strbuf (map, "store_id", self->store_id,
                         sizeof (self->store_id)) != ZR_FIELD_OK)
        self->store_id [0] = 0;
    self->tags = s_field_opt (map, "tags");
    self->keys = s_field_opt (map, "keys");
    int64_t value;
    if (zr_field_int (map, "born", &value) == ZR_FIELD_OK && value >= 0)
        self->born = value;
    if (zr_field_int (map, "stored", &value) == ZR_FIELD_OK && value >= 0)
        self->stored = value;
    const zr_obj_t *props = zr_obj_get (map, "props");
    if (props && zr_obj_is_map (props)) {
        size_t entries = zr_obj_size (props);
        for (size_t i = 0; i < entries; i++) {
            const char *k, *v;
            size_t klen, vlen;
            if (zr_obj_str (zr_obj_key_at (props, i), &k, &klen)
                    != ZR_FIELD_OK
                || zr_obj_str (zr_obj_val_at (props, i), &v, &vlen)
                       != ZR_FIELD_OK)
                continue;       //  not str -> str: ignore the entry
            //  Names and values with embedded NULs are cut at the NUL.
            char *kz = (char *) malloc (klen + 1);
            char *vz = (char *) malloc (vlen + 1);
            assert (kz && vz);
            memcpy (kz, k, klen);
            kz [klen] = 0;
            memcpy (vz, v, vlen);
            vz [vlen] = 0;
            zr_message_set_prop (self, kz, vz);
            free (kz);
            free (vz);
        }
    }
    return self;
}
