/*  client/discover.c - zr_discover_nameservers: how a command given no
    address finds the nameservers.

    1. A nameserver of the same cluster answering PING on
       tcp://127.0.0.1:9876 within 200 ms (a broker there answers PING
       with "broker", not "nameserver", and is not taken).
    2. Else the discovery actor LISTENs for beacons (UDP, port
       $ZR_BEACON_PORT, default 9876) until the first nameserver of the
       cluster is heard or timeout_ms passes. Listening sends nothing.

    Interface, first match wins: one CZMQ already has (zsys_set_interface
    called earlier, as the CLI does for --interface, or $ZSYS_INTERFACE);
    $ZR_INTERFACE (this calls zsys_set_interface: process-global CZMQ
    state); else the first broadcast-capable interface.
*/
#include <zrocket.h>
#include "client/client.h"
#include "actors/discovery.h"

#include <stdlib.h>
#include <string.h>

#define ZR_DISCOVER_LOCAL "tcp://127.0.0.1:9876"
#define ZR_DISCOVER_LOCAL_MS 200
#define ZR_DISCOVER_UDP_PORT 9876
#define ZR_DISCOVER_CLUSTER "DefaultCluster"

//  True when a nameserver of cluster answers PING at endpoint in time.
static bool
s_local_nameserver (const char *endpoint, const char *cluster, int timeout_ms)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return false;
    zr_client_set_sndtimeo (client, 0);
    zr_client_begin (client, "PING", 0);
    bool found = false;
    zr_reply_t *reply = zr_client_call (client, NULL, 0, timeout_ms);
    if (reply && zr_reply_status (reply) == ZR_OK) {
        const zr_obj_t *header = zr_reply_header (reply);
        char their [128];
        //  Brokers answer PING with "broker": only "nameserver" will do
        if (zr_obj_is_str (zr_obj_get (header, "nameserver"))) {
            if (zr_field_strbuf (header, "cluster", their, sizeof (their))
                    == ZR_FIELD_OK
            &&  streq (their, cluster))
                found = true;
            else
                zsys_debug ("discover: nameserver at %s is of another "
                            "cluster", endpoint);
        }
    }
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    return found;
}

static int
s_beacon_port (void)
{
    const char *env = getenv ("ZR_BEACON_PORT");
    if (!env || !*env)
        return ZR_DISCOVER_UDP_PORT;
    char *end;
    long port = strtol (env, &end, 10);
    if (*end || port < 1 || port > 65535) {
        zsys_warning ("discover: ZR_BEACON_PORT '%s' is not a port; "
                      "using %d", env, ZR_DISCOVER_UDP_PORT);
        return ZR_DISCOVER_UDP_PORT;
    }
    return (int) port;
}

//  Listens for beacons until the first nameserver of cluster is heard or
//  timeout_ms passes. Returns its endpoint, plus any others already
//  heard, comma-separated (caller frees), or NULL.
static char *
s_listen (const char *cluster, int timeout_ms)
{
    zactor_t *discovery = zactor_new (zr_discovery_actor, NULL);
    if (!discovery)
        return NULL;
    //  An interface CZMQ already has (zsys_set_interface, e.g. the CLI's
    //  --interface, or ZSYS_INTERFACE) wins over $ZR_INTERFACE
    const char *iface = "";
    if (streq (zsys_interface (), "") && getenv ("ZR_INTERFACE"))
        iface = getenv ("ZR_INTERFACE");
    char udp_port [8];
    snprintf (udp_port, sizeof (udp_port), "%d", s_beacon_port ());
    zstr_sendx (discovery, "LISTEN", cluster, udp_port,
                iface, NULL);
    char *status = NULL, *detail = NULL;
    zpoller_t *poller = zpoller_new (discovery, NULL);
    assert (poller);
    char *result = NULL;
    if (zpoller_wait (poller, 2000) == discovery)
        zsock_recv (discovery, "ss", &status, &detail);
    if (!status || strneq (status, "OK"))
        zsys_debug ("discover: cannot listen for beacons: %s",
                    detail ? detail : "no answer from the discovery actor");
    else {
        int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
        int wait = timeout_ms > 0 ? timeout_ms : 0;
        while (true) {
            if (zpoller_wait (poller, wait) != discovery)
                break;          //  timeout or interrupt
            char *verb = NULL, *endpoint = NULL, *node = NULL;
            if (zsock_recv (discovery, "sss", &verb, &endpoint, &node) == 0
            &&  verb && streq (verb, "NAMESERVER") && endpoint) {
                if (!result)
                    result = strdup (endpoint);
                else
                if (!strstr (result, endpoint)) {
                    char *longer = zsys_sprintf ("%s,%s", result, endpoint);
                    zstr_free (&result);
                    result = longer;
                }
            }
            zstr_free (&verb);
            zstr_free (&endpoint);
            zstr_free (&node);
            if (!result) {
                int64_t left = deadline - zclock_mono ();
                if (left <= 0)
                    break;
                wait = (int) left;
            }
            else
                wait = 0;       //  take what is already queued, then go
        }
    }
    zstr_free (&status);
    zstr_free (&detail);
    zpoller_destroy (&poller);
    zactor_destroy (&discovery);
    return result;
}

char *
zr_discover_nameservers (const char *cluster, int timeout_ms)
{
    if (!cluster || !*cluster)
        cluster = ZR_DISCOVER_CLUSTER;
    if (strlen (cluster) > 127) {
        zsys_warning ("discover: cluster name longer than 127 bytes");
        return NULL;
    }
    if (s_local_nameserver (ZR_DISCOVER_LOCAL, cluster, ZR_DISCOVER_LOCAL_MS))
        return strdup (ZR_DISCOVER_LOCAL);
    return s_listen (cluster, timeout_ms);
}
