#!/usr/bin/env node
// A real Bluesky PDS for the test suite: @atproto/dev-env's TestNetworkNoAppView = an in-memory
// PLC directory + a PDS on SQLite. No AppView, so app.bsky.* reads answer 502; use
// com.atproto.repo.getRecord/listRecords. Handles end in ".test". No invite codes.
//
//   node start-pds.js [PDS_PORT [PLC_PORT]]
//   (or env GP_PDS_PORT / GP_PLC_PORT; 0 or unset = a free port chosen here)
//
// Every TCP listener is forced onto 127.0.0.1 (dev-env's servers would bind all interfaces).
// When ready it prints exactly one JSON line on stdout:
//   {"ready_ms":..,"pds":"http://127.0.0.1:P","plc":"http://127.0.0.1:Q",
//    "pds_public_url":"http://localhost:P","pid":..}
// The PDS's own public URL (issuer, DID documents) is http://localhost:P: @atproto/pds only knows
// "http://localhost:<port>" or "https://<hostname>". It serves any Host header, so clients use
// http://127.0.0.1:P. Stops (closing the network, exit 0) on SIGTERM/SIGINT, and when stdin is a
// pipe that closes, so a parent that dies never leaves a PDS behind (a terminal or /dev/null on
// stdin is not watched). PDS logs: LOG_ENABLED=true (pino JSON to stdout, or to the file
// LOG_DESTINATION). PDS data (SQLite, blobs, dev-env's temp dirs) goes to env GP_PDS_DATA_DIR,
// else to a new ghostpost-pds-* directory in os.tmpdir(); this process owns it and deletes it on
// close. Node modules: scripts/pds-deps links ./node_modules to its cache.
'use strict'

const started = Date.now() - Math.round(process.uptime() * 1000)
const HOST = '127.0.0.1'

const net = require('node:net')
const dns = require('node:dns')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

// dev-env and the PDS talk to each other via http://localhost:<port>: resolve it to IPv4 first.
dns.setDefaultResultOrder('ipv4first')

const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function listen(...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined
  const first = args[0]
  let opts
  if (first === undefined || first === null) {
    opts = { port: 0 }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    opts = { port: Number(first) }
    const backlog = args.find((a, i) => i > 0 && typeof a === 'number')
    if (backlog !== undefined) opts.backlog = backlog
  } else if (typeof first === 'object' && !first._handle && first.fd === undefined && first.path === undefined) {
    opts = { ...first }
  } else {
    // A Unix socket path or an existing handle: not a TCP listener, leave it alone.
    return origListen.apply(this, cb ? [...args, cb] : args)
  }
  opts.host = HOST
  return cb ? origListen.call(this, opts, cb) : origListen.call(this, opts)
}

function portArg(index, envName) {
  const raw = process.argv[2 + index] ?? process.env[envName] ?? '0'
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`start-pds: bad port ${JSON.stringify(raw)} (argv ${index + 1} or ${envName})\n`)
    process.exit(2)
  }
  return port
}

const pdsPort = portArg(0, 'GP_PDS_PORT')
const plcPort = portArg(1, 'GP_PLC_PORT')

const dataDir = process.env.GP_PDS_DATA_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'ghostpost-pds-'))
// dev-env also makes directories of its own in os.tmpdir(): keep those inside dataDir too.
process.env.TMPDIR = path.join(dataDir, 'tmp')
fs.mkdirSync(process.env.TMPDIR, { recursive: true })
function removeDataDir() {
  try {
    fs.rmSync(dataDir, { recursive: true, force: true })
  } catch (err) {
    process.stderr.write(`start-pds: could not remove ${dataDir}: ${err}\n`)
  }
}

let network = null
let stopping = false

async function stop(reason) {
  if (stopping) {
    // Second signal: give up waiting for a clean close.
    process.exit(1)
  }
  stopping = true
  if (network === null) return // still starting: main() stops it once it is up
  const timer = setTimeout(() => {
    process.stderr.write('start-pds: close timed out\n')
    removeDataDir()
    process.exit(1)
  }, 10000)
  timer.unref()
  let code = 0
  try {
    await network.close()
  } catch (err) {
    process.stderr.write(`start-pds: error while closing (${reason}): ${err && err.stack ? err.stack : err}\n`)
    code = 1
  }
  removeDataDir()
  process.exit(code)
}

process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

// Watch stdin only when it is a pipe: a terminal or /dev/null must not stop the PDS.
let stdinIsPipe = false
try {
  stdinIsPipe = fs.fstatSync(0).isFIFO()
} catch {
  stdinIsPipe = false
}
if (stdinIsPipe) {
  process.stdin.on('data', () => {})
  process.stdin.on('end', () => stop('stdin closed'))
  process.stdin.on('error', () => stop('stdin error'))
  process.stdin.resume()
}

// dev-env cannot take port 0 (it would listen on a random port but advertise ":0"): pick one here.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen({ port: 0, host: HOST }, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

async function main() {
  const { TestNetworkNoAppView } = require('@atproto/dev-env')
  const plc = plcPort || (await freePort())
  let pds = pdsPort || (await freePort())
  while (pds === plc) pds = await freePort()
  fs.mkdirSync(path.join(dataDir, 'data'), { recursive: true })
  network = await TestNetworkNoAppView.create({
    pds: {
      port: pds,
      hostname: 'localhost',
      dataDirectory: path.join(dataDir, 'data'),
      blobstoreDiskLocation: path.join(dataDir, 'blobs'),
      blobstoreDiskTmpLocation: path.join(dataDir, 'blobs-tmp'),
    },
    plc: { port: plc },
  })
  if (stopping) {
    stopping = false
    await stop('signal during start')
    return
  }
  const ready = {
    ready_ms: Date.now() - started,
    pds: `http://${HOST}:${network.pds.port}`,
    plc: `http://${HOST}:${network.plc.port}`,
    pds_public_url: network.pds.url,
    pid: process.pid,
  }
  process.stdout.write(JSON.stringify(ready) + '\n')
}

main().catch((err) => {
  process.stderr.write(`start-pds: failed to start: ${err && err.stack ? err.stack : err}\n`)
  removeDataDir()
  process.exit(1)
})
