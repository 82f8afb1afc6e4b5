"""The client side of RFB (VNC) over an execute socket driven by wsclient.WsClient, shared
by the VNC suites: VNC authentication and reading/writing the binary frames."""
import base64


def vnc_response(password, challenge):
    """VNC authentication: DES of the challenge keyed by the password with each
    byte's bits mirrored (RFB 6.2.2)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode()[:8].ljust(8, b"\0"))
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


class Rfb:
    """The client side of RFB over the execute socket's binary frames."""

    def __init__(self, c, sid):
        self.c, self.sid, self.buf = c, sid, b""

    def read(self, n, timeout=60):
        while len(self.buf) < n:
            e = self.c.wait(self.sid, lambda e: e["ev"] in ("message", "close"), timeout)
            assert e["ev"] == "message" and "b64" in e, e
            self.buf += base64.b64decode(e["b64"])
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def write(self, data):
        self.c.send(self.sid, b64=base64.b64encode(data).decode())
