/*  broker/delay.c - delayed and scheduled messages (see delay.h). Pure
    helpers: the broker actor owns the timers and the scheduler.
*/
#include "broker/delay.h"
#include "broker/retry.h"

static const int64_t s_levels [ZR_DELAY_LEVELS] = {
    1000, 5000, 10000, 30000,
    60000, 120000, 180000, 240000, 300000, 360000, 420000, 480000,
    540000, 600000, 1200000, 1800000, 3600000, 7200000
};

int
zr_delay_parse_duration (const char *text, int64_t *ms)
{
    if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || v < 0)
        return -1;
    int64_t mult;
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
    if (streq (end, "d"))
        mult = 24 * 3600 * 1000;
    else
        return -1;
    if (v > ZR_DELAY_MAX_LIMIT / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

int64_t
zr_delay_level_ms (int64_t level)
{
    if (level < 1 || level > ZR_DELAY_LEVELS)
        return -1;
    return s_levels [level - 1];
}

static const char *s_fields [] = { "delay_ms", "deliver_at", "delay_level" };

bool
zr_delay_requested (const zr_obj_t *h)
{
    for (size_t i = 0; i < 3; i++) {
        const zr_obj_t *o = zr_obj_get (h, s_fields [i]);
        if (o && !zr_obj_is_nil (o))
            return true;
    }
    return false;
}

//  Formats a duration for error texts ("7d", "90s", "1500ms").
static void
s_format (char *buf, size_t size, int64_t ms)
{
    if (ms % (24 * 3600 * 1000) == 0 && ms)
        snprintf (buf, size, "%" PRId64 "d", ms / (24 * 3600 * 1000));
    else
    if (ms % (3600 * 1000) == 0 && ms)
        snprintf (buf, size, "%" PRId64 "h", ms / (3600 * 1000));
    else
    if (ms % 60000 == 0 && ms)
        snprintf (buf, size, "%" PRId64 "m", ms / 60000);
    else
    if (ms % 1000 == 0 && ms)
        snprintf (buf, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 "ms", ms);
}

zr_status_t
zr_delay_due (const zr_obj_t *h, int64_t now, int64_t max_delay,
              int64_t *due, char *reason, size_t reason_size)
{
    *due = -1;
    int given = 0;
    int64_t value [3] = { 0, 0, 0 };
    int which = -1;
    for (int i = 0; i < 3; i++) {
        const zr_obj_t *o = zr_obj_get (h, s_fields [i]);
        if (!o || zr_obj_is_nil (o))
            continue;
        if (zr_field_int (h, s_fields [i], &value [i]) != ZR_FIELD_OK) {
            snprintf (reason, reason_size, "field '%s' must be an integer",
                      s_fields [i]);
            return ZR_MALFORMED;
        }
        given++;
        which = i;
    }
    if (given == 0)
        return ZR_OK;
    if (given > 1) {
        snprintf (reason, reason_size, "give at most one of delay_ms, "
                  "deliver_at and delay_level");
        return ZR_BAD_ARGUMENT;
    }
    int64_t at;
    if (which == 0) {
        if (value [0] < 0) {
            snprintf (reason, reason_size, "delay_ms must be >= 0, not %"
                      PRId64, value [0]);
            return ZR_BAD_ARGUMENT;
        }
        at = value [0] > ZR_DELAY_MAX_LIMIT ? INT64_MAX : now + value [0];
    }
    else
    if (which == 1) {
        if (value [1] < 0) {
            snprintf (reason, reason_size, "deliver_at must be ms since the "
                      "epoch (>= 0), not %" PRId64, value [1]);
            return ZR_BAD_ARGUMENT;
        }
        at = value [1];
    }
    else {
        int64_t ms = zr_delay_level_ms (value [2]);
        if (ms < 0) {
            snprintf (reason, reason_size, "delay_level must be 1..%d (1s "
                      "5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h "
                      "2h), not %" PRId64, ZR_DELAY_LEVELS, value [2]);
            return ZR_BAD_ARGUMENT;
        }
        at = now + ms;
    }
    if (at > now && at - now > max_delay) {
        char limit [32];
        s_format (limit, sizeof limit, max_delay);
        snprintf (reason, reason_size, "delivery time is more than the "
                  "broker's max-delay (%s, %" PRId64 " ms) away", limit,
                  max_delay);
        return ZR_BAD_ARGUMENT;
    }
    *due = at < now ? now : at;
    return ZR_OK;
}

int
zr_delay_timer_encode (zr_enc_t *enc, const char *topic, const char *id,
                       const char *tags, size_t tags_len, const char *keys,
                       size_t keys_len, const zr_obj_t *props, int64_t born,
                       int64_t queue, const char *shard, size_t shard_len,
                       int64_t due, const void *body, size_t body_size)
{
    zr_enc_reset (enc);
    zr_enc_map (enc, shard ? 12 : 11);
    zr_enc_kint (enc, "v", 1);
    zr_enc_kstr (enc, "kind", "delay");
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kstr (enc, "id", id);
    zr_enc_str (enc, "tags");
    zr_enc_strn (enc, tags, tags_len);
    zr_enc_str (enc, "keys");
    zr_enc_strn (enc, keys, keys_len);
    zr_enc_kint (enc, "born", born);
    zr_enc_kint (enc, "queue", queue);
    if (shard) {
        zr_enc_str (enc, "shard");
        zr_enc_strn (enc, shard, shard_len);
    }
    zr_enc_kint (enc, "due", due);
    zr_enc_str (enc, "props");
    if (zr_retry_encode_props (enc, props, NULL))
        return -1;
    zr_enc_str (enc, "body");
    zr_enc_bin (enc, body, body_size);
    return 0;
}

bool
zr_delay_timer_is (const zr_obj_t *root)
{
    const char *kind;
    size_t len;
    return zr_field_str (root, "kind", &kind, &len) == ZR_FIELD_OK
        && len == 5 && memcmp (kind, "delay", 5) == 0;
}

void
zr_delay_timer_target (const zr_obj_t *root, int64_t *queue,
                       const char **shard, size_t *shard_len, int64_t *due)
{
    if (zr_field_int (root, "queue", queue) != ZR_FIELD_OK || *queue < 0
    ||  *queue > INT32_MAX)
        *queue = -1;
    if (zr_field_str (root, "shard", shard, shard_len) != ZR_FIELD_OK) {
        *shard = NULL;
        *shard_len = 0;
    }
    if (zr_field_int (root, "due", due) != ZR_FIELD_OK)
        *due = 0;
}
