/*  actors/cli_find.c - `zrocket msg find`: FIND by message id or key
    (docs/protocol.md section 15) on one broker, printed like `zrocket
    msg`, messages separated by an empty line.
*/
#include "actors/cli.h"
#include "actors/cli_find.h"
#include "client/client.h"

static const zr_cli_opt_t s_find_opts [] = {
    { "topic", "TOPIC", "topic to search (required)" },
    { "id", "ID", "message id (as SEND_OK's id)" },
    { "key", "KEY", "one message key" },
    { "max", "N", "most messages to print (1..1024, default 32)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_print (zr_message_t *msg)
{
    printf ("store_id %s\nid %s\ntopic %s\nqueue %d\noffset %" PRId64
            "\ntags %s\nkeys %s\nborn %" PRId64 "\nstored %" PRId64 "\n",
            zr_message_store_id (msg), zr_message_id (msg),
            zr_message_topic (msg), zr_message_queue (msg),
            zr_message_offset (msg), zr_message_tags (msg),
            zr_message_keys (msg), zr_message_born (msg),
            zr_message_stored (msg));
    zhashx_t *props = zr_message_props (msg);
    if (props) {
        zlistx_t *keys = zhashx_keys (props);
        zlistx_set_comparator (keys, (zlistx_comparator_fn *) strcmp);
        zlistx_sort (keys);
        for (const char *k = (const char *) zlistx_first (keys); k;
             k = (const char *) zlistx_next (keys))
            printf ("prop.%s %s\n", k,
                    (const char *) zhashx_lookup (props, k));
        zlistx_destroy (&keys);
    }
    printf ("\n");
    fwrite (zr_message_body (msg), 1, zr_message_size (msg), stdout);
    printf ("\n");
}

int
zr_cli_msg_find (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    memset (&fabric, 0, sizeof fabric);
    const char *synopsis =
        "zrocket msg find --topic TOPIC (--id ID | --key KEY)";
    if (zr_cli_parse ("msg find", s_find_opts, 0, argc, argv, &args))
        return 2;
    if (args.help) {
        zr_cli_usage (stdout, synopsis,
            "Finds messages of a topic by message id or by one of their\n"
            "keys through the broker's indexes, and prints each like\n"
            "`zrocket msg`, in (queue, offset) order. Prints nothing and\n"
            "exits 0 when none is found. Needs a broker (--broker or\n"
            "$ZR_BROKER, or one found as below)." ZR_CLI_FABRIC_HELP,
            s_find_opts);
        zr_cli_args_free (&args);
        return 0;
    }
    const char *topic = zr_cli_get (&args, "topic");
    const char *id = zr_cli_get (&args, "id");
    const char *key = zr_cli_get (&args, "key");
    int64_t max = 32;
    int rc = 2;
    if (!topic || !*topic)
        fprintf (stderr, "zrocket msg find: needs --topic\n");
    else
    if (!id == !key)
        fprintf (stderr, "zrocket msg find: give one of --id or --key\n");
    else
    if (zr_cli_get_int (&args, "max", 32, 1, 1024, &max) == 0)
        rc = zr_cli_fabric_find (&args, &fabric);
    zr_client_t *client = NULL;
    if (rc == 0) {
        rc = 1;
        if (!fabric.broker)
            fprintf (stderr, "zrocket msg find: needs a broker "
                     "(--broker)\n");
        else
        if (!(client = zr_client_new (fabric.broker)))
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     fabric.broker);
    }
    if (client) {
        zr_enc_t *enc = zr_client_begin (client, "FIND", 3);
        zr_enc_kstr (enc, "topic", topic);
        zr_enc_kstr (enc, id ? "id" : "key", id ? id : key);
        zr_enc_kint (enc, "max_count", max);
        zr_reply_t *reply = zr_client_call (client, NULL, 0,
                                            fabric.timeout_ms);
        if (!reply)
            fprintf (stderr, "zrocket: no broker answering at %s within "
                     "%d ms\n", fabric.broker, fabric.timeout_ms);
        else
        if (zr_reply_status (reply) != ZR_OK) {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket msg find: %s%s%s\n",
                     zr_reply_status_str (reply), *reason ? ": " : "",
                     reason);
        }
        else {
            const zr_obj_t *msgs = zr_obj_get (zr_reply_header (reply),
                                               "msgs");
            size_t count = zr_obj_size (msgs);
            rc = 0;
            for (size_t i = 0; i < count; i++) {
                zr_message_t *msg = zr_message_from_wire (
                    zr_obj_at (msgs, i), i < zr_reply_bodies (reply)
                                         ? zr_reply_body (reply, i) : NULL);
                if (!msg) {
                    fprintf (stderr, "zrocket msg find: the broker's reply "
                             "is damaged\n");
                    rc = 1;
                    break;
                }
                if (i > 0)
                    printf ("\n");
                s_print (msg);
                zr_message_destroy (&msg);
            }
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
