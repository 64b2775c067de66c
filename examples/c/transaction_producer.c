/*  examples/c/transaction_producer.c - transactional messages: a half
    message, a local transaction, commit or rollback, and the check-back.

    Run against a broker (zrocket dev starts one on 127.0.0.1:10911 with
    auto-create):
        zrocket dev &
        ./transaction_producer tcp://127.0.0.1:10911 orders 10
    Even-numbered orders commit at once, odd ones roll back, every third
    is left UNKNOWN and committed when the broker checks back (after the
    broker's txn-check-ms, 6 s by default). Then:
        zrocket consume --topic orders
*/
#include <zrocket.h>

//  The "local transaction": decided by the order number in the body.
static zr_txn_state_t
s_execute (zr_message_t *msg, void *arg)
{
    (void) arg;
    int n = atoi (zr_message_prop (msg, "order"));
    if (n % 3 == 0)
        return ZR_TXN_UNKNOWN;          //  let the broker ask later
    return n % 2 == 0 ? ZR_TXN_COMMIT : ZR_TXN_ROLLBACK;
}

//  Runs in the producer's background thread when the broker asks.
static zr_txn_state_t
s_check (zr_message_t *msg, void *arg)
{
    int *checked = (int *) arg;
    __atomic_add_fetch (checked, 1, __ATOMIC_SEQ_CST);
    printf ("check-back for order %s (txn %s): commit\n",
            zr_message_prop (msg, "order"), zr_message_prop (msg, "TXN_ID"));
    return ZR_TXN_COMMIT;
}

int
main (int argc, char *argv [])
{
    const char *endpoint = argc > 1 ? argv [1] : ZR_DEFAULT_ENDPOINT;
    const char *topic = argc > 2 ? argv [2] : "orders";
    int count = argc > 3 ? atoi (argv [3]) : 10;
    zr_tx_producer_t *producer = zr_tx_producer_new (endpoint, "order-tx");
    if (!producer) {
        fprintf (stderr, "bad endpoint %s\n", endpoint);
        return 1;
    }
    int checked = 0;
    zr_tx_producer_set_listener (producer, s_execute, s_check, &checked);
    int unknown = 0;
    for (int i = 1; i <= count; i++) {
        char body [64], order [16];
        snprintf (body, sizeof body, "order %d", i);
        snprintf (order, sizeof order, "%d", i);
        zr_message_t *msg = zr_message_new (topic, body, strlen (body));
        zr_message_set_prop (msg, "order", order);
        zr_send_result_t result;
        zr_txn_state_t state;
        if (zr_tx_producer_send (producer, msg, &result, &state)) {
            fprintf (stderr, "order %d: not stored: %s %s\n", i,
                     zr_status_str (result.status), result.reason);
            zr_message_destroy (&msg);
            break;
        }
        printf ("order %d: %s %s\n", i,
                state == ZR_TXN_COMMIT ? "committed"
                : state == ZR_TXN_ROLLBACK ? "rolled back" : "unknown",
                state == ZR_TXN_COMMIT ? result.store_id : "");
        if (state == ZR_TXN_UNKNOWN)
            unknown++;
        zr_message_destroy (&msg);
    }
    //  Stay a live member until the broker has checked every UNKNOWN one
    //  (or 30 s pass).
    int64_t deadline = zclock_mono () + 30000;
    while (__atomic_load_n (&checked, __ATOMIC_SEQ_CST) < unknown
    &&     zclock_mono () < deadline && !zsys_interrupted)
        zclock_sleep (100);
    zr_tx_producer_destroy (&producer);
    return 0;
}
