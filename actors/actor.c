/*  actors/actor.c - START / ENDPOINTS helpers (see actor.h). */
#include "actors/actor.h"
#include "transport/transport.h"

zactor_t *
zr_actor_start (zactor_fn *fn, void *args, const char *what, char **err)
{
    zactor_t *actor = zactor_new (fn, args);
    if (!actor) {
        if (err)
            *err = zsys_sprintf ("cannot start the %s actor", what);
        return NULL;
    }
    zstr_send (actor, "START");
    char *status = NULL, *reason = NULL;
    if (zstr_recvx (actor, &status, &reason, NULL) < 1
    ||  strneq (status, "OK")) {
        if (err)
            *err = reason ? strdup (reason)
                          : zsys_sprintf ("%s did not start", what);
        zstr_free (&status);
        zstr_free (&reason);
        zactor_destroy (&actor);
        return NULL;
    }
    zstr_free (&status);
    zstr_free (&reason);
    return actor;
}

char *
zr_actor_endpoint (zactor_t *actor)
{
    zstr_send (actor, "ENDPOINTS");
    zmsg_t *reply = zmsg_recv (actor);
    if (!reply)
        return NULL;
    char *status = zmsg_popstr (reply);
    char *ep = zmsg_popstr (reply);
    char *result = NULL;
    if (status && streq (status, "OK") && ep)
        result = zr_transport_advertise (ep);
    zstr_free (&status);
    zstr_free (&ep);
    zmsg_destroy (&reply);
    return result;
}
