// tests/browser/page.js - what the VPL plugin's run page does with the worker's sockets, using
// the same client libraries: the monitor socket announces what runs ("run:terminal" or
// "run:vnc:<password>"); a terminal run attaches xterm.js to the execute socket (as the
// plugin's amd/src/vplterminal.js does: keystrokes -> ws.send, frames -> term.write), a
// graphical run opens noVNC's RFB on it with the password from the monitor message.
// State for the test driver (tests/browser/drive.js) is kept in window.vpl.
import { Terminal } from '/node_modules/@xterm/xterm/lib/xterm.mjs';
import RFB from '/node_modules/@novnc/novnc/core/rfb.js';

const q = new URLSearchParams(location.search);
const V = window.vpl = {
    monitor: [],      // every monitor message, in order
    log: [],          // socket and client events
    term: null, termOpen: false, termClosed: false,
    rfb: null, vncPassword: null, vncConnected: false, vncDisconnected: false,
};
const status = document.getElementById('status');
const log = (s) => { V.log.push(s); status.textContent = s; };

function openTerminal() {
    const term = V.term = new Terminal({ cols: 80, rows: 20, convertEol: false });
    const div = document.getElementById('terminal');
    div.style.display = 'block';
    term.open(div);
    const ws = new WebSocket(q.get('execute'));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { V.termOpen = true; log('terminal: open'); term.focus(); };
    ws.onmessage = (e) => term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
    ws.onclose = (e) => { V.termClosed = true; log('terminal: close ' + e.code); };
    ws.onerror = () => log('terminal: error');
    term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(d); });
}

function openVnc(password) {
    V.vncPassword = password;
    const div = document.getElementById('vnc');
    div.style.display = 'block';
    const rfb = V.rfb = new RFB(div, q.get('execute'), {
        shared: false, credentials: { password }, wsProtocols: [],
    });
    rfb.addEventListener('connect', () => { V.vncConnected = true; log('vnc: connect'); });
    rfb.addEventListener('disconnect', (e) => {
        V.vncDisconnected = true;
        log('vnc: disconnect clean=' + e.detail.clean);
    });
    rfb.addEventListener('credentialsrequired', () => log('vnc: credentialsrequired'));
    rfb.addEventListener('securityfailure', (e) =>
        log('vnc: securityfailure ' + e.detail.status + ' ' + (e.detail.reason || '')));
}

// The terminal's visible text, one string per buffer line (trailing blanks trimmed).
window.vplTermText = () => {
    if (!V.term) return '';
    const b = V.term.buffer.active, lines = [];
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
    return lines.join('\n');
};

// noVNC's canvas around its centre: the centre pixel [r, g, b, a] and, over a 100x100 box
// centred on it, the share of pixels that are clearly red (X draws its pointer into the
// framebuffer at the centre of the screen, so the centre pixel alone may be the cursor's).
window.vplVncCentre = () => {
    const c = document.querySelector('#vnc canvas');
    if (!c || !c.width || !c.height) return null;
    const cx = c.width >> 1, cy = c.height >> 1;
    const x0 = Math.max(0, cx - 50), y0 = Math.max(0, cy - 50);
    const w = Math.min(100, c.width - x0), h = Math.min(100, c.height - y0);
    const d = c.getContext('2d').getImageData(x0, y0, w, h).data;
    let red = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 50 && d[i + 2] < 50) red++;
    const ci = ((cy - y0) * w + (cx - x0)) * 4;
    return { pixel: Array.from(d.slice(ci, ci + 4)), red: red / (w * h),
             width: c.width, height: c.height };
};

const mon = new WebSocket(q.get('monitor'));
mon.onopen = () => log('monitor: open');
mon.onclose = (e) => log('monitor: close ' + e.code);
mon.onerror = () => log('monitor: error');
mon.onmessage = (e) => {
    const t = String(e.data);
    V.monitor.push(t);
    if (t === 'run:terminal') openTerminal();
    else if (t.startsWith('run:vnc:')) openVnc(t.slice('run:vnc:'.length));
};
