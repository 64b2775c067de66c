/*  client/router.c - topic routes from nameservers (GET_ROUTE,
    docs/protocol.md section 9) for the routed producer.

    One zr_client_t per nameserver, made when first needed and kept. A
    lookup asks the nameservers in turn, starting with the one that
    answered last, until one answers; TOPIC_NOT_FOUND from one of them is
    remembered and the others are still asked (they share no state, so
    another may know the topic). Replies are read field by field; a group
    entry with a missing or mistyped field is skipped with a warning.
*/
#include "client/client.h"
#include "client/router.h"

#define ZR_ROUTER_REFRESH 30000
#define ZR_ROUTER_FORCE_GAP 100         //  ms between forced refreshes

typedef struct {
    char *group;
    char *master;               //  NULL: no live master
    int queues;
    int64_t age_ms;
} s_group_t;

struct _zr_router_route_t {
    char *topic;
    s_group_t *groups;          //  sorted by group name
    size_t ngroups;
    size_t npairs;
    int64_t fetched_at;         //  mono ms of the last successful fetch
    int64_t tried_at;           //  mono ms of the last fetch attempt
    bool valid;                 //  fetched at least once
};

struct _zr_router_t {
    char *nameservers;
    char **endpoints;
    zr_client_t **clients;      //  lazily made, one per endpoint
    size_t count;
    size_t preferred;           //  index that answered last
    int refresh;                //  ms
    zhashx_t *routes;           //  topic -> zr_router_route_t
};

static void
s_groups_free (s_group_t *groups, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free (groups [i].group);
        free (groups [i].master);
    }
    free (groups);
}

static void
s_route_destroy (void **item)
{
    zr_router_route_t *route = (zr_router_route_t *) *item;
    if (!route)
        return;
    s_groups_free (route->groups, route->ngroups);
    free (route->topic);
    free (route);
    *item = NULL;
}

zr_router_t *
zr_router_new (const char *nameservers)
{
    if (!nameservers)
        return NULL;
    zr_router_t *self = (zr_router_t *) zmalloc (sizeof (zr_router_t));
    assert (self);
    self->nameservers = strdup (nameservers);
    char *copy = strdup (nameservers);
    assert (self->nameservers && copy);
    size_t limit = 1;
    for (const char *p = copy; *p; p++)
        limit += *p == ',';
    self->endpoints = (char **) zmalloc (limit * sizeof (char *));
    self->clients = (zr_client_t **) zmalloc (limit * sizeof (zr_client_t *));
    assert (self->endpoints && self->clients);
    char *save = NULL;
    for (char *item = strtok_r (copy, ",", &save); item;
         item = strtok_r (NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        size_t len = strlen (item);
        while (len && item [len - 1] == ' ')
            item [--len] = 0;
        if (len)
            self->endpoints [self->count++] = strdup (item);
    }
    free (copy);
    self->refresh = ZR_ROUTER_REFRESH;
    self->routes = zhashx_new ();
    assert (self->routes);
    zhashx_set_destructor (self->routes, s_route_destroy);
    if (self->count == 0)
        zr_router_destroy (&self);
    return self;
}

void
zr_router_destroy (zr_router_t **self_p)
{
    assert (self_p);
    zr_router_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        zr_client_destroy (&self->clients [i]);
        free (self->endpoints [i]);
    }
    free (self->clients);
    free (self->endpoints);
    zhashx_destroy (&self->routes);
    free (self->nameservers);
    free (self);
    *self_p = NULL;
}

const char *
zr_router_nameservers (zr_router_t *self)
{
    assert (self);
    return self->nameservers;
}

void
zr_router_set_refresh (zr_router_t *self, int interval_ms)
{
    assert (self);
    self->refresh = interval_ms > 0 ? interval_ms : 1;
}

static int
s_group_cmp (const void *a, const void *b)
{
    return strcmp (((const s_group_t *) a)->group,
                   ((const s_group_t *) b)->group);
}

//  Reads the groups of a GET_ROUTE reply. Returns 0 and fills *groups,
//  or -1 when the reply has no groups array.
static int
s_parse_groups (const zr_obj_t *hdr, const char *ns, s_group_t **groups_p,
                size_t *ngroups_p)
{
    const zr_obj_t *array = zr_obj_get (hdr, "groups");
    if (!array || !zr_obj_is_array (array)) {
        zsys_warning ("router: %s: GET_ROUTE reply without groups", ns);
        return -1;
    }
    size_t n = zr_obj_size (array);
    s_group_t *groups
        = (s_group_t *) zmalloc ((n ? n : 1) * sizeof (s_group_t));
    assert (groups);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const zr_obj_t *map = zr_obj_at (array, i);
        char *name = map ? zr_field_strdup (map, "group") : NULL;
        int64_t queues = 0, age = 0;
        if (!name || !zr_name_valid (name, strlen (name))
            || zr_field_int (map, "queues", &queues) != ZR_FIELD_OK
            || queues < 0 || queues > 1024) {
            zsys_warning ("router: %s: bad group entry %zu in GET_ROUTE",
                          ns, i);
            free (name);
            continue;
        }
        if (zr_field_int (map, "age_ms", &age) != ZR_FIELD_OK || age < 0)
            age = 0;
        char *master = zr_field_strdup (map, "master");
        if (master && !*master)
            zstr_free (&master);
        groups [count].group = name;
        groups [count].master = master;
        groups [count].queues = (int) queues;
        groups [count].age_ms = age;
        count++;
    }
    qsort (groups, count, sizeof (s_group_t), s_group_cmp);
    *groups_p = groups;
    *ngroups_p = count;
    return 0;
}

//  Asks the nameservers for topic. Returns 1 when route was filled, 0
//  when every nameserver that answered said TOPIC_NOT_FOUND, -1 when
//  none answered.
static int
s_fetch (zr_router_t *self, zr_router_route_t *route, int timeout_ms)
{
    int64_t end = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 1);
    bool answered = false;
    for (size_t k = 0; k < self->count; k++) {
        size_t i = (self->preferred + k) % self->count;
        int64_t left = end - zclock_mono ();
        if (left <= 0)
            break;
        //  Leave the others a share of what is left.
        int wait = (int) (left / (int64_t) (self->count - k));
        if (wait < 1)
            wait = 1;
        if (!self->clients [i])
            self->clients [i] = zr_client_new (self->endpoints [i]);
        zr_client_t *client = self->clients [i];
        if (!client)
            continue;           //  endpoint does not parse
        zr_enc_t *enc = zr_client_begin (client, "GET_ROUTE", 1);
        zr_enc_kstr (enc, "topic", route->topic);
        zr_reply_t *reply = zr_client_call (client, NULL, 0, wait);
        if (!reply)
            continue;
        answered = true;
        zr_status_t status = zr_reply_status (reply);
        s_group_t *groups = NULL;
        size_t ngroups = 0;
        if (status == ZR_OK
            && s_parse_groups (zr_reply_header (reply), self->endpoints [i],
                               &groups, &ngroups)
                   == 0) {
            zr_reply_destroy (&reply);
            s_groups_free (route->groups, route->ngroups);
            route->groups = groups;
            route->ngroups = ngroups;
            route->npairs = 0;
            for (size_t g = 0; g < ngroups; g++)
                if (groups [g].master)
                    route->npairs += (size_t) groups [g].queues;
            route->fetched_at = zclock_mono ();
            route->valid = true;
            self->preferred = i;
            return 1;
        }
        if (status != ZR_TOPIC_NOT_FOUND)
            zsys_warning ("router: %s: GET_ROUTE %s: %s %s",
                          self->endpoints [i], route->topic,
                          zr_reply_status_str (reply),
                          zr_reply_reason (reply));
        zr_reply_destroy (&reply);
    }
    return answered ? 0 : -1;
}

zr_router_route_t *
zr_router_get (zr_router_t *self, const char *topic, bool force,
               int timeout_ms, bool *refreshed, zr_status_t *status,
               char *reason, size_t reason_size)
{
    assert (self);
    assert (topic);
    *refreshed = false;
    zr_router_route_t *route
        = (zr_router_route_t *) zhashx_lookup (self->routes, topic);
    if (!route) {
        route = (zr_router_route_t *) zmalloc (sizeof (zr_router_route_t));
        assert (route);
        route->topic = strdup (topic);
        assert (route->topic);
        zhashx_insert (self->routes, topic, route);
    }
    int64_t now = zclock_mono ();
    bool stale = !route->valid || now - route->fetched_at >= self->refresh;
    //  After a failed attempt, wait before asking again (a dead
    //  nameserver must not cost every send a full lookup timeout).
    if (stale && route->valid && now - route->tried_at < self->refresh)
        stale = false;
    //  A known route without a live master is transient (a failover or
    //  a handover between two registrations): ask again, like force.
    if (route->valid && route->npairs == 0)
        force = true;
    if (force && now - route->tried_at < ZR_ROUTER_FORCE_GAP)
        force = false;
    int fetched = 2;            //  not tried
    if (stale || force) {
        route->tried_at = now;
        fetched = s_fetch (self, route, timeout_ms);
        *refreshed = fetched == 1;
    }
    if (fetched == 0 && route->valid) {
        //  Every nameserver that answered says the topic is gone.
        s_groups_free (route->groups, route->ngroups);
        route->groups = NULL;
        route->ngroups = 0;
        route->npairs = 0;
        route->valid = false;
        *refreshed = true;
    }
    if (route->valid && route->npairs > 0)
        return route;
    if (!route->valid && fetched == -1) {
        *status = ZR_TIMEOUT;
        snprintf (reason, reason_size, "no nameserver reachable at %s",
                  self->nameservers);
    }
    else
    if (!route->valid) {
        *status = ZR_TOPIC_NOT_FOUND;
        snprintf (reason, reason_size,
                  "topic '%s' is unknown to every nameserver", topic);
    }
    else {
        *status = ZR_TIMEOUT;
        snprintf (reason, reason_size, "no broker serving topic '%s'",
                  topic);
    }
    return NULL;
}

bool
zr_router_names (zr_router_t *self, const char *endpoint)
{
    assert (self);
    for (zr_router_route_t *route
         = (zr_router_route_t *) zhashx_first (self->routes);
         route; route = (zr_router_route_t *) zhashx_next (self->routes))
        for (size_t g = 0; g < route->ngroups; g++)
            if (route->groups [g].master
                && streq (route->groups [g].master, endpoint))
                return true;
    return false;
}

size_t
zr_router_pairs (zr_router_route_t *route)
{
    assert (route);
    return route->npairs;
}

const char *
zr_router_pair (zr_router_route_t *route, size_t index, int *queue)
{
    assert (route);
    for (size_t g = 0; g < route->ngroups; g++) {
        s_group_t *group = &route->groups [g];
        if (!group->master)
            continue;
        if (index < (size_t) group->queues) {
            *queue = (int) index;
            return group->master;
        }
        index -= (size_t) group->queues;
    }
    *queue = -1;
    return NULL;
}

size_t
zr_router_groups (zr_router_route_t *route)
{
    assert (route);
    return route->ngroups;
}

const char *
zr_router_group (zr_router_route_t *route, size_t index)
{
    assert (route);
    return index < route->ngroups ? route->groups [index].group : NULL;
}

const char *
zr_router_master (zr_router_route_t *route, size_t index)
{
    assert (route);
    return index < route->ngroups ? route->groups [index].master : NULL;
}

int
zr_router_queues (zr_router_route_t *route, size_t index)
{
    assert (route);
    return index < route->ngroups ? route->groups [index].queues : 0;
}

int64_t
zr_router_age (zr_router_route_t *route, size_t index)
{
    assert (route);
    return index < route->ngroups ? route->groups [index].age_ms : 0;
}

int64_t
zr_router_fetched_at (zr_router_route_t *route)
{
    assert (route);
    return route->fetched_at;
}
