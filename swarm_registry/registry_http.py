"""The one registry client of the control machine: HTTPS always verified against our trust anchor.

`probe()` is the raw check setup uses while waiting (status and the served certificate's
sha256, with the stdlib); `RegistryClient` is the API (catalog, tags, manifests) with
`requests`. Where this machine cannot resolve `registry.host`, both connect to the registry
node's address while SNI and the certificate check still use `registry.host`. IPv6
addresses are bracketed in URLs. When the execution layer forwards the registry's port over SSH
(ssh.forward_registry, remote/forward.py), `set_route` makes both connect to that local port instead.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from .certs import anchor_path
from .settings import Settings

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


class RegistryError(Exception):
    """One line: what failed and why (wrong password, unknown CA, unreachable...)."""


@dataclass(frozen=True)
class Answer:
    status: int
    cert_sha256: str
    headers: dict
    body: bytes


# set by the execution layer while the registry's API may go over SSH: a node address (or registry.host)
# -> the port on 127.0.0.1 forwarded to that node's registry port, or None (connect directly)
_route: Callable[[str], int | None] | None = None


def set_route(route: Callable[[str], int | None] | None) -> None:
    global _route
    _route = route


def _connect_to(address: str, port: int) -> tuple[str, int]:
    forwarded = _route(address) if _route is not None else None
    return ("127.0.0.1", forwarded) if forwarded else (address, port)


def connect_address(name: str, fallback: str) -> str:
    try:
        socket.getaddrinfo(name, None)
        return name
    except socket.gaierror:
        return fallback


def url_host(address: str) -> str:
    """An address as it goes in a URL: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def probe(settings: Settings, path: str, *, auth: tuple[str, str] | None = None, timeout: float = 5.0,
          address: str | None = None) -> Answer:
    """GET https://registry.host:port/path verified against our anchor; the status and the served
    certificate's sha256 (to tell our new certificate from an older one). `address`: one replica's node
    (SNI and the certificate check still use registry.host)."""
    r = settings.registry
    name, port = r.host, r.port
    address = address or connect_address(name, settings.registry_host.address)
    ctx = ssl.create_default_context(cafile=str(anchor_path(settings)))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        raw = socket.create_connection(_connect_to(address, port), timeout=timeout)
    except OSError as exc:
        raise RegistryError(f"cannot connect to {url_host(address)}:{port}: {exc}") from None
    try:
        tls = ctx.wrap_socket(raw, server_hostname=name)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise RegistryError(f"TLS verification of {name}:{port} failed: {exc.verify_message}") from None
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        raise RegistryError(f"TLS handshake with {name}:{port} failed: {exc}") from None
    cert_sha = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    conn = http.client.HTTPConnection(name, port, timeout=timeout)
    conn.sock = tls
    headers = {"Host": r.endpoint}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return Answer(resp.status, cert_sha, dict(resp.getheaders()), resp.read())
    except (OSError, http.client.HTTPException) as exc:
        raise RegistryError(f"GET https://{name}:{port}{path} failed: {exc}") from None
    finally:
        conn.close()


class _NamedHostAdapter(HTTPAdapter):
    """Connect to an address but verify the certificate for `name` (and send it as SNI)."""

    def __init__(self, name: str, **kwargs):
        self._name = name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self._name
        kwargs["assert_hostname"] = self._name
        super().init_poolmanager(*args, **kwargs)


class RegistryClient:
    def __init__(self, settings: Settings, password: str | None, *, user: str | None = None, timeout: float = 10):
        r = settings.registry
        self.name = r.host
        address, port = _connect_to(connect_address(r.host, settings.registry_host.address), r.port)
        self.base = f"https://{url_host(address)}:{port}"
        self.session = requests.Session()
        # passed on every request: a session default loses to REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE in the env
        self.verify = str(anchor_path(settings))
        self.session.headers["Host"] = r.endpoint
        if address != r.host:
            self.session.mount(self.base, _NamedHostAdapter(r.host))
        self.auth = (user or r.login_user, password) if password is not None else None
        self.timeout = timeout

    def get(self, path: str, *, auth=..., headers=None, method: str = "GET") -> requests.Response:
        try:
            return self.session.request(method, urljoin(self.base, path), auth=self.auth if auth is ... else auth,
                                        headers=headers, timeout=self.timeout, verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise RegistryError(f"TLS verification of {self.name} failed against {self.verify}: "
                                f"{_short(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise RegistryError(f"registry {self.base} unreachable: {_short(exc)}") from None
        except requests.exceptions.Timeout:
            raise RegistryError(f"registry {self.base} did not answer within {self.timeout}s") from None

    def _ok(self, resp: requests.Response, what: str) -> requests.Response:
        if resp.status_code == 401:
            raise RegistryError(f"{what}: 401 unauthorized (wrong user or password for {self.auth[0] if self.auth else 'anonymous'})")
        if resp.status_code != 200:
            raise RegistryError(f"{what}: HTTP {resp.status_code}")
        return resp

    def catalog(self) -> list[str]:
        """Every repository, following the Link header (the registry pages by 100)."""
        repos: list[str] = []
        path = "/v2/_catalog?n=100"
        for _ in range(10_000):
            resp = self._ok(self.get(path), "catalog")
            repos += resp.json().get("repositories") or []
            link = resp.headers.get("Link", "")
            m = re.search(r"<([^>]+)>;\s*rel=\"?next\"?", link)
            if not m:
                return repos
            path = m.group(1)
        raise RegistryError("catalog: too many pages")

    def tags(self, repo: str) -> list[str]:
        return self._ok(self.get(f"/v2/{repo}/tags/list"), f"tags of {repo}").json().get("tags") or []

    def manifest_digest(self, repo: str, ref: str) -> str:
        resp = self._ok(self.get(f"/v2/{repo}/manifests/{ref}", method="HEAD", headers={"Accept": MANIFEST_TYPES}),
                        f"manifest {repo}:{ref}")
        return resp.headers.get("Docker-Content-Digest", "")

    def delete_manifest(self, repo: str, digest: str) -> int:
        return self.get(f"/v2/{repo}/manifests/{digest}", method="DELETE").status_code

    def manifest(self, repo: str, ref: str) -> tuple[str, dict]:
        """The manifest's digest and document (an image manifest, or a list/index)."""
        resp = self._ok(self.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES}),
                        f"manifest {repo}:{ref}")
        try:
            doc = resp.json()
        except ValueError:
            raise RegistryError(f"manifest {repo}:{ref}: not JSON") from None
        return resp.headers.get("Docker-Content-Digest", ""), doc if isinstance(doc, dict) else {}

    def image_size(self, repo: str, ref: str) -> tuple[str, int | None, int]:
        """(digest, bytes, platforms): the config and layer sizes the manifest declares, summed (over
        every platform of a list/index, each counted once); None when the manifest gives no sizes."""
        digest, doc = self.manifest(repo, ref)
        children = manifest_children(doc)
        if not children:
            return digest, manifest_size(doc), 1
        seen, total = set(), 0
        for child in children[:64]:
            _, sub = self.manifest(repo, child)
            for d, size in manifest_blobs(sub):
                if d not in seen:
                    seen.add(d)
                    total += size
        return digest, total, len(children)


def manifest_blobs(doc: dict) -> list[tuple[str, int]]:
    """(digest, size) of the config and every layer an image manifest (schema 2 or OCI) names."""
    blobs = [doc.get("config") or {}] + list(doc.get("layers") or [])
    return [(b.get("digest", ""), int(b.get("size") or 0)) for b in blobs if isinstance(b, dict) and b.get("digest")]


def manifest_size(doc: dict) -> int | None:
    """Config + layers of an image manifest, from the manifest itself; None for schema 1 (no sizes)."""
    if "layers" not in doc and "config" not in doc:
        return None
    return sum(size for _, size in manifest_blobs(doc))


def manifest_children(doc: dict) -> list[str]:
    """The digests a manifest list / OCI index points to ([] for an image manifest)."""
    return [m["digest"] for m in doc.get("manifests") or [] if isinstance(m, dict) and m.get("digest")]


def _short(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"\(Caused by (\w+)\((.*)\)\)", text)
    return (m.group(2)[:200] if m else text[:200])
