/*  nameserver/ha.c - leases and votes (see ha.h).
*/
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include "nameserver/ha.h"

#define VOTE_FILE "votes"
#define VOTE_HEADER "zrocket-votes 1"
#define VOTE_FILE_MAX (16 * 1024 * 1024)

typedef struct {
    char name [ZR_NAME_MAX + 1];
    //  From heartbeats
    bool heard;
    int64_t received;           //  mono time of the last heartbeat
    int64_t master;             //  its broker_id
    int64_t epoch;              //  its epoch
    int64_t seq;                //  its replicated sequence
    int64_t isr [ZR_HA_ISR_MAX + 1];
    size_t isr_count;
    //  The vote at the highest epoch (voted_epoch 0: none)
    int64_t voted_epoch;
    int64_t voted_for;
    int64_t voted_last_epoch;
    int64_t voted_last_seq;
    //  A graceful handover (zr_ha_resign; resign_epoch 0: none): the
    //  master of resign_epoch stepped down for resign_successor at
    //  resign_seq. Kept in memory only (see zr_ha_resign).
    int64_t resign_epoch;
    int64_t resign_successor;
    int64_t resign_seq;
} group_t;

struct _zr_ha_t {
    char *path;                 //  vote file, or NULL
    char *dir;
    int64_t lease_ms;
    int64_t dead_ms;
    int64_t started;
    zhashx_t *groups;           //  name -> group_t
};

static bool
s_valid_name (const char *s)
{
    size_t len = strlen (s);
    if (len == 0 || len > ZR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum ((unsigned char) s [i]) || s [i] == '_'
        ||    s [i] == '-' || s [i] == '%' || s [i] == '|'))
            return false;
    return true;
}

static group_t *
s_group (zr_ha_t *self, const char *name, bool create)
{
    group_t *g = (group_t *) zhashx_lookup (self->groups, name);
    if (!g && create) {
        g = (group_t *) zmalloc (sizeof (group_t));
        snprintf (g->name, sizeof g->name, "%s", name);
        zhashx_insert (self->groups, name, g);
    }
    return g;
}

static void
s_group_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Highest epoch known for g: heard or voted.
static int64_t
s_known_epoch (group_t *g)
{
    int64_t e = g->heard ? g->epoch : 0;
    return g->voted_epoch > e ? g->voted_epoch : e;
}

//  (a1, b1) < (a2, b2) lexicographically
static bool
s_less (int64_t a1, int64_t b1, int64_t a2, int64_t b2)
{
    return a1 < a2 || (a1 == a2 && b1 < b2);
}

//  Parses one vote line into the table. 0 or -1.
static int
s_parse_vote (zr_ha_t *self, char *line)
{
    char group [ZR_NAME_MAX + 2];
    long long epoch, cand, last_epoch, last_seq;
    int used = 0;
    if (strlen (line) > ZR_NAME_MAX + 100)
        return -1;
    if (sscanf (line, "%128s %lld %lld %lld %lld%n", group, &epoch, &cand,
                &last_epoch, &last_seq, &used) != 5
    ||  line [used] != 0)
        return -1;
    if (!s_valid_name (group) || epoch < 1 || cand < 0
    ||  cand > 1000000 || last_epoch < 0 || last_seq < 0)
        return -1;
    group_t *g = s_group (self, group, true);
    if (epoch > g->voted_epoch) {
        g->voted_epoch = epoch;
        g->voted_for = cand;
        g->voted_last_epoch = last_epoch;
        g->voted_last_seq = last_seq;
    }
    else
    if (epoch == g->voted_epoch && cand != g->voted_for)
        return -1;      //  two votes in one epoch: never written by us
    return 0;
}

static int
s_load (zr_ha_t *self, char **err)
{
    FILE *file = fopen (self->path, "r");
    if (!file) {
        if (errno == ENOENT)
            return 0;
        *err = zsys_sprintf ("vote file %s: cannot open: %s", self->path,
                             strerror (errno));
        return -1;
    }
    char *text = (char *) malloc (VOTE_FILE_MAX + 1);
    size_t size = fread (text, 1, VOTE_FILE_MAX + 1, file);
    bool failed = ferror (file);
    fclose (file);
    if (failed || size > VOTE_FILE_MAX) {
        *err = zsys_sprintf ("vote file %s: %s", self->path, failed
                             ? "cannot read" : "larger than 16 MiB");
        free (text);
        return -1;
    }
    text [size] = 0;
    if (memchr (text, 0, size)) {
        *err = zsys_sprintf ("vote file %s: holds a NUL byte: not a vote "
                             "file", self->path);
        free (text);
        return -1;
    }
    int rc = 0;
    size_t lineno = 0;
    char *p = text;
    while (*p) {
        char *nl = strchr (p, '\n');
        lineno++;
        if (!nl) {
            //  Torn last write: it was never answered.
            zsys_warning ("nameserver: vote file %s: line %zu has no "
                          "newline (a write cut by a crash), ignored",
                          self->path, lineno);
            break;
        }
        *nl = 0;
        bool ok = lineno == 1 ? streq (p, VOTE_HEADER)
                              : s_parse_vote (self, p) == 0;
        if (!ok) {
            *err = zsys_sprintf ("vote file %s: line %zu is not %s: "
                                 "'%.60s' (fix or move the file; it holds "
                                 "this nameserver's votes)", self->path,
                                 lineno, lineno == 1
                                 ? "'" VOTE_HEADER "'"
                                 : "'GROUP EPOCH CANDIDATE LAST_EPOCH "
                                   "LAST_SEQ'", p);
            rc = -1;
            break;
        }
        p = nl + 1;
    }
    if (rc == 0 && size > 0 && lineno == 0)
        rc = 0;
    free (text);
    return rc;
}

zr_ha_t *
zr_ha_new (const char *data_dir, int64_t lease_ms, int64_t dead_ms,
           int64_t now, char **err)
{
    if (lease_ms < 1 || dead_ms < lease_ms + ZR_HA_LEASE_MARGIN) {
        *err = zsys_sprintf ("master-dead-ms %" PRId64 " must be at least "
                             "lease-ms %" PRId64 " + %d: a master must lose "
                             "its lease before it is declared dead",
                             dead_ms, lease_ms, ZR_HA_LEASE_MARGIN);
        return NULL;
    }
    zr_ha_t *self = (zr_ha_t *) zmalloc (sizeof (zr_ha_t));
    self->lease_ms = lease_ms;
    self->dead_ms = dead_ms;
    self->started = now;
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_group_free);
    if (data_dir && *data_dir) {
        self->dir = strdup (data_dir);
        self->path = zsys_sprintf ("%s/%s", data_dir, VOTE_FILE);
        if (s_load (self, err)) {
            zr_ha_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
zr_ha_destroy (zr_ha_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zr_ha_t *self = *self_p;
    zhashx_destroy (&self->groups);
    free (self->path);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

int64_t
zr_ha_lease_ms (zr_ha_t *self)
{
    return self->lease_ms;
}

int64_t
zr_ha_dead_ms (zr_ha_t *self)
{
    return self->dead_ms;
}

static bool
s_starting (zr_ha_t *self, int64_t now)
{
    return now - self->started < self->dead_ms;
}

static void
s_reason (char *reason, size_t size, const char *format, ...)
{
    if (!reason || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (reason, size, format, args);
    va_end (args);
}

zr_ha_result_t
zr_ha_heartbeat (zr_ha_t *self, const char *group, int64_t broker_id,
                 int64_t epoch, int64_t seq, const int64_t *isr,
                 size_t isr_count, int64_t now, int64_t *epoch_out,
                 int64_t *master_out, char *reason, size_t size)
{
    if (!group || !s_valid_name (group) || broker_id < 0 || epoch < 1
    ||  seq < 0 || isr_count > ZR_HA_ISR_MAX) {
        s_reason (reason, size, "bad heartbeat: group, broker_id >= 0, "
                  "epoch >= 1, seq >= 0, at most %d in-sync brokers",
                  ZR_HA_ISR_MAX);
        return ZR_HA_BAD;
    }
    group_t *g = s_group (self, group, true);
    int64_t known = s_known_epoch (g);
    int64_t holder = -1;
    if (g->voted_epoch == known && known > 0)
        holder = g->voted_for;
    else
    if (g->heard && g->epoch == known)
        holder = g->master;
    bool alive = g->heard && now - g->received < self->dead_ms;
    bool fenced = epoch < known
               || (epoch == known && g->voted_epoch == known
                   && g->voted_for != broker_id)
               || (epoch == known && alive && g->epoch == epoch
                   && g->master != broker_id);
    if (fenced) {
        if (epoch_out)
            *epoch_out = known;
        if (master_out)
            *master_out = holder;
        s_reason (reason, size, "group %s is at epoch %" PRId64 " with "
                  "master %" PRId64 "; broker %" PRId64 " at epoch %"
                  PRId64 " is no longer its master", group, known, holder,
                  broker_id, epoch);
        return ZR_HA_FENCED;
    }
    if (g->resign_epoch && g->resign_epoch == epoch
    &&  g->heard && g->master == broker_id) {
        //  Alive, so a withdrawn resignation leaves a live master.
        g->received = now;
        s_reason (reason, size, "broker %" PRId64 " resigned epoch %"
                  PRId64 " of group %s in favour of broker %" PRId64
                  "; no lease", broker_id, epoch, group,
                  g->resign_successor);
        return ZR_HA_RESIGNED;
    }
    //  Record it even while starting: death is counted from it.
    g->heard = true;
    g->received = now;
    g->master = broker_id;
    g->epoch = epoch;
    g->seq = seq;
    g->isr_count = 0;
    g->isr [g->isr_count++] = broker_id;
    for (size_t i = 0; i < isr_count; i++) {
        bool dup = false;
        for (size_t j = 0; j < g->isr_count; j++)
            if (g->isr [j] == isr [i])
                dup = true;
        if (!dup && isr [i] >= 0)
            g->isr [g->isr_count++] = isr [i];
    }
    if (s_starting (self, now)) {
        s_reason (reason, size, "nameserver started %" PRId64 " ms ago; "
                  "it grants leases after %" PRId64 " ms",
                  now - self->started, self->dead_ms);
        return ZR_HA_STARTING;
    }
    return ZR_HA_GRANTED;
}

//  Appends a vote line and fsyncs it. 0 or -1 with reason.
static int
s_write_vote (zr_ha_t *self, const char *group, int64_t epoch,
              int64_t cand, int64_t last_epoch, int64_t last_seq,
              char *reason, size_t size)
{
    if (zsys_dir_create ("%s", self->dir)) {
        s_reason (reason, size, "cannot create data directory %s: %s",
                  self->dir, strerror (errno));
        return -1;
    }
    int fd = open (self->path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) {
        s_reason (reason, size, "cannot open vote file %s: %s",
                  self->path, strerror (errno));
        return -1;
    }
    char line [ZR_NAME_MAX + 128];
    int len = 0;
    struct stat st;
    if (fstat (fd, &st) == 0 && st.st_size == 0)
        len = snprintf (line, sizeof line, "%s\n", VOTE_HEADER);
    len += snprintf (line + len, sizeof line - len, "%s %" PRId64 " %"
                     PRId64 " %" PRId64 " %" PRId64 "\n", group, epoch,
                     cand, last_epoch, last_seq);
    int rc = 0;
    if (write (fd, line, len) != len || fsync (fd)) {
        s_reason (reason, size, "cannot write vote file %s: %s",
                  self->path, strerror (errno));
        rc = -1;
    }
    close (fd);
    //  The directory entry too, on the file's first write.
    if (rc == 0 && st.st_size == 0) {
        int dfd = open (self->dir, O_RDONLY);
        if (dfd >= 0) {
            fsync (dfd);
            close (dfd);
        }
    }
    return rc;
}

int
zr_ha_vote (zr_ha_t *self, const char *group, int64_t epoch,
            int64_t candidate, int64_t last_epoch, int64_t last_seq,
            int64_t now, char *reason, size_t size)
{
    if (!group || !s_valid_name (group) || epoch < 1 || candidate < 0
    ||  candidate > 1000000 || last_epoch < 0 || last_seq < 0) {
        s_reason (reason, size, "bad vote request: group, epoch >= 1, "
                  "candidate 0..1000000, last_epoch, last_seq >= 0");
        return 0;
    }
    if (!self->path) {
        s_reason (reason, size, "this nameserver has no data directory "
                  "to keep votes in; it does not vote");
        return 0;
    }
    if (s_starting (self, now)) {
        s_reason (reason, size, "nameserver started %" PRId64 " ms ago; "
                  "it votes after %" PRId64 " ms", now - self->started,
                  self->dead_ms);
        return 0;
    }
    group_t *g = s_group (self, group, true);
    if (g->voted_epoch == epoch) {
        if (g->voted_for == candidate)
            return 1;       //  the same vote, asked again
        s_reason (reason, size, "already voted for broker %" PRId64
                  " in epoch %" PRId64 " of group %s", g->voted_for, epoch,
                  group);
        return 0;
    }
    int64_t known = s_known_epoch (g);
    if (epoch <= known) {
        s_reason (reason, size, "epoch %" PRId64 " is not above epoch %"
                  PRId64 " known for group %s", epoch, known, group);
        return 0;
    }
    bool handed = g->resign_epoch && g->heard
               && g->resign_epoch == g->epoch && epoch == g->epoch + 1
               && candidate == g->resign_successor;
    if (handed && s_less (last_epoch, last_seq, g->resign_epoch,
                          g->resign_seq)) {
        s_reason (reason, size, "candidate's (epoch %" PRId64 ", seq %"
                  PRId64 ") is behind the seq %" PRId64 " its master "
                  "resigned at", last_epoch, last_seq, g->resign_seq);
        return 0;
    }
    if (!handed && g->heard && now - g->received < self->dead_ms) {
        s_reason (reason, size, "master %" PRId64 " of group %s is alive "
                  "(heartbeat %" PRId64 " ms ago, dead after %" PRId64
                  " ms)", g->master, group, now - g->received,
                  self->dead_ms);
        return 0;
    }
    if (!g->heard) {
        s_reason (reason, size, "no in-sync set recorded for group %s "
                  "since this nameserver started", group);
        return 0;
    }
    bool in_isr = false;
    for (size_t i = 0; i < g->isr_count; i++)
        if (g->isr [i] == candidate)
            in_isr = true;
    if (!in_isr) {
        s_reason (reason, size, "broker %" PRId64 " is not in the in-sync "
                  "set recorded for group %s", candidate, group);
        return 0;
    }
    if (s_less (last_epoch, last_seq, g->epoch, g->seq)
    ||  (g->voted_epoch
         && s_less (last_epoch, last_seq, g->voted_last_epoch,
                    g->voted_last_seq))) {
        s_reason (reason, size, "candidate's (epoch %" PRId64 ", seq %"
                  PRId64 ") is behind what group %s reached", last_epoch,
                  last_seq, group);
        return 0;
    }
    if (s_write_vote (self, group, epoch, candidate, last_epoch, last_seq,
                      reason, size))
        return -1;
    g->voted_epoch = epoch;
    g->voted_for = candidate;
    g->voted_last_epoch = last_epoch;
    g->voted_last_seq = last_seq;
    zsys_info ("nameserver: voted for broker %" PRId64 " as master of "
               "group %s in epoch %" PRId64, candidate, group, epoch);
    return 1;
}

bool
zr_ha_master_dead (zr_ha_t *self, const char *group, int64_t now,
                   int64_t *epoch_out)
{
    group_t *g = group ? s_group (self, group, false) : NULL;
    if (epoch_out)
        *epoch_out = g ? s_known_epoch (g) : 0;
    if (!g || !g->heard)
        return true;
    return now - g->received >= self->dead_ms;
}

int64_t
zr_ha_master (zr_ha_t *self, const char *group, int64_t *epoch_out)
{
    group_t *g = group ? s_group (self, group, false) : NULL;
    int64_t known = g ? s_known_epoch (g) : 0;
    if (epoch_out)
        *epoch_out = known;
    if (!g || known == 0)
        return -1;
    if (g->heard && g->epoch == known)
        return g->master;
    if (g->voted_epoch == known)
        return g->voted_for;
    return -1;
}

int
zr_ha_resign (zr_ha_t *self, const char *group, int64_t broker_id,
              int64_t epoch, int64_t seq, int64_t successor, bool withdraw,
              int64_t now, char *reason, size_t size)
{
    if (!group || !s_valid_name (group) || broker_id < 0 || epoch < 1
    ||  seq < 0 || (!withdraw && (successor < 0 || successor > 1000000
                                  || successor == broker_id))) {
        s_reason (reason, size, "bad HA_RESIGN: group, broker_id >= 0, "
                  "epoch >= 1, seq >= 0, successor 0..1000000 and not "
                  "the master itself");
        return 0;
    }
    group_t *g = s_group (self, group, true);
    int64_t known = s_known_epoch (g);
    if (withdraw) {
        //  Refused once a vote for a later epoch was cast: the handover
        //  may have happened; the old master must not take writes again.
        if (known > epoch) {
            s_reason (reason, size, "group %s is at epoch %" PRId64
                      " already: the handover cannot be withdrawn", group,
                      known);
            return 0;
        }
        if (g->resign_epoch == epoch)
            g->resign_epoch = 0;
        return 1;
    }
    if (s_starting (self, now)) {
        s_reason (reason, size, "nameserver started %" PRId64 " ms ago; "
                  "it takes part in failover after %" PRId64 " ms",
                  now - self->started, self->dead_ms);
        return 0;
    }
    if (!g->heard || g->master != broker_id || g->epoch != epoch
    ||  known != epoch) {
        s_reason (reason, size, "broker %" PRId64 " is not the master of "
                  "epoch %" PRId64 " of group %s known here (epoch %" PRId64
                  ")", broker_id, epoch, group, known);
        return 0;
    }
    bool in_isr = false;
    for (size_t i = 0; i < g->isr_count; i++)
        if (g->isr [i] == successor)
            in_isr = true;
    if (!in_isr) {
        s_reason (reason, size, "broker %" PRId64 " is not in the in-sync "
                  "set recorded for group %s", successor, group);
        return 0;
    }
    g->resign_epoch = epoch;
    g->resign_successor = successor;
    g->resign_seq = seq;
    (void) now;
    zsys_info ("nameserver: master %" PRId64 " of group %s resigns epoch %"
               PRId64 " at seq %" PRId64 " for broker %" PRId64, broker_id,
               group, epoch, seq, successor);
    return 1;
}

size_t
zr_ha_isr (zr_ha_t *self, const char *group, int64_t *out, size_t max)
{
    group_t *g = group ? s_group (self, group, false) : NULL;
    if (!g || !g->heard)
        return 0;
    size_t count = g->isr_count < max ? g->isr_count : max;
    memcpy (out, g->isr, count * sizeof (int64_t));
    return count;
}
