// zrclient.js - the client core that producer.js and consumer.js share,
// written from docs/protocol.md alone.
//
// A request is one ZeroMQ multipart message: frame 0 is a msgpack map
// header (v, cmd, rid and the command's fields), then raw body frames. A
// reply has the same shape with type "reply", the request's rid and a
// status. Replies may come out of request order: match them by rid.
"use strict"

const zmq = require("zeromq")
const { encode, decode } = require("@msgpack/msgpack")

const PROTOCOL_VERSION = 1

// Statuses by class (docs/protocol.md section 4). A status not listed is
// treated as "rejected", as the spec asks.
const STORED = new Set(["SEND_OK"])
const STORED_UNCONFIRMED = new Set(["FLUSH_DISK_TIMEOUT",
    "FLUSH_SLAVE_TIMEOUT", "SLAVE_NOT_AVAILABLE"])
const RETRY = new Set(["BUSY", "SHUTTING_DOWN", "DISK_FULL", "STORE_ERROR"])

class Client {
    // One DEALER connection to a broker.
    constructor(endpoint, name = "zrclient") {
        this.name = name
        this.sock = new zmq.Dealer({ linger: 0 })
        this.sock.connect(endpoint)
        this.nextRid = 1
    }

    // Sends one request; resolves to its rid once ZeroMQ has queued it.
    // Only one send may be pending on a zeromq.js socket: await each.
    async send(cmd, fields = {}, body = null) {
        const rid = this.nextRid++
        const header = Object.assign({ v: PROTOCOL_VERSION, cmd, rid }, fields)
        const frames = [Buffer.from(encode(header))]
        if (body !== null)
            frames.push(body)
        await this.sock.send(frames)
        return rid
    }

    // Resolves to { header, bodies } for the next reply, or null when none
    // came within timeoutMs. Skips frames that are not replies (section 1)
    // and headers that do not decode to a map.
    async recv(timeoutMs) {
        const deadline = Date.now() + Math.max(timeoutMs, 0)
        for (;;) {
            const left = deadline - Date.now()
            if (left <= 0)
                return null
            this.sock.receiveTimeout = left
            let frames
            try {
                frames = await this.sock.receive()
            }
            catch (err) {
                if (err.code === "EAGAIN")
                    return null
                throw err
            }
            if (frames.length > 0 && frames[0].length === 0)
                frames = frames.slice(1)        //  REQ-style delimiter
            if (frames.length === 0)
                continue
            let header
            try {
                header = decode(frames[0])
            }
            catch (err) {
                process.stderr.write(`${this.name}: undecodable reply `
                    + `header: ${err.message}\n`)
                continue
            }
            if (header === null || typeof header !== "object"
            ||  Array.isArray(header) || header.type !== "reply")
                continue
            return { header, bodies: frames.slice(1) }
        }
    }

    // Sends one request and waits for its reply header (null on timeout).
    // Replies to other rids are dropped: use only when nothing else is in
    // flight.
    async request(cmd, fields = {}, timeoutMs = 3000) {
        const rid = await this.send(cmd, fields)
        const deadline = Date.now() + timeoutMs
        for (;;) {
            const reply = await this.recv(deadline - Date.now())
            if (reply === null)
                return null
            if (reply.header.rid === rid)
                return reply.header
        }
    }

    close() {
        this.sock.close()
    }
}

// The reply's status as a string ("UNKNOWN_STATUS" when missing).
function statusOf(header) {
    return typeof header.status === "string" ? header.status : "UNKNOWN_STATUS"
}

// Minimal "--name value" / "--flag" parser. spec: { name: "string" |
// "int" | "bool" }; returns an object keyed by name, or throws.
function parseArgs(argv, spec) {
    const out = {}
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i]
        if (arg === "-h" || arg === "--help")
            throw new Error("help")
        if (!arg.startsWith("--") || !(arg.slice(2) in spec))
            throw new Error(`unknown argument: ${arg}`)
        const name = arg.slice(2)
        if (spec[name] === "bool") {
            out[name] = true
            continue
        }
        if (i + 1 >= argv.length)
            throw new Error(`${arg} needs a value`)
        const value = argv[++i]
        if (spec[name] === "int") {
            if (!/^-?[0-9]+$/.test(value))
                throw new Error(`${arg}: not an integer: ${value}`)
            out[name] = parseInt(value, 10)
        }
        else
            out[name] = value
    }
    return out
}

module.exports = { Client, statusOf, parseArgs, PROTOCOL_VERSION,
                   STORED, STORED_UNCONFIRMED, RETRY }
