// proxy_backend.js - a cheap stand-in worker for bench/proxy.py: the same process is the
// backend of the direct path and of the path through vpl-proxy, so the ratio isolates the
// proxy. Plain HTTP on 127.0.0.1, an ephemeral port; with `node proxy_backend.js CERT KEY`
// also HTTPS/WSS (the same handlers) on a second one, for a direct TLS baseline. Prints one
// line {"port":N,"sport":M} (sport 0 without TLS); exits when stdin closes.
//
// HTTP POST (any path; X-Vplcell-Auth, X-Forwarded-For and the rest are ignored), JSON-RPC:
//   available -> {"status":"ready","load":0,"maxtime":60,...,"secureport":0}
//   request   -> adminticket, monitorticket, executionticket (39 random digits), port,
//                secureport
// Every answer says Connection: close and the socket closes after it, as vpl-jail does (the
// proxy reads an RPC answer until the worker closes).
//
// WebSocket upgrade on /<39 digits>/execute (anything else: the socket is destroyed, as a
// worker drops a bad ticket). Per connection:
//   text "mode:sink" / "mode:echo": what binary messages do from now on (sink: counted and
//        dropped; echo, the default: sent back as they came)
//   text "count?" -> text "bytes:<N>", the binary bytes received since the last "count?"
//        (messages are handled in order, so it acks everything sent before it)
//   any other text: echoed.
"use strict";
const http = require("http");
const https = require("https");
const fs = require("fs");
const crypto = require("crypto");
const WebSocket = require("ws");

const TICKET = /^\/[0-9]{39}\/execute(\?.*)?$/;
let seq = 0;

function ticket() {
  // 39 digits; the first is not 0 so it reads as the worker's own tickets do.
  const b = crypto.randomBytes(39);
  let s = String(1 + (b[0] % 9));
  for (let i = 1; i < 39; i++) s += String(b[i] % 10);
  return s;
}

function answer(res, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(200, {
    "Content-Type": "application/json;charset=UTF-8",
    "Content-Length": body.length,
    "Connection": "close",
  });
  res.end(body);
}

function handler(req, res) {
  if (req.method !== "POST") {
    res.writeHead(404, { "Connection": "close", "Content-Length": 0 });
    res.end();
    return;
  }
  const chunks = [];
  req.on("data", (d) => chunks.push(d));
  req.on("end", () => {
    let rq = {};
    try { rq = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch (e) { /* below */ }
    const id = rq.id === undefined ? null : rq.id;
    if (rq.method === "available") {
      answer(res, { jsonrpc: "2.0", result: { status: "ready", load: 0, maxtime: 60,
        maxfilesize: 1, maxmemory: 1, maxprocesses: 1, secureport: 0 }, id });
    } else if (rq.method === "request") {
      seq++;
      answer(res, { jsonrpc: "2.0", result: { adminticket: ticket(), monitorticket: ticket(),
        executionticket: ticket(), port: server.address().port, secureport: 0 }, id });
    } else {
      answer(res, { jsonrpc: "2.0", error: { code: -32601, message: "unknown method" }, id });
    }
  });
}
const server = http.createServer(handler);
const [certFile, keyFile] = process.argv.slice(2);
const tserver = certFile ? https.createServer(
  { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, handler) : null;

const wss = new WebSocket.Server({ noServer: true, perMessageDeflate: false,
                                   maxPayload: 64 * 1024 * 1024 });
function upgrade(req, socket, head) {
  if (!TICKET.test(req.url)) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    let sink = false;
    let count = 0;
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        if (sink) count += data.length;
        else ws.send(data, { binary: true });
        return;
      }
      const t = data.toString("utf8");
      if (t === "mode:sink") sink = true;
      else if (t === "mode:echo") sink = false;
      else if (t === "count?") { ws.send("bytes:" + count); count = 0; }
      else ws.send(t);
    });
    ws.on("error", () => {});
  });
}
for (const s of tserver ? [server, tserver] : [server]) {
  s.keepAliveTimeout = 1;
  s.on("upgrade", upgrade);
}

server.listen(0, "127.0.0.1", () => {
  const done = () => process.stdout.write(JSON.stringify({ port: server.address().port,
    sport: tserver ? tserver.address().port : 0 }) + "\n");
  if (tserver) tserver.listen(0, "127.0.0.1", done); else done();
});
process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(0));
