/*  tests/testutil.c - helpers shared by the cmocka tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"

char *
zrt_tempdir (const char *prefix)
{
    const char *base = getenv ("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = zsys_sprintf ("%s/zr-%s-XXXXXX", base, prefix);
    assert_non_null (path);
    assert_non_null (mkdtemp (path));
    return path;
}

void
zrt_rmrf (const char *path)
{
    if (!path)
        return;
    char *cmd = zsys_sprintf ("rm -rf '%s'", path);
    int rc = system (cmd);
    (void) rc;
    zstr_free (&cmd);
}

zactor_t *
zrt_broker_start (const char *dir, const char *endpoint, const char *extra,
                  char **endpoint_out)
{
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "broker/data", dir);
    zconfig_put (cfg, "broker/bind", endpoint);
    //  Tests name their nameservers; none unless extra says so.
    zconfig_put (cfg, "broker/nameserver", "none");
    if (extra) {
        char *copy = strdup (extra);
        char *save = NULL;
        for (char *kv = strtok_r (copy, ";", &save); kv;
             kv = strtok_r (NULL, ";", &save)) {
            char *eq = strchr (kv, '=');
            assert_non_null (eq);
            *eq = 0;
            char *key = zsys_sprintf ("broker/%s", kv);
            zconfig_put (cfg, key, eq + 1);
            zstr_free (&key);
        }
        free (copy);
    }
    char *err = NULL;
    zactor_t *broker = zr_broker_new (cfg, &err);
    if (!broker)
        fail_msg ("broker did not start: %s", err ? err : "?");
    zconfig_destroy (&cfg);
    if (endpoint_out)
        *endpoint_out = zr_broker_endpoint (broker);
    return broker;
}

zrt_raw_t *
zrt_raw_new (const char *endpoint)
{
    zrt_raw_t *self = (zrt_raw_t *) zmalloc (sizeof (zrt_raw_t));
    self->dealer = zsock_new_dealer (endpoint);
    assert_non_null (self->dealer);
    zsock_set_linger (self->dealer, 0);
    zsock_set_sndtimeo (self->dealer, 5000);
    self->enc = zr_enc_new ();
    return self;
}

void
zrt_raw_destroy (zrt_raw_t **self_p)
{
    if (*self_p) {
        zsock_destroy (&(*self_p)->dealer);
        zr_enc_destroy (&(*self_p)->enc);
        free (*self_p);
        *self_p = NULL;
    }
}

int64_t
zrt_raw_begin (zrt_raw_t *self, const char *cmd, size_t fields)
{
    zr_enc_reset (self->enc);
    zr_enc_map (self->enc, 3 + fields);
    zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (self->enc, "rid", ++self->rid);
    zr_enc_kstr (self->enc, "cmd", cmd);
    return self->rid;
}

zrt_reply_t *
zrt_reply_recv (zsock_t *sock, int timeout)
{
    zmq_pollitem_t items [] = { { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 } };
    if (zmq_poll (items, 1, timeout) <= 0)
        return NULL;
    zrt_reply_t *r = (zrt_reply_t *) zmalloc (sizeof (zrt_reply_t));
    r->msg = zmsg_recv (sock);
    assert_non_null (r->msg);
    r->head = zmsg_pop (r->msg);
    assert_non_null (r->head);
    r->hdr = zr_hdr_decode (zframe_data (r->head), zframe_size (r->head),
                            NULL);
    assert_non_null (r->hdr);
    r->h = zr_hdr_root (r->hdr);
    assert_int_equal (zr_field_strbuf (r->h, "status", r->status,
                                       sizeof r->status), ZR_FIELD_OK);
    if (zr_field_strbuf (r->h, "reason", r->reason, sizeof r->reason))
        r->reason [0] = 0;
    return r;
}

zrt_reply_t *
zrt_raw_call (zrt_raw_t *self, const char *body, int timeout)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zr_enc_data (self->enc), zr_enc_size (self->enc));
    if (body)
        zmsg_addstr (msg, body);
    assert_int_equal (zmsg_send (&msg, self->dealer), 0);
    zrt_reply_t *r = zrt_reply_recv (self->dealer, timeout);
    if (!r)
        fail_msg ("no reply to rid %" PRId64 " within %d ms", self->rid,
                  timeout);
    int64_t got = -1;
    assert_int_equal (zr_field_int (r->h, "rid", &got), ZR_FIELD_OK);
    assert_true (got == self->rid);
    return r;
}

void
zrt_reply_destroy (zrt_reply_t **self_p)
{
    if (*self_p) {
        zr_hdr_destroy (&(*self_p)->hdr);
        zframe_destroy (&(*self_p)->head);
        zmsg_destroy (&(*self_p)->msg);
        free (*self_p);
        *self_p = NULL;
    }
}

void
zrt_expect (zrt_reply_t *r, const char *status, const char *part)
{
    if (strcmp (r->status, status) != 0)
        fail_msg ("status %s (%s), expected %s", r->status, r->reason,
                  status);
    if (part && !strstr (r->reason, part))
        fail_msg ("reason '%s' does not mention '%s'", r->reason, part);
}

void
zrt_expect_free (zrt_reply_t *r, const char *status, const char *part)
{
    zrt_expect (r, status, part);
    zrt_reply_destroy (&r);
}

int64_t
zrt_int (const zr_obj_t *map, const char *key)
{
    int64_t v = -1;
    if (zr_field_int (map, key, &v) != ZR_FIELD_OK)
        fail_msg ("no int '%s'", key);
    return v;
}

char *
zrt_stats (zactor_t *broker)
{
    zstr_send (broker, "STATS");
    char *status = NULL, *json = NULL;
    zstr_recvx (broker, &status, &json, NULL);
    assert_non_null (status);
    assert_string_equal (status, "OK");
    zstr_free (&status);
    assert_non_null (json);
    return json;
}

void
zrt_json_str (const char *json, const char *key, char *buf, size_t size)
{
    char pat [64];
    snprintf (pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr (json, pat);
    buf [0] = 0;
    if (!p)
        return;
    p += strlen (pat);
    const char *end = strchr (p, '"');
    if (end)
        snprintf (buf, size, "%.*s", (int) (end - p), p);
}

int64_t
zrt_stat_int (zactor_t *broker, const char *key)
{
    char *json = zrt_stats (broker);
    char pat [64];
    snprintf (pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr (json, pat);
    int64_t v = p ? strtoll (p + strlen (pat), NULL, 10) : -1;
    zstr_free (&json);
    return v;
}

int64_t
zrt_wait_stat (zactor_t *broker, const char *key, int64_t min, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    int64_t v = zrt_stat_int (broker, key);
    while (v < min && zclock_mono () < deadline) {
        zpoller_wait (idle, 20);
        v = zrt_stat_int (broker, key);
    }
    zpoller_destroy (&idle);
    return v;
}

zactor_t *
zrt_master_start (const char *dir, const char *settings, char **ep,
                  char *ha, size_t ha_size)
{
    zactor_t *master = zrt_broker_start (dir, "tcp://127.0.0.1:*", settings,
                                         ep);
    char *json = zrt_stats (master);
    zrt_json_str (json, "ha_endpoint", ha, ha_size);
    zstr_free (&json);
    if (strlen (ha) <= 6)
        fail_msg ("the broker has no HA endpoint in its stats");
    return master;
}
