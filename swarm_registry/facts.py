"""Facts: what a host is, read by one command, parsed by pure functions.

Each fact is a shell function in files/scripts/facts/NAME.sh (its one reader) and a parser
here (its one parser). `command(settings, names)` runs the named facts on a host in one
command; step scripts that change something print the same facts again afterwards with the
same functions, and their output is parsed here too. Nothing here talks to a host.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from . import commands
from .settings import Settings

COMPOSE_NAME = "docker-compose.yml"
SPEC_LABEL = "io.swarm-registry.spec"

HOST_FACTS = ("docker", "trust", "store", "login", "data")  # every node (data: a registry moved away leaves it)
REGISTRY_FACTS = ("registry_node",)                     # the registry node
MANAGER_FACTS = ("manager", "tasks")                    # the manager that does swarm-wide work


@dataclass(frozen=True)
class Task:
    id: str
    node_id: str
    desired: str
    state: str
    error: str
    spec: str  # the io.swarm-registry.spec label of its container

    @property
    def running(self) -> bool:
        return self.desired == "running" and self.state == "running"


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    status: str
    availability: str


@dataclass
class Facts:
    docker_up: bool = False
    swarm_state: str = ""
    control: bool = False
    docker_version: str = ""  # the daemon's ServerVersion
    # trust
    trust: str = ""  # "sha256:filemode:dirmode" of certs.d/ENDPOINT/ca.crt
    trust_strays: str = ""
    trust_previous: str = ""  # "sha256:filemode" of certs.d/ENDPOINT/ca-previous.crt (rotate-ca), "" when none
    # credential store and login
    pass_installed: bool = False
    helper_sha: str = ""   # sha256 of docker-credential-pass, read only when it is RELEASE_BIN and pinned
    helper_path: str = ""  # where it is (first on PATH); "" when absent
    gpg_id: bool = False
    list_rc: int | None = None
    docker_config: bytes | None = None  # ~/.docker/config.json as read (None: absent)
    login_user: str = ""
    login_sha: str = ""
    # registry node
    image_id: str = ""
    data_bytes: int | None = None  # du -sb of registry.data_dir (None: no such directory)
    data_files: bool = False       # data_dir holds at least one file
    registry_image: str = ""       # the image of the registry's task running on this node (status)
    registry_version: str = ""     # what its registry binary answers to --version (status)
    data_dir_mode: str = ""
    auth_dir_mode: str = ""
    htpasswd: str = ""  # "sha256:mode"
    compose: str = ""
    bucket: str = ""  # storage s3: the bucket's HTTP status as the first registry node sees it ("" not read)
    # manager
    manager_error: str = ""  # what docker said when the swarm did not answer this manager (then nothing else)
    nodes: list[Node] = field(default_factory=list)
    node_labels: dict[str, dict] = field(default_factory=dict)  # hostname -> labels
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (name, created)
    service: dict | None = None  # the service's Spec, as docker service inspect gives it
    tasks: list[Task] = field(default_factory=list)

    def node_id(self, hostname: str) -> str:
        return next((n.id for n in self.nodes if n.hostname == hostname), "")

    def hostname(self, node_id: str) -> str:
        return next((n.hostname for n in self.nodes if n.id == node_id), node_id[:12])


def compose_path(settings: Settings) -> str:
    return f"{settings.registry.config_dir}/{COMPOSE_NAME}"


RELEASE_BIN = "/usr/local/bin/docker-credential-pass"  # where credential_helper.source: release installs it


def helper_entry_dir(endpoint: str) -> str:
    """Where docker-credential-pass keeps `endpoint`'s credential, under pass's store: its folder, then the
    server URL base64url-encoded (docker-credential-helpers' pass/pass.go; slashes would make folders)."""
    return "docker-credential-helpers/" + base64.urlsafe_b64encode(endpoint.encode("utf-8")).decode("ascii")


def script_values(settings: Settings) -> dict[str, str]:
    """The shell variables every fact function may read."""
    r, s3 = settings.registry, settings.storage.s3
    pin = RELEASE_BIN if settings.credential_helper.source == "release" else ""
    values = {"endpoint": r.endpoint, "cred_dir": helper_entry_dir(r.endpoint), "helper_pin": pin, "image": r.image,
              "data_dir": r.data_dir, "auth_dir": r.auth_dir, "compose": compose_path(settings),
              "service": r.service, "stack": r.stack}
    if s3 is not None:
        values.update(s3_endpoint=s3.endpoint, s3_region=s3.region, s3_bucket=s3.bucket)
    return values


def command(settings: Settings, names: tuple[str, ...] | list[str], stdin: bytes | None = None) -> commands.Command:
    """One command that prints the facts `names` (see files/scripts/facts/); `stdin`: secret input a fact
    reads (the S3 keys of the bucket fact)."""
    return commands.script("facts", {"facts": " ".join(names), **script_values(settings)}, timeout=60,
                           stdin=stdin, secret=stdin is not None)


def docker_line(info: bytes) -> str | None:
    """The `docker` fact's line (as files/scripts/facts/docker.sh prints it with `docker info --format`) from
    the engine's /info JSON; None when the JSON lacks what the fact needs (then the command reads it)."""
    try:
        doc = json.loads(info)
        swarm = doc["Swarm"]
        state, control, version = swarm["LocalNodeState"], swarm.get("ControlAvailable", False), doc["ServerVersion"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(state, str) or not state or not isinstance(version, str) or not isinstance(control, bool):
        return None
    return f"docker={state}|{'true' if control else 'false'}|{version}"


# what a manager's docker says while the swarm has no leader: managers are electing one (a leader was lost:
# the first call waits on it, "context deadline exceeded", ~20 s here), or too few managers are online
LEADERLESS = ("does not have a leader", "context deadline exceeded", "DeadlineExceeded")


def leaderless(f: Facts) -> bool:
    """The swarm did not answer this manager for want of a leader (an election may end it)."""
    return any(s in f.manager_error for s in LEADERLESS)


def names_for(host: str, *, manager: str | None, registry: "str | tuple[str, ...] | None",
              base: tuple[str, ...] = HOST_FACTS) -> tuple[str, ...]:
    """`registry`: the registry node, or every registry node (registry.nodes)."""
    registries = (registry,) if isinstance(registry, str) else (registry or ())
    return base + (REGISTRY_FACTS if host in registries else ()) + (MANAGER_FACTS if host == manager else ())


def _b64(value: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


_TEXT = {"trust": "trust", "trust_strays": "trust_strays", "helper": "helper_sha", "helper_path": "helper_path",
         "login_user": "login_user", "login_sha": "login_sha", "image": "image_id", "data_dir": "data_dir_mode",
         "auth_dir": "auth_dir_mode", "htpasswd": "htpasswd", "compose": "compose",
         "registry_image": "registry_image", "registry_version": "registry_version",
         "trust_previous": "trust_previous", "bucket": "bucket",
         "manager_error": "manager_error"}  # key -> field, kept as text
_FLAGS = {"pass": "pass_installed", "gpg_id": "gpg_id", "data_files": "data_files"}  # key -> field, "1" is true
_NUMBERS = {"list": "list_rc", "data_bytes": "data_bytes"}  # key -> field, None unless digits


def parse(stdout: str) -> Facts:
    f = Facts()
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key in _TEXT:
            setattr(f, _TEXT[key], value.strip() if key == "trust_strays" else value)
        elif key in _FLAGS:
            setattr(f, _FLAGS[key], value == "1")
        elif key in _NUMBERS:
            setattr(f, _NUMBERS[key], int(value) if value.isdigit() else None)
        elif key == "docker":
            state, _, rest = value.partition("|")
            control, _, version = rest.partition("|")
            if value != "down" and state:  # docker info exits 0 with "|false|" when the daemon is down
                f.docker_up = True
                f.swarm_state, f.control, f.docker_version = state, control == "true", version
        elif key == "dconfig":
            f.docker_config = _b64(value)
        elif key == "node":
            parts = value.split("|")
            if len(parts) >= 4:
                f.nodes.append(Node(*parts[:4]))
        elif key == "nodelabels":
            host, _, labels = value.partition("|")
            try:
                f.node_labels[host] = json.loads(labels) or {}
            except json.JSONDecodeError:
                f.node_labels[host] = {}
        elif key == "secret":
            name, _, created = value.partition("|")
            f.secrets.append((name, created))
        elif key == "service":
            raw = _b64(value)
            try:
                spec = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                spec = None
            f.service = spec if isinstance(spec, dict) else None
        elif key == "task":
            f.tasks.append(parse_task(value))
    return f


def parse_task(value: str) -> Task:
    parts = (value.split("|") + [""] * 6)[:6]
    return Task(*parts)


def parse_tasks(stdout: str) -> list[Task]:
    return [parse_task(line[5:]) for line in stdout.splitlines() if line.startswith("task=")]


# --- the service as the swarm runs it ----------------------------------------------------------


def service_view(spec: dict | None) -> dict | None:
    """The parts of a service spec that `render` controls, in a comparable form (None: no service)."""
    if not spec:
        return None
    tt = spec.get("TaskTemplate") or {}
    cs = tt.get("ContainerSpec") or {}
    ports = ((spec.get("EndpointSpec") or {}).get("Ports")) or []
    return {
        "image": (cs.get("Image") or "").split("@", 1)[0],
        "env": sorted(cs.get("Env") or []),
        "labels": {k: v for k, v in sorted((cs.get("Labels") or {}).items()) if k.startswith("io.swarm-registry.")},
        "secrets": sorted(f"{s.get('SecretName')}>{(s.get('File') or {}).get('Name')}" for s in cs.get("Secrets") or []),
        "mounts": sorted(f"{m.get('Source')}>{m.get('Target')}{':ro' if m.get('ReadOnly') else ''}"
                         for m in cs.get("Mounts") or []),
        "constraints": sorted(((tt.get("Placement") or {}).get("Constraints")) or []),
        "ports": sorted(f"{p.get('PublishedPort')}>{p.get('TargetPort')}/{p.get('PublishMode')}" for p in ports),
        "replicas": ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas"),
        "max_per_node": ((tt.get("Placement") or {}).get("MaxReplicas")) or 0,
        "spec_label": (spec.get("Labels") or {}).get(SPEC_LABEL, ""),
    }
