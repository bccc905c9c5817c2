"""HTTPS checks of the registry from the control machine, always verified against our CA.

Where this machine cannot resolve `registry.host`, it connects to the registry node's
address and still verifies the certificate for `registry.host` (SNI and name check).
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    cert_sha256: str
    headers: dict
    body: bytes


class ProbeError(Exception):
    """The registry could not be reached or failed TLS verification."""


def connect_address(name: str, fallback: str) -> str:
    try:
        socket.getaddrinfo(name, None)
        return name
    except socket.gaierror:
        return fallback


def get(name: str, port: int, path: str, cafile: str, *, address: str | None = None,
        auth: tuple[str, str] | None = None, timeout: float = 5.0) -> Answer:
    """GET https://name:port/path verified against `cafile`; `address` overrides where to connect."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw = socket.create_connection((address or name, port), timeout=timeout)
    except OSError as exc:
        raise ProbeError(f"cannot connect to {address or name}:{port}: {exc}") from None
    try:
        tls = ctx.wrap_socket(raw, server_hostname=name)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise ProbeError(f"TLS verification of {name}:{port} failed: {exc.verify_message}") from None
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        raise ProbeError(f"TLS handshake with {name}:{port} failed: {exc}") from None
    cert_sha = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    conn = http.client.HTTPConnection(name, port, timeout=timeout)
    conn.sock = tls
    headers = {"Host": f"{name}:{port}"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return Answer(resp.status, cert_sha, dict(resp.getheaders()), resp.read())
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(f"GET https://{name}:{port}{path} failed: {exc}") from None
    finally:
        conn.close()
