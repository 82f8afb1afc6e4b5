// tests/browser/drive.js - drives headless Chromium (puppeteer-core, Debian's /usr/bin/chromium)
// through one scenario of tests/browser/page.html and prints one JSON line with what it saw.
// The scenario is a JSON object on stdin:
//   {"mode":"terminal","url":"http://127.0.0.1:P/page.html?...","prompt":"What is your name?",
//    "input":"Ada","expect":"Hello, Ada!","shot":"/dir/terminal.png","timeout":30000}
//   {"mode":"vnc","url":"...","shot":"/dir/vnc.png"}
// Output: {"ok":true|false,"error":"...","monitor":[...],"log":[...],"console":[...],
//          "text":"<terminal buffer>","vncPassword":"...","pixel":[r,g,b,a] (canvas centre),
//          "red":<share of red pixels in the 100x100 box around it>,"shots":["<png path>"]}
// Each wait has sc.timeout ms (default 30000).
// The browser is closed on every path; a failed screenshot is reported, never fatal.
"use strict";
const puppeteer = require("puppeteer-core");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(page, fn, arg, timeout, what) {
  const deadline = Date.now() + timeout;
  let v;
  while (Date.now() < deadline) {
    try {
      v = await page.evaluate(fn, arg);
    } catch (e) {
      v = { error: String(e && e.message || e) }; // e.g. page.js not run yet: try again
    }
    if (v && v.done) return v;
    await sleep(100);
  }
  throw new Error("timed out waiting for " + what + " (last: " + JSON.stringify(v) + ")");
}

async function shot(page, res, path) {
  if (!path) return;
  try {
    await page.screenshot({ path, fullPage: true });
    res.shots.push(path);
  } catch (e) {
    res.shotError = String(e);
  }
}

async function terminal(page, sc, res) {
  const t = sc.timeout;
  await waitFor(page, (p) => ({ done: window.vplTermText().includes(p), text: window.vplTermText() }),
    sc.prompt, t, "the prompt in the terminal");
  // Type the way a student does: focus xterm's hidden textarea, then keystrokes.
  await page.focus(".xterm-helper-textarea");
  await page.keyboard.type(sc.input, { delay: 20 });
  await page.keyboard.press("Enter");
  await waitFor(page, (s) => ({ done: window.vplTermText().includes(s) }), sc.expect, t,
    "the answer in the terminal");
  // The program ends: the execute socket closes and the monitor says close:.
  await waitFor(page, () => ({ done: window.vpl.termClosed && window.vpl.monitor.includes("close:") }),
    null, t, "the end of the run");
}

async function vnc(page, sc, res) {
  const t = sc.timeout;
  await waitFor(page, () => ({ done: window.vpl.vncConnected, log: window.vpl.log }), null, t,
    "noVNC to connect");
  const v = await waitFor(page, () => {
    const c = window.vplVncCentre();
    if (!c) return { done: false };
    return { done: c.red >= 0.9, ...c };
  }, null, t, "red around the centre of noVNC's canvas");
  res.pixel = v.pixel;
  res.red = v.red;
  res.canvas = [v.width, v.height];
}

async function main() {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const sc = JSON.parse(input);
  sc.timeout = sc.timeout || 30000;
  const res = { ok: false, shots: [], console: [] };
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: sc.chromium || "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox", "--headless=new", "--disable-dev-shm-usage", "--disable-gpu",
        "--no-first-run", "--no-default-browser-check"],
      defaultViewport: { width: 1000, height: 720 },
      timeout: 30000,
    });
    const page = await browser.newPage();
    page.on("console", (m) => res.console.push(m.type() + ": " + m.text()));
    page.on("pageerror", (e) => res.console.push("pageerror: " + e.message));
    page.on("requestfailed", (r) => res.console.push("requestfailed: " + r.url()));
    await page.goto(sc.url, { waitUntil: "load", timeout: 30000 });
    try {
      if (sc.mode === "terminal") await terminal(page, sc, res);
      else if (sc.mode === "vnc") await vnc(page, sc, res);
      else throw new Error("unknown mode " + sc.mode);
      res.ok = true;
    } catch (e) {
      res.error = String(e && e.message || e);
    }
    await shot(page, res, sc.shot);
    const st = await page.evaluate(() => ({ monitor: window.vpl.monitor, log: window.vpl.log,
      text: window.vplTermText(), vncPassword: window.vpl.vncPassword }));
    Object.assign(res, st);
  } catch (e) {
    res.ok = false;
    res.error = res.error || String(e && e.stack || e);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(res) + "\n");
}

main().then(() => process.exit(0), (e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n");
  process.exit(1);
});
