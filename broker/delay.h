/*  broker/delay.h - delayed and scheduled messages (docs/protocol.md
    section 12): the SEND fields delay_ms, deliver_at and delay_level,
    durations, and the timer value of a delayed message.

    A delayed SEND is stored as a timer (store timer column family, keyed
    by due time) whose value holds the whole message; the broker's timer
    scheduler (shared with consumer retries, broker/retry.h) moves it into
    its topic at the due time. The value has the retry timer's fields
    (v: 1, topic, id, tags, keys, born, props, body) plus
        kind: "delay", due: int, queue: int (-1: chosen at delivery),
        shard: str (optional)
    A timer value without "kind" is a retry.
*/
#ifndef ZR_DELAY_H_INCLUDED
#define ZR_DELAY_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"

//  RocketMQ's delay levels 1..18: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m
//  9m 10m 20m 30m 1h 2h.
#define ZR_DELAY_LEVELS 18
//  Default and largest max-delay setting.
#define ZR_DELAY_MAX_DEFAULT (7LL * 24 * 3600 * 1000)
#define ZR_DELAY_MAX_LIMIT (3650LL * 24 * 3600 * 1000)

//  Parses a duration: a number with ms, s, m, h or d ("500ms", "30s",
//  "7d"); a bare number is ms. Returns 0, or -1 when it is not one (or
//  is above ZR_DELAY_MAX_LIMIT).
int
    zr_delay_parse_duration (const char *text, int64_t *ms);

//  Delay of level 1..18, ms; -1 for any other level.
int64_t
    zr_delay_level_ms (int64_t level);

//  Reads a SEND header's delay fields. Sets *due to the due time (ms
//  since the epoch, never before now) when one is given, else to -1.
//  Returns ZR_OK, or ZR_MALFORMED / ZR_BAD_ARGUMENT with reason filled
//  (a field of the wrong type, two fields, a bad level or negative delay,
//  a due time more than max_delay ms after now).
zr_status_t
    zr_delay_due (const zr_obj_t *h, int64_t now, int64_t max_delay,
                  int64_t *due, char *reason, size_t reason_size);

//  True when h carries any delay field.
bool
    zr_delay_requested (const zr_obj_t *h);

//  Encodes a delayed message's timer value (see above). props is the
//  SEND's props (map of strings, or NULL/nil). Returns 0, or -1 when
//  props is not a map of strings.
int
    zr_delay_timer_encode (zr_enc_t *enc, const char *topic, const char *id,
                           const char *tags, size_t tags_len,
                           const char *keys, size_t keys_len,
                           const zr_obj_t *props, int64_t born,
                           int64_t queue, const char *shard,
                           size_t shard_len, int64_t due,
                           const void *body, size_t body_size);

//  True when a decoded timer value (its root map) is a delayed message.
bool
    zr_delay_timer_is (const zr_obj_t *root);

//  A delayed message's target: queue (-1: choose), shard (NULL when
//  none) and due time.
void
    zr_delay_timer_target (const zr_obj_t *root, int64_t *queue,
                           const char **shard, size_t *shard_len,
                           int64_t *due);

#endif
