/*  broker/retry.h - retry and dead-letter logic of the broker
    (docs/protocol.md section 11: SEND_BACK, DLQ_LIST, DLQ_RESEND).

    The broker actor owns one zr_retry_t: the parsed retry-delays and
    max-reconsume settings and a cache of the earliest timer's due time.
    The rest are pure helpers over records and msgpack, so the broker
    keeps only thin hooks: a handed-back message's history props, the
    timer value that holds everything needed to append the message to
    %RETRY%G later, and the names of DLQ resend marks.

    Timer value (msgpack map, stored in the store's timer column family):
        {v: 1, topic: target topic, id, tags, keys, born, props: map
         str->str (history included), body: bin}
*/
#ifndef ZR_RETRY_H_INCLUDED
#define ZR_RETRY_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"
#include "store/store.h"

//  Most levels in retry-delays, longest delay, most max-reconsume.
#define ZR_RETRY_LEVELS_MAX 64
#define ZR_RETRY_DELAY_MAX (30LL * 24 * 3600 * 1000)
#define ZR_RETRY_RECONSUME_MAX 10000
//  LAST_ERROR is cut to this many bytes.
#define ZR_RETRY_ERROR_MAX 1024
//  Timers moved per scheduler turn.
#define ZR_RETRY_FIRE_MAX 1000

typedef struct _zr_retry_t zr_retry_t;

//  Parses the settings: delays is space- or comma-separated durations
//  ("10s 30s 1m 2h 500ms"; a bare number is ms), max_reconsume the
//  attempts before the dead-letter queue. Returns NULL with *err (caller
//  frees) naming the setting and the bad value.
zr_retry_t *
    zr_retry_new (const char *delays, const char *max_reconsume,
                  char **err);

void
    zr_retry_destroy (zr_retry_t **self_p);

//  Delay before redelivery number `attempts` (1 = first), ms: level
//  attempts - 1, the last level for later attempts.
int64_t
    zr_retry_delay (zr_retry_t *self, int64_t attempts);

//  The max-reconsume setting.
int64_t
    zr_retry_max_reconsume (zr_retry_t *self);

//  Earliest timer due time (ms since the epoch) or -1, read from store
//  once and then kept up to date by zr_retry_timer_added and
//  zr_retry_timers_changed.
int64_t
    zr_retry_next_due (zr_retry_t *self, zr_store_t *store);
void
    zr_retry_timer_added (zr_retry_t *self, int64_t due);
//  Forgets the cached due time (re-read next time), or sets it to
//  retry_at when >= 0 (after a failed commit: try again then).
void
    zr_retry_timers_changed (zr_retry_t *self, int64_t retry_at);

//  Splits a broker record (meta length | meta | body). Returns 0, or -1
//  when damaged.
int
    zr_retry_record_split (const void *record, size_t size,
                           const void **meta, size_t *meta_size,
                           const void **body, size_t *body_size);

//  A message's history props, as a NULL-ended key, value list.
typedef struct {
    char topic [ZR_NAME_MAX + 1];
    char queue [24];
    char offset [24];
    char times [24];
    char error [ZR_RETRY_ERROR_MAX + 1];
    const char *kv [11];
} zr_retry_history_t;

//  Fills history from a stored message map: ORIGIN_* kept when the
//  props have them, else taken from the map's topic, queue and offset;
//  RECONSUME_TIMES = times when times >= 0, else the stored count + 1;
//  LAST_ERROR = error (len bytes, cut) when error is not NULL, else the
//  stored one (if any). Returns RECONSUME_TIMES.
int64_t
    zr_retry_history (zr_retry_history_t *history, const zr_obj_t *meta,
                      const char *error, size_t error_len, int64_t times);

//  Encodes props (a map of strings, or NULL/nil) with extra (a NULL-ended
//  key, value list that overrides or adds) as one msgpack map into enc.
//  Returns 0, or -1 when props is not a map of strings (enc then holds
//  part of a map: reset it).
int
    zr_retry_encode_props (zr_enc_t *enc, const zr_obj_t *props,
                           const char *const *extra);

//  Encodes a timer value (see above) from a stored message map plus
//  extra props and the body. Returns 0 or -1 (bad props).
int
    zr_retry_timer_encode (zr_enc_t *enc, const char *target,
                           const zr_obj_t *meta, const char *const *extra,
                           const void *body, size_t body_size);

//  Reads a timer value: its target topic into topic (ZR_NAME_MAX + 1
//  bytes) and the body; the value's map (id, tags, keys, born, props)
//  is zr_hdr_root (*hdr), which the caller destroys. Returns 0, or -1
//  when the value does not parse (logged by the caller).
int
    zr_retry_timer_decode (const void *value, size_t size, zr_hdr_t **hdr,
                           char *topic, const void **body,
                           size_t *body_size);

//  Name of the mark that says the dead letter at (group's DLQ, offset)
//  with message id was resent.
void
    zr_retry_mark_name (char *buf, size_t size, const char *group,
                        int64_t offset, const char *id, size_t id_len);

#endif
