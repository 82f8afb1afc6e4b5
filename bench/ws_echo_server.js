// ws_echo_server.js - a local WebSocket echo server (the same `ws` package as
// tests/interactive/wsclient.js), the baseline of bench/interactive.py's keystroke echo:
// every text frame comes back as it came. Listens on 127.0.0.1, an ephemeral port, which it
// prints as one line {"port":N}; exits when stdin closes.
"use strict";
const WebSocket = require("ws");

const wss = new WebSocket.Server({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => process.stdout.write(JSON.stringify({ port: wss.address().port }) + "\n"));
process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(0));
