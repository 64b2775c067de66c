/*  actors/cli_digest.c - `zrocket digest [SEQ]`: DIGEST (docs/protocol.md
    section 16) on one broker, printed as "SEQ<TAB>HASH".
*/
#include "actors/cli.h"
#include "client/client.h"

static const zr_cli_opt_t s_digest_opts [] = {
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

int
zr_cli_digest (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    memset (&fabric, 0, sizeof fabric);
    if (zr_cli_parse ("digest", s_digest_opts, 1, argc, argv, &args))
        return 2;
    if (args.help) {
        zr_cli_usage (stdout, "zrocket digest [SEQ] [--broker ENDPOINT]",
            "Prints the broker's replication hash chain at batch SEQ (default\n"
            "its last) as SEQ<TAB>HASH (40 hex digits). Two brokers with the\n"
            "same hash at SEQ hold the same history up to SEQ. Exits 1 when\n"
            "the broker's log no longer holds SEQ." ZR_CLI_FABRIC_HELP,
            s_digest_opts);
        zr_cli_args_free (&args);
        return 0;
    }
    int64_t seq = -1;
    int rc = 0;
    if (args.npos == 1) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll (args.pos [0], &end, 10);
        if (!*args.pos [0] || *end || errno || v < 0) {
            fprintf (stderr, "zrocket digest: SEQ '%s' is not a number >= "
                     "0\n", args.pos [0]);
            rc = 2;
        }
        seq = v;
    }
    if (rc == 0)
        rc = zr_cli_fabric_find (&args, &fabric);
    zr_client_t *client = NULL;
    if (rc == 0) {
        rc = 1;
        if (!fabric.broker)
            fprintf (stderr, "zrocket digest: needs a broker (--broker)\n");
        else
        if (!(client = zr_client_new (fabric.broker)))
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     fabric.broker);
    }
    if (client) {
        zr_enc_t *enc = zr_client_begin (client, "DIGEST", seq >= 0 ? 1 : 0);
        if (seq >= 0)
            zr_enc_kint (enc, "seq", seq);
        zr_reply_t *reply = zr_client_call (client, NULL, 0,
                                            fabric.timeout_ms);
        int64_t got = 0;
        char hash [64];
        if (!reply)
            fprintf (stderr, "zrocket: no broker answering at %s within "
                     "%d ms\n", fabric.broker, fabric.timeout_ms);
        else
        if (zr_reply_status (reply) != ZR_OK) {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket digest: %s%s%s\n",
                     zr_reply_status_str (reply), *reason ? ": " : "",
                     reason);
        }
        else
        if (zr_field_int (zr_reply_header (reply), "seq", &got)
            != ZR_FIELD_OK
        ||  zr_field_strbuf (zr_reply_header (reply), "hash", hash,
                             sizeof hash) != ZR_FIELD_OK)
            fprintf (stderr, "zrocket digest: the broker's reply is "
                     "damaged\n");
        else {
            printf ("%" PRId64 "\t%s\n", got, hash);
            rc = 0;
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
