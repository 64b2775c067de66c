/*  nameserver/registry.c - brokers keyed by (group, broker_id), their
    endpoints and topics; GET_ROUTE and GET_CLUSTER answers built from
    them (docs/protocol.md section 9).

    A REGISTER is parsed into a fresh record first and swapped in only
    when every field is valid, so a bad request changes nothing. Queries
    sort the records by (group, broker_id) on the fly: a registry holds a
    few thousand brokers at most (ZR_REGISTRY_BROKERS_MAX) and queries are
    rare next to the work of a broker.
*/
#include "nameserver/registry.h"

typedef struct {
    char *name;
    int queues;
} reg_topic_t;

typedef struct {
    char key [ZR_NAME_MAX + 16];        //  "group/id", the hash key
    char group [ZR_NAME_MAX + 1];
    int64_t broker_id;
    bool master;
    char **endpoints;
    size_t endpoint_count;
    char *ha;                           //  HA (replication) endpoint or NULL
    int64_t epoch;
    reg_topic_t *topics;
    size_t topic_count;
    zhashx_t *index;                    //  topic name -> reg_topic_t *
    int64_t heartbeat_ms;               //  -1 when not given
    int64_t last_seen;                  //  caller's monotonic ms
} reg_broker_t;

struct _zr_registry_t {
    char cluster [ZR_NAME_MAX + 1];
    zhashx_t *brokers;                  //  key -> reg_broker_t
};

//  --------------------------------------------------------------------
//  Records

static bool
s_valid_name (const char *s, size_t len)
{
    if (len == 0 || len > ZR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s [i];
        if (!(isalnum ((unsigned char) c) || c == '_' || c == '-'
        ||    c == '%' || c == '|'))
            return false;
    }
    return true;
}

static void
s_broker_destroy (reg_broker_t **self_p)
{
    reg_broker_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->endpoint_count; i++)
        free (self->endpoints [i]);
    free (self->endpoints);
    free (self->ha);
    for (size_t i = 0; i < self->topic_count; i++)
        free (self->topics [i].name);
    free (self->topics);
    zhashx_destroy (&self->index);
    free (self);
    *self_p = NULL;
}

static void
s_broker_free (void **item)
{
    s_broker_destroy ((reg_broker_t **) item);
}

static void
s_make_key (char *key, const char *group, int64_t broker_id)
{
    snprintf (key, ZR_NAME_MAX + 16, "%s/%" PRId64, group, broker_id);
}

zr_registry_t *
zr_registry_new (const char *cluster)
{
    if (!cluster || !s_valid_name (cluster, strlen (cluster)))
        return NULL;
    zr_registry_t *self = (zr_registry_t *) zmalloc (sizeof (zr_registry_t));
    assert (self);
    strcpy (self->cluster, cluster);
    self->brokers = zhashx_new ();
    assert (self->brokers);
    zhashx_set_destructor (self->brokers, s_broker_free);
    return self;
}

void
zr_registry_destroy (zr_registry_t **self_p)
{
    assert (self_p);
    zr_registry_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->brokers);
    free (self);
    *self_p = NULL;
}

const char *
zr_registry_cluster (zr_registry_t *self)
{
    assert (self);
    return self->cluster;
}

size_t
zr_registry_size (zr_registry_t *self)
{
    assert (self);
    return zhashx_size (self->brokers);
}

//  --------------------------------------------------------------------
//  Request parsing: each helper returns ZR_OK or an error status with
//  the reason written.

static zr_status_t
s_error (char *reason, size_t size, zr_status_t status,
         const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (reason, size, format, args);
    va_end (args);
    return status;
}

//  Reads a name field (cluster, group, topic) into buf (ZR_NAME_MAX + 1).
static zr_status_t
s_read_name (const zr_obj_t *map, const char *key, const char *what,
             char *buf, char *reason, size_t size)
{
    const char *s;
    size_t len;
    int rc = zr_field_str (map, key, &s, &len);
    if (rc == ZR_FIELD_MISSING)
        return s_error (reason, size, ZR_MALFORMED,
                        "missing field '%s'", key);
    if (rc != ZR_FIELD_OK)
        return s_error (reason, size, ZR_MALFORMED,
                        "field '%s' must be a string", key);
    if (!s_valid_name (s, len)) {
        //  Print only the name characters we know are safe.
        size_t show = 0;
        while (show < len && show < 40
           &&  isprint ((unsigned char) s [show]))
            show++;
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "'%.*s%s' is not a valid %s name (1-%d characters "
                        "of A-Z a-z 0-9 _ - %% |)", (int) show, s,
                        show < len ? "..." : "", what, ZR_NAME_MAX);
    }
    memcpy (buf, s, len);
    buf [len] = 0;
    return ZR_OK;
}

//  Reads an optional int field within lo..hi (dflt when missing).
static zr_status_t
s_read_int (const zr_obj_t *map, const char *key, int64_t dflt,
            int64_t lo, int64_t hi, int64_t *value, char *reason,
            size_t size)
{
    int rc = zr_field_int (map, key, value);
    if (rc == ZR_FIELD_MISSING || (rc == ZR_FIELD_TYPE
                                   && zr_obj_is_nil (zr_obj_get (map, key)))) {
        *value = dflt;
        return ZR_OK;
    }
    if (rc != ZR_FIELD_OK)
        return s_error (reason, size, ZR_MALFORMED,
                        "field '%s' must be an integer", key);
    if (*value < lo || *value > hi)
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "field '%s' is %" PRId64 ", must be %" PRId64
                        "..%" PRId64, key, *value, lo, hi);
    return ZR_OK;
}

//  True when endpoint (len bytes) names a scheme we carry and has an
//  address after it.
static bool
s_valid_endpoint (const char *s, size_t len)
{
    static const char *schemes [] = { "tcp://", "ipc://", "inproc://" };
    if (len > ZR_REGISTRY_ENDPOINT_MAX || memchr (s, 0, len))
        return false;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes [0]; i++) {
        size_t plen = strlen (schemes [i]);
        if (len > plen && memcmp (s, schemes [i], plen) == 0)
            return true;
    }
    return false;
}

//  A tcp endpoint with a wildcard host or port cannot be reached.
static bool
s_wildcard_endpoint (const char *ep)
{
    if (strncmp (ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    const char *colon = strrchr (host, ':');
    if (strncmp (host, "*", 1) == 0 || strncmp (host, "0.0.0.0:", 8) == 0
    ||  strncmp (host, "[::]:", 5) == 0)
        return true;
    return colon && (streq (colon + 1, "*") || streq (colon + 1, "0"));
}

static zr_status_t
s_read_endpoints (const zr_obj_t *request, reg_broker_t *broker,
                  char *reason, size_t size)
{
    const zr_obj_t *array = zr_obj_get (request, "endpoints");
    if (!array)
        return s_error (reason, size, ZR_MALFORMED,
                        "missing field 'endpoints'");
    if (!zr_obj_is_array (array))
        return s_error (reason, size, ZR_MALFORMED,
                        "field 'endpoints' must be an array of strings");
    size_t count = zr_obj_size (array);
    if (count == 0)
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "field 'endpoints' is empty: a broker needs an "
                        "endpoint clients can reach");
    if (count > ZR_REGISTRY_ENDPOINTS_MAX)
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "%zu endpoints, the limit is %d", count,
                        ZR_REGISTRY_ENDPOINTS_MAX);
    broker->endpoints = (char **) zmalloc (count * sizeof (char *));
    assert (broker->endpoints);
    for (size_t i = 0; i < count; i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (array, i), &s, &len) != ZR_FIELD_OK)
            return s_error (reason, size, ZR_MALFORMED,
                            "endpoints[%zu] must be a string", i);
        if (!s_valid_endpoint (s, len)) {
            size_t show = 0;
            while (show < len && show < 60
               &&  isprint ((unsigned char) s [show]))
                show++;
            return s_error (reason, size, ZR_BAD_ARGUMENT,
                            "endpoints[%zu] '%.*s%s' is not a tcp://, "
                            "ipc:// or inproc:// endpoint of at most %d "
                            "bytes", i, (int) show, s,
                            show < len ? "..." : "",
                            ZR_REGISTRY_ENDPOINT_MAX);
        }
        char *ep = (char *) malloc (len + 1);
        assert (ep);
        memcpy (ep, s, len);
        ep [len] = 0;
        broker->endpoints [broker->endpoint_count++] = ep;
        if (s_wildcard_endpoint (ep))
            return s_error (reason, size, ZR_BAD_ARGUMENT,
                            "endpoints[%zu] '%s' has a wildcard host or "
                            "port; advertise an address other hosts can "
                            "reach", i, ep);
    }
    return ZR_OK;
}

//  The optional `ha` field: the broker's HA (replication ROUTER)
//  endpoint, which slaves follow (protocol.md section 16). "" or nil: none.
static zr_status_t
s_read_ha (const zr_obj_t *request, reg_broker_t *broker, char *reason,
           size_t size)
{
    const zr_obj_t *ha = zr_obj_get (request, "ha");
    if (!ha || zr_obj_is_nil (ha))
        return ZR_OK;
    const char *s;
    size_t len;
    if (zr_obj_str (ha, &s, &len) != ZR_FIELD_OK)
        return s_error (reason, size, ZR_MALFORMED,
                        "field 'ha' must be a string");
    if (len == 0)
        return ZR_OK;
    if (!s_valid_endpoint (s, len))
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "field 'ha' is not a tcp://, ipc:// or inproc:// "
                        "endpoint of at most %d bytes",
                        ZR_REGISTRY_ENDPOINT_MAX);
    broker->ha = (char *) malloc (len + 1);
    assert (broker->ha);
    memcpy (broker->ha, s, len);
    broker->ha [len] = 0;
    if (s_wildcard_endpoint (broker->ha))
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "field 'ha' '%s' has a wildcard host or port; "
                        "advertise an address other hosts can reach",
                        broker->ha);
    return ZR_OK;
}

static zr_status_t
s_read_topics (const zr_obj_t *request, reg_broker_t *broker,
               char *reason, size_t size)
{
    const zr_obj_t *array = zr_obj_get (request, "topics");
    if (!array)
        return s_error (reason, size, ZR_MALFORMED,
                        "missing field 'topics'");
    if (!zr_obj_is_array (array))
        return s_error (reason, size, ZR_MALFORMED,
                        "field 'topics' must be an array of maps "
                        "{topic, queues}");
    size_t count = zr_obj_size (array);
    if (count > ZR_REGISTRY_TOPICS_MAX)
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "%zu topics, the limit is %d", count,
                        ZR_REGISTRY_TOPICS_MAX);
    broker->topics = (reg_topic_t *) zmalloc ((count ? count : 1)
                                              * sizeof (reg_topic_t));
    assert (broker->topics);
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *entry = zr_obj_at (array, i);
        if (!zr_obj_is_map (entry))
            return s_error (reason, size, ZR_MALFORMED,
                            "topics[%zu] must be a map {topic, queues}", i);
        char name [ZR_NAME_MAX + 1];
        zr_status_t status = s_read_name (entry, "topic", "topic", name,
                                          reason, size);
        if (status != ZR_OK)
            return status;
        int64_t queues;
        int rc = zr_field_int (entry, "queues", &queues);
        if (rc == ZR_FIELD_MISSING)
            return s_error (reason, size, ZR_MALFORMED,
                            "topics[%zu] has no field 'queues'", i);
        if (rc != ZR_FIELD_OK)
            return s_error (reason, size, ZR_MALFORMED,
                            "topics[%zu] field 'queues' must be an "
                            "integer", i);
        if (queues < 1 || queues > ZR_REGISTRY_QUEUES_MAX)
            return s_error (reason, size, ZR_BAD_ARGUMENT,
                            "topic '%s' has %" PRId64 " queues, must be "
                            "1..%d", name, queues, ZR_REGISTRY_QUEUES_MAX);
        if (zhashx_lookup (broker->index, name))
            return s_error (reason, size, ZR_BAD_ARGUMENT,
                            "topic '%s' is listed twice", name);
        reg_topic_t *topic = &broker->topics [broker->topic_count++];
        topic->name = strdup (name);
        assert (topic->name);
        topic->queues = (int) queues;
        zhashx_insert (broker->index, name, topic);
    }
    return ZR_OK;
}

static zr_status_t
s_check_cluster (zr_registry_t *self, const zr_obj_t *request,
                 char *reason, size_t size)
{
    char cluster [ZR_NAME_MAX + 1];
    zr_status_t status = s_read_name (request, "cluster", "cluster",
                                      cluster, reason, size);
    if (status != ZR_OK)
        return status;
    if (strneq (cluster, self->cluster))
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "broker of cluster '%s' refused: this nameserver "
                        "serves cluster '%s'", cluster, self->cluster);
    return ZR_OK;
}

zr_status_t
zr_registry_register (zr_registry_t *self, const zr_obj_t *request,
                      int64_t now, char *reason, size_t size)
{
    assert (self);
    assert (reason && size);
    reason [0] = 0;
    if (!zr_obj_is_map (request))
        return s_error (reason, size, ZR_MALFORMED,
                        "REGISTER request must be a map");
    zr_status_t status = s_check_cluster (self, request, reason, size);
    if (status != ZR_OK)
        return status;

    reg_broker_t *broker = (reg_broker_t *) zmalloc (sizeof (reg_broker_t));
    assert (broker);
    broker->index = zhashx_new ();
    assert (broker->index);
    status = s_read_name (request, "group", "group", broker->group,
                          reason, size);
    if (status == ZR_OK)
        status = s_read_int (request, "broker_id", 0, 0,
                             ZR_REGISTRY_BROKER_ID_MAX, &broker->broker_id,
                             reason, size);
    if (status == ZR_OK) {
        //  role names the master; without one, broker_id 0 is the
        //  master. With failover any id may be master (of an epoch).
        broker->master = broker->broker_id == 0;
        const zr_obj_t *role = zr_obj_get (request, "role");
        const char *s;
        size_t len;
        if (role && !zr_obj_is_nil (role)) {
            if (zr_obj_str (role, &s, &len) != ZR_FIELD_OK)
                status = s_error (reason, size, ZR_MALFORMED,
                                  "field 'role' must be a string");
            else
            if (!((len == 6 && memcmp (s, "master", 6) == 0)
            ||    (len == 5 && memcmp (s, "slave", 5) == 0)))
                status = s_error (reason, size, ZR_BAD_ARGUMENT,
                                  "field 'role' must be \"master\" or "
                                  "\"slave\"");
            else
                broker->master = len == 6;
        }
    }
    if (status == ZR_OK)
        status = s_read_int (request, "epoch", 1, 0, INT64_MAX,
                             &broker->epoch, reason, size);
    //  Before any failover (epoch 1) broker_id 0 is the master and the
    //  others are slaves; after one, any id may be master of its epoch.
    if (status == ZR_OK && broker->epoch <= 1
    &&  broker->master != (broker->broker_id == 0))
        status = s_error (reason, size, ZR_BAD_ARGUMENT,
                          "role %s does not match broker_id %" PRId64
                          " at epoch %" PRId64 " (0 is the master, others "
                          "are slaves, until a failover)",
                          broker->master ? "master" : "slave",
                          broker->broker_id, broker->epoch);
    if (status == ZR_OK)
        status = s_read_int (request, "heartbeat_ms", -1, 0, INT64_MAX,
                             &broker->heartbeat_ms, reason, size);
    if (status == ZR_OK)
        status = s_read_endpoints (request, broker, reason, size);
    if (status == ZR_OK)
        status = s_read_topics (request, broker, reason, size);
    if (status == ZR_OK)
        status = s_read_ha (request, broker, reason, size);
    if (status != ZR_OK) {
        s_broker_destroy (&broker);
        return status;
    }
    s_make_key (broker->key, broker->group, broker->broker_id);
    if (!zhashx_lookup (self->brokers, broker->key)
    &&  zhashx_size (self->brokers) >= ZR_REGISTRY_BROKERS_MAX) {
        s_broker_destroy (&broker);
        return s_error (reason, size, ZR_BAD_ARGUMENT,
                        "the nameserver already has %d brokers, its limit",
                        ZR_REGISTRY_BROKERS_MAX);
    }
    broker->last_seen = now;
    if (!zhashx_lookup (self->brokers, broker->key))
        zsys_info ("nameserver: broker %s/%" PRId64 " registered (%s at "
                   "%s, epoch %" PRId64 ", %zu topics)", broker->group,
                   broker->broker_id, broker->master ? "master" : "slave",
                   broker->endpoints [0], broker->epoch,
                   broker->topic_count);
    //  Replaces (and frees) any previous record of this broker.
    zhashx_update (self->brokers, broker->key, broker);
    return ZR_OK;
}

zr_status_t
zr_registry_unregister (zr_registry_t *self, const zr_obj_t *request,
                        char *reason, size_t size)
{
    assert (self);
    assert (reason && size);
    reason [0] = 0;
    if (!zr_obj_is_map (request))
        return s_error (reason, size, ZR_MALFORMED,
                        "UNREGISTER request must be a map");
    zr_status_t status = s_check_cluster (self, request, reason, size);
    char group [ZR_NAME_MAX + 1];
    int64_t broker_id = 0;
    if (status == ZR_OK)
        status = s_read_name (request, "group", "group", group,
                              reason, size);
    if (status == ZR_OK)
        status = s_read_int (request, "broker_id", 0, 0,
                             ZR_REGISTRY_BROKER_ID_MAX, &broker_id,
                             reason, size);
    if (status != ZR_OK)
        return status;
    char key [ZR_NAME_MAX + 16];
    s_make_key (key, group, broker_id);
    if (zhashx_lookup (self->brokers, key)) {
        zsys_info ("nameserver: broker %s unregistered", key);
        zhashx_delete (self->brokers, key);
    }
    return ZR_OK;
}

size_t
zr_registry_expire (zr_registry_t *self, int64_t now, int64_t expiry_ms)
{
    assert (self);
    zlistx_t *dead = zlistx_new ();
    assert (dead);
    reg_broker_t *broker = (reg_broker_t *) zhashx_first (self->brokers);
    while (broker) {
        if (now - broker->last_seen >= expiry_ms)
            zlistx_add_end (dead, broker);
        broker = (reg_broker_t *) zhashx_next (self->brokers);
    }
    size_t count = zlistx_size (dead);
    broker = (reg_broker_t *) zlistx_first (dead);
    while (broker) {
        zsys_info ("nameserver: broker %s/%" PRId64 " expired (silent for "
                   "%" PRId64 " ms)", broker->group, broker->broker_id,
                   now - broker->last_seen);
        zhashx_delete (self->brokers, broker->key);
        broker = (reg_broker_t *) zlistx_next (dead);
    }
    zlistx_destroy (&dead);
    return count;
}

//  --------------------------------------------------------------------
//  Queries

static int
s_compare (const void *a, const void *b)
{
    const reg_broker_t *x = *(const reg_broker_t *const *) a;
    const reg_broker_t *y = *(const reg_broker_t *const *) b;
    int rc = strcmp (x->group, y->group);
    if (rc)
        return rc;
    return x->broker_id < y->broker_id ? -1 : x->broker_id > y->broker_id;
}

//  Every broker, sorted by (group, broker_id); *count receives the size.
//  Caller frees the array.
static reg_broker_t **
s_sorted (zr_registry_t *self, size_t *count)
{
    *count = zhashx_size (self->brokers);
    reg_broker_t **list = (reg_broker_t **) zmalloc ((*count ? *count : 1)
                                                     * sizeof (void *));
    assert (list);
    size_t i = 0;
    reg_broker_t *broker = (reg_broker_t *) zhashx_first (self->brokers);
    while (broker) {
        list [i++] = broker;
        broker = (reg_broker_t *) zhashx_next (self->brokers);
    }
    qsort (list, *count, sizeof (void *), s_compare);
    return list;
}

static int64_t
s_age (const reg_broker_t *broker, int64_t now)
{
    return now > broker->last_seen ? now - broker->last_seen : 0;
}

//  Encodes one group's route entry from the members list [first, last)
//  (sorted by broker_id) that serve topic.
static void
s_encode_group (zr_enc_t *enc, reg_broker_t **list, size_t first,
                size_t last, const char *topic, int64_t now)
{
    reg_broker_t *master = NULL;
    size_t slaves = 0;
    int queues = 0;
    int64_t epoch = 0, age = INT64_MAX;
    //  The master: the one registered as master at the highest epoch
    //  (a fenced old master may still be registered); the others serve
    //  as slaves.
    for (size_t i = first; i < last; i++)
        if (list [i]->master && zhashx_lookup (list [i]->index, topic)
        &&  (!master || list [i]->epoch > master->epoch
             || (list [i]->epoch == master->epoch
                 && s_age (list [i], now) < s_age (master, now))))
            master = list [i];
    for (size_t i = first; i < last; i++) {
        reg_topic_t *t = (reg_topic_t *) zhashx_lookup (list [i]->index,
                                                        topic);
        if (!t || list [i] == master)
            continue;
        else {
            slaves++;
            //  No master: the slaves' figures stand in.
            if (t->queues > queues)
                queues = t->queues;
            if (list [i]->epoch > epoch)
                epoch = list [i]->epoch;
            if (s_age (list [i], now) < age)
                age = s_age (list [i], now);
        }
    }
    if (master) {
        reg_topic_t *t = (reg_topic_t *) zhashx_lookup (master->index,
                                                        topic);
        queues = t->queues;
        epoch = master->epoch;
        age = s_age (master, now);
    }
    zr_enc_map (enc, 7);
    zr_enc_kstr (enc, "group", list [first]->group);
    zr_enc_kint (enc, "queues", queues);
    zr_enc_str (enc, "master");
    if (master)
        zr_enc_str (enc, master->endpoints [0]);
    else
        zr_enc_nil (enc);
    zr_enc_str (enc, "slaves");
    zr_enc_array (enc, slaves);
    for (size_t i = first; i < last; i++)
        if (list [i] != master && zhashx_lookup (list [i]->index, topic))
            zr_enc_str (enc, list [i]->endpoints [0]);
    zr_enc_kint (enc, "epoch", epoch);
    zr_enc_kint (enc, "age_ms", age);
    zr_enc_str (enc, "master_ha");
    if (master && master->ha)
        zr_enc_str (enc, master->ha);
    else
        zr_enc_nil (enc);
}

size_t
zr_registry_route (zr_registry_t *self, const char *topic, int64_t now,
                   zr_enc_t *enc)
{
    assert (self);
    assert (topic);
    assert (enc);
    size_t count;
    reg_broker_t **list = s_sorted (self, &count);
    //  First pass counts groups with a member serving the topic.
    size_t groups = 0;
    for (size_t i = 0; i < count; i++) {
        if (!zhashx_lookup (list [i]->index, topic))
            continue;
        //  Count a group once: at its first serving member.
        bool seen = false;
        for (size_t j = i; j > 0 && streq (list [j - 1]->group,
                                           list [i]->group); j--)
            if (zhashx_lookup (list [j - 1]->index, topic))
                seen = true;
        if (!seen)
            groups++;
    }
    if (groups) {
        zr_enc_array (enc, groups);
        size_t first = 0;
        while (first < count) {
            size_t last = first + 1;
            while (last < count && streq (list [last]->group,
                                          list [first]->group))
                last++;
            bool serves = false;
            for (size_t i = first; i < last; i++)
                if (zhashx_lookup (list [i]->index, topic))
                    serves = true;
            if (serves)
                s_encode_group (enc, list, first, last, topic, now);
            first = last;
        }
    }
    free (list);
    return groups;
}

size_t
zr_registry_cluster_encode (zr_registry_t *self, int64_t now,
                            zr_enc_t *enc)
{
    assert (self);
    assert (enc);
    size_t count;
    reg_broker_t **list = s_sorted (self, &count);
    zr_enc_array (enc, count);
    for (size_t i = 0; i < count; i++) {
        reg_broker_t *broker = list [i];
        zr_enc_map (enc, 8);
        zr_enc_kstr (enc, "group", broker->group);
        zr_enc_kint (enc, "broker_id", broker->broker_id);
        zr_enc_kstr (enc, "role", broker->master ? "master" : "slave");
        zr_enc_str (enc, "endpoints");
        zr_enc_array (enc, broker->endpoint_count);
        for (size_t e = 0; e < broker->endpoint_count; e++)
            zr_enc_str (enc, broker->endpoints [e]);
        zr_enc_kint (enc, "epoch", broker->epoch);
        zr_enc_str (enc, "topics");
        zr_enc_array (enc, broker->topic_count);
        for (size_t t = 0; t < broker->topic_count; t++) {
            zr_enc_map (enc, 2);
            zr_enc_kstr (enc, "topic", broker->topics [t].name);
            zr_enc_kint (enc, "queues", broker->topics [t].queues);
        }
        zr_enc_kint (enc, "age_ms", s_age (broker, now));
        zr_enc_kstr (enc, "ha", broker->ha ? broker->ha : "");
    }
    free (list);
    return count;
}
