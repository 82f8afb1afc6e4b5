"""token_server - a minimal Docker registry token service (the `auth: token:` flow) for tests.

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with HTTP Basic credentials
checked against a {user: password} dict (no credentials = anonymous: no access granted) answers
{"token": JWT, "access_token": JWT, "expires_in": N}. The JWT is RS256, signed by a fresh key
whose self-signed certificate is the registry's rootcertbundle; the certificate goes in the x5c
header, which is how distribution 2.8 finds the key. Every action asked for is granted to a
known user (the tests are about the client, not about authorisation); wrong credentials get 401.
`requests` counts token requests, so tests can check the client's token cache.

Standalone: python3 token_server.py DIR user:pass...  (prints realm and cert path, Ctrl-C stops)
"""
import base64
import datetime
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, users, workdir, service="vplcell-test-registry",
                 issuer="vplcell-test-issuer", expires_in=300):
        self.users, self.service, self.issuer = dict(users), service, issuer
        self.expires_in = expires_in
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vplcell test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(True, False, False, False, False, True, False,
                                                  False, False), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(workdir, "token-cert.pem")
        with open(self.cert_path, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        self.httpd = None

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.httpd.server_address[1]

    def make_token(self, account, scopes):
        access = []
        for sc in scopes:
            parts = sc.split(":")
            if len(parts) < 3:
                continue
            access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                           "actions": [a for a in parts[-1].split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(
                      serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.issuer, "sub": account, "aud": self.service,
                  "exp": now + self.expires_in, "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(sig)

    def _handler(self):
        ts = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                if u.path != "/token":
                    self.send_error(404)
                    return
                q = urllib.parse.parse_qs(u.query)
                account = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    try:
                        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                    except Exception:
                        user, pw = "", None
                    if ts.users.get(user) != pw:
                        with ts.lock:
                            ts.failures += 1
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    account = user
                with ts.lock:
                    ts.requests += 1
                scopes = q.get("scope", []) if account else []
                tok = ts.make_token(account or "", scopes)
                body = json.dumps({"token": tok, "access_token": tok,
                                   "expires_in": ts.expires_in}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return H

    def start(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


if __name__ == "__main__":
    users = dict(a.split(":", 1) for a in sys.argv[2:])
    t = TokenServer(users, sys.argv[1]).start()
    print("realm", t.realm)
    print("rootcertbundle", t.cert_path)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        t.stop()
