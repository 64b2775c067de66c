/*  client/allocate.h - queue allocation strategies of a consumer group.

    Pure functions: given the group's members (client ids) and the queues
    of one broker (broker group, topic, queue), decide which queues one
    member owns. Every member that runs the same function over the same
    inputs gets a disjoint share, and together they cover every queue
    exactly once. The inputs are sorted internally, so the result does
    not depend on the order in which members or queues are given.

    Strategies:
      averagely  RocketMQ's AllocateMessageQueueAveragely: contiguous
                 blocks of the sorted queues; with n queues and m members
                 the first (n mod m) members get one queue more.
      circle     round robin: sorted queue i goes to sorted member i mod m.
      hash       consistent hash ring, ZR_ALLOC_VNODES virtual nodes per
                 member; a queue goes to the first node at or after its
                 key's hash, so a join or leave moves few queues.
*/
#ifndef ZR_ALLOCATE_H_INCLUDED
#define ZR_ALLOCATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define ZR_ALLOC_VNODES 100

typedef struct {
    const char *broker;         //  broker group name
    const char *topic;
    int queue;
} zr_alloc_queue_t;

//  True when name is a known strategy ("averagely", "circle", "hash").
bool zr_allocate_strategy_valid (const char *name);

//  Sets owned[i] to true for each queues[i] that member self_id owns
//  under strategy, false for the others. members may be in any order
//  (duplicates count once). Returns the number of queues owned, or -1
//  when the strategy is unknown. A self_id that is not among the members
//  owns nothing (returns 0).
int zr_allocate (const char *strategy, const char *const *members,
                 size_t nmembers, const char *self_id,
                 const zr_alloc_queue_t *queues, size_t nqueues,
                 bool *owned);

#endif
