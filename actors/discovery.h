/*  actors/discovery.h - nameserver beacons (docs/protocol.md section 10).

    The beacon codec is pure and unit-tested. The discovery actor wraps
    CZMQ's zbeacon: a nameserver uses it to PUBLISH, brokers and clients
    to LISTEN. Listening sends nothing.

    Actor: zactor_new (zr_discovery_actor, NULL)
    Pipe commands:
      PUBLISH cluster port interval_ms udp_port interface [node_id_hex]
                  -> "OK" hostname | "ERROR" reason
                  node_id_hex (32 hex digits, optional): the id the
                  beacon carries, e.g. the one PING answers; absent or
                  "": 16 random bytes
      LISTEN cluster udp_port interface
                  -> "OK" hostname | "ERROR" reason
      $TERM
    hostname is the address zbeacon uses. No usable interface gives
    ERROR "no broadcast-capable network interface". One actor publishes
    or listens, not both; a second PUBLISH/LISTEN is an ERROR.
    interface "" keeps CZMQ's process-wide choice (zsys_set_interface or
    ZSYS_INTERFACE, else the first broadcast-capable interface); a name
    calls zsys_set_interface, which is process-global and applies to
    every zbeacon the process configures afterwards.
    While listening, the actor sends on its pipe, once per nameserver
    (new node id, or a known one at a new endpoint):
      "NAMESERVER" endpoint node_id_hex
    and keeps counting bad beacons (see STATS).
      STATS       -> "OK" heard bad ignored_cluster  (decimal strings)
*/
#ifndef ZR_DISCOVERY_H_INCLUDED
#define ZR_DISCOVERY_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#define ZR_BEACON_TAG "ZRKT"
#define ZR_BEACON_VERSION 1
#define ZR_BEACON_ROLE_NAMESERVER 1
#define ZR_BEACON_MAX 255
#define ZR_BEACON_NODE_ID 16

typedef struct {
    uint8_t role;
    uint16_t port;
    uint8_t node_id [ZR_BEACON_NODE_ID];
    char cluster [128];
} zr_beacon_t;

//  Encodes a beacon into buf (at least ZR_BEACON_MAX bytes). Returns the
//  size, or -1 when the cluster name is empty or longer than 127.
int
    zr_beacon_encode (const zr_beacon_t *beacon, uint8_t *buf);

//  Decodes a payload. Returns 0, or -1 with *reason (static string) when
//  it is not exactly one valid beacon: too short or long, wrong tag,
//  version or role, bad cluster length.
int
    zr_beacon_decode (const uint8_t *data, size_t size, zr_beacon_t *beacon,
                      const char **reason);

void
    zr_discovery_actor (zsock_t *pipe, void *args);

#endif
