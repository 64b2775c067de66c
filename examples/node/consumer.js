#!/usr/bin/env node
// zrocket consumer in Node.js, written from docs/protocol.md alone.
//
// Reads every queue of a topic with long-polling PULLs (one in flight per
// queue, matched by rid) and prints each message body on its own line.
//
//   1. TOPIC_INFO: how many queues the topic has (waits for the topic to
//      appear, up to --timeout).
//   2. GET_OFFSETS per queue: start at min (--from first), at max
//      (--from last) or at a given offset (--from N).
//   3. PULL with "wait" per queue; reissue after every reply.
//
// Exit status: 0 once --count messages were printed; 2 when no message
// came for --timeout seconds (idle timeout); 1 on a rejected request.
//
//     node consumer.js --broker tcp://127.0.0.1:10911 --topic orders --count 10
"use strict"

const fs = require("fs")
const { Client, statusOf, parseArgs, RETRY } = require("./zrclient")

const MAX_PULL_COUNT = 1024             //  protocol limit on PULL max_count
const MAX_PULL_WAIT = 60000             //  protocol limit on PULL wait, ms

const USAGE = `usage: consumer.js --topic T [--broker ENDPOINT] [--count N]
       [--timeout SECONDS] [--from first|last|OFFSET] [--batch B]
       [--wait MS]
`

function fail(msg) {
    process.stderr.write(`consumer: ${msg}\n`)
    return 1
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function consume(client, opts) {
    const idleMs = Math.round(opts.timeout * 1000)
    let idleDeadline = Date.now() + idleMs
    const idleLeft = () => idleDeadline - Date.now()

    //  1. Queue count. The topic may not exist yet (a producer with
    //     auto-create makes it on its first send): ask again until idle.
    let info
    for (;;) {
        info = await client.request("TOPIC_INFO", { topic: opts.topic },
                                    Math.max(Math.min(idleLeft(), 3000), 1))
        if (info !== null && statusOf(info) === "OK")
            break
        if (info !== null && statusOf(info) !== "TOPIC_NOT_FOUND")
            return fail(`TOPIC_INFO ${opts.topic}: ${statusOf(info)} `
                        + `${info.reason || ""}`)
        if (idleLeft() <= 0) {
            process.stderr.write(`consumer: topic ${opts.topic} not `
                + `available within ${opts.timeout}s\n`)
            return 2
        }
        await sleep(100)
    }
    const queues = info.queues
    if (!Number.isInteger(queues) || queues < 1)
        return fail("TOPIC_INFO reply has no valid queue count")

    //  2. Start offsets, one GET_OFFSETS per queue (pipelined).
    const offsets = new Array(queues)
    const waiting = new Map()
    for (let queue = 0; queue < queues; queue++) {
        const rid = await client.send("GET_OFFSETS",
                                      { topic: opts.topic, queue })
        waiting.set(rid, queue)
    }
    while (waiting.size > 0) {
        const got = await client.recv(Math.max(idleLeft(), 3000))
        if (got === null)
            return fail("no reply to GET_OFFSETS")
        const header = got.header
        const queue = waiting.get(header.rid)
        if (queue === undefined)
            continue
        waiting.delete(header.rid)
        if (statusOf(header) !== "OK")
            return fail(`GET_OFFSETS ${opts.topic}/${queue}: `
                        + `${statusOf(header)} ${header.reason || ""}`)
        if (opts.from === "first")
            offsets[queue] = header.min
        else
        if (opts.from === "last")
            offsets[queue] = header.max
        else
            offsets[queue] = Math.max(header.min,
                                      Math.min(opts.from, header.max))
    }

    //  3. One long-polling PULL in flight per queue.
    const pulls = new Map()             //  rid -> queue
    let received = 0

    async function pull(queue) {
        let batch = opts.batch
        if (opts.count)
            batch = Math.max(1, Math.min(batch, opts.count - received))
        const rid = await client.send("PULL", {
            topic: opts.topic, queue, offset: offsets[queue],
            max_count: batch, wait: opts.wait })
        pulls.set(rid, queue)
    }

    for (let queue = 0; queue < queues; queue++)
        await pull(queue)

    for (;;) {
        const got = idleLeft() > 0 ? await client.recv(idleLeft()) : null
        if (got === null) {
            process.stderr.write(`consumer: idle for ${opts.timeout}s `
                + `after ${received} messages\n`)
            return 2
        }
        const { header, bodies } = got
        const queue = pulls.get(header.rid)
        if (queue === undefined)
            continue
        pulls.delete(header.rid)
        const status = statusOf(header)
        if (status === "OK") {
            const msgs = header.msgs
            if (!Array.isArray(msgs) || msgs.length !== bodies.length)
                return fail(`PULL reply: ${Array.isArray(msgs) ? msgs.length
                            : -1} msgs but ${bodies.length} body frames`)
            const lines = []
            let done = false
            for (const body of bodies) {
                lines.push(body, Buffer.from("\n"))
                received++
                if (opts.count && received >= opts.count) {
                    done = true
                    break
                }
            }
            fs.writeSync(1, Buffer.concat(lines))
            if (done)
                return 0
            if (bodies.length > 0)
                idleDeadline = Date.now() + idleMs
            offsets[queue] = Number.isInteger(header.next)
                           ? header.next : offsets[queue] + bodies.length
        }
        else
        if (status === "NO_NEW_MSG") {
            //  nothing new within wait: ask again
        }
        else
        if (status === "OFFSET_OUT_OF_RANGE") {
            const qmin = Number.isInteger(header.min) ? header.min : 0
            const qmax = Number.isInteger(header.max) ? header.max : qmin
            if (offsets[queue] < qmin) {
                //  Messages were removed below us (retention): skip ahead.
                process.stderr.write(`consumer: queue ${queue}: offset `
                    + `${offsets[queue]} below min ${qmin}, skipping ahead\n`)
                offsets[queue] = qmin
            }
            else
                offsets[queue] = qmax
        }
        else
        if (RETRY.has(status))
            await sleep(50)
        else
            return fail(`PULL ${opts.topic}/${queue}@${offsets[queue]}: `
                        + `${status} ${header.reason || ""}`)
        await pull(queue)
    }
}

async function main() {
    let opts
    try {
        opts = parseArgs(process.argv.slice(2), {
            broker: "string", topic: "string", count: "int",
            timeout: "string", from: "string", batch: "int", wait: "int" })
        if (opts.topic === undefined)
            throw new Error("--topic is required")
        opts.broker = opts.broker || "tcp://127.0.0.1:10911"
        opts.count = opts.count !== undefined ? opts.count : 0
        opts.timeout = opts.timeout !== undefined ? Number(opts.timeout) : 10
        opts.from = opts.from !== undefined ? opts.from : "first"
        opts.batch = opts.batch !== undefined ? opts.batch : 32
        opts.wait = opts.wait !== undefined ? opts.wait : 1000
        if (opts.count < 0)
            throw new Error("--count must be >= 0")
        if (!(opts.timeout > 0))
            throw new Error("--timeout must be > 0")
        if (!(opts.batch >= 1 && opts.batch <= MAX_PULL_COUNT))
            throw new Error(`--batch must be 1..${MAX_PULL_COUNT}`)
        if (!(opts.wait >= 0 && opts.wait <= MAX_PULL_WAIT))
            throw new Error(`--wait must be 0..${MAX_PULL_WAIT}`)
        if (opts.from !== "first" && opts.from !== "last") {
            if (!/^[0-9]+$/.test(opts.from))
                throw new Error("--from must be first, last or an offset")
            opts.from = parseInt(opts.from, 10)
        }
    }
    catch (err) {
        if (err.message !== "help")
            process.stderr.write(`consumer: ${err.message}\n`)
        process.stderr.write(USAGE)
        return err.message === "help" ? 0 : 2
    }
    const client = new Client(opts.broker, "consumer")
    try {
        return await consume(client, opts)
    }
    finally {
        client.close()
    }
}

main().then(code => { process.exitCode = code },
            err => {
                process.stderr.write(`consumer: ${err.stack || err}\n`)
                process.exitCode = 1
            })
