/*  client/route.c - a topic's route, asked from the nameservers
    (docs/protocol.md section 9, GET_ROUTE).

    zr_route_lookup asks the nameservers of a comma-separated list one
    after the other, giving each an equal share of the time still left,
    and keeps the first route that has a group with a master. When none
    gives one, the error names what is missing, in this order of
    precedence: a route whose groups all lack a master, then a topic that
    every answering nameserver says it does not know, then no answer at
    all.
*/
#include "client/client.h"

typedef struct {
    char *group;
    char *master;               //  NULL when the group has no live master
    int queues;
    int64_t epoch;              //  0 when the reply gave none
    char **slaves;              //  live slaves' endpoints
    size_t nslaves;
} route_group_t;

struct _zr_route_t {
    char *topic;
    route_group_t *groups;
    size_t count;
};

void
zr_route_destroy (zr_route_t **self_p)
{
    assert (self_p);
    zr_route_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->groups [i].group);
        free (self->groups [i].master);
        for (size_t j = 0; j < self->groups [i].nslaves; j++)
            free (self->groups [i].slaves [j]);
        free (self->groups [i].slaves);
    }
    free (self->groups);
    free (self->topic);
    free (self);
    *self_p = NULL;
}

size_t
zr_route_groups (zr_route_t *self)
{
    assert (self);
    return self->count;
}

const char *
zr_route_group (zr_route_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->groups [index].group : NULL;
}

const char *
zr_route_master (zr_route_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->groups [index].master : NULL;
}

int
zr_route_queues (zr_route_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->groups [index].queues : 0;
}

int64_t
zr_route_epoch (zr_route_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->groups [index].epoch : 0;
}

size_t
zr_route_slaves (zr_route_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->groups [index].nslaves : 0;
}

const char *
zr_route_slave (zr_route_t *self, size_t index, size_t slave)
{
    assert (self);
    if (index >= self->count || slave >= self->groups [index].nslaves)
        return NULL;
    return self->groups [index].slaves [slave];
}

//  Builds a route from a GET_ROUTE OK reply. Returns NULL with *why (a
//  static reason) when the reply does not follow the spec.
static zr_route_t *
s_route_parse (const zr_obj_t *h, const char *topic, const char **why)
{
    const zr_obj_t *groups = zr_obj_get (h, "groups");
    if (!zr_obj_is_array (groups)) {
        *why = "reply has no 'groups' array";
        return NULL;
    }
    zr_route_t *self = (zr_route_t *) zmalloc (sizeof (zr_route_t));
    assert (self);
    self->topic = strdup (topic);
    size_t count = zr_obj_size (groups);
    self->groups = (route_group_t *) zmalloc ((count ? count : 1)
                                              * sizeof (route_group_t));
    assert (self->topic && self->groups);
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *g = zr_obj_at (groups, i);
        route_group_t *rg = &self->groups [self->count];
        const zr_obj_t *master = zr_obj_get (g, "master");
        const char *s;
        size_t len;
        int64_t queues;
        if (!zr_obj_is_map (g)
        ||  zr_field_str (g, "group", &s, &len) != ZR_FIELD_OK
        ||  !zr_name_valid (s, len)
        ||  zr_field_int (g, "queues", &queues) != ZR_FIELD_OK
        ||  queues < 1 || queues > 65536
        ||  (master && !zr_obj_is_nil (master) && !zr_obj_is_str (master))) {
            *why = "a group entry lacks a valid group, queues or master";
            zr_route_destroy (&self);
            return NULL;
        }
        rg->group = zr_field_strdup (g, "group");
        rg->queues = (int) queues;
        if (master && zr_obj_is_str (master)) {
            rg->master = zr_field_strdup (g, "master");
            if (rg->master && !*rg->master)
                zstr_free (&rg->master);
        }
        //  Optional fields (older nameservers may lack them): a bad one
        //  is ignored, not fatal.
        int64_t epoch;
        if (zr_field_int (g, "epoch", &epoch) == ZR_FIELD_OK && epoch > 0)
            rg->epoch = epoch;
        const zr_obj_t *slaves = zr_obj_get (g, "slaves");
        size_t nslaves = zr_obj_is_array (slaves) ? zr_obj_size (slaves) : 0;
        if (nslaves > 1024)
            nslaves = 1024;
        if (nslaves) {
            rg->slaves = (char **) zmalloc (nslaves * sizeof (char *));
            assert (rg->slaves);
        }
        for (size_t j = 0; j < nslaves; j++) {
            const char *ep;
            size_t eplen;
            if (zr_obj_str (zr_obj_at (slaves, j), &ep, &eplen)
                    == ZR_FIELD_OK
            &&  eplen > 0 && eplen <= 255 && !memchr (ep, 0, eplen)) {
                rg->slaves [rg->nslaves] = strndup (ep, eplen);
                assert (rg->slaves [rg->nslaves]);
                rg->nslaves++;
            }
        }
        self->count++;
    }
    return self;
}

static bool
s_has_master (zr_route_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->groups [i].master)
            return true;
    return false;
}

//  Appends item to a comma-separated list held in *list.
static void
s_list_add (char **list, const char *item)
{
    char *grown = *list ? zsys_sprintf ("%s,%s", *list, item)
                        : strdup (item);
    assert (grown);
    free (*list);
    *list = grown;
}

zr_route_t *
zr_route_lookup (const char *nameservers, const char *topic,
                 int timeout_ms, char **err)
{
    char *error = NULL;
    zr_route_t *result = NULL;
    if (!topic || !zr_name_valid (topic, strlen (topic))) {
        error = zsys_sprintf ("'%s' is not a valid topic name (1-%d "
                              "characters of A-Z a-z 0-9 _ - %% |)",
                              topic ? topic : "", ZR_NAME_MAX);
        goto done;
    }
    //  The endpoints, trimmed.
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) zstr_free);
    char *copy = strdup (nameservers ? nameservers : "");
    char *save = NULL;
    for (char *ep = strtok_r (copy, ",", &save); ep;
         ep = strtok_r (NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        size_t len = strlen (ep);
        while (len && ep [len - 1] == ' ')
            ep [--len] = 0;
        if (*ep)
            zlistx_add_end (list, strdup (ep));
    }
    free (copy);
    if (zlistx_size (list) == 0) {
        error = strdup ("no nameserver given");
        zlistx_destroy (&list);
        goto done;
    }
    if (timeout_ms < 1)
        timeout_ms = 1;

    char *silent = NULL;            //  no answer
    char *unknown = NULL;           //  TOPIC_NOT_FOUND
    char *other = NULL;             //  last other failure, explained
    zr_route_t *masterless = NULL;  //  a route without masters
    int64_t deadline = zclock_mono () + timeout_ms;
    size_t left = zlistx_size (list);
    for (char *ep = (char *) zlistx_first (list); ep && !result;
         ep = (char *) zlistx_next (list), left--) {
        int64_t remaining = deadline - zclock_mono ();
        int budget = remaining > 0 ? (int) (remaining / (int64_t) left) : 0;
        if (budget < 1)
            budget = 1;
        zr_client_t *client = zr_client_new (ep);
        if (!client) {
            free (other);
            other = zsys_sprintf ("nameserver endpoint '%s' is not valid",
                                  ep);
            continue;
        }
        zr_client_set_sndtimeo (client, budget);
        zr_enc_t *enc = zr_client_begin (client, "GET_ROUTE", 1);
        zr_enc_kstr (enc, "topic", topic);
        zr_reply_t *reply = zr_client_call (client, NULL, 0, budget);
        if (!reply)
            s_list_add (&silent, ep);
        else
        if (zr_reply_status (reply) == ZR_TOPIC_NOT_FOUND)
            s_list_add (&unknown, ep);
        else
        if (zr_reply_status (reply) != ZR_OK) {
            free (other);
            other = zsys_sprintf ("nameserver %s: %s: %s", ep,
                                  zr_reply_status_str (reply),
                                  zr_reply_reason (reply));
        }
        else {
            const char *why = NULL;
            zr_route_t *route = s_route_parse (zr_reply_header (reply),
                                               topic, &why);
            if (!route) {
                free (other);
                other = zsys_sprintf ("nameserver %s sent a malformed "
                                      "route: %s", ep, why);
            }
            else
            if (route->count == 0) {
                s_list_add (&unknown, ep);
                zr_route_destroy (&route);
            }
            else
            if (s_has_master (route))
                result = route;
            else
            if (!masterless)
                masterless = route;
            else
                zr_route_destroy (&route);
        }
        zr_reply_destroy (&reply);
        zr_client_destroy (&client);
    }
    if (!result) {
        if (masterless)
            error = zsys_sprintf ("no broker serving topic '%s' has a "
                                  "master", topic);
        else
        if (unknown)
            error = zsys_sprintf ("topic '%s' is unknown to every "
                                  "nameserver (%s)%s%s", topic, unknown,
                                  silent ? "; no answer from " : "",
                                  silent ? silent : "");
        else
        if (other)
            error = strdup (other);
        else
            error = zsys_sprintf ("no nameserver answered at %s within "
                                  "%d ms", silent ? silent : nameservers,
                                  timeout_ms);
    }
    zr_route_destroy (&masterless);
    free (silent);
    free (unknown);
    free (other);
    zlistx_destroy (&list);
done:
    if (err)
        *err = error;
    else
        free (error);
    return result;
}
