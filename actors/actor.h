/*  actors/actor.h - helpers shared by the actors that follow the START /
    ENDPOINTS pipe convention (broker, nameserver).
*/
#ifndef ZR_ACTOR_H_INCLUDED
#define ZR_ACTOR_H_INCLUDED

#include <czmq.h>

//  Starts an actor and sends it START. Returns the actor, or NULL with
//  *err set (caller frees) when it could not start; what names it in the
//  error ("broker").
zactor_t *
    zr_actor_start (zactor_fn *fn, void *args, const char *what, char **err);

//  Asks the actor for ENDPOINTS and returns the first, advertised so a
//  local client can connect (caller frees), or NULL.
char *
    zr_actor_endpoint (zactor_t *actor);

#endif
