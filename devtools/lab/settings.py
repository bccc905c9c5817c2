"""Names, paths and fixed settings of the local lab cluster."""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError

# Project root: the directory holding swarm_registry/.
ROOT = Path(__file__).resolve().parent.parent.parent
FILES_DIR = ROOT / "files" / "lab"
LAB_DIR = ROOT / ".lab"
STATE_DIR = LAB_DIR / "state"
KEY_FILE = LAB_DIR / "id_ed25519"
KNOWN_HOSTS = LAB_DIR / "known_hosts"
CONFIG_FILE = ROOT / "config" / "lab.yaml"

ENTRYPOINT_FILE = FILES_DIR / "node-entrypoint.sh"
SSHD_CONF_FILE = FILES_DIR / "sshd-lab.conf"
REGISTRY_CONFIG_FILE = FILES_DIR / "registry-config.yml"

LABEL = "swarm-registry-lab"            # label key; value "1" on everything we create
LABEL_NODE = "swarm-registry-lab.node"  # node index on node containers
LABEL_NODES = "swarm-registry-lab.nodes"  # node count of the lab
LABEL_ROOT = "swarm-registry-lab.root"  # checkout that made the lab
LABEL_RECIPE = "swarm-registry-lab.recipe"  # recipe hash on images

NETWORK = "swarm-registry-lab"
DEFAULT_SUBNET = "172.31.250.0/24"
SUBNET_ENV = "SWARM_REGISTRY_LAB_SUBNET"

NODE_IMAGE_REPO = "swarm-registry-lab/node"
REGISTRY_IMAGE = "swarm-registry-lab/registry:2"

REGISTRY_HOST = "registry.swarm-lab.test"
REGISTRY_PORT = 5000
REGISTRY_USER = "lenain"
HOSTS_TAG = "# swarm-registry-lab"
HOSTS_FILE = Path("/etc/hosts")

DEFAULT_NODES = 3
MAX_NODES = 200

# Node container flags that work without --privileged on this kind of machine.
NODE_RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--init",
]


def container_name(i: int) -> str:
    return f"swarm-registry-lab-node{i}"


def hostname(i: int) -> str:
    return f"node{i}"


def volume_name(i: int) -> str:
    return f"swarm-registry-lab-node{i}-docker"


def subnet() -> ipaddress.IPv4Network:
    raw = os.environ.get(SUBNET_ENV, "").strip() or DEFAULT_SUBNET
    try:
        net = ipaddress.IPv4Network(raw, strict=True)
    except ValueError as exc:
        raise LabError(f"{SUBNET_ENV}={raw!r} is not an IPv4 network like {DEFAULT_SUBNET}: {exc}") from None
    if net.num_addresses < 16:
        raise LabError(f"{SUBNET_ENV}={raw!r} is too small: use a /27 or larger (e.g. {DEFAULT_SUBNET})")
    return net


def node_ip(i: int, net: ipaddress.IPv4Network | None = None) -> str:
    net = net or subnet()
    addr = net.network_address + 10 + i
    if addr not in net or addr == net.broadcast_address:
        raise LabError(f"node{i} does not fit in subnet {net}: use fewer nodes or a larger {SUBNET_ENV}")
    return str(addr)


# ---------------------------------------------------------------------------------------
# named lab instances
#
# name="" is the default lab above (its names and paths are unchanged). A named lab X has:
#   containers  swarm-registry-lab-X-node1.., swarm-registry-lab-X-bastion (bastion=True)
#   network     swarm-registry-lab-X, subnet 172.31.<k>.0/24 with k = 1 + sha256(X) mod 249
#               (the first /24 from there on, wrapping in 1..249, that no docker network and
#               no route of this machine uses; once made, the network's subnet is kept);
#               env SWARM_REGISTRY_LAB_SUBNET_<X upper, - as _> overrides
#   volumes     swarm-registry-lab-X-node<i>-docker
#   label       swarm-registry-lab=X on all of these (the default lab's objects carry =1)
#   files       config/lab-X.yaml; .lab/X/{id_ed25519,known_hosts,state/,sudo-password}
#   registry    registry.X.swarm-lab.test (control machine: /etc/hosts line tagged
#               "# swarm-registry-lab:X"; nodes: their own /etc/hosts)
# Addresses: node i is .(10+i), the bastion .6 (.5 is the Ceph container of the default lab).
# An ipv6 lab (default or named) is dual-stack: its network also has the ULA /64
# fd00:5352:6c61:<third octet of its IPv4 subnet, written out>::/64 (an existing network's is
# kept), node i is ::(10+i) in hex arithmetic (node1 ::11), the bastion ::6; SSH, the swarm and the
# registry name use those IPv6 addresses.

NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,14}[a-z0-9])?$")
RESERVED_PREFIXES = ("node", "ceph", "state", "bastion")
NAMED_MARKER = ".named-lab"              # in .lab/X: the default lab's down keeps that directory
LABEL_BASTION = "swarm-registry-lab.bastion"
BASTION_OFFSET = 6
NAMED_SUBNET_BASE = "172.31.0.0/16"      # named labs take a /24 of it, never .0 nor .250-.255
NAMED_SLOTS = range(1, 250)
ROLE_NODE = "node"
ULA_PREFIX = "fd00:5352:6c61"            # ipv6 labs: their /64 is ULA_PREFIX:<third octet>::/64
NODE6_OFFSET = 0x10                      # ipv6 labs: node i at ::(10+i), like IPv4's .(10+i)


def check_name(name: str) -> str:
    if name == "":
        return name
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: use 1-16 characters a-z, 0-9 and '-', starting with a letter "
                       f"and not ending with '-' (e.g. 'shapes')")
    if name.startswith(RESERVED_PREFIXES):
        raise LabError(f"lab name {name!r}: must not start with {', '.join(RESERVED_PREFIXES)} "
                       f"(names of the default lab's objects)")
    return name


def _preferred_slot(name: str) -> int:
    return NAMED_SLOTS[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(NAMED_SLOTS)]


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Subnets of every docker network and every IPv4 route of this machine (best effort)."""
    used: list[ipaddress.IPv4Network] = []
    try:
        ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True,
                             timeout=60).stdout.split()
        if ids:
            data = json.loads(subprocess.run(["docker", "network", "inspect", *ids], capture_output=True,
                                             text=True, timeout=60).stdout or "[]")
            for obj in data:
                for cfg in (obj.get("IPAM") or {}).get("Config") or []:
                    try:
                        used.append(ipaddress.IPv4Network(cfg.get("Subnet", ""), strict=False))
                    except ValueError:
                        pass
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError):
        pass
    try:
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10).stdout
        for line in routes.splitlines():
            first = line.split()[0] if line.split() else ""
            if "/" in first:
                try:
                    used.append(ipaddress.IPv4Network(first, strict=False))
                except ValueError:
                    pass
    except (OSError, subprocess.SubprocessError):
        pass
    return used


@dataclass(frozen=True)
class Lab:
    """Names and paths of one lab instance; Lab("") is the default lab."""

    name: str = ""

    @property
    def named(self) -> bool:
        return bool(self.name)

    @property
    def prefix(self) -> str:
        return f"swarm-registry-lab-{self.name}" if self.name else "swarm-registry-lab"

    @property
    def title(self) -> str:
        return f"lab {self.name}" if self.name else "lab"

    @property
    def label_value(self) -> str:
        return self.name or "1"

    @property
    def label_filter(self) -> str:
        return f"label={LABEL}={self.label_value}"

    @property
    def network(self) -> str:
        return self.prefix if self.name else NETWORK

    @property
    def lab_dir(self) -> Path:
        return LAB_DIR / self.name if self.name else LAB_DIR

    @property
    def state_dir(self) -> Path:
        return self.lab_dir / "state"

    @property
    def key_file(self) -> Path:
        return self.lab_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "known_hosts"

    @property
    def sudo_password_file(self) -> Path:
        return self.lab_dir / "sudo-password"

    @property
    def config_file(self) -> Path:
        return ROOT / "config" / f"lab-{self.name}.yaml" if self.name else CONFIG_FILE

    @property
    def registry_host(self) -> str:
        return f"registry.{self.name}.swarm-lab.test" if self.name else REGISTRY_HOST

    @property
    def hosts_tag(self) -> str:
        return f"{HOSTS_TAG}:{self.name}" if self.name else HOSTS_TAG

    @property
    def lock_file(self) -> Path:
        return Path(tempfile.gettempdir()) / f"{self.prefix}.lock"

    @property
    def bastion_name(self) -> str:
        return f"{self.prefix}-bastion"

    @property
    def cli_hint(self) -> str:
        return "python -m devtools.lab down" + (f" --name {self.name}" if self.name else "")

    def container_name(self, i: int) -> str:
        return f"{self.prefix}-node{i}"

    def volume_name(self, i: int) -> str:
        return f"{self.prefix}-node{i}-docker"

    @property
    def subnet_env(self) -> str:
        return f"{SUBNET_ENV}_{self.name.upper().replace('-', '_')}" if self.name else SUBNET_ENV

    def subnet(self, existing: str | None = None) -> ipaddress.IPv4Network:
        """The lab's subnet: env override, else the existing network's, else derived from the name."""
        if not self.name:
            return subnet()
        raw = os.environ.get(self.subnet_env, "").strip()
        if raw:
            try:
                net = ipaddress.IPv4Network(raw, strict=True)
            except ValueError as exc:
                raise LabError(f"{self.subnet_env}={raw!r} is not an IPv4 network like 172.31.251.0/24: {exc}") from None
            if net.num_addresses < 16:
                raise LabError(f"{self.subnet_env}={raw!r} is too small: use a /27 or larger")
            return net
        if existing:
            return ipaddress.IPv4Network(existing, strict=False)
        base = ipaddress.IPv4Network(NAMED_SUBNET_BASE)
        used = _used_networks()
        first = _preferred_slot(self.name)
        for k in range(len(NAMED_SLOTS)):
            slot = NAMED_SLOTS[(NAMED_SLOTS.index(first) + k) % len(NAMED_SLOTS)]
            net = ipaddress.IPv4Network(f"{base.network_address + slot * 256}/24")
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                return net
        raise LabError(f"no free /24 in {NAMED_SUBNET_BASE} for lab {self.name}: set {self.subnet_env}")

    def node_ip(self, i: int, net: ipaddress.IPv4Network) -> str:
        addr = net.network_address + 10 + i
        if addr not in net or addr == net.broadcast_address:
            raise LabError(f"node{i} does not fit in subnet {net}: use fewer nodes or a larger {self.subnet_env}")
        return str(addr)

    def bastion_ip(self, net: ipaddress.IPv4Network) -> str:
        return str(net.network_address + BASTION_OFFSET)

    def node_ip6(self, i: int, net6: ipaddress.IPv6Network) -> str:
        """node<i>'s address in an ipv6 lab's /64: ::(10+i) (node1 ::11)."""
        return str(net6.network_address + NODE6_OFFSET + i)

    def bastion_ip6(self, net6: ipaddress.IPv6Network) -> str:
        return str(net6.network_address + BASTION_OFFSET)


def subnet6(net: ipaddress.IPv4Network, existing: str | None = None) -> ipaddress.IPv6Network:
    """The IPv6 /64 of an ipv6 lab on IPv4 subnet `net`: the existing network's, else
    fd00:5352:6c61:<third octet of net, written out>::/64 (172.31.117.0/24 -> fd00:5352:6c61:117::/64)."""
    if existing:
        return ipaddress.IPv6Network(existing, strict=False)
    return ipaddress.IPv6Network(f"{ULA_PREFIX}:{net.network_address.packed[2]}::/64")


DEFAULT_LAB = Lab("")


def lab(name: str = "") -> Lab:
    return Lab(check_name(name or ""))
