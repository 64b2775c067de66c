/*  transport/transport.c - the transport registry and the built-in tcp,
    ipc and inproc transports (all carried by libzmq itself).
*/
#include <pthread.h>
#include "transport/transport.h"

#define MAX_TRANSPORTS 16

static const zr_transport_ops_t *s_table [MAX_TRANSPORTS];
static size_t s_count;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static char *
s_zmq_bind (zsock_t *sock, const char *endpoint, char **err)
{
    if (zsock_bind (sock, "%s", endpoint) == -1) {
        if (err)
            *err = zsys_sprintf ("cannot listen on %s: %s", endpoint,
                                 zmq_strerror (zmq_errno ()));
        return NULL;
    }
    char *last = zsock_last_endpoint (sock);
    if (!last)
        return strdup (endpoint);
    return last;
}

static int
s_zmq_connect (zsock_t *sock, const char *endpoint, char **err)
{
    if (zsock_connect (sock, "%s", endpoint) == -1) {
        if (err)
            *err = zsys_sprintf ("cannot connect to %s: %s", endpoint,
                                 zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

static char *
s_same (const char *bound)
{
    return strdup (bound);
}

static char *
s_tcp_advertise (const char *bound)
{
    //  tcp://0.0.0.0:P, tcp://*:P, tcp://[::]:P -> tcp://127.0.0.1:P
    const char *host = bound + strlen ("tcp://");
    const char *colon = strrchr (host, ':');
    if (!colon)
        return strdup (bound);
    size_t hostlen = (size_t) (colon - host);
    if ((hostlen == 7 && memcmp (host, "0.0.0.0", 7) == 0)
    ||  (hostlen == 1 && *host == '*')
    ||  (hostlen == 4 && memcmp (host, "[::]", 4) == 0))
        return zsys_sprintf ("tcp://127.0.0.1%s", colon);
    return strdup (bound);
}

static const zr_transport_ops_t s_tcp = {
    "tcp", s_zmq_bind, s_zmq_connect, s_tcp_advertise
};
static const zr_transport_ops_t s_ipc = {
    "ipc", s_zmq_bind, s_zmq_connect, s_same
};
static const zr_transport_ops_t s_inproc = {
    "inproc", s_zmq_bind, s_zmq_connect, s_same
};

static void
s_add (const zr_transport_ops_t *ops)
{
    s_table [s_count++] = ops;
}

static void
s_builtin (void)
{
    s_add (&s_tcp);
    s_add (&s_ipc);
    s_add (&s_inproc);
}

static const zr_transport_ops_t *
s_lookup (const char *scheme, size_t len)
{
    for (size_t i = 0; i < s_count; i++)
        if (strlen (s_table [i]->scheme) == len
        &&  memcmp (s_table [i]->scheme, scheme, len) == 0)
            return s_table [i];
    return NULL;
}

int
zr_transport_register (const zr_transport_ops_t *ops)
{
    if (!ops || !ops->scheme || !ops->bind || !ops->connect
    ||  !ops->advertise)
        return -1;
    pthread_once (&s_once, s_builtin);
    pthread_mutex_lock (&s_lock);
    int rc = -1;
    if (s_count < MAX_TRANSPORTS
    &&  !s_lookup (ops->scheme, strlen (ops->scheme))) {
        s_add (ops);
        rc = 0;
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

const zr_transport_ops_t *
zr_transport_find (const char *endpoint)
{
    if (!endpoint)
        return NULL;
    const char *sep = strstr (endpoint, "://");
    if (!sep)
        return NULL;
    pthread_once (&s_once, s_builtin);
    pthread_mutex_lock (&s_lock);
    const zr_transport_ops_t *ops =
        s_lookup (endpoint, (size_t) (sep - endpoint));
    pthread_mutex_unlock (&s_lock);
    return ops;
}

char *
zr_transport_bind (zsock_t *sock, const char *endpoint, char **err)
{
    const zr_transport_ops_t *ops = zr_transport_find (endpoint);
    if (!ops) {
        if (err)
            *err = zsys_sprintf ("'%s' is not an endpoint of a known "
                                 "transport (tcp://, ipc://, inproc://)",
                                 endpoint ? endpoint : "");
        return NULL;
    }
    return ops->bind (sock, endpoint, err);
}

int
zr_transport_connect (zsock_t *sock, const char *endpoint, char **err)
{
    const zr_transport_ops_t *ops = zr_transport_find (endpoint);
    if (!ops) {
        if (err)
            *err = zsys_sprintf ("'%s' is not an endpoint of a known "
                                 "transport (tcp://, ipc://, inproc://)",
                                 endpoint ? endpoint : "");
        return -1;
    }
    return ops->connect (sock, endpoint, err);
}

char *
zr_transport_advertise (const char *bound)
{
    const zr_transport_ops_t *ops = zr_transport_find (bound);
    return ops ? ops->advertise (bound) : strdup (bound);
}
