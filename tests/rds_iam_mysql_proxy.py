"""A stand-in for RDS's IAM authentication on MySQL/MariaDB, in front of a real MariaDB: what the
tests of ``--rds-iam`` with a MySQL URL log in through (no AWS account here).

RDS for MySQL accepts an IAM token as the password of a user ``IDENTIFIED WITH
AWSAuthenticationPlugin``, sent in the clear (the ``mysql_clear_password`` client plugin) over TLS,
and checks it as for PostgreSQL (:func:`rds_iam_proxy.verify_token`). :class:`MysqlIamAuthProxy`
does the same with MySQL's wire protocol:

1. it greets the client with the real server's own greeting (its capabilities, so the session
   relayed later speaks what both ends agreed), adding TLS;
2. a client whose first answer is not TLS's ``SSLRequest`` is refused (RDS refuses IAM without TLS);
3. over TLS it reads the client's login (user, database, capabilities), switches it to
   ``mysql_clear_password`` (``AuthSwitchRequest``, as RDS does) and reads the token;
4. a valid token: it logs in to the real server as the same user, whose password is empty (the
   test makes it so: the token is the only check), with the client's capabilities without TLS,
   sends the server's ``OK`` on to the client and relays both ways; an invalid one:
   ``ERROR 1045 (28000) Access denied``, as MySQL says.

Each login is recorded in :attr:`MysqlIamAuthProxy.logins` (accepted or why not).
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass

from rds_iam_proxy import IamAuthProxy, Login, _exactly, _relay, verify_token

CLIENT_CONNECT_WITH_DB, CLIENT_SSL, CLIENT_SECURE_CONNECTION = 0x8, 0x800, 0x8000
CLIENT_PLUGIN_AUTH, CLIENT_CONNECT_ATTRS, CLIENT_LENENC_AUTH = 0x80000, 0x100000, 0x200000


def _read(sock: socket.socket) -> tuple[int, bytes]:
    """One packet: its sequence number and payload."""
    head = _exactly(sock, 4)
    return head[3], _exactly(sock, int.from_bytes(head[:3], "little"))


def _write(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)


def _lenenc(data: bytes, at: int) -> tuple[int, int]:
    """A length-encoded integer at ``at``: its value and where what follows starts."""
    first = data[at]
    if first < 0xFB:
        return first, at + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[at + 1:at + 1 + size], "little"), at + 1 + size


@dataclass
class HandshakeResponse:
    """The client's login packet (HandshakeResponse41), in the parts the proxy changes."""

    head: bytes  # capabilities, max packet size, charset, filler: 32 bytes
    user: bytes
    database: bytes | None
    attributes: bytes | None  # with their length prefix

    @property
    def capabilities(self) -> int:
        return int(struct.unpack("<I", self.head[:4])[0])

    @classmethod
    def parse(cls, data: bytes) -> HandshakeResponse:
        caps = struct.unpack("<I", data[:4])[0]
        end = data.index(b"\0", 32)
        user, at = data[32:end], end + 1
        if caps & CLIENT_LENENC_AUTH:
            size, at = _lenenc(data, at)
            at += size
        elif caps & CLIENT_SECURE_CONNECTION:
            at += 1 + data[at]
        else:
            at = data.index(b"\0", at) + 1
        database = None
        if caps & CLIENT_CONNECT_WITH_DB:
            end = data.index(b"\0", at)
            database, at = data[at:end], end + 1
        if caps & CLIENT_PLUGIN_AUTH:
            at = data.index(b"\0", at) + 1
        attributes = None
        if caps & CLIENT_CONNECT_ATTRS:
            size, start = _lenenc(data, at)
            attributes = data[at:start + size]
        return cls(data[:32], user, database, attributes)

    def without_password(self) -> bytes:
        """The same login with TLS off and an empty ``mysql_native_password`` answer."""
        caps = self.capabilities & ~CLIENT_SSL
        out = struct.pack("<I", caps) + self.head[4:] + self.user + b"\0" + b"\0"
        if caps & CLIENT_CONNECT_WITH_DB:
            out += (self.database or b"") + b"\0"
        if caps & CLIENT_PLUGIN_AUTH:
            out += b"mysql_native_password\0"
        if caps & CLIENT_CONNECT_ATTRS:
            out += self.attributes or b"\0"
        return out


def _access_denied(user: bytes) -> bytes:
    message = f"Access denied for user '{user.decode()}'@'127.0.0.1' (using password: YES)"
    return b"\xff" + struct.pack("<H", 1045) + b"#28000" + message.encode()


@dataclass
class MysqlIamAuthProxy(IamAuthProxy):
    """The proxy on a free loopback port, relaying to the MariaDB at ``upstream``."""

    upstream: tuple[str, int] = ("127.0.0.1", 3306)

    def _serve(self, raw: socket.socket) -> None:
        upstream = socket.create_connection(self.upstream)
        try:
            _seq, greeting = _read(upstream)
            # The capabilities' lower two bytes follow the version string, connection id, 8 bytes of
            # scramble and a filler byte.
            at = greeting.index(b"\0", 1) + 1 + 4 + 8 + 1
            lower = struct.unpack("<H", greeting[at:at + 2])[0] | CLIENT_SSL
            _write(raw, 0, greeting[:at] + struct.pack("<H", lower) + greeting[at + 2:])
            _seq, first = _read(raw)
            if len(first) != 32 or not struct.unpack("<I", first[:4])[0] & CLIENT_SSL:
                self.logins.append(Login("", "", "no TLS"))
                return
            client = self._context.wrap_socket(raw, server_side=True)
            seq, response = _read(client)
            login = HandshakeResponse.parse(response)
            _write(client, seq + 1, b"\xfemysql_clear_password\0")
            seq, answer = _read(client)
            token = answer.rstrip(b"\0").decode()
            user = login.user.decode()
            refused = verify_token(token, self.host, user, self.max_age, not_before=self.not_before)
            self.logins.append(Login(user, token, refused))
            if refused is not None:
                _write(client, seq + 1, _access_denied(login.user))
                client.close()
                return
            _write(upstream, 1, login.without_password())
            _up_seq, result = _read(upstream)
            _write(client, seq + 1, result)
            if result[:1] != b"\x00":
                client.close()
                return
            _relay(client, upstream)
        except (OSError, ValueError, ssl.SSLError):
            raw.close()
        finally:
            upstream.close()
