"""TLS to an address as a host sees it, with no process on the host: the host's sshd opens the TCP
connection (a `direct-tcpip` channel, like `ssh -W`: the host's resolver, /etc/hosts and routes), and
TLS runs here over that channel (ssl.MemoryBIO), trusting only the given CAs and checking the name as
docker does (SANs only: a CN-only certificate fails, where curl 7.88 would pass it), then `GET /v2/`.
Outcomes are `errors.TlsOutcome`; a host whose sshd refuses forwarding gives FORWARDING_REFUSED."""
from __future__ import annotations

import socket
import ssl
import time

import paramiko

from ..errors import (FORWARDING_REFUSED, HANDSHAKE, NAME_MISMATCH, UNREACHABLE, UNRESOLVED, UNTRUSTED,
                      VERIFIED, TlsOutcome)
from ..settings import endpoint_of
from .forward import PROHIBITED

# gai_strerror texts sshd sends back when it cannot resolve the name (glibc, musl, BSD)
_NOT_RESOLVED = ("name or service not known", "temporary failure in name resolution", "no address associated",
                 "nodename nor servname", "name does not resolve", "name has no usable address")
# X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_NAME_CODES = (62, 64)


def check(transport: paramiko.Transport, host: str, port: int, cas: bytes, timeout: float) -> TlsOutcome:
    """TLS to host:port from the host behind `transport`, trusting `cas` (PEM) only; bounded by `timeout`
    for the connection and again for the handshake and the HTTP answer."""
    try:
        chan = transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
    except paramiko.ChannelException as exc:
        if exc.code == PROHIBITED:
            return TlsOutcome(FORWARDING_REFUSED, exc.text or "administratively prohibited")
        text = exc.text or "connect failed"
        return TlsOutcome(UNRESOLVED if text.lower().startswith(_NOT_RESOLVED) else UNREACHABLE, text.lower())
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return TlsOutcome(UNREACHABLE, str(exc) or "timed out")
    try:
        return _over(chan, host, port, cas, timeout)
    finally:
        chan.close()


def _over(chan: paramiko.Channel, host: str, port: int, cas: bytes, timeout: float) -> TlsOutcome:
    ctx = ssl.create_default_context(cadata=cas.decode("ascii"))  # these CAs only; names checked
    ctx.hostname_checks_common_name = False  # SANs only, as docker (Go) checks: Python's default falls back to CN
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    deadline = time.monotonic() + timeout
    chan.settimeout(timeout)

    def flush() -> None:
        data = outgoing.read()
        if data:
            chan.sendall(data)

    def feed() -> bool:
        chan.settimeout(max(0.01, deadline - time.monotonic()))
        data = chan.recv(1 << 16)
        if data:
            incoming.write(data)
        else:
            incoming.write_eof()
        return bool(data)

    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                if not feed():
                    return TlsOutcome(HANDSHAKE, "connection closed during the TLS handshake")
        tls.write(f"GET /v2/ HTTP/1.1\r\nHost: {endpoint_of(host, port)}\r\nUser-Agent: swarm-registry\r\n"
                  "Connection: close\r\n\r\n".encode())
        flush()
        answer = b""
        while b"\r\n" not in answer and len(answer) < 4096:
            try:
                chunk = tls.read(4096)
            except ssl.SSLWantReadError:
                flush()
                if not feed():
                    break
                continue
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            answer += chunk
    except ssl.SSLCertVerificationError as exc:
        kind = NAME_MISMATCH if exc.verify_code in _NAME_CODES else UNTRUSTED
        return TlsOutcome(kind, exc.verify_message or str(exc))
    except ssl.SSLError as exc:
        return TlsOutcome(HANDSHAKE, exc.reason.lower().replace("_", " ") if exc.reason else str(exc))
    except (socket.timeout, TimeoutError):
        return TlsOutcome(UNREACHABLE, "timed out")
    except (OSError, EOFError, paramiko.SSHException) as exc:
        return TlsOutcome(UNREACHABLE, str(exc) or type(exc).__name__)
    status = answer.split(b"\r\n", 1)[0].split()
    code = status[1].decode("ascii", "replace") if len(status) > 1 and status[0].startswith(b"HTTP/") else "000"
    return TlsOutcome(VERIFIED, code)
