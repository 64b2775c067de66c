/*  actors/settings.c - settings tables and typed lookups (see settings.h).
*/
#include "actors/settings.h"

const zr_setting_t zr_broker_settings [] = {
    { "data", ZR_SETTING_STR, "./zrocket-data", NULL,
      "data directory (RocksDB store)" },
    { "bind", ZR_SETTING_STR, "tcp://*:10911", NULL,
      "endpoints to listen on, comma-separated (tcp://, ipc://, inproc://)" },
    { "group", ZR_SETTING_STR, NULL, NULL,
      "broker group name (default: generated at first start, kept in "
      "the data directory)" },
    { "flush", ZR_SETTING_ENUM, "async", "async|sync",
      "async: WAL in page cache, survives a crash; sync: fsync before "
      "the reply, survives power loss" },
    { "auto-create", ZR_SETTING_BOOL, "false", NULL,
      "create a topic on its first send" },
    { "default-queues", ZR_SETTING_INT, "8", NULL,
      "queue count of auto-created and default-created topics" },
    { "max-msg-size", ZR_SETTING_INT, "4M", NULL,
      "largest message body accepted, bytes" },
    { "max-inflight", ZR_SETTING_INT, "1024", NULL,
      "requests in flight per client before BUSY" },
    { "batch-max", ZR_SETTING_INT, "1024", NULL,
      "most sends in one group commit" },
    { "min-free-mb", ZR_SETTING_INT, "256", NULL,
      "refuse writes (DISK_FULL) below this much free disk, MiB" },
    { "member-heartbeat-ms", ZR_SETTING_INT, "1000", NULL,
      "how often group members heartbeat (told to them), ms" },
    { "member-expiry-ms", ZR_SETTING_INT, "3000", NULL,
      "drop a group member not heard from for this long, ms" },
    { "lease-ms", ZR_SETTING_INT, "3000", NULL,
      "lease of a queue held by a group member, ms" },
    { "retry-delays", ZR_SETTING_STR,
      "10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h", NULL,
      "delays before the 1st, 2nd, ... redelivery of a message handed "
      "back (ms, s, m, h units); the last repeats" },
    { "max-reconsume", ZR_SETTING_INT, "16", NULL,
      "attempts before a message goes to the group's dead-letter queue" },
    { "max-delay", ZR_SETTING_STR, "7d", NULL,
      "longest delay of a delayed or scheduled message (ms, s, m, h, d "
      "units); later ones are refused" },
    { "max-batch-bytes", ZR_SETTING_INT, "4M", NULL,
      "most body bytes in one SEND_BATCH" },
    { "default-retention-ms", ZR_SETTING_INT, "259200000", NULL,
      "retention by age of topics that set none, ms (0: unlimited)" },
    { "default-retention-bytes", ZR_SETTING_INT, "0", NULL,
      "retention by size of topics that set none, bytes over all of a "
      "topic's queues (0: unlimited)" },
    { "retention-check-ms", ZR_SETTING_INT, "10000", NULL,
      "interval between retention passes, ms" },
    { "txn-check-ms", ZR_SETTING_INT, "6000", NULL,
      "check back a transaction left unresolved this long, and again "
      "after as long each time, ms" },
    { "txn-max-checks", ZR_SETTING_INT, "15", NULL,
      "roll back a transaction after this many unanswered checks" },
    { "producer-expiry-ms", ZR_SETTING_INT, "3000", NULL,
      "drop a transactional producer not heard from for this long, ms" },
    { "role", ZR_SETTING_STR, NULL, NULL,
      "master (default) or slave; a role kept in the data directory "
      "wins" },
    { "replication", ZR_SETTING_STR, NULL, NULL,
      "sync (answer sends once the in-sync slaves have them), async or "
      "none (default: async when --group or --role is given, else none)" },
    { "ha-port", ZR_SETTING_INT, "0", NULL,
      "replication port (catch-up and acks; the stream uses the next "
      "one); 0: the broker port + 1, or ephemeral ports for port *" },
    { "master", ZR_SETTING_STR, "", NULL,
      "slave: the master's HA endpoint, e.g. tcp://host:10912 (empty: "
      "ask the nameservers)" },
    { "min-insync", ZR_SETTING_INT, "1", NULL,
      "sync: fewest in-sync members (master included) for SEND_OK" },
    { "isr-max-lag-ms", ZR_SETTING_INT, "1000", NULL,
      "a slave whose acks lag more leaves the in-sync set, ms" },
    { "slave-ack-timeout-ms", ZR_SETTING_INT, "3000", NULL,
      "sync: FLUSH_SLAVE_TIMEOUT when an in-sync slave has not acked a "
      "send's batch in this time, ms" },
    { "repl-log-keep", ZR_SETTING_INT, "1000000", NULL,
      "batches kept in the replication log for catch-up" },
    { "ha-sndhwm", ZR_SETTING_INT, "100000", NULL,
      "replication stream send high-water mark (tests make it tiny)" },
    { "ha-rcvhwm", ZR_SETTING_INT, "100000", NULL,
      "slave: replication stream receive high-water mark" },
    { "failover", ZR_SETTING_BOOL, "false", NULL,
      "automatic failover: leases and votes from the nameservers (an "
      "explicit --nameserver list); a slave campaigns when its master "
      "is silent for master-dead-ms" },
    { "ha-heartbeat-ms", ZR_SETTING_INT, "300", NULL,
      "failover: HA heartbeat period to the nameservers, ms" },
    { "master-dead-ms", ZR_SETTING_INT, "3000", NULL,
      "failover: a slave campaigns after its master's stream has been "
      "silent this long, ms" },
    { "broker-id", ZR_SETTING_STR, "auto", NULL,
      "this broker's id in its group (kept across role changes; failover "
      "needs an explicit one); auto: 0 for a master, 1 for a slave" },
    { "nameserver", ZR_SETTING_STR, "auto", NULL,
      "nameservers to register with, comma-separated tcp:// endpoints; "
      "auto: 127.0.0.1:9876 if it answers, else beacons; none: no "
      "nameserver" },
    { "cluster", ZR_SETTING_STR, "DefaultCluster", NULL,
      "cluster name (beacons of other clusters are ignored)" },
    { "heartbeat-ms", ZR_SETTING_INT, "10000", NULL,
      "interval between registrations with the nameservers, ms" },
    { "interface", ZR_SETTING_STR, NULL, NULL,
      "network interface to listen for beacons on (default: CZMQ's "
      "choice, the first broadcast-capable one)" },
    { "beacon-port", ZR_SETTING_INT, "9876", NULL,
      "UDP port of nameserver beacons" },
    { NULL, 0, NULL, NULL, NULL }
};

const zr_setting_t zr_nameserver_settings [] = {
    { "bind", ZR_SETTING_STR, "tcp://*:9876", NULL,
      "endpoints to listen on, comma-separated" },
    { "cluster", ZR_SETTING_STR, "DefaultCluster", NULL,
      "cluster name: brokers of other clusters are refused, beacons "
      "carry it" },
    { "expiry-ms", ZR_SETTING_INT, "30000", NULL,
      "drop a broker that has not registered for this long, ms" },
    { "beacon", ZR_SETTING_BOOL, "false", NULL,
      "broadcast a UDP beacon so brokers and clients find this "
      "nameserver with no configuration" },
    { "beacon-port", ZR_SETTING_INT, "9876", NULL,
      "UDP port of the beacon" },
    { "beacon-interval-ms", ZR_SETTING_INT, "500", NULL,
      "interval between beacons, ms" },
    { "interface", ZR_SETTING_STR, NULL, NULL,
      "network interface to beacon on (default: CZMQ's choice)" },
    { "data", ZR_SETTING_STR, "./zrocket-ns", NULL,
      "directory of the vote file (failover votes, fsync'd; the "
      "nameserver's only durable state; created on the first vote)" },
    { "lease-ms", ZR_SETTING_INT, "2000", NULL,
      "lease a master's HA heartbeat earns, ms from when it was sent" },
    { "master-dead-ms", ZR_SETTING_INT, "3000", NULL,
      "a master is dead this long after its last HA heartbeat arrived; "
      "at least lease-ms + 500; no leases or votes this long after "
      "start" },
    { NULL, 0, NULL, NULL, NULL }
};

const char *
zr_setting_get (zconfig_t *cfg, const char *section,
                const zr_setting_t *table, const char *name)
{
    const char *dflt = NULL;
    for (const zr_setting_t *s = table; s->name; s++)
        if (streq (s->name, name))
            dflt = s->dflt;
    if (cfg) {
        char path [256];
        snprintf (path, sizeof path, "%s/%s", section, name);
        char *value = zconfig_get (cfg, path, NULL);
        if (value)
            return value;
    }
    return dflt;
}

int
zr_setting_parse_int (const char *text, int64_t *value)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || v < 0)
        return -1;
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024;
    else
    if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024;
    else
    if (*end == 'g' || *end == 'G')
        mult = 1024LL * 1024 * 1024;
    if (mult > 1)
        end++;
    if (*end)
        return -1;
    if (v > INT64_MAX / mult)
        return -1;
    *value = v * mult;
    return 0;
}

int
zr_setting_parse_bool (const char *text, bool *value)
{
    if (!text)
        return -1;
    if (streq (text, "true") || streq (text, "1") || streq (text, "yes")
    ||  streq (text, "on"))
        *value = true;
    else
    if (streq (text, "false") || streq (text, "0") || streq (text, "no")
    ||  streq (text, "off"))
        *value = false;
    else
        return -1;
    return 0;
}
