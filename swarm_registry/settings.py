"""Settings: load one YAML file, merge it over config/defaults.yaml, validate everything once.

The settings file is `config/cluster.yaml`, or the path in env SWARM_REGISTRY_CONFIG.
Every problem becomes one line naming the key, the value and what is accepted;
`SettingsError` carries them all and means exit status 2. Nothing remote happens
before a `Settings` object exists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from . import validators as v

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "defaults.yaml"
DEFAULT_SETTINGS_FILE = Path("config") / "cluster.yaml"
ENV_VAR = "SWARM_REGISTRY_CONFIG"
GROUPS = ("nodes", "managers", "workers", "registry")
ROLES = ("manager", "worker")
EXIT_BAD_INPUT = 2
MAX_REGISTRY_HOST = 52  # "<host>.crt-<8 hex>" must fit swarmkit's 64-character secret names
# Never a registry directory: the data dir may be deleted with --purge-data, and both are bind-mounted.
SYSTEM_DIRS = frozenset({"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc",
                         "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
                         "/usr/local", "/usr/sbin", "/var", "/var/lib", "/var/lib/docker", "/var/log", "/var/run"})


class SettingsError(Exception):
    """Invalid settings or arguments: one line per problem; exit status 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str
    port: int
    roles: tuple[str, ...]
    node_name: str
    proxy_jump: str = ""              # [user@]host[:port] of a bastion ("" = ssh.proxy_jump)
    explicit: frozenset = frozenset()  # keys the settings file set for this host (the rest are defaults)

    @property
    def is_manager(self) -> bool:
        return "manager" in self.roles


def endpoint_of(host: str, port: int) -> str:
    """HOST:PORT, as docker, certs.d and HTTP's Host header name it ([ADDR]:PORT for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Registry:
    host: str
    port: int
    node: str
    image: str
    stack: str
    realm: str
    data_dir: str
    config_dir: str
    label: str
    publish_mode: str
    preload_image: bool
    resolve_image: str
    login_user: str
    secrets_keep: int
    delete_enabled: bool
    converge_timeout: int
    nodes: tuple[str, ...] = ()  # every node that runs a replica (registry.nodes); nodes[0] == node

    @property
    def endpoint(self) -> str:
        """HOST:PORT, as docker and certs.d name the registry ([ADDR]:PORT for an IPv6 address)."""
        return endpoint_of(self.host, self.port)

    @property
    def service(self) -> str:
        return f"{self.stack}_registry"

    @property
    def auth_dir(self) -> str:
        return f"{self.config_dir}/auth"


@dataclass(frozen=True)
class S3:
    endpoint: str        # the S3 API as the registry nodes reach it (http[s]://HOST[:PORT])
    region: str
    bucket: str
    root_directory: str  # "/" or a prefix inside the bucket


@dataclass(frozen=True)
class Storage:
    driver: str              # filesystem | s3
    s3: S3 | None = None     # with driver s3

    @property
    def shared(self) -> bool:
        """Several replicas can serve the same data (not a node's disk)."""
        return self.driver == "s3"


@dataclass(frozen=True)
class Cert:
    mode: str
    key_type: str
    days: int
    renew_before_days: int
    alt_names: tuple[str, ...]


FORWARD_REGISTRY = ("auto", "always", "never")  # auto: always when the registry node is behind a proxy jump


@dataclass(frozen=True)
class SSH:
    identity_file: Path
    known_hosts: Path
    accept_new_host_keys: bool
    parallel: int
    connect_timeout: int
    sudo: bool
    config_file: Path | None = None  # an OpenSSH client config honoured (Host aliases, HostName, User, ...)
    proxy_jump: str = ""             # [user@]host[:port] of a bastion, like OpenSSH's ProxyJump
    agent: bool = False              # keys from ssh-agent (identity_file then optional)
    forward_registry: str = "auto"   # the registry's API over SSH (like ssh -L): auto|always|never


@dataclass(frozen=True)
class CredentialHelper:
    source: str
    version: str
    url: str
    sha256: str


@dataclass(frozen=True)
class Settings:
    registry: Registry
    cert: Cert
    users: tuple[str, ...]
    hosts: dict[str, Host]
    ssh: SSH
    credential_helper: CredentialHelper
    state_dir: Path
    storage: Storage = Storage("filesystem")
    source: str = field(default="<defaults>", compare=False)

    @property
    def managers(self) -> list[str]:
        """The managers' inventory names, in inventory order (the first one that answers runs swarm-wide
        commands)."""
        return [n for n, h in self.hosts.items() if h.is_manager]

    @property
    def groups(self) -> dict[str, list[str]]:
        """Inventory groups derived from roles; `registry` is the host named by registry.node."""
        return {
            "nodes": list(self.hosts),
            "managers": self.managers,
            "workers": [n for n, h in self.hosts.items() if "worker" in h.roles],
            "registry": list(self.registry.nodes),
        }

    @property
    def registry_host(self) -> Host:
        return self.hosts[self.registry.node]

    @property
    def forwards_registry(self) -> bool:
        """The registry's API is reached over SSH (ssh.forward_registry; auto: the registry node is behind
        a proxy jump, where this machine has no route of its own)."""
        mode = self.ssh.forward_registry
        return mode == "always" or (mode == "auto" and bool(self.registry_host.proxy_jump or self.ssh.proxy_jump))

    @property
    def may_forward_registry(self) -> bool:
        """Forwarded, or `auto` with an OpenSSH client config whose ProxyJump for the registry node only the
        connection can tell (remote/executor.py decides once it is open)."""
        return self.forwards_registry or (self.ssh.forward_registry == "auto" and self.ssh.config_file is not None)

    @property
    def manager(self) -> Host:
        """The first manager: where swarm-wide commands run."""
        return next(h for h in self.hosts.values() if h.is_manager)

    def select(self, patterns: list[str] | None, default_group: str = "nodes") -> list[str]:
        """Expand -H values: a group name expands to its hosts; other names must be inventory keys."""
        groups = self.groups
        names: list[str] = []
        problems = []
        for p in patterns or [default_group]:
            for item in filter(None, (s.strip() for s in p.split(","))):
                if item in groups:
                    names.extend(groups[item])
                elif item in self.hosts:
                    names.append(item)
                else:
                    problems.append(
                        f"hosts: {item!r} is neither an inventory host nor a group; "
                        f"use one of {', '.join(list(self.hosts) + list(GROUPS))}"
                    )
        if problems:
            raise SettingsError(problems)
        return list(dict.fromkeys(names))


# --- loading -------------------------------------------------------------------------------

SYSTEM_TREES = ("/proc", "/sys", "/dev", "/boot", "/etc", "/usr", "/var/lib/docker")


def _overlap(a: str, b: str) -> bool:
    """True when one directory is the other or holds it."""
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def settings_path(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get(ENV_VAR) or DEFAULT_SETTINGS_FILE)


# libyaml's safe loader when PyYAML was built with it (its wheels are): the same documents, ~8 ms less per
# run than the pure-Python one on config/defaults.yaml plus a settings file (bench/HISTORY.md).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = " (copy config/cluster.example.yaml to config/cluster.yaml, or set SWARM_REGISTRY_CONFIG)"
        raise SettingsError([f"{what}: {str(path)!r} does not exist{hint if what == 'settings file' else ''}"])
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"{what}: {str(path)!r} cannot be read: {exc.__class__.__name__}: {exc}"])
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError([f"{what}: {str(path)!r} is not valid YAML ({problem}{where})"])


def load_defaults() -> dict:
    data = _read_yaml(DEFAULTS_FILE, "defaults file")
    assert isinstance(data, dict), "config/defaults.yaml must be a mapping"
    return data


def load(path: Path | str | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate the settings file (default: env SWARM_REGISTRY_CONFIG or config/cluster.yaml)."""
    path = Path(path) if path is not None else settings_path(env)
    data = _read_yaml(path, "settings file")
    if data is None:
        data = {}
    return from_mapping(data, source=str(path))


def from_mapping(data: Any, source: str = "<mapping>") -> Settings:
    """Merge `data` over the defaults and validate; raise SettingsError listing every problem."""
    if not isinstance(data, dict):
        raise SettingsError([f"settings file {source!r}: the top level must be a mapping of keys, got {_kind(data)}"])
    return _Validator(load_defaults(), data, source).build()


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


Check = Callable[[Any], Any]

_REGISTRY: dict[str, Check] = {
    "host": v.host_or_ip,
    "port": v.port,
    "node": v.name,
    "image": v.image_ref,
    "stack": v.name,
    "realm": v.text,
    "data_dir": v.absolute_path,
    "config_dir": v.absolute_path,
    "label": v.name,
    "publish_mode": lambda x: v.one_of(x, ("host", "ingress")),
    "preload_image": v.boolean,
    "resolve_image": lambda x: v.one_of(x, ("always", "changed", "never")),
    "login_user": v.registry_user,
    "secrets_keep": lambda x: v.non_negative_int(x, 100),
    "delete_enabled": v.boolean,
    "converge_timeout": lambda x: v.positive_int(x, 3600),
    "nodes": lambda x: tuple(_list_of(x, v.name)),
}
_STORAGE: dict[str, Check] = {
    "driver": lambda x: v.one_of(x, ("filesystem", "s3")),
    "s3": lambda x: x,  # checked by _Validator.storage
}
_S3: dict[str, Check] = {
    "endpoint": v.http_url,
    "region": lambda x: _match(x, r"[a-z0-9][a-z0-9-]{0,40}", "a region name such as us-east-1"),
    "bucket": v.bucket_name,
    "root_directory": v.absolute_path,
}
_CERT: dict[str, Check] = {
    "mode": lambda x: v.one_of(x, ("ca", "self-signed")),
    "key_type": lambda x: v.one_of(x, ("rsa4096", "rsa2048", "ecdsa-p256")),
    "days": lambda x: v.positive_int(x, 3650),
    "renew_before_days": lambda x: v.non_negative_int(x, 3650),
    "alt_names": lambda x: tuple(_list_of(x, v.host_or_ip)),
}
_SSH: dict[str, Check] = {
    "identity_file": lambda x: _local_path(x),
    "known_hosts": lambda x: _local_path(x),
    "accept_new_host_keys": v.boolean,
    "parallel": lambda x: v.positive_int(x, 256),
    "connect_timeout": lambda x: v.positive_int(x, 300),
    "sudo": v.boolean,
    "config_file": lambda x: _local_path(x) if x else None,
    "proxy_jump": lambda x: v.jump(x) if x else "",
    "agent": v.boolean,
    "forward_registry": lambda x: v.one_of(x, FORWARD_REGISTRY),
}
_CREDENTIAL_HELPER: dict[str, Check] = {
    "source": lambda x: v.one_of(x, ("distro", "release")),
    "version": lambda x: _match(x, r"v?[0-9]+\.[0-9]+\.[0-9]+", "a version such as v0.6.0"),
    "url": lambda x: _match(x, r"https?://[^\s\"'`$;&|<>\\]+", "an http(s) URL ({version} is replaced)"),
    "sha256": v.sha256_hex,
}
_HOST: dict[str, Check] = {
    "address": v.host_or_ip,
    "user": v.unix_user,
    "port": v.port,
    "roles": lambda x: tuple(_list_of(x, lambda r: v.one_of(r, ROLES), min_items=1)),
    "node_name": v.name,
    "proxy_jump": lambda x: v.jump(x) if x else "",
}


def _list_of(value: Any, check: Check, min_items: int = 0) -> list:
    if not isinstance(value, list):
        raise v.Invalid("a list")
    if len(value) < min_items:
        raise v.Invalid(f"a list of at least {min_items} item(s)")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(check(item))
        except v.Invalid as exc:
            raise v.Invalid(f"item {i} ({item!r}) must be {exc}") from None
    return out


def _match(value: Any, pattern: str, accepted: str) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise v.Invalid(accepted)
    return value


def _local_path(value: Any) -> Path:
    if not isinstance(value, str) or not value or any(ord(c) < 32 for c in value):
        raise v.Invalid("a path on the control machine")
    return Path(os.path.expanduser(value))


class _Validator:
    def __init__(self, defaults: dict, data: dict, source: str):
        self.defaults, self.data, self.source = defaults, data, source
        self.problems: list[str] = []

    def problem(self, key: str, value: Any, accepted: str) -> None:
        self.problems.append(f"settings {key} = {_show(value)}: must be {accepted} ({self.source})")

    def unknown(self, key: str, known) -> None:
        self.problems.append(f"settings {key}: unknown key; known keys here: {', '.join(known)} ({self.source})")

    def section(self, key: str, schema: dict[str, Check]) -> dict[str, Any]:
        given = self.data.get(key, {})
        if given is None:
            given = {}
        if not isinstance(given, dict):
            self.problem(key, given, f"a mapping with keys {', '.join(schema)}")
            given = {}
        return self.fields(key, {**self.defaults[key], **given}, schema, given)

    def fields(self, prefix: str, merged: dict, schema: dict[str, Check], given: dict) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in given:
            if k not in schema:
                self.unknown(f"{prefix}.{k}", schema)
        for k, check in schema.items():
            if k not in merged:
                self.problem(f"{prefix}.{k}", None, "set (required)")
                continue
            try:
                out[k] = check(merged[k])
            except v.Invalid as exc:
                self.problem(f"{prefix}.{k}", merged[k], str(exc))
        return out

    def build(self) -> Settings:
        known = {"registry", "cert", "users", "hosts", "ssh", "credential_helper", "state_dir", "host_defaults",
                 "storage"}
        for k in self.data:
            if k not in known:
                self.unknown(str(k), sorted(known))
        registry = self.section("registry", _REGISTRY)
        cert = self.section("cert", _CERT)
        ssh = self.section("ssh", _SSH)
        helper = self.section("credential_helper", _CREDENTIAL_HELPER)
        users = self.users()
        hosts = self.hosts()
        state_dir = self.value("state_dir", _local_path)
        storage = self.storage()
        self.registry_nodes(registry, storage)
        self.cross_checks(registry, cert, users, hosts, helper)
        if self.problems:
            raise SettingsError(self.problems)
        return Settings(
            registry=Registry(**registry),
            cert=Cert(**cert),
            users=tuple(users),
            hosts=hosts,
            ssh=SSH(**ssh),
            credential_helper=CredentialHelper(**helper),
            state_dir=state_dir,
            storage=storage,
            source=self.source,
        )

    def storage(self) -> Storage:
        section = self.section("storage", _STORAGE)
        driver = section.get("driver", "filesystem")
        raw = section.get("s3")
        if driver != "s3":
            if raw:
                self.problem("storage.s3", raw, "left out unless storage.driver is s3")
            return Storage(driver)
        if not isinstance(raw, dict):
            self.problem("storage.s3", raw, "a mapping with keys endpoint, region, bucket, root_directory "
                                            "when storage.driver is s3")
            return Storage(driver)
        fields = self.fields("storage.s3", {"region": "us-east-1", "root_directory": "/", **raw}, _S3, raw)
        if len(fields) != len(_S3):
            return Storage(driver)
        return Storage(driver, S3(**fields))

    def registry_nodes(self, registry: dict, storage: Storage) -> None:
        """registry.nodes given: registry.node is its first; else nodes is (node,). Several need shared storage."""
        nodes = registry.get("nodes")
        if nodes is None:
            return
        given = (self.data.get("registry") or {}) if isinstance(self.data.get("registry"), dict) else {}
        if not nodes:
            registry["nodes"] = (registry.get("node"),) if registry.get("node") else ()
            return
        dupes = sorted({n for n in nodes if nodes.count(n) > 1})
        if dupes:
            self.problem("registry.nodes", list(nodes), f"a list without duplicates (repeated: {', '.join(dupes)})")
        if "node" in given and given["node"] != nodes[0]:
            self.problem("registry.node", given["node"], f"left out, or the first of registry.nodes ({nodes[0]})")
        registry["node"] = nodes[0]
        if len(nodes) > 1 and not storage.shared:
            self.problem("registry.nodes", list(nodes), "one node while storage.driver is filesystem: each "
                                                        "replica would keep its own data on its own disk; set "
                                                        "storage.driver: s3 (shared storage) or list one node")

    def value(self, key: str, check: Check) -> Any:
        raw = self.data.get(key, self.defaults[key])
        try:
            return check(raw)
        except v.Invalid as exc:
            self.problem(key, raw, str(exc))
            return None

    def users(self) -> list[str]:
        raw = self.data.get("users", self.defaults["users"])
        try:
            users = _list_of(raw, v.registry_user, min_items=1)
        except v.Invalid as exc:
            self.problem("users", raw, str(exc))
            return []
        dupes = sorted({u for u in users if users.count(u) > 1})
        if dupes:
            self.problem("users", raw, f"a list without duplicates (repeated: {', '.join(dupes)})")
        return users

    def hosts(self) -> dict[str, Host]:
        raw = self.data.get("hosts")
        given_defaults = self.data.get("host_defaults") or {}
        if not isinstance(given_defaults, dict):
            self.problem("host_defaults", given_defaults, "a mapping with keys user, port, roles")
            given_defaults = {}
        host_defaults = {**self.defaults.get("host_defaults", {}), **given_defaults}
        if not isinstance(raw, dict) or not raw:
            self.problem("hosts", raw, "a non-empty mapping of inventory names to {address, user, port, roles}")
            return {}
        for k in host_defaults:
            if k not in _HOST or k in ("address", "node_name"):
                self.problem(f"host_defaults.{k}", host_defaults[k], "one of user, port, roles, proxy_jump")
        hosts: dict[str, Host] = {}
        for name, spec in raw.items():
            key = f"hosts.{name}"
            try:
                v.name(name)
                if name in GROUPS:
                    raise v.Invalid(f"a name that is not a group name ({', '.join(GROUPS)})")
            except v.Invalid as exc:
                self.problem(key, name, f"an inventory name: {exc}")
                continue
            if not isinstance(spec, dict):
                self.problem(key, spec, "a mapping with keys " + ", ".join(_HOST))
                continue
            merged = {**host_defaults, "node_name": name, **spec}
            before = len(self.problems)
            fields = self.fields(key, merged, _HOST, spec)
            if len(self.problems) == before:
                hosts[name] = Host(name=name, **fields, explicit=frozenset(spec) | frozenset(given_defaults))
        seen: dict[tuple[str, int], str] = {}
        for h in hosts.values():
            other = seen.setdefault((h.address, h.port), h.name)
            if other != h.name:
                self.problem(f"hosts.{h.name}.address", h.address,
                             f"unique (hosts {other} and {h.name} both use {h.address}:{h.port})")
        return hosts

    def cross_checks(self, registry: dict, cert: dict, users: list, hosts: dict, helper: dict) -> None:
        node = registry.get("node")
        if node and hosts and node not in hosts:
            self.problem("registry.node", node, f"an inventory host ({', '.join(hosts)})")
        for n in registry.get("nodes") or ():
            if hosts and n not in hosts and n != node:
                self.problem("registry.nodes", n, f"an inventory host ({', '.join(hosts)})")
        login = registry.get("login_user")
        if login and users and login not in users:
            self.problem("registry.login_user", login, f"one of users ({', '.join(users)})")
        if hosts and not any(h.is_manager for h in hosts.values()):
            self.problem("hosts", sorted(hosts), "an inventory with at least one host with roles: [manager]")
        days, renew = cert.get("days"), cert.get("renew_before_days")
        if days is not None and renew is not None and renew >= days:
            self.problem("cert.renew_before_days", renew, f"less than cert.days ({days})")
        if helper.get("source") == "release" and not helper.get("sha256"):
            self.problem("credential_helper.sha256", "", "the release tarball's sha256 when source is release")
        host = registry.get("host")
        if host and len(host) > MAX_REGISTRY_HOST:
            self.problem("registry.host", host, f"at most {MAX_REGISTRY_HOST} characters (swarm secret names "
                                                f"<host>.crt-<sha8> are limited to 64)")
        cfg, data = registry.get("config_dir"), registry.get("data_dir")
        refused = False
        for key, path in (("registry.data_dir", data), ("registry.config_dir", cfg)):
            if path and (path in SYSTEM_DIRS or path == "/" or any(_overlap(path, d) for d in SYSTEM_TREES)):
                refused = True
                self.problem(key, path, "a directory of its own, not /, a system directory or "
                                        f"anything under {', '.join(SYSTEM_TREES)} (e.g. /srv/registry)")
        if cfg and data and not refused and _overlap(cfg, data):
            self.problem("registry.data_dir", data, f"a directory apart from registry.config_dir ({cfg})")
