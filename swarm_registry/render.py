"""Rendering of the stack (compose) file, as data dumped with PyYAML.

The service is named `registry`, as in the recipe, so the swarm service is
`<stack>_registry`. Its TLS files come from swarm secrets whose names carry a content
hash (`<host>.crt-<sha8>`), mounted at fixed targets, so a new certificate changes the
secret names and nothing else. The environment is a mapping: the recipe's list form
`REGISTRY_AUTH_HTPASSWD_REALM="Onsen Registry"` would keep the quotes in the value.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import yaml

from .settings import Settings

CONTAINER_PORT = 5000
CERT_TARGET = "registry.crt"
KEY_TARGET = "registry.key"
SPEC_LABEL = "io.swarm-registry.spec"          # sha256 of the rendered spec: its identity on the swarm
HTPASSWD_LABEL = "io.swarm-registry.htpasswd"  # sha256 of htpasswd: a new one rolls the task
# Read-only (maintenance) mode: docker-registry 2.8 reads storage.maintenance.readonly.enabled; the env form
# must be the whole mapping (REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true makes 2.8 panic at start).
READONLY_ENV = "REGISTRY_STORAGE_MAINTENANCE_READONLY"
READONLY_VALUE = '{"enabled": true}'
CONFIG_TARGET = "/etc/docker/registry/config.yml"  # the image's own config path: replaced by our secret (s3)
DRAIN_TIMEOUT = "5s"
HEADER = "# Rendered by swarm_registry from the settings; changes here are overwritten on the next deploy.\n"


@dataclass(frozen=True)
class SecretNames:
    cert: str
    key: str
    config: str = ""  # the registry's config file (storage s3: keys, shared HTTP secret), "" with filesystem


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def secret_name(base: str, data: bytes) -> str:
    """`<base>-<first 8 hex of sha256>`: immutable swarm secrets get a new name for new content."""
    return f"{base}-{sha256(data)[:8]}"


def secret_names(settings: Settings, cert_pem: bytes, key_pem: bytes, config: bytes | None = None) -> SecretNames:
    host = settings.registry.host.replace(":", "-")  # an IPv6 address: swarm names take no ':'
    return SecretNames(cert=secret_name(f"{host}.crt", cert_pem), key=secret_name(f"{host}.key", key_pem),
                       config=secret_name(f"{host}.yml", config) if config is not None else "")


def registry_config(settings: Settings, access_key: str, secret_key: str, http_secret: str) -> bytes:
    """The registry's whole config file for storage s3 (it replaces the image's, which names the filesystem
    driver: both would make the registry panic). It holds the S3 keys and the HTTP secret every replica
    shares, so it is delivered as a content-hashed swarm secret, never as environment. Blob redirects are
    off: clients fetch blobs through the registry and never need to reach the S3 endpoint."""
    s3 = settings.storage.s3
    assert s3 is not None
    params = {"accesskey": access_key, "secretkey": secret_key, "region": s3.region, "regionendpoint": s3.endpoint,
              "bucket": s3.bucket, "secure": s3.endpoint.startswith("https://"), "v4auth": True,
              "chunksize": 5 * 1024 * 1024}
    if s3.root_directory != "/":
        params["rootdirectory"] = s3.root_directory
    doc = {
        "version": 0.1,
        "log": {"fields": {"service": "registry"}},
        "storage": {"cache": {"blobdescriptor": "inmemory"}, "s3": params, "redirect": {"disable": True}},
        "http": {"addr": f":{CONTAINER_PORT}", "secret": http_secret,
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return dump(doc)


def stack(settings: Settings, secrets: SecretNames, htpasswd_sha: str = "", readonly: bool = False) -> dict:
    """The compose document as a dict (what `render_stack` dumps). The service and its container
    carry the spec's sha256 (SPEC_LABEL), so what runs can be told apart from what is wanted by
    reading the swarm; the container also carries htpasswd's sha256, so a new htpasswd (which
    the registry reads only at start) makes a new spec and a new task. `readonly`: the same service in
    read-only mode (gc, backup): pushes refused, pulls served; a different spec, so setup undoes it."""
    r = settings.registry
    environment = {
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": r.realm,
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
        "REGISTRY_HTTP_ADDR": f"0.0.0.0:{CONTAINER_PORT}",
        "REGISTRY_HTTP_TLS_CERTIFICATE": f"/run/secrets/{CERT_TARGET}",
        "REGISTRY_HTTP_TLS_KEY": f"/run/secrets/{KEY_TARGET}",
        "REGISTRY_HTTP_TLS_MINIMUMTLS": "tls1.2",  # registry 2.8 otherwise accepts TLS 1.0 and 1.1
        # on SIGTERM (a rolling update, rotate-ca) finish the requests in flight instead of cutting them
        # (EOF in the client); within the swarm's 10 s stop grace period
        "REGISTRY_HTTP_DRAINTIMEOUT": DRAIN_TIMEOUT,
    }
    if r.delete_enabled:
        environment["REGISTRY_STORAGE_DELETE_ENABLED"] = "true"
    if readonly:
        environment[READONLY_ENV] = READONLY_VALUE
    shared = settings.storage.shared
    volumes = [{"type": "bind", "source": r.auth_dir, "target": "/auth", "read_only": True}]
    if not shared:
        volumes.insert(0, {"type": "bind", "source": r.data_dir, "target": "/var/lib/registry"})
    tls = [{"source": secrets.cert, "target": CERT_TARGET, "mode": 0o444},
           {"source": secrets.key, "target": KEY_TARGET, "mode": 0o400}]
    if secrets.config:
        tls.append({"source": secrets.config, "target": CONFIG_TARGET, "mode": 0o400})
    replicas = len(r.nodes) or 1
    placement: dict = {"constraints": [f"node.labels.{r.label} == true"]}
    if replicas > 1:
        placement["max_replicas_per_node"] = 1  # one replica per registry node (compose 3.8)
    service = {
        "image": r.image,
        "environment": environment,
        "secrets": tls,
        "ports": [{"target": CONTAINER_PORT, "published": r.port, "protocol": "tcp", "mode": r.publish_mode}],
        "volumes": volumes,
        "deploy": {
            "replicas": replicas,
            "placement": placement,
            "restart_policy": {"condition": "any"},
        },
    }
    service["labels"] = {HTPASSWD_LABEL: htpasswd_sha}
    doc = {
        "version": "3.8" if replicas > 1 else "3.7",
        "services": {"registry": service},
        "secrets": {t["source"]: {"external": True} for t in tls},
    }
    digest = spec_hash(doc)
    service["labels"][SPEC_LABEL] = digest
    service["deploy"]["labels"] = {SPEC_LABEL: digest}
    return doc


def spec_hash(doc: dict) -> str:
    return sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def wanted_view(doc: dict) -> dict:
    """What `facts.service_view` must read back from the swarm once `doc` is deployed."""
    svc = doc["services"]["registry"]
    return {
        "image": svc["image"].split("@", 1)[0],  # the swarm keeps a digest apart; the spec label covers it
        "env": sorted(f"{k}={v}" for k, v in svc["environment"].items()),
        "labels": dict(sorted(svc["labels"].items())),
        "secrets": sorted(f"{s['source']}>{s['target']}" for s in svc["secrets"]),
        "mounts": sorted(f"{m['source']}>{m['target']}{':ro' if m.get('read_only') else ''}" for m in svc["volumes"]),
        "constraints": sorted(svc["deploy"]["placement"]["constraints"]),
        "ports": sorted(f"{p['published']}>{p['target']}/{p['mode']}" for p in svc["ports"]),
        "replicas": svc["deploy"]["replicas"],
        "max_per_node": svc["deploy"]["placement"].get("max_replicas_per_node", 0),
        "spec_label": svc["deploy"]["labels"][SPEC_LABEL],
    }


def render_stack(settings: Settings, secrets: SecretNames, htpasswd_sha: str = "") -> bytes:
    return dump(stack(settings, secrets, htpasswd_sha))


def dump(doc: dict) -> bytes:
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return (HEADER + body).encode("utf-8")
