#!/usr/bin/python3
"""zrocket consumer in Python, written from docs/protocol.md alone.

Reads every queue of a topic with long-polling PULLs (one in flight per
queue, matched by rid) and prints each message body on its own line.

    1. TOPIC_INFO: how many queues the topic has (waits for the topic to
       appear, up to --timeout).
    2. GET_OFFSETS per queue: start at min (--from first) or max
       (--from last), or at a given offset (--from N).
    3. PULL with "wait" per queue; reissue after every reply.

Exit status: 0 once --count messages were printed; 2 when no message came
for --timeout seconds (idle timeout); 1 on a rejected request.

Needs pyzmq and msgpack (Debian: python3-zmq python3-msgpack) and
zrclient.py from this folder.

    ./consumer.py --broker tcp://127.0.0.1:10911 --topic orders --count 10
"""

import argparse
import sys
import time

from zrclient import Client, RETRY, status_of

MAX_PULL_COUNT = 1024       # protocol limit on PULL max_count
MAX_PULL_WAIT = 60000       # protocol limit on PULL wait, ms


def fail(msg):
    print("consumer: " + msg, file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description="zrocket consumer (Python)")
    ap.add_argument("--broker", default="tcp://127.0.0.1:10911",
                    help="broker endpoint (default %(default)s)")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=0,
                    help="exit 0 after N messages (0: run until idle)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="idle timeout, seconds: exit 2 when no message "
                         "came for this long (default %(default)s)")
    ap.add_argument("--from", dest="start", default="first",
                    help="first | last | OFFSET (default %(default)s)")
    ap.add_argument("--batch", type=int, default=32,
                    help="PULL max_count (default %(default)s)")
    ap.add_argument("--wait", type=int, default=1000,
                    help="PULL long-poll wait, ms (default %(default)s)")
    args = ap.parse_args()
    if args.count < 0:
        ap.error("--count must be >= 0")
    if not 1 <= args.batch <= MAX_PULL_COUNT:
        ap.error("--batch must be 1..%d" % MAX_PULL_COUNT)
    if not 0 <= args.wait <= MAX_PULL_WAIT:
        ap.error("--wait must be 0..%d" % MAX_PULL_WAIT)
    if args.start not in ("first", "last"):
        try:
            if int(args.start) < 0:
                raise ValueError
        except ValueError:
            ap.error("--from must be first, last or an offset >= 0")

    client = Client(args.broker, "consumer")
    try:
        return consume(client, args)
    finally:
        client.close()


def consume(client, args):
    idle_ms = int(args.timeout * 1000)
    idle_deadline = time.monotonic() + args.timeout

    def idle_left_ms():
        return int((idle_deadline - time.monotonic()) * 1000)

    # 1. Queue count. The topic may not exist yet (a producer with
    #    auto-create makes it on its first send): ask again until idle.
    while True:
        reply = client.request("TOPIC_INFO", {"topic": args.topic},
                               max(min(idle_left_ms(), 3000), 1))
        if reply is not None and status_of(reply) == "OK":
            break
        if reply is not None and status_of(reply) != "TOPIC_NOT_FOUND":
            return fail("TOPIC_INFO %s: %s %s" % (args.topic,
                        status_of(reply), reply.get("reason", "")))
        if idle_left_ms() <= 0:
            print("consumer: topic %s not available within %.1fs"
                  % (args.topic, args.timeout), file=sys.stderr)
            return 2
        time.sleep(0.1)
    queues = reply.get("queues")
    if not isinstance(queues, int) or queues < 1:
        return fail("TOPIC_INFO reply has no valid queue count")

    # 2. Start offsets, one GET_OFFSETS per queue (pipelined).
    offsets = {}
    waiting = {}
    for queue in range(queues):
        rid = client.send("GET_OFFSETS", {"topic": args.topic,
                                          "queue": queue})
        waiting[rid] = queue
    while waiting:
        got = client.recv(max(idle_left_ms(), 3000))
        if got is None:
            return fail("no reply to GET_OFFSETS")
        header = got[0]
        queue = waiting.pop(header.get("rid"), None)
        if queue is None:
            continue
        if status_of(header) != "OK":
            return fail("GET_OFFSETS %s/%d: %s %s" % (args.topic, queue,
                        status_of(header), header.get("reason", "")))
        if args.start == "first":
            offsets[queue] = header["min"]
        elif args.start == "last":
            offsets[queue] = header["max"]
        else:
            # Clamp a given offset into the queue's range.
            offsets[queue] = max(header["min"],
                                 min(int(args.start), header["max"]))

    # 3. One long-polling PULL in flight per queue.
    pulls = {}                  # rid -> queue
    received = 0
    out = sys.stdout.buffer

    def pull(queue):
        batch = args.batch
        if args.count:
            batch = max(1, min(batch, args.count - received))
        rid = client.send("PULL", {"topic": args.topic, "queue": queue,
                                   "offset": offsets[queue],
                                   "max_count": batch,
                                   "wait": args.wait})
        pulls[rid] = queue

    for queue in range(queues):
        pull(queue)

    while True:
        left = idle_left_ms()
        got = client.recv(left) if left > 0 else None
        if got is None:
            out.flush()
            print("consumer: idle for %.1fs after %d messages"
                  % (args.timeout, received), file=sys.stderr)
            return 2
        header, bodies = got
        queue = pulls.pop(header.get("rid"), None)
        if queue is None:
            continue
        status = status_of(header)
        if status == "OK":
            msgs = header.get("msgs")
            if not isinstance(msgs, list) or len(msgs) != len(bodies):
                return fail("PULL reply: %d msgs but %d body frames"
                            % (len(msgs) if isinstance(msgs, list) else -1,
                               len(bodies)))
            for body in bodies:
                out.write(body + b"\n")
                received += 1
                if args.count and received >= args.count:
                    out.flush()
                    return 0
            if bodies:
                idle_deadline = time.monotonic() + idle_ms / 1000.0
            offsets[queue] = header.get("next", offsets[queue] + len(bodies))
        elif status == "NO_NEW_MSG":
            pass
        elif status == "OFFSET_OUT_OF_RANGE":
            qmin = header.get("min", 0)
            qmax = header.get("max", qmin)
            if offsets[queue] < qmin:
                # Messages were removed below us (retention): skip ahead.
                print("consumer: queue %d: offset %d below min %d, "
                      "skipping ahead" % (queue, offsets[queue], qmin),
                      file=sys.stderr)
                offsets[queue] = qmin
            else:
                offsets[queue] = qmax
        elif status in RETRY:
            time.sleep(0.05)
        else:
            return fail("PULL %s/%d@%d: %s %s" % (args.topic, queue,
                        offsets[queue], status, header.get("reason", "")))
        out.flush()
        pull(queue)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
