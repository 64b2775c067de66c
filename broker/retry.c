/*  broker/retry.c - retry and dead-letter logic of the broker (see
    retry.h). No sockets and no broker state here: the broker actor calls
    these helpers from its SEND_BACK, DLQ_LIST, DLQ_RESEND handlers and
    its timer scheduler.
*/
#include "broker/retry.h"

struct _zr_retry_t {
    int64_t delays [ZR_RETRY_LEVELS_MAX];
    int levels;
    int64_t max_reconsume;
    bool next_known;        //  next_due is current
    int64_t next_due;       //  earliest timer, -1: none
};

//  Parses one duration ("10s", "500ms", "2m", "1h", "250"). Returns 0 or
//  -1.
static int
s_parse_duration (const char *text, int64_t *ms)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || v < 0 || *text == '-' || *text == '+')
        return -1;
    int64_t mult = 1;
    if (streq (end, "") || streq (end, "ms"))
        mult = 1;
    else
    if (streq (end, "s"))
        mult = 1000;
    else
    if (streq (end, "m"))
        mult = 60 * 1000;
    else
    if (streq (end, "h"))
        mult = 3600 * 1000;
    else
        return -1;
    if (v > ZR_RETRY_DELAY_MAX / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

zr_retry_t *
zr_retry_new (const char *delays, const char *max_reconsume, char **err)
{
    assert (err);
    zr_retry_t *self = (zr_retry_t *) zmalloc (sizeof (zr_retry_t));
    self->next_due = -1;
    char *list = strdup (delays ? delays : "");
    char *save = NULL;
    for (char *tok = strtok_r (list, " ,\t", &save); tok;
         tok = strtok_r (NULL, " ,\t", &save)) {
        int64_t ms = 0;
        if (s_parse_duration (tok, &ms)) {
            *err = zsys_sprintf ("setting retry-delays: '%s' is not a "
                                 "duration (a number with ms, s, m or h, "
                                 "at most 30 days)", tok);
            goto failed;
        }
        if (self->levels == ZR_RETRY_LEVELS_MAX) {
            *err = zsys_sprintf ("setting retry-delays: more than %d "
                                 "delays", ZR_RETRY_LEVELS_MAX);
            goto failed;
        }
        self->delays [self->levels++] = ms;
    }
    if (self->levels == 0) {
        *err = zsys_sprintf ("setting retry-delays: '%s' lists no delay",
                             delays ? delays : "");
        goto failed;
    }
    char *end = NULL;
    errno = 0;
    long long max = max_reconsume ? strtoll (max_reconsume, &end, 10) : -1;
    if (!max_reconsume || errno || end == max_reconsume || *end || max < 0
    ||  max > ZR_RETRY_RECONSUME_MAX) {
        *err = zsys_sprintf ("setting max-reconsume: '%s' is not a number "
                             "in 0..%d", max_reconsume ? max_reconsume : "",
                             ZR_RETRY_RECONSUME_MAX);
        goto failed;
    }
    self->max_reconsume = max;
    free (list);
    return self;
failed:
    free (list);
    free (self);
    return NULL;
}

void
zr_retry_destroy (zr_retry_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

int64_t
zr_retry_delay (zr_retry_t *self, int64_t attempts)
{
    assert (self);
    int64_t level = attempts < 1 ? 0 : attempts - 1;
    if (level >= self->levels)
        level = self->levels - 1;
    return self->delays [level];
}

int64_t
zr_retry_max_reconsume (zr_retry_t *self)
{
    assert (self);
    return self->max_reconsume;
}

int64_t
zr_retry_next_due (zr_retry_t *self, zr_store_t *store)
{
    assert (self);
    if (!self->next_known && store) {
        self->next_due = zr_store_timer_next (store);
        self->next_known = true;
    }
    return self->next_known ? self->next_due : -1;
}

void
zr_retry_timer_added (zr_retry_t *self, int64_t due)
{
    assert (self);
    if (self->next_known && (self->next_due == -1 || due < self->next_due))
        self->next_due = due;
}

void
zr_retry_timers_changed (zr_retry_t *self, int64_t retry_at)
{
    assert (self);
    self->next_known = retry_at >= 0;
    self->next_due = retry_at;
}

int
zr_retry_record_split (const void *record, size_t size, const void **meta,
                       size_t *meta_size, const void **body,
                       size_t *body_size)
{
    const uint8_t *r = (const uint8_t *) record;
    if (!r || size < 4)
        return -1;
    size_t m = ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
             | ((size_t) r [2] << 8) | r [3];
    if (m > size - 4)
        return -1;
    *meta = r + 4;
    *meta_size = m;
    *body = r + 4 + m;
    *body_size = size - 4 - m;
    return 0;
}

//  Copies string prop key of props into buf; returns true when found.
static bool
s_prop (const zr_obj_t *props, const char *key, char *buf, size_t size)
{
    if (!props || !zr_obj_is_map (props))
        return false;
    const char *s;
    size_t len;
    if (zr_field_str (props, key, &s, &len) != ZR_FIELD_OK)
        return false;
    if (len >= size)
        len = size - 1;
    memcpy (buf, s, len);
    buf [len] = 0;
    return true;
}

int64_t
zr_retry_history (zr_retry_history_t *h, const zr_obj_t *meta,
                  const char *error, size_t error_len, int64_t times)
{
    assert (h);
    memset (h, 0, sizeof *h);
    const zr_obj_t *props = zr_obj_get (meta, "props");
    if (!s_prop (props, "ORIGIN_TOPIC", h->topic, sizeof h->topic)
    ||  !s_prop (props, "ORIGIN_QUEUE", h->queue, sizeof h->queue)
    ||  !s_prop (props, "ORIGIN_OFFSET", h->offset, sizeof h->offset)) {
        int64_t queue = 0, offset = 0;
        if (zr_field_strbuf (meta, "topic", h->topic, sizeof h->topic))
            h->topic [0] = 0;
        zr_field_int (meta, "queue", &queue);
        zr_field_int (meta, "offset", &offset);
        snprintf (h->queue, sizeof h->queue, "%" PRId64, queue);
        snprintf (h->offset, sizeof h->offset, "%" PRId64, offset);
    }
    if (times < 0) {
        char text [24];
        long long stored = 0;
        if (s_prop (props, "RECONSUME_TIMES", text, sizeof text)) {
            char *end = NULL;
            stored = strtoll (text, &end, 10);
            if (*end || stored < 0 || stored > INT32_MAX)
                stored = 0;
        }
        times = stored + 1;
    }
    snprintf (h->times, sizeof h->times, "%" PRId64, times);
    bool has_error = false;
    if (error) {
        size_t len = error_len > ZR_RETRY_ERROR_MAX ? ZR_RETRY_ERROR_MAX
                                                   : error_len;
        memcpy (h->error, error, len);
        h->error [len] = 0;
        has_error = true;
    }
    else
        has_error = s_prop (props, "LAST_ERROR", h->error, sizeof h->error);
    int i = 0;
    h->kv [i++] = "ORIGIN_TOPIC";
    h->kv [i++] = h->topic;
    h->kv [i++] = "ORIGIN_QUEUE";
    h->kv [i++] = h->queue;
    h->kv [i++] = "ORIGIN_OFFSET";
    h->kv [i++] = h->offset;
    h->kv [i++] = "RECONSUME_TIMES";
    h->kv [i++] = h->times;
    if (has_error) {
        h->kv [i++] = "LAST_ERROR";
        h->kv [i++] = h->error;
    }
    h->kv [i] = NULL;
    return times;
}

//  True when key (len bytes) is one of extra's keys.
static bool
s_overridden (const char *const *extra, const char *key, size_t len)
{
    for (size_t i = 0; extra && extra [i]; i += 2)
        if (strlen (extra [i]) == len && memcmp (extra [i], key, len) == 0)
            return true;
    return false;
}

int
zr_retry_encode_props (zr_enc_t *enc, const zr_obj_t *props,
                       const char *const *extra)
{
    size_t nextra = 0;
    while (extra && extra [nextra * 2])
        nextra++;
    if (props && zr_obj_is_nil (props))
        props = NULL;
    if (props && !zr_obj_is_map (props))
        return -1;
    size_t n = props ? zr_obj_size (props) : 0;
    //  Check and count first: the map header needs the final count.
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t klen, vlen;
        if (zr_obj_str (zr_obj_key_at (props, i), &k, &klen)
        ||  zr_obj_str (zr_obj_val_at (props, i), &v, &vlen))
            return -1;
        if (!s_overridden (extra, k, klen))
            kept++;
    }
    zr_enc_map (enc, kept + nextra);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t klen, vlen;
        zr_obj_str (zr_obj_key_at (props, i), &k, &klen);
        zr_obj_str (zr_obj_val_at (props, i), &v, &vlen);
        if (s_overridden (extra, k, klen))
            continue;
        zr_enc_strn (enc, k, klen);
        zr_enc_strn (enc, v, vlen);
    }
    for (size_t i = 0; i < nextra; i++) {
        zr_enc_str (enc, extra [i * 2]);
        zr_enc_str (enc, extra [i * 2 + 1]);
    }
    return 0;
}

//  Copies string field key of meta into enc as key: value ("" when
//  absent).
static void
s_copy_str (zr_enc_t *enc, const zr_obj_t *meta, const char *key)
{
    const char *s = "";
    size_t len = 0;
    if (zr_field_str (meta, key, &s, &len) != ZR_FIELD_OK) {
        s = "";
        len = 0;
    }
    zr_enc_str (enc, key);
    zr_enc_strn (enc, s, len);
}

int
zr_retry_timer_encode (zr_enc_t *enc, const char *target,
                       const zr_obj_t *meta, const char *const *extra,
                       const void *body, size_t body_size)
{
    int64_t born = 0;
    if (zr_field_int (meta, "born", &born) != ZR_FIELD_OK || born < 0)
        born = 0;
    zr_enc_reset (enc);
    zr_enc_map (enc, 8);
    zr_enc_kint (enc, "v", 1);
    zr_enc_kstr (enc, "topic", target);
    s_copy_str (enc, meta, "id");
    s_copy_str (enc, meta, "tags");
    s_copy_str (enc, meta, "keys");
    zr_enc_kint (enc, "born", born);
    zr_enc_str (enc, "props");
    if (zr_retry_encode_props (enc, zr_obj_get (meta, "props"), extra))
        return -1;
    zr_enc_str (enc, "body");
    zr_enc_bin (enc, body, body_size);
    return 0;
}

int
zr_retry_timer_decode (const void *value, size_t size, zr_hdr_t **hdr,
                       char *topic, const void **body, size_t *body_size)
{
    *hdr = zr_hdr_decode (value, size, NULL);
    if (!*hdr)
        return -1;
    const zr_obj_t *root = zr_hdr_root (*hdr);
    int64_t v = 0;
    if (!zr_obj_is_map (root)
    ||  zr_field_int (root, "v", &v) != ZR_FIELD_OK || v != 1
    ||  zr_field_strbuf (root, "topic", topic, ZR_NAME_MAX + 1)
    ||  zr_obj_bin (zr_obj_get (root, "body"), body, body_size)) {
        zr_hdr_destroy (hdr);
        return -1;
    }
    return 0;
}

void
zr_retry_mark_name (char *buf, size_t size, const char *group,
                    int64_t offset, const char *id, size_t id_len)
{
    snprintf (buf, size, "dlq/%s/%" PRId64 "/%.*s", group, offset,
              (int) (id_len > 64 ? 64 : id_len), id);
}
