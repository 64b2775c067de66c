#!/usr/bin/env node
// zrocket producer in Node.js, written from docs/protocol.md alone.
//
// Sends messages over a zeromq.js Dealer, keeping up to --window SEND
// requests in flight and matching replies by rid. Prints one line per
// message:
//
//     STATUS id queue offset
//
// Exit status: 0 when every message got SEND_OK; 1 when any did not (a
// stored-but-unconfirmed status, a rejection, or no reply within
// --timeout); 2 on a usage error or when --create got no reply.
//
// Bodies come from --count N (bodies "P0", "P1", ... with P =
// --body-prefix) or, without --count, from stdin, one body per line.
//
//     node producer.js --broker tcp://127.0.0.1:10911 --topic orders --count 10
"use strict"

const crypto = require("crypto")
const fs = require("fs")
const { Client, statusOf, parseArgs, RETRY, STORED } = require("./zrclient")

const USAGE = `usage: producer.js --topic T [--broker ENDPOINT] [--count N]
       [--body-prefix P] [--create] [--queues Q] [--tags TAG]
       [--window W] [--timeout SECONDS] [--retries R]
Without --count, bodies are read from stdin, one per line.
`

function out(text) {
    fs.writeSync(1, text)               //  synchronous: nothing lost at exit
}

function* bodiesFrom(opts) {
    if (opts.count !== undefined) {
        for (let i = 0; i < opts.count; i++)
            yield Buffer.from(`${opts["body-prefix"]}${i}`)
        return
    }
    const input = fs.readFileSync(0)
    if (input.length === 0)
        return
    let start = 0
    while (start < input.length) {
        let end = input.indexOf(10, start)
        if (end < 0)
            end = input.length
        yield input.subarray(start, end)
        start = end + 1
    }
}

async function produce(client, opts) {
    const timeoutMs = Math.round(opts.timeout * 1000)
    const pending = new Map()           //  rid -> { id, body, attempts }
    const source = bodiesFrom(opts)
    let exhausted = false
    let failures = 0

    async function send(id, body, attempts) {
        const fields = { topic: opts.topic, id, born: Date.now() }
        if (opts.tags !== undefined)
            fields.tags = opts.tags
        const rid = await client.send("SEND", fields, body)
        pending.set(rid, { id, body, attempts })
    }

    for (;;) {
        while (!exhausted && pending.size < opts.window) {
            const next = source.next()
            if (next.done) {
                exhausted = true
                break
            }
            await send(crypto.randomBytes(16).toString("hex"), next.value, 0)
        }
        if (pending.size === 0)
            break
        const reply = await client.recv(timeoutMs)
        if (reply === null) {
            for (const entry of pending.values())
                out(`TIMEOUT ${entry.id} -1 -1\n`)
            failures += pending.size
            process.stderr.write(`producer: no reply from the broker for `
                + `${opts.timeout}s; ${pending.size} sends unanswered\n`)
            break
        }
        const header = reply.header
        const entry = pending.get(header.rid)
        if (entry === undefined)
            continue                    //  stale or unknown rid
        pending.delete(header.rid)
        const status = statusOf(header)
        if (RETRY.has(status) && entry.attempts < opts.retries) {
            //  Nothing was stored: resend with the same id after a
            //  short pause so a BUSY broker can drain.
            await new Promise(resolve =>
                setTimeout(resolve, 10 * (entry.attempts + 1)))
            await send(entry.id, entry.body, entry.attempts + 1)
            continue
        }
        const queue = header.queue !== undefined ? header.queue : -1
        const offset = header.offset !== undefined ? header.offset : -1
        out(`${status} ${header.id || entry.id} ${queue} ${offset}\n`)
        if (!STORED.has(status)) {
            failures++
            if (header.reason)
                process.stderr.write(`producer: ${entry.id}: ${status} `
                    + `${header.reason}\n`)
        }
    }
    return failures ? 1 : 0
}

async function main() {
    let opts
    try {
        opts = parseArgs(process.argv.slice(2), {
            broker: "string", topic: "string", count: "int",
            "body-prefix": "string", create: "bool", queues: "int",
            tags: "string", window: "int", timeout: "string",
            retries: "int" })
        if (opts.topic === undefined)
            throw new Error("--topic is required")
        if (opts.count !== undefined && opts.count < 0)
            throw new Error("--count must be >= 0")
    }
    catch (err) {
        if (err.message !== "help")
            process.stderr.write(`producer: ${err.message}\n`)
        process.stderr.write(USAGE)
        return err.message === "help" ? 0 : 2
    }
    opts.broker = opts.broker || "tcp://127.0.0.1:10911"
    opts["body-prefix"] = opts["body-prefix"] !== undefined
                        ? opts["body-prefix"] : "msg-"
    opts.queues = opts.queues || 8
    opts.window = opts.window || 64
    opts.timeout = opts.timeout !== undefined ? Number(opts.timeout) : 5
    opts.retries = opts.retries !== undefined ? opts.retries : 3
    if (!(opts.window >= 1) || !(opts.timeout > 0)) {
        process.stderr.write("producer: --window and --timeout must be > 0\n")
        return 2
    }

    const client = new Client(opts.broker, "producer")
    try {
        if (opts.create) {
            const reply = await client.request("TOPIC_CREATE",
                { topic: opts.topic, queues: opts.queues },
                Math.round(opts.timeout * 1000))
            if (reply === null) {
                process.stderr.write(`producer: no reply to TOPIC_CREATE `
                    + `from ${opts.broker}\n`)
                return 2
            }
            if (statusOf(reply) !== "OK") {
                process.stderr.write(`producer: TOPIC_CREATE ${opts.topic}: `
                    + `${statusOf(reply)} ${reply.reason || ""}\n`)
                return 1
            }
        }
        return await produce(client, opts)
    }
    finally {
        client.close()
    }
}

main().then(code => { process.exitCode = code },
            err => {
                process.stderr.write(`producer: ${err.stack || err}\n`)
                process.exitCode = 1
            })
