#!/usr/bin/python3
"""zrocket producer in Python, written from docs/protocol.md alone.

Sends messages to a zrocket broker over a DEALER socket, keeping up to
--window SEND requests in flight and matching replies by their rid. Prints
one line per message:

    STATUS id queue offset

and exits 0 only when every message got SEND_OK; 1 when any did not (a
stored-but-unconfirmed status, a rejection, or no reply within --timeout);
2 on a usage error or when --create got no reply.

Bodies come from --count N (bodies "P0", "P1", ... with P = --body-prefix)
or, without --count, from stdin, one body per line.

Needs pyzmq and msgpack (Debian: python3-zmq python3-msgpack) and
zrclient.py from this folder.

    ./producer.py --broker tcp://127.0.0.1:10911 --topic orders --count 10
    printf 'a\\nb\\n' | ./producer.py --broker tcp://127.0.0.1:10911 --topic t
"""

import argparse
import sys
import time
import uuid

from zrclient import Client, RETRY, STORED, status_of


def bodies_from(args):
    if args.count is not None:
        for i in range(args.count):
            yield ("%s%d" % (args.body_prefix, i)).encode()
    else:
        for line in sys.stdin.buffer:
            yield line.rstrip(b"\n")


def main():
    ap = argparse.ArgumentParser(description="zrocket producer (Python)")
    ap.add_argument("--broker", default="tcp://127.0.0.1:10911",
                    help="broker endpoint (default %(default)s)")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int,
                    help="send N generated bodies (default: read stdin)")
    ap.add_argument("--body-prefix", default="msg-",
                    help="prefix of generated bodies (default %(default)s)")
    ap.add_argument("--create", action="store_true",
                    help="create the topic first (TOPIC_CREATE)")
    ap.add_argument("--queues", type=int, default=8,
                    help="queue count for --create (default %(default)s)")
    ap.add_argument("--tags", help="tag to put on every message")
    ap.add_argument("--window", type=int, default=64,
                    help="most sends in flight (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds to wait for a reply (default %(default)s)")
    ap.add_argument("--retries", type=int, default=3,
                    help="resends of a message answered with a retryable "
                         "status, same id (default %(default)s)")
    args = ap.parse_args()
    if args.count is not None and args.count < 0:
        ap.error("--count must be >= 0")
    if args.window < 1:
        ap.error("--window must be >= 1")
    timeout_ms = int(args.timeout * 1000)

    client = Client(args.broker, "producer")
    try:
        if args.create:
            reply = client.request("TOPIC_CREATE",
                                   {"topic": args.topic,
                                    "queues": args.queues}, timeout_ms)
            if reply is None:
                print("producer: no reply to TOPIC_CREATE from %s"
                      % args.broker, file=sys.stderr)
                return 2
            if reply.get("status") != "OK":
                print("producer: TOPIC_CREATE %s: %s %s"
                      % (args.topic, reply.get("status"),
                         reply.get("reason", "")), file=sys.stderr)
                return 1
        return produce(client, args, timeout_ms)
    finally:
        client.close()


def produce(client, args, timeout_ms):
    pending = {}            # rid -> [msg_id, body, attempts]
    source = iter(bodies_from(args))
    exhausted = False
    failures = 0
    out = sys.stdout

    def send(msg_id, body, attempts):
        fields = {"topic": args.topic, "id": msg_id,
                  "born": int(time.time() * 1000)}
        if args.tags:
            fields["tags"] = args.tags
        rid = client.send("SEND", fields, body)
        pending[rid] = [msg_id, body, attempts]

    while True:
        while not exhausted and len(pending) < args.window:
            body = next(source, None)
            if body is None:
                exhausted = True
                break
            send(uuid.uuid4().hex, body, 0)
        if not pending:
            break
        reply = client.recv(timeout_ms)
        if reply is None:
            for msg_id, _body, _n in pending.values():
                out.write("TIMEOUT %s -1 -1\n" % msg_id)
            failures += len(pending)
            print("producer: no reply from the broker for %.1fs; %d sends "
                  "unanswered" % (args.timeout, len(pending)),
                  file=sys.stderr)
            break
        header = reply[0]
        entry = pending.pop(header.get("rid"), None)
        if entry is None:
            continue                # stale or unknown rid
        msg_id, body, attempts = entry
        status = status_of(header)
        if status in RETRY and attempts < args.retries:
            # Nothing was stored: resend with the same id. Back off a
            # little so a BUSY broker can drain.
            time.sleep(0.01 * (attempts + 1))
            send(msg_id, body, attempts + 1)
            continue
        queue = header.get("queue", -1)
        offset = header.get("offset", -1)
        out.write("%s %s %s %s\n" % (status, header.get("id", msg_id),
                                     queue, offset))
        if status not in STORED:
            failures += 1
            reason = header.get("reason")
            if reason:
                print("producer: %s: %s %s" % (msg_id, status, reason),
                      file=sys.stderr)
    out.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
