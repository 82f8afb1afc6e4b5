// wsclient.js - a scriptable WebSocket client (the `ws` package from npm) for the tests.
// Reads one JSON command per line on stdin, writes one JSON event per line on stdout:
//   {"op":"open","id":"m","url":"ws://...","protocols":["binary"],"ca":"/path.pem"}
//        -> {"id":"m","ev":"open","protocol":"..."} | {"id":"m","ev":"error","msg":"..."}
//           | {"id":"m","ev":"unexpected","status":500}
//   {"op":"send","id":"m","text":"..."} / {"op":"send","id":"m","b64":"..."} (binary frame)
//   {"op":"close","id":"m","code":1000}
//   {"op":"pause","id":"m"} / {"op":"resume","id":"m"}: stop / restart reading the TCP socket
//        (a slow consumer: the server's writes back up) -> {"id":"m","ev":"paused"|"resumed"}
//   "summary":true on open: a message event carries no text but its size and a running
//        summary instead: {"id":"m","ev":"message","len":N,"total":T,"tail":"<last 256 chars>"}
//   incoming frames -> {"id":"m","ev":"message","text":"..."} or {"id":"m","ev":"message","b64":"..."}
//   end -> {"id":"m","ev":"close","code":1000,"reason":"..."}
// The browser-facing behaviour under test is the server's; this client is only `ws`.
"use strict";
const WebSocket = require("ws");
const fs = require("fs");
const readline = require("readline");

const socks = new Map();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function open(c) {
  const opts = { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 };
  if (c.ca) opts.ca = fs.readFileSync(c.ca);
  if (c.insecure) opts.rejectUnauthorized = false;
  const ws = new WebSocket(c.url, c.protocols || [], opts);
  socks.set(c.id, ws);
  let total = 0, tail = "";
  ws.on("open", () => out({ id: c.id, ev: "open", protocol: ws.protocol,
                            cookie: (ws._req && ws._req.res) ? undefined : undefined }));
  ws.on("upgrade", (res) => out({ id: c.id, ev: "upgrade",
                                 setCookie: res.headers["set-cookie"] || [] }));
  ws.on("unexpected-response", (req, res) => {
    out({ id: c.id, ev: "unexpected", status: res.statusCode });
    ws.terminate();
  });
  ws.on("message", (data, isBinary) => {
    if (c.summary) {
      const t = isBinary ? "" : data.toString("utf8");
      total += data.length;
      tail = (tail + t).slice(-256);
      out({ id: c.id, ev: "message", len: data.length, total, tail });
    } else if (isBinary) out({ id: c.id, ev: "message", b64: Buffer.from(data).toString("base64") });
    else out({ id: c.id, ev: "message", text: data.toString("utf8") });
  });
  ws.on("error", (e) => out({ id: c.id, ev: "error", msg: String(e.message || e) }));
  ws.on("close", (code, reason) => out({ id: c.id, ev: "close", code, reason: String(reason) }));
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let c;
  try { c = JSON.parse(line); } catch (e) { out({ ev: "bad-command" }); return; }
  const ws = socks.get(c.id);
  if (c.op === "open") open(c);
  else if (c.op === "send" && ws) {
    if (c.b64 !== undefined) ws.send(Buffer.from(c.b64, "base64"), { binary: true });
    else ws.send(c.text, { binary: false });
  } else if (c.op === "close" && ws) ws.close(c.code || 1000);
  // ws.pause() pauses ws._socket and keeps ws's own flow control from resuming it
  else if (c.op === "pause" && ws) {
    if (typeof ws.pause === "function") ws.pause(); else ws._socket.pause();
    out({ id: c.id, ev: "paused" });
  } else if (c.op === "resume" && ws) {
    if (typeof ws.resume === "function") ws.resume(); else ws._socket.resume();
    out({ id: c.id, ev: "resumed" });
  }
  else if (c.op === "quit") process.exit(0);
});
rl.on("close", () => process.exit(0));
