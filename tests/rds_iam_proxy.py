"""A stand-in for RDS's IAM authentication, in front of a real PostgreSQL: what the tests of
``--rds-iam`` log in through (no AWS account here).

RDS accepts an IAM token as a cleartext password over TLS and checks it: a SigV4 signature of
``rds-db:connect`` for its host, port and the user logging in, signed with the caller's AWS
credentials, not expired. :class:`IamAuthProxy` does the same, as a real server would:

1. it speaks PostgreSQL's wire protocol: refuses GSSAPI encryption, accepts TLS (``SSLRequest``)
   with a self-signed certificate (``openssl``), and refuses a client that does not ask for TLS;
2. it asks for a cleartext password (``AuthenticationCleartextPassword``, as RDS does for IAM);
3. it verifies the token: SigV4 recomputed here (standard HMAC-SHA256, no botocore) with the secret
   key moto's fake credentials carry (``testing``), for this proxy's host:port and the startup
   message's user, its ``X-Amz-Date`` at most ``max_age`` seconds old (RDS: 15 minutes);
4. a valid token: it opens a session on the real server (which trusts the user) with the same
   startup message and relays both ways; an invalid one: ``FATAL 28P01`` as a server does.

Each login is recorded (:attr:`IamAuthProxy.logins`: accepted or why not), so a test sees every
connect's token was checked; with :attr:`IamAuthProxy.not_before` set at a moment of the run, a
token signed before it (one reused from an earlier connect) is refused, as an expired one would be.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import select
import socket
import ssl
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote

from helpers import free_port
from refusal_proxy import accept_each

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
SECRET_KEY = "testing"  # moto's fake credentials (aws_server.FAKE_CREDENTIALS)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1, made by ``openssl``."""
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def verify_token(token: str, host: str, user: str, max_age: float, now: float | None = None,
                 not_before: float | None = None) -> str | None:
    """None when ``token`` is a valid IAM token for ``user`` at ``host`` (``127.0.0.1:PORT``), else why not."""
    endpoint, _, query = token.partition("/?")
    if endpoint != host:
        return f"signed for {endpoint}, not {host}"
    params = dict(parse_qsl(query, keep_blank_values=True))
    if params.get("Action") != "connect" or params.get("DBUser") != user:
        return f"not a connect token for {user}"
    signature = params.pop("X-Amz-Signature", "")
    stamp = params.get("X-Amz-Date", "")
    _access, day, region, service, _end = params.get("X-Amz-Credential", "////").split("/")
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    # botocore signs the (empty) payload of an https request: its SHA-256 ends the canonical request.
    canonical = "\n".join(["GET", "/", canonical_query, f"host:{host}", "", "host", hashlib.sha256(b"").hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
        return "bad signature"
    signed = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    age = (time.time() if now is None else now) - signed
    if age > max_age:
        return f"expired: signed {age:.1f}s ago"
    if not_before is not None and signed < int(not_before):  # X-Amz-Date counts whole seconds
        return f"signed {int(not_before) - signed}s before the moment the test requires"
    return None


@dataclass
class Login:
    user: str
    token: str
    refused: str | None
    #: When the proxy checked it (``time.time()``).
    at: float = field(default_factory=time.time)


@dataclass
class IamAuthProxy:
    """The proxy on a free loopback port, relaying to the PostgreSQL at ``upstream``."""

    certificate: tuple[Path, Path]
    upstream: tuple[str, int] = ("127.0.0.1", 5432)
    max_age: float = 900.0
    #: Refuse tokens signed before this moment (``time.time()``), when set.
    not_before: float | None = None
    port: int = field(default_factory=free_port)
    logins: list[Login] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> IamAuthProxy:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(*map(str, self.certificate))
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=accept_each, args=(self._listener, self._serve), daemon=True).start()
        return self

    def stop(self) -> None:
        self._listener.close()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self._negotiate(raw)
            if client is None:
                return
            startup = _message(client, typed=False)
            fields = startup[8:].split(b"\0")
            options = dict(zip(fields[0::2], fields[1::2], strict=False))
            user = options.get(b"user", b"").decode()
            client.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            reply = _message(client, typed=True)
            token = reply[5:].rstrip(b"\0").decode()
            refused = verify_token(token, self.host, user, self.max_age, not_before=self.not_before)
            self.logins.append(Login(user, token, refused))
            if refused is not None:
                _fatal(client, f'PAM authentication failed for user "{user}"')
                client.close()
                return
            upstream = socket.create_connection(self.upstream)
            upstream.sendall(startup)
            _relay(client, upstream)
        except (OSError, ValueError, ssl.SSLError):
            raw.close()

    def _negotiate(self, raw: socket.socket) -> ssl.SSLSocket | None:
        while True:
            request = _exactly(raw, 8)
            code = struct.unpack("!ii", request)[1]
            if code == GSSENC_REQUEST:
                raw.sendall(b"N")
                continue
            if code != SSL_REQUEST:  # a startup message in the clear: RDS refuses IAM without TLS
                self.logins.append(Login("", "", "no TLS"))
                raw.close()
                return None
            raw.sendall(b"S")
            return self._context.wrap_socket(raw, server_side=True)


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


def _message(sock: socket.socket, typed: bool) -> bytes:
    head = _exactly(sock, 5 if typed else 4)
    length = struct.unpack("!i", head[-4:])[0]
    return head + _exactly(sock, length - 4)


def _fatal(sock: socket.socket, message: str) -> None:
    body = b"".join(k + v.encode() + b"\0" for k, v in
                    ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "28P01"), (b"M", message))) + b"\0"
    sock.sendall(b"E" + struct.pack("!i", len(body) + 4) + body)


def _relay(client: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Both ways in one thread (an SSL socket is not to be read and written from two at once)."""
    try:
        while True:
            ready = [client] if client.pending() else select.select([client, upstream], [], [])[0]
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    except OSError:
        pass
    finally:
        for sock in (client, upstream):
            try:
                sock.close()
            except OSError:
                pass
