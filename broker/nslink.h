/*  broker/nslink.h - a broker's link to its nameservers.

    An actor the broker starts: it registers the broker with every
    nameserver it knows, heartbeats, re-registers at once when the broker
    hands it a new state, tells the broker when a state is on every
    nameserver, and unregisters on the way out. It finds nameservers from
    the broker's "nameserver" setting: a list of endpoints, or "auto"
    (127.0.0.1:9876 if a nameserver answers there within 200 ms, else
    every nameserver heard by beacon, found in the background). It never
    blocks the broker: the broker only talks to it over the pipe.

    zactor_new (zr_nslink_actor, NULL), then:
      CONFIGURE nameservers cluster heartbeat_ms interface beacon_port
                                     -> "OK" | "ERROR" reason
      STATE gen <msgpack frame>      -> (no reply) the broker's new state:
            a map with group, broker_id, role, epoch, endpoints (bound,
            as the broker bound them) and topics [{topic, queues}]
      The actor sends, unasked:
      INFO nameservers heard bad other   after each heartbeat and when a
            nameserver is added: the nameservers (comma-separated) and
            the beacon counts (heard, malformed, other cluster)
      ACKED gen acked total          once every known nameserver has
            acknowledged a state >= gen, or 3 s after gen was handed over
            (then acked < total); gen as a decimal string
      NAMESERVERS                    -> "OK" endpoint...
      FIND_MASTER group broker_id    -> (later, unasked) MASTER ha epoch id:
            asks every nameserver (GET_CLUSTER) which broker of group,
            other than broker_id, is registered as master at the highest
            epoch with an HA endpoint; answers once all answered or after
            500 ms; ha "" (epoch 0, id -1) when none. Ignored while a
            round is open.
      $TERM                          unregisters (waits up to 500 ms)
*/
#ifndef ZR_NSLINK_H_INCLUDED
#define ZR_NSLINK_H_INCLUDED

#include <czmq.h>

void
    zr_nslink_actor (zsock_t *pipe, void *args);

//  Endpoint that a host reaching nameserver_endpoint should be given for
//  the bound endpoint: a wildcard tcp host becomes this host's address on
//  the interface that reaches the nameserver (127.0.0.1 when the
//  nameserver is on loopback). Caller frees.
char *
    zr_nslink_advertise (const char *bound, const char *nameserver_endpoint);

#endif
