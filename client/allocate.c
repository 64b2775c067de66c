/*  client/allocate.c - queue allocation strategies (see allocate.h).

    Each strategy works on sorted copies of its inputs (index arrays, no
    string copies): members by strcmp, queues by (broker, topic, queue).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "client/allocate.h"

//  qsort has no context argument: the arrays being sorted are these.
static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static int
s_cmp_queue (const void *a, const void *b)
{
    const zr_alloc_queue_t *x = *(const zr_alloc_queue_t *const *) a;
    const zr_alloc_queue_t *y = *(const zr_alloc_queue_t *const *) b;
    int rc = strcmp (x->broker, y->broker);
    if (rc == 0)
        rc = strcmp (x->topic, y->topic);
    if (rc == 0)
        rc = (x->queue > y->queue) - (x->queue < y->queue);
    return rc;
}

//  FNV-1a 64 over bytes, then murmur3's finaliser so that keys that
//  differ in their last character spread over the whole ring.
static uint64_t
s_hash_more (uint64_t h, const void *data, size_t size)
{
    const unsigned char *p = (const unsigned char *) data;
    for (size_t i = 0; i < size; i++) {
        h ^= p [i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t
s_hash_final (uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

#define FNV_BASIS 14695981039346656037ULL

typedef struct {
    uint64_t hash;
    size_t member;              //  index into the sorted members
} vnode_t;

static int
s_cmp_vnode (const void *a, const void *b)
{
    const vnode_t *x = (const vnode_t *) a;
    const vnode_t *y = (const vnode_t *) b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    //  Equal hashes (unlikely): the member order decides, so every
    //  member builds the same ring.
    return (x->member > y->member) - (x->member < y->member);
}

bool
zr_allocate_strategy_valid (const char *name)
{
    return name
        && (strcmp (name, "averagely") == 0 || strcmp (name, "circle") == 0
            || strcmp (name, "hash") == 0);
}

int
zr_allocate (const char *strategy, const char *const *members,
             size_t nmembers, const char *self_id,
             const zr_alloc_queue_t *queues, size_t nqueues, bool *owned)
{
    if (!zr_allocate_strategy_valid (strategy))
        return -1;
    for (size_t i = 0; i < nqueues; i++)
        owned [i] = false;
    if (nmembers == 0 || nqueues == 0 || !self_id)
        return 0;

    //  Sorted, deduplicated members; our index among them.
    const char **mem = (const char **) malloc (nmembers * sizeof (char *));
    if (!mem)
        return 0;
    memcpy (mem, members, nmembers * sizeof (char *));
    qsort (mem, nmembers, sizeof (char *), s_cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < nmembers; i++)
        if (m == 0 || strcmp (mem [m - 1], mem [i]) != 0)
            mem [m++] = mem [i];
    size_t me = m;
    for (size_t i = 0; i < m; i++)
        if (strcmp (mem [i], self_id) == 0)
            me = i;

    const zr_alloc_queue_t **q = (const zr_alloc_queue_t **) malloc (
        nqueues * sizeof (zr_alloc_queue_t *));
    if (!q) {
        free (mem);
        return 0;
    }
    for (size_t i = 0; i < nqueues; i++)
        q [i] = &queues [i];
    qsort (q, nqueues, sizeof (zr_alloc_queue_t *), s_cmp_queue);
    size_t n = nqueues;

    int count = 0;
    if (me == m)
        ;                       //  not a member: owns nothing
    else
    if (strcmp (strategy, "averagely") == 0) {
        size_t mod = n % m;
        size_t size = n <= m ? 1 : (mod > 0 && me < mod ? n / m + 1 : n / m);
        size_t start = (mod > 0 && me < mod) ? me * size : me * size + mod;
        for (size_t i = start; i < start + size && i < n; i++) {
            owned [q [i] - queues] = true;
            count++;
        }
    }
    else
    if (strcmp (strategy, "circle") == 0) {
        for (size_t i = me; i < n; i += m) {
            owned [q [i] - queues] = true;
            count++;
        }
    }
    else {                      //  hash
        size_t nodes = m * ZR_ALLOC_VNODES;
        vnode_t *ring = (vnode_t *) malloc (nodes * sizeof (vnode_t));
        if (ring) {
            for (size_t i = 0; i < m; i++)
                for (uint32_t v = 0; v < ZR_ALLOC_VNODES; v++) {
                    uint64_t h = s_hash_more (FNV_BASIS, mem [i],
                                              strlen (mem [i]));
                    unsigned char sep [5] = { '#', (unsigned char) (v >> 24),
                                              (unsigned char) (v >> 16),
                                              (unsigned char) (v >> 8),
                                              (unsigned char) v };
                    h = s_hash_more (h, sep, sizeof (sep));
                    ring [i * ZR_ALLOC_VNODES + v].hash = s_hash_final (h);
                    ring [i * ZR_ALLOC_VNODES + v].member = i;
                }
            qsort (ring, nodes, sizeof (vnode_t), s_cmp_vnode);
            for (size_t i = 0; i < n; i++) {
                uint64_t h = s_hash_more (FNV_BASIS, q [i]->broker,
                                          strlen (q [i]->broker));
                h = s_hash_more (h, "/", 1);
                h = s_hash_more (h, q [i]->topic, strlen (q [i]->topic));
                uint32_t qn = (uint32_t) q [i]->queue;
                unsigned char num [5] = { '/', (unsigned char) (qn >> 24),
                                          (unsigned char) (qn >> 16),
                                          (unsigned char) (qn >> 8),
                                          (unsigned char) qn };
                h = s_hash_final (s_hash_more (h, num, sizeof (num)));
                //  First node with hash >= h, wrapping round.
                size_t lo = 0, hi = nodes;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (ring [mid].hash < h)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (lo == nodes)
                    lo = 0;
                if (ring [lo].member == me) {
                    owned [q [i] - queues] = true;
                    count++;
                }
            }
            free (ring);
        }
    }
    free (q);
    free (mem);
    return count;
}
