"""Names, paths and fixed settings of the local lab cluster."""
from __future__ import annotations

import ipaddress
import os
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
