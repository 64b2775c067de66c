/*  transport/transport.h - endpoint schemes and how to bind, connect and
    advertise them.

    A registry keyed by URI scheme (nng's transport table is the model).
    tcp, ipc and inproc are built in; a later transport (a fault-injecting
    one for replication tests, say) registers its ops here. Callers use
    zr_transport_bind / zr_transport_connect, never a scheme's own code.
*/
#ifndef ZR_TRANSPORT_H_INCLUDED
#define ZR_TRANSPORT_H_INCLUDED

#include <czmq.h>

typedef struct {
    //  URI scheme without "://", e.g. "tcp".
    const char *scheme;
    //  Binds sock to endpoint. Returns the bound endpoint with any
    //  wildcard port resolved (caller frees), or NULL with *err set
    //  (caller frees). Does not block.
    char *(*bind) (zsock_t *sock, const char *endpoint, char **err);
    //  Connects sock to endpoint; 0, or -1 with *err set (caller frees).
    int (*connect) (zsock_t *sock, const char *endpoint, char **err);
    //  Endpoint that a client on this host can connect to, given a bound
    //  endpoint (caller frees). For tcp, a wildcard host becomes
    //  127.0.0.1 (multi-host advertising comes with the nameserver).
    char *(*advertise) (const char *bound);
} zr_transport_ops_t;

//  Adds a transport. Returns 0, or -1 when ops is NULL, lacks a field, or
//  its scheme is taken. Thread-safe.
int zr_transport_register (const zr_transport_ops_t *ops);

//  Transport for an endpoint's scheme, or NULL. Thread-safe.
const zr_transport_ops_t *zr_transport_find (const char *endpoint);

//  Bind / connect / advertise through the registry; an unknown scheme is
//  an error naming it.
char *zr_transport_bind (zsock_t *sock, const char *endpoint, char **err);
int zr_transport_connect (zsock_t *sock, const char *endpoint, char **err);
char *zr_transport_advertise (const char *bound);

#endif
