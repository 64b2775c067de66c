"""zrclient.py - the little client core that producer.py and consumer.py
share, written from docs/protocol.md alone.

A request is one ZeroMQ multipart message: frame 0 is a msgpack map header
(v, cmd, rid and the command's fields), then raw body frames. A reply has
the same shape with type "reply", the request's rid and a status. Replies
may come out of request order, so they are matched by rid.

Needs pyzmq and msgpack (Debian: python3-zmq python3-msgpack).
"""

import sys
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1

# Statuses by class (docs/protocol.md section 4). A status not listed here
# is treated as "rejected", as the spec asks.
DONE = {"OK", "NO_NEW_MSG"}
STORED = {"SEND_OK"}
STORED_UNCONFIRMED = {"FLUSH_DISK_TIMEOUT", "FLUSH_SLAVE_TIMEOUT",
                      "SLAVE_NOT_AVAILABLE"}
RETRY = {"BUSY", "SHUTTING_DOWN", "DISK_FULL", "STORE_ERROR"}


class Client:
    """One DEALER connection to a broker."""

    def __init__(self, endpoint, name="zrclient"):
        self.name = name
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next_rid = 1

    def send(self, cmd, fields=None, body=None):
        """Sends one request without waiting; returns its rid."""
        rid = self.next_rid
        self.next_rid += 1
        header = {"v": PROTOCOL_VERSION, "cmd": cmd, "rid": rid}
        if fields:
            header.update(fields)
        frames = [msgpack.packb(header, use_bin_type=True)]
        if body is not None:
            frames.append(body)
        self.sock.send_multipart(frames, copy=False)
        return rid

    def recv(self, timeout_ms):
        """Returns (header, body_frames) of the next reply, or None when
        none came within timeout_ms. Skips frames that are not replies
        (section 1) and headers that do not decode to a map."""
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self.sock.poll(left, zmq.POLLIN):
                return None
            frames = self.sock.recv_multipart()
            # A REQ-style empty delimiter is never sent to a DEALER, but
            # skip one if it is there.
            if frames and frames[0] == b"":
                frames = frames[1:]
            if not frames:
                continue
            try:
                header = msgpack.unpackb(frames[0], raw=False)
            except Exception as exc:            # noqa: BLE001
                print("%s: undecodable reply header: %s" % (self.name, exc),
                      file=sys.stderr)
                continue
            if not isinstance(header, dict) or header.get("type") != "reply":
                continue
            return header, frames[1:]

    def request(self, cmd, fields=None, timeout_ms=3000):
        """Sends one request and waits for its reply; returns the reply
        header, or None on timeout. Replies to other rids are dropped, so
        use this only when nothing else is in flight."""
        rid = self.send(cmd, fields)
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            reply = self.recv(left)
            if reply is None:
                return None
            if reply[0].get("rid") == rid:
                return reply[0]

    def close(self):
        self.sock.close(0)


def status_of(header):
    """The reply's status as a string ("UNKNOWN_STATUS" when missing)."""
    status = header.get("status")
    return status if isinstance(status, str) else "UNKNOWN_STATUS"
