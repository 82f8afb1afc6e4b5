#!/usr/bin/env python3
"""Black-box protocol tests: the real vpl-jail binary over plain HTTP and TLS,
every RPC method in both encodings, and every bad input the protocol names.
Expected bytes come from shared/docs/vpl-jail-protocol.md and the reference
server's wire samples."""
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Jail, Suite, connect, http, recv_all, Response, make_cert, BINARY  # noqa

J = None
S = Suite("protocol")
TICKET_RE = re.compile(r"^[0-9]{39}$")


def rpc(method, params, fmt="json", tls=False, path=None, rid="3-79890-840949600",
        pluginversion=True):
    if fmt == "json":
        body = json.dumps({"method": method, "params": params, "id": rid}).encode()
        ctype = "application/json;charset=UTF-8"
    else:
        body = xml_call(method, params).encode()
        ctype = "text/xml;charset=UTF-8"
    port = J.sport if tls else J.port
    return http(port, "POST", path or J.urlpath, body, {"Content-type": ctype}, tls=tls)


def xml_value(v):
    if isinstance(v, bool):
        return f"<int>{int(v)}</int>"
    if isinstance(v, int):
        return f"<int>{v}</int>"
    if isinstance(v, dict):
        return "<struct>" + "".join(
            f"<member><name>{xml_esc(k)}</name><value>{xml_value(x)}</value></member>"
            for k, x in v.items()) + "</struct>"
    return f"<string>{xml_esc(str(v))}</string>"


def xml_esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_call(method, params):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<methodCall>\n<methodName>' + method +
            "</methodName>\n<params>\n<param>\n<value>" + xml_value(params) +
            "</value>\n</param>\n</params>\n</methodCall>\n")


def xml_members(text):
    """Parses the reference layout into {name: (type, value)}."""
    out = {}
    for m in re.finditer(r"<member><name>([^<]*)</name>\n<value><(\w+)>(.*?)</\2></value>\n"
                         r"</member>\n", text, re.S):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def result(r):
    assert r.status == 200, (r.status, r.text())
    d = json.loads(r.body)
    return d["result"]


REQUEST_PARAMS = {
    "files": {"vpl_run.sh": "#!/bin/bash\ngcc -o vpl_execution hello.c\n",
              "hello.c": "int main(){return 0;}\n",
              "logo.png.b64": "iVBORw0KGgo=",
              "sub/dir/data.txt": "x"},
    "fileencoding": {"vpl_run.sh": 0, "hello.c": 0, "logo.png.b64": 1},
    "filestodelete": {"vpl_run.sh": 1},
    "maxtime": 240, "maxfilesize": 67108864, "maxmemory": 134217728, "maxprocesses": 200,
    "runscript": None, "execute": "vpl_run.sh", "activityid": "7", "type": 0,
    "userid": "3", "submittedlist": ["hello.c"], "interactive": 0, "lang": "en_US.UTF-8",
    "pluginversion": 2026012812,
}


def check_common_headers(r):
    assert r.header_lines[0].startswith("Server: "), r.header_lines
    assert r.header_lines[1] == "Connection: close", r.header_lines
    # The plugin's version gate: "Server:" "vpl-jail-system" <version>, string >= 4.0.3
    toks = ("Server: " + r.header("server")).split(" ")
    assert len(toks) == 3 and toks[1] == "vpl-jail-system" and toks[2] >= "4.0.3", toks
    assert int(r.header("content-length")) == len(r.body)


# ---------------------------------------------------------------- methods

def test_available_json_exact():
    r = rpc("available", {"maxmemory": 134217728})
    check_common_headers(r)
    assert r.header("content-type") == "application/json; charset=utf-8"
    want = ('{"jsonrpc":"2.0","result":{"status":"ready","load":0,"maxtime":1200,'
            '"maxfilesize":67108864,"maxmemory":2097152000,"maxprocesses":500,'
            f'"secureport":{J.sport}}},"id":"3-79890-840949600"}}')
    assert r.text() == want, r.text()


def test_available_xml_exact():
    r = rpc("available", {"maxmemory": 134217728}, fmt="xml")
    check_common_headers(r)
    assert r.header("content-type") == "text/xml; charset=utf-8"
    want = ('<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse>\n<params>\n<param>\n'
            '<struct>\n'
            '<member><name>status</name>\n<value><string>ready</string></value>\n</member>\n'
            '<member><name>load</name>\n<value><int>0</int></value>\n</member>\n'
            '<member><name>maxtime</name>\n<value><int>1200</int></value>\n</member>\n'
            '<member><name>maxfilesize</name>\n<value><int>67108864</int></value>\n</member>\n'
            '<member><name>maxmemory</name>\n<value><int>2097152000</int></value>\n</member>\n'
            '<member><name>maxprocesses</name>\n<value><int>500</int></value>\n</member>\n'
            f'<member><name>secureport</name>\n<value><int>{J.sport}</int></value>\n</member>\n'
            '</struct>\n</param>\n</params>\n</methodResponse>\n')
    assert r.text() == want, r.text()


def test_available_https_and_hsts():
    r = rpc("available", {"maxmemory": 10240}, tls=True)
    assert result(r)["status"] == "ready"
    assert r.header("strict-transport-security") == "max-age=31536000", r.headers


def test_no_hsts_on_plain_http():
    r = rpc("available", {"maxmemory": 10240})
    assert r.header("strict-transport-security") is None


def test_available_ipv6():
    body = json.dumps({"method": "available", "params": {"maxmemory": 1}, "id": "1"}).encode()
    r = http(J.port, "POST", J.urlpath, body, host="::1", family=socket.AF_INET6)
    assert result(r)["status"] == "ready"


def test_plugin_json_without_jsonrpc_and_numeric_id():
    body = b'{"method":"available","params":{"maxmemory":134217728},"id":17}'
    r = http(J.port, "POST", J.urlpath, body)
    d = json.loads(r.body)
    assert d["id"] == "17" and d["jsonrpc"] == "2.0", d


def test_request_getresult_json():
    r = rpc("request", REQUEST_PARAMS)
    res = result(r)
    assert list(res) == ["adminticket", "monitorticket", "executionticket", "port",
                         "secureport"], list(res)
    for k in ("adminticket", "monitorticket", "executionticket"):
        assert TICKET_RE.match(res[k]), res[k]
    assert len({res["adminticket"], res["monitorticket"], res["executionticket"]}) == 3
    assert res["port"] == J.port and res["secureport"] == J.sport
    g = result(rpc("getresult", {"adminticket": res["adminticket"],
                                 "pluginversion": 2026012812}))
    assert list(g) == ["compilation", "execution", "executed", "interactive"], g
    assert "no sandbox" in g["compilation"] and "nothing was compiled or run" in g["compilation"]
    assert g["execution"] == "" and g["executed"] == 0 and g["interactive"] == 0
    # Outputs are read once: the task is gone afterwards.
    again = rpc("getresult", {"adminticket": res["adminticket"], "pluginversion": 1})
    assert again.status == 500 and "Ticket not found" in again.text(), again.text()


def test_request_getresult_xml():
    r = rpc("request", REQUEST_PARAMS, fmt="xml")
    assert r.status == 200, r.text()
    m = xml_members(r.text())
    assert [*m] == ["adminticket", "monitorticket", "executionticket", "port", "secureport"]
    assert m["port"] == ("int", str(J.port))
    admin = m["adminticket"][1]
    assert TICKET_RE.match(admin)
    g = rpc("getresult", {"adminticket": admin, "pluginversion": 2026012812}, fmt="xml")
    gm = xml_members(g.text())
    assert gm["executed"] == ("int", "0") and gm["interactive"] == ("int", "0"), gm
    assert "no sandbox" in gm["compilation"][1]


def test_directrun_shape():
    p = dict(REQUEST_PARAMS, interactive=1, execute="vpl_run.sh", maxtime=1000000,
             maxmemory=2000000000, maxfilesize=2000000000, maxprocesses=10000)
    res = result(rpc("directrun", p))
    assert list(res) == ["homepath", "adminticket", "executionticket", "port", "secureport"]
    assert res["homepath"].startswith("/")
    assert TICKET_RE.match(res["executionticket"])


def test_getresult_interactive_refused():
    p = dict(REQUEST_PARAMS, interactive=1)
    res = result(rpc("request", p))
    g = rpc("getresult", {"adminticket": res["adminticket"], "pluginversion": 1})
    assert g.status == 500 and "Security: process in bad state" in g.text()
    rpc("stop", {"adminticket": res["adminticket"], "pluginversion": 1})


def test_running_and_legacy_rule():
    res = result(rpc("request", REQUEST_PARAMS))
    # Without a sandbox the task ended at once: not running, and cleaned.
    r = result(rpc("running", {"adminticket": res["adminticket"], "pluginversion": 2026012812}))
    assert r == {"running": 0}, r
    # Legacy rule: not running and no pluginversion -> 500 Ticket invalid.
    res2 = result(rpc("request", REQUEST_PARAMS))
    r2 = rpc("running", {"adminticket": res2["adminticket"]})
    assert r2.status == 500 and "Ticket invalid" in r2.text(), r2.text()
    r3 = result(rpc("running", {"adminticket": "123", "pluginversion": 1}))
    assert r3 == {"running": 0}


def test_stop_always_one():
    assert result(rpc("stop", {"adminticket": "999", "pluginversion": 1})) == {"stop": 1}
    assert result(rpc("stop", {"adminticket": "abc"})) == {"stop": 1}
    res = result(rpc("request", REQUEST_PARAMS))
    assert result(rpc("stop", {"adminticket": res["adminticket"], "pluginversion": 1})) == \
        {"stop": 1}
    g = rpc("getresult", {"adminticket": res["adminticket"], "pluginversion": 1})
    assert g.status == 500 and "Ticket not found" in g.text()


def test_stop_xml():
    r = rpc("stop", {"adminticket": "70213394801117", "pluginversion": 2026012812}, fmt="xml")
    assert xml_members(r.text()) == {"stop": ("int", "1")}, r.text()


def test_update_paths():
    res = result(rpc("request", dict(REQUEST_PARAMS, interactive=1)))
    u = result(rpc("update", {"adminticket": res["adminticket"], "files": {"index.php": "x"},
                              "fileencoding": {"index.php": 0}, "filestodelete": [],
                              "pluginversion": 1}))
    assert u == {"update": 0}, u  # nothing can be written without a sandbox: says so
    bad = rpc("update", {"adminticket": res["adminticket"], "files": {"../x": "y"},
                         "pluginversion": 1})
    assert bad.status == 400 and "Incorrect file name" in bad.text()
    unknown = rpc("update", {"adminticket": "12345", "files": {}, "pluginversion": 1})
    assert unknown.status == 500 and "Ticket not found" in unknown.text()
    rpc("stop", {"adminticket": res["adminticket"], "pluginversion": 1})


def test_ticket_format_errors():
    r = rpc("getresult", {"adminticket": "12ab", "pluginversion": 1})
    assert r.status == 500 and "Ticket invalid format" in r.text()


# ------------------------------------------------------------- bad input

def test_unknown_method_exact():
    body = (b'{"method":"nosuchmethod","params":{"adminticket":"181165314977080",'
            b'"pluginversion":2026012812},"id":"2-2207-734167418"}')
    r = http(J.port, "POST", J.urlpath, body)
    assert r.status_line == "HTTP/1.1 400 Bad Request"
    check_common_headers(r)
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.text() == ("<html><head><title>Bad Request</title></head><body><h2>Bad Request"
                        "</h2><h3>Unknown request:nosuchmethod</h3></body></html>")
    assert r.header("content-length") == "122"


def test_malformed_inputs():
    cases = [
        (b'{"method":"available","params":{', "JSON"),
        (b'{"method":"available","params":[1,2]}', None),
        (b'{"params":{}}', None),
        (b'[1,2,3]', None),
        (b'<?xml version="1.0"?><methodCall><methodName>available</methodName>', "XML"),
        (b'<?xml version="1.0"?><notAMethodCall/>', None),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>&a;</methodName>'
         b'</methodCall>', None),
        (b'\xff\xfe garbage', None),
        (b'{"method":"available","params":{"maxmemory":"lots"},"id":"1"}', None),
        (b'{"method":"request","params":{"files":"notamap","execute":"a"},"id":"1"}', None),
        (b'{"method":"request","params":{"files":{"a":1},"execute":"a"},"id":"1"}', None),
    ]
    for body, word in cases:
        r = http(J.port, "POST", J.urlpath, body)
        assert r.status == 400, (body, r.status, r.text())
        if word:
            assert word in r.text(), r.text()


def test_bad_file_names():
    for name in ["../etc/passwd", "a/../../b", "", "a\x00b", "a/./b/..", "x" * 129,
                 "/".join(["d"] * 130), "quote\"d", "back\\slash"]:
        p = dict(REQUEST_PARAMS, files={name: "x"}, fileencoding={})
        r = rpc("request", p)
        assert r.status == 400, (name, r.status, r.text())
        # jansson refuses a NUL inside an object key at parse time.
        assert "\x00" in name or "Incorrect file name" in r.text(), (name, r.text())
    # A leading "/" or "./" is skipped, not refused.
    for name in ["/abs.c", "./rel.c", "with space.c", "ñandú.c"]:
        p = dict(REQUEST_PARAMS, files={name: "x", "vpl_run.sh": "x"}, fileencoding={})
        r = rpc("request", p)
        assert r.status == 200, (name, r.text())


def test_bad_base64_refused():
    p = dict(REQUEST_PARAMS, files={"a.b64": "!!!notbase64", "vpl_run.sh": "x"},
             fileencoding={"a.b64": 1})
    r = rpc("request", p)
    assert r.status == 400 and "base64" in r.text(), r.text()


def test_wrong_urlpath():
    for path in ["/", "/s3cr3t-pat", "/s3cr3t-path2", "/S3CR3T-PATH"]:
        r = http(J.port, "POST", path, b'{"method":"available","params":{},"id":"1"}')
        assert r.status == 404 and "http request URL path not found" in r.text(), (path, r.status)


def test_other_methods_400():
    for m in ["OPTIONS", "PUT", "DELETE", "PATCH"]:
        r = http(J.port, m, "/OK")
        assert r.status == 400 and f"Unsupported METHOD {m}" in r.text(), (m, r.status, r.text())


def test_oversized_body_413():
    big = b'{"method":"available","params":{"x":"' + b"a" * (1 << 20) + b'"},"id":"1"}'
    r = http(J.port, "POST", J.urlpath, big)
    assert r.status == 413 and "http Request size too large" in r.text(), r.status


def test_oversized_with_expect_gets_413_without_100():
    s = connect(J.port)
    s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n"
              "Expect: 100-continue\r\n\r\n".encode())
    r = Response(recv_all(s))
    s.close()
    assert r.status == 413, r.raw[:200]


def test_expect_100_continue_raw():
    body = b'{"method":"available","params":{"maxmemory":1},"id":"9"}'
    s = connect(J.port)
    s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
              "Expect: 100-continue\r\n\r\n".encode())
    first = s.recv(100)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n", first
    s.sendall(body)
    r = Response(recv_all(s))
    s.close()
    assert r.status == 200 and json.loads(r.body)["result"]["status"] == "ready"


def test_slow_body_408():
    s = connect(J.port, timeout=30)
    s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
              '{"method":'.encode())
    r = Response(recv_all(s))  # the socket's own 30 s timeout bounds the wait
    s.close()
    assert r.status == 408 and "Socket read timeout" in r.text(), r.raw[:300]


def test_header_flood_and_missing_length():
    s = connect(J.port)
    s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\n".encode() +
              b"X-Junk: " + b"a" * 20000 + b"\r\n\r\n")
    raw = recv_all(s)
    s.close()
    assert not raw.startswith(b"HTTP/1.1 200"), raw[:100]
    s = connect(J.port)
    s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    r = Response(recv_all(s))
    s.close()
    assert r.status == 400, r.raw[:200]


def test_garbage_connection():
    s = connect(J.port)
    s.sendall(b"\x16\x03\x01\x02\x00garbage that is not http\r\n\r\n")
    recv_all(s)
    s.close()
    s = connect(J.sport)  # plain text on the TLS port
    s.sendall(b"GET /OK HTTP/1.1\r\n\r\n")
    recv_all(s)
    s.close()


# ---------------------------------------------------------------- GET

def test_get_predefined():
    for path in ["/OK", "/ok", "/oK"]:
        r = http(J.port, "GET", path)
        assert r.status == 200 and "<h1>OK</h1>" in r.text(), path
        assert r.header("set-cookie") == "VPL_Iwh=y; Path=/; SameSite=none; Secure"
        assert r.header("content-type") == "text/html; charset=utf-8"
    r = http(J.port, "GET", "/robots.txt")
    assert r.status == 200 and r.text().startswith("User-agent: *") and "Disallow: /" in r.text()
    r = http(J.port, "GET", "/favicon.ico")
    assert r.status == 200 and r.header("content-type") == "image/svg+xml; charset=utf-8"
    r = http(J.sport, "GET", "/OK", tls=True)
    assert r.status == 200


def test_get_not_found():
    for path in ["/", "/nothing", "/OK/x", J.urlpath]:
        r = http(J.port, "GET", path)
        assert r.status == 404, (path, r.status)


def test_head_ok():
    r = http(J.port, "HEAD", "/OK")
    assert r.status == 200 and r.body == b"" and int(r.header("content-length")) > 0


# ---------------------------------------------------------------- TLS

def test_tls_old_versions_refused():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    for ver in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so the client really offers old TLS
        ctx.minimum_version = ver
        ctx.maximum_version = ver
        s = socket.create_connection(("127.0.0.1", J.sport), timeout=5)
        try:
            ctx.wrap_socket(s, server_hostname="localhost")
            raise AssertionError(f"{ver} handshake succeeded")
        except ssl.SSLError as e:
            # The refusal must come from the server (alert 70), not the client.
            assert "ALERT_PROTOCOL_VERSION" in str(e), e
        finally:
            s.close()
    s = connect(J.sport, tls=True)
    assert s.version() in ("TLSv1.2", "TLSv1.3"), s.version()
    s.close()


def cert_serial(port):
    s = connect(port, tls=True)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def test_sighup_reload_with_live_connection():
    before = cert_serial(J.sport)
    # A connection in the middle of its request across the reload.
    live = connect(J.sport, tls=True)
    body = b'{"method":"available","params":{"maxmemory":1},"id":"7"}'
    live.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                 .encode() + body[:10])
    newcert, newkey = make_cert(J.dir, cn="reloaded", name="new")
    os.replace(newcert, J.cert)
    os.replace(newkey, J.key)
    J.proc.send_signal(1)  # SIGHUP
    time.sleep(0.5)
    after = cert_serial(J.sport)
    assert before != after, "certificate not reloaded"
    live.sendall(body[10:])
    r = Response(recv_all(live))
    live.close()
    assert r.status == 200 and json.loads(r.body)["result"]["status"] == "ready"
    # A broken pair is refused and the good certificate stays.
    with open(J.key, "w") as f:
        f.write("not a key\n")
    J.proc.send_signal(1)
    time.sleep(0.5)
    assert cert_serial(J.sport) == after
    assert "keeping the current certificate" in J.read_log()


# ------------------------------------------------------------ policy

def test_drain_file_offline():
    open(J.drain, "w").close()
    try:
        assert result(rpc("available", {"maxmemory": 1}))["status"] == "offline"
    finally:
        os.unlink(J.drain)
    assert result(rpc("available", {"maxmemory": 1}))["status"] == "ready"


def test_limits_clamped_in_log():
    p = dict(REQUEST_PARAMS, maxtime=99999, maxmemory=-2147483648, maxfilesize=0,
             maxprocesses=5)
    res = result(rpc("request", p))
    log = J.read_log()
    line = [ln for ln in log.splitlines() if "interactive=0" in ln and "maxtime=1200" in ln]
    assert line and "maxmemory=2097152000" in line[-1] and "maxprocesses=5" in line[-1], line
    rpc("stop", {"adminticket": res["adminticket"], "pluginversion": 1})


def test_concurrent_clients():
    results = []

    def worker():
        for _ in range(10):
            r = rpc("available", {"maxmemory": 1})
            results.append(r.status)
    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results.count(200) == 80, results


def test_secrets_not_logged():
    res = result(rpc("request", REQUEST_PARAMS))
    rpc("getresult", {"adminticket": res["adminticket"], "pluginversion": 1})
    log = J.read_log()
    for k in ("adminticket", "monitorticket", "executionticket"):
        assert res[k] not in log, k
    assert J.urlpath.strip("/") not in log


def main():
    global J
    J = Jail(HSTS_MAX_AGE=31536000, REQUEST_MAX_SIZE="1M")
    tests = [v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)]
    try:
        for t in tests:
            S.run(t)
        # After every bad input above, the server still serves.
        S.check(result(rpc("available", {"maxmemory": 1}))["status"] == "ready",
                "still serving after all bad inputs")
    finally:
        rc = J.stop()
        S.check(rc == 0, f"clean exit on SIGTERM (rc={rc}, ASan/UBSan reports fail it)")
        if rc != 0:
            print(J.read_log()[-3000:])
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
