// proxy_ws_load.js - the WebSocket load of bench/proxy.py (the `ws` package from npm, as
// tests/interactive/wsclient.js), against bench/proxy_backend.js directly or through
// vpl-proxy. One JSON command per line on stdin, one JSON answer per line on stdout; TLS
// certificates are not checked (the proxy's is self-signed).
//   {"op":"stream","url":U,"bytes":B,"frame":F,"mode":"sink","window":W}
//       one new connection; after it is open, B bytes of binary messages of F bytes are sent
//       (at most W bytes not yet handed to the kernel), then "count?"; the time runs from
//       the first message to the "bytes:B" ack -> {"ok":true,"bytes":B,"ms":T}
//   {"op":"stream",...,"mode":"echo","window":W}
//       the same, each message echoed by the backend; at most W bytes sent and not yet
//       echoed back; the time runs from the first message to the last echoed byte
//   {"op":"rtt","url":U,"n":N,"size":S}
//       N text messages of S bytes one at a time, each timed to its echo -> {"us":[...]}
//   {"op":"hold","urls":[...],"conc":C}
//       opens every URL (at most C handshakes at a time) and keeps them
//       -> {"opened":N,"failed":K,"errors":[first few],"ms":T}
//   {"op":"ping_all","timeout_ms":T}
//       a distinct text message on every held connection, waits for each echo
//       -> {"open":N,"echoed":E,"closed_early":K,"ms":T,"lifetime_s":[min,median,max]}
//       (lifetime: from open to close of the connections that closed before this, if any)
//   {"op":"close_all"} -> {"closed":N}
//   {"op":"quit"}
"use strict";
const WebSocket = require("ws");
const readline = require("readline");
const crypto = require("crypto");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const OPTS = { perMessageDeflate: false, rejectUnauthorized: false,
               maxPayload: 64 * 1024 * 1024 };
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [], OPTS);
    ws.binaryType = "nodebuffer";
    const fail = (e) => { ws.terminate(); reject(e); };
    ws.once("open", () => { ws.removeListener("error", fail); resolve(ws); });
    ws.once("error", fail);
    ws.once("unexpected-response", (req, res) => fail(new Error("HTTP " + res.statusCode)));
  });
}

async function stream(c) {
  const ws = await connect(c.url);
  const frame = crypto.randomBytes(c.frame);
  const total = c.bytes;
  const window = c.window;
  ws.send("mode:" + c.mode);
  return new Promise((resolve, reject) => {
    let sent = 0, unflushed = 0, back = 0, t0 = 0, done = false;
    const finish = (ok, extra) => {
      if (done) return;
      done = true;
      const ms = now() - t0;
      ws.close();
      resolve(Object.assign({ ok, bytes: c.mode === "sink" ? total : back, ms }, extra || {}));
    };
    ws.on("error", (e) => finish(false, { error: String(e.message || e) }));
    ws.on("close", () => finish(false, { error: "closed early" }));
    const flushed = () => { unflushed -= c.frame; pump(); };
    function pump() {
      while (sent < total) {
        const inflight = c.mode === "sink" ? unflushed : sent - back;
        if (inflight + c.frame > window) return;
        const n = Math.min(c.frame, total - sent);
        sent += n;
        unflushed += c.frame;
        ws.send(n === c.frame ? frame : frame.subarray(0, n), { binary: true }, flushed);
        if (c.mode === "sink" && sent >= total) ws.send("count?");
      }
    }
    ws.on("message", (data, isBinary) => {
      if (isBinary) {
        back += data.length;
        if (back >= total) finish(back === total);
        else pump();
        return;
      }
      const t = data.toString("utf8");
      if (t.startsWith("bytes:")) {
        const acked = Number(t.slice(6));
        finish(acked === total, { acked });
      }
    });
    t0 = now();
    pump();
  });
}

async function rtt(c) {
  const ws = await connect(c.url);
  const msg = "x".repeat(c.size || 1);
  const us = [];
  for (let i = 0; i < c.n; i++) {
    const t0 = now();
    await new Promise((resolve) => { ws.once("message", resolve); ws.send(msg); });
    us.push(Math.round((now() - t0) * 1000));
  }
  ws.close();
  return { us };
}

let held = [];
let closedEarly = 0;
let lifetimes = [];

async function hold(c) {
  const t0 = now();
  let next = 0, opened = 0, failed = 0;
  const errors = [];
  async function lane() {
    while (next < c.urls.length) {
      const url = c.urls[next++];
      try {
        const ws = await connect(url);
        ws.on("error", () => {});
        const opened_at = now();
        ws.on("close", () => {
          if (ws._byUs) return;
          closedEarly++;
          lifetimes.push((now() - opened_at) / 1000);
        });
        held.push(ws);
        opened++;
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push(String(e.message || e));
      }
    }
  }
  const lanes = [];
  for (let i = 0; i < (c.conc || 32); i++) lanes.push(lane());
  await Promise.all(lanes);
  return { opened, failed, errors, ms: Math.round(now() - t0) };
}

async function pingAll(c) {
  const t0 = now();
  const open = held.filter((ws) => ws.readyState === WebSocket.OPEN);
  let echoed = 0;
  await Promise.all(open.map((ws, i) => new Promise((resolve) => {
    const want = "ping-" + i;
    const timer = setTimeout(resolve, c.timeout_ms || 20000);
    const on = (data, isBinary) => {
      if (!isBinary && data.toString("utf8") === want) {
        echoed++;
        clearTimeout(timer);
        ws.removeListener("message", on);
        resolve();
      }
    };
    ws.on("message", on);
    ws.send(want);
  })));
  const l = lifetimes.slice().sort((a, b) => a - b);
  const r3 = (x) => Math.round(x * 1000) / 1000;
  return { open: open.length, echoed, closed_early: closedEarly, ms: Math.round(now() - t0),
           lifetime_s: l.length ? [r3(l[0]), r3(l[l.length >> 1]), r3(l[l.length - 1])] : [] };
}

async function closeAll() {
  const n = held.length;
  await Promise.all(held.map((ws) => new Promise((resolve) => {
    ws._byUs = true;
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    const timer = setTimeout(() => { ws.terminate(); resolve(); }, 5000);
    ws.once("close", () => { clearTimeout(timer); resolve(); });
    ws.close();
  })));
  held = [];
  closedEarly = 0;
  lifetimes = [];
  return { closed: n };
}

const ops = { stream, rtt, hold, ping_all: pingAll, close_all: closeAll };
let chain = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let c;
  try { c = JSON.parse(line); } catch (e) { out({ error: "bad command" }); return; }
  if (c.op === "quit") process.exit(0);
  chain = chain.then(() => (ops[c.op] ? ops[c.op](c) : Promise.resolve({ error: "unknown op" })))
    .then((r) => out(r), (e) => out({ ok: false, error: String(e.message || e) }));
});
rl.on("close", () => process.exit(0));
