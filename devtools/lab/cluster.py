"""lab.up / lab.down / lab.status: the local N-node swarm used by tests and the demo.

Besides the default lab (name=""), named labs (name="X") run side by side with it, each on its
own network, with its own key, known_hosts, settings file and /etc/hosts line (see settings.Lab),
in one of the shapes users have: several managers, the registry on any node, a non-root SSH
user with sudo (without or with a password), and a bastion that is the only way in over SSH.
With storage="s3", the lab also runs its own Ceph RADOS Gateway (devtools.ceph) at .5 of its
subnet and the registry runs as replicas on node1..nodeN over that S3 storage.
With ipv6=True, the lab's network is dual-stack and SSH, the swarm and the registry name use the
nodes' IPv6 addresses (see settings: the lab's /64 and its addresses).
"""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import hosts_file, images
from . import settings as S
from .engine import Out, Step, docker, docker_bin, image_id, inspect, node_exec, poll, require_engine, run
from .errors import LabError

LOCK_FILE = Path(tempfile.gettempdir()) / "swarm-registry-lab.lock"
IMAGES_LOCK_FILE = Path(tempfile.gettempdir()) / "swarm-registry-lab-images.lock"

NODE_READY_TIMEOUT = 90      # sshd + dockerd up in every node
SWARM_SETTLE_TIMEOUT = 60    # LocalNodeState leaves "pending"
SWARM_READY_TIMEOUT = 90     # all nodes Ready in `docker node ls`

SUDO_MODES = ("none", "nopasswd", "password")
STORAGES = ("filesystem", "s3")
MAX_REGISTRY_NODES = 3       # default registry replicas of an s3 lab: all nodes, at most this many
S3_BUCKET = "registry"
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")

SSHD_BASTION_CONF = "/etc/ssh/sshd_config.d/swarm-registry-lab-bastion-only.conf"

# Runs inside each node (fixed text; the public key comes on stdin, the shape as arguments):
# installs the lab key for root, applies the shape (SSH user and its sudo rule, the sshd drop-in
# of a bastion lab, the registry name in /etc/hosts), prints the ed25519 host key, then the swarm
# state (fails while dockerd is not ready). Idempotent: it runs at every up.
# Arguments: user sudo-mode bastion-ip registry-host registry-ips (bastion-ip "" = no bastion;
# registry-ips: the registry nodes' addresses, separated by blanks, one /etc/hosts line each).
NODE_PROBE = r"""
set -e
umask 077
user=$1 sudo_mode=$2 bastion_ip=$3 reg_host=$4 reg_ips=$5
mkdir -p /root/.ssh
key=$(cat)
if [ -n "$key" ] && ! grep -qxF "$key" /root/.ssh/authorized_keys 2>/dev/null; then
    printf '%s\n' "$key" >> /root/.ssh/authorized_keys
fi
chmod 700 /root/.ssh
[ -f /root/.ssh/authorized_keys ] && chmod 600 /root/.ssh/authorized_keys

# --- the SSH user (not root) and its sudo rule -------------------------------------------
if [ "$user" != root ]; then
    if ! id -u "$user" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$user"
        [ "$sudo_mode" = password ] || usermod -p '*' "$user"   # no password, not locked
    fi
    home=$(getent passwd "$user" | cut -d: -f6)
    install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
    if [ "$(cat "$home/.ssh/authorized_keys" 2>/dev/null)" != "$key" ]; then
        printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
    fi
    chown "$user:$user" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
    drop="/etc/sudoers.d/$user"
    case "$sudo_mode" in
        nopasswd) rule="$user ALL=(ALL) NOPASSWD: ALL" ;;
        password) rule="Defaults:$user timestamp_timeout=0, lecture=never
$user ALL=(ALL) ALL" ;;
        *) rule="" ;;
    esac
    if [ -n "$rule" ]; then
        if [ "$(cat "$drop" 2>/dev/null)" != "$rule" ]; then
            printf '%s\n' "$rule" > "$drop.lab-new"
            chmod 0440 "$drop.lab-new"
            visudo -cqf "$drop.lab-new"
            mv -f "$drop.lab-new" "$drop"
        fi
        chmod 0440 "$drop"
        if id -nG "$user" | tr ' ' '\n' | grep -qx docker; then gpasswd -d "$user" docker >/dev/null; fi
    else
        rm -f "$drop"
        # no sudo: docker through the docker group
        if ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then usermod -aG docker "$user"; fi
    fi
fi

# --- sshd lets in only connections from the bastion ---------------------------------------
conf=SSHD_BASTION_CONF
if [ -n "$bastion_ip" ]; then
    want="# written by lab.up: only connections from the lab's bastion get in
AllowUsers *@$bastion_ip"
else
    want=""
fi
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    if [ -n "$want" ]; then printf '%s\n' "$want" > "$conf"; chmod 644 "$conf"; else rm -f "$conf"; fi
    /usr/sbin/sshd -t
    if [ -f /run/sshd.pid ]; then kill -HUP "$(cat /run/sshd.pid)"; fi
fi
# ... and this machine (the network's gateway) cannot reach the registry's port either: the product
# reaches the registry's API through SSH there (ssh.forward_registry), as behind a real bastion
gw=$(ip route | awk '/^default/ { print $3; exit }')
rule="PREROUTING -s $gw -p tcp --dport REGISTRY_PORT -j DROP"
if [ -n "$bastion_ip" ]; then
    iptables -t raw -C $rule 2>/dev/null || iptables -t raw -I $rule
else
    while iptables -t raw -D $rule 2>/dev/null; do :; done
fi

# --- the registry name resolves to the registry node(s) -----------------------------------
# (the addresses that carry the name are exactly reg_ips, in that order: else rewrite them)
if [ -n "$reg_host" ] && [ "$(awk -v h="$reg_host" \
        '{ for (i = 2; i <= NF; i++) if ($i == h) { print $1; next } }' /etc/hosts | tr '\n' ' ')" != "$reg_ips " ]; then
    awk -v h="$reg_host" '{ for (i = 2; i <= NF; i++) if ($i == h) next; print }' /etc/hosts > /tmp/.lab-hosts
    for reg_ip in $reg_ips; do printf '%s\t%s\n' "$reg_ip" "$reg_host"; done >> /tmp/.lab-hosts
    cat /tmp/.lab-hosts > /etc/hosts   # a bind mount: rewrite in place
    rm -f /tmp/.lab-hosts
fi

cat /etc/ssh/ssh_host_ed25519_key.pub
if [ -e /run/swarm-registry-lab.cgroup-ro ]; then echo CGROUP-RO; exit 0; fi
docker info --format '{{.Swarm.LocalNodeState}}'
""".replace("SSHD_BASTION_CONF", SSHD_BASTION_CONF).replace("REGISTRY_PORT", str(S.REGISTRY_PORT))

# The bastion: sshd only (PID 1 is docker's --init).
BASTION_CMD = "mkdir -p /run/sshd && chmod 0755 /run/sshd && ssh-keygen -A >/dev/null && exec /usr/sbin/sshd -D -e"

# Runs inside the bastion: the lab key for root (and for the lab's SSH user), then its host key.
BASTION_PROBE = r"""
set -e
umask 077
user=$1
key=$(cat)
install_key() {
    home=$(getent passwd "$1" | cut -d: -f6)
    install -d -m 700 -o "$1" -g "$(id -gn "$1")" "$home/.ssh"
    if [ "$(cat "$home/.ssh/authorized_keys" 2>/dev/null)" != "$key" ]; then
        printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
    fi
    chown "$1:$(id -gn "$1")" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
}
install_key root
if [ "$user" != root ]; then
    id -u "$user" >/dev/null 2>&1 || { useradd --create-home --shell /bin/bash "$user"; usermod -p '*' "$user"; }
    install_key "$user"
fi
cat /etc/ssh/ssh_host_ed25519_key.pub
"""


@dataclass(frozen=True)
class Shape:
    nodes: int
    managers: int = 1
    registry_node: int = 1
    user: str = "root"
    sudo: str = "none"
    bastion: bool = False
    storage: str = "filesystem"
    registry_nodes: int = 1      # with storage s3: the registry runs on node1..node<registry_nodes>
    ipv6: bool = False           # a dual-stack network; SSH, swarm and registry name over IPv6

    @property
    def registry_indices(self) -> list[int]:
        """The nodes the registry runs on: node<registry_node>, or node1..nodeN over s3."""
        if self.storage == "s3":
            return list(range(1, self.registry_nodes + 1))
        return [self.registry_node]


# ---------------------------------------------------------------------------------------
# small helpers


class _Fatal(LabError):
    """A node probe found a problem that waiting will not fix."""


@contextlib.contextmanager
def _locked(out: Out, timeout: float = 900, lock_file: Path | None = None, what: str = "lab up/down"):
    lock_file = lock_file or LOCK_FILE
    fd = os.open(str(lock_file), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out(f"[lab] another {what} is running; waiting for it...")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(f"another {what} still holds {lock_file} after {timeout:.0f} s") from None
                    time.sleep(1)
        yield
    finally:
        os.close(fd)


def _lab_lock(L: S.Lab, out: Out):
    """Each lab has its own lock (the default lab's is the historical one), so that named labs
    and the default lab come up and go down side by side."""
    return _locked(out, lock_file=LOCK_FILE if not L.named else L.lock_file,
                   what=f"lab up/down of {L.title}" if L.named else "lab up/down")


def _ensure_images(out: Out) -> tuple[str, str]:
    with _locked(out, lock_file=IMAGES_LOCK_FILE, what="lab image build"):
        return images.ensure_node_image(out), images.ensure_registry_image(out)


def _ensure_ceph_image(out: Out) -> str:
    from devtools.ceph import image as ceph_image

    with _locked(out, lock_file=IMAGES_LOCK_FILE, what="lab image build"):
        return ceph_image.ensure_image(out)


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    try:
        if path.read_text() == text:
            if (path.stat().st_mode & 0o777) != mode:
                path.chmod(mode)
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _ensure_lab_dir(L: S.Lab = S.DEFAULT_LAB) -> None:
    if L.named:
        S.LAB_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        S.LAB_DIR.chmod(0o700)
    for d in (L.lab_dir, L.state_dir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d.chmod(0o700)
    if L.named:
        _write_if_changed(L.lab_dir / S.NAMED_MARKER, L.name + "\n", 0o600)


def _ensure_key(out: Out, L: S.Lab = S.DEFAULT_LAB) -> str:
    """The lab key pair (made once); returns the public key line."""
    _ensure_lab_dir(L)
    key = L.key_file
    pub = Path(str(key) + ".pub")
    if not key.exists() or not pub.exists():
        for p in (key, pub):
            if p.exists():
                p.unlink()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", L.prefix,
             "-f", str(key)], what="ssh-keygen (lab key)")
        out(f"[lab] made SSH key {key}")
    key.chmod(0o600)
    pub.chmod(0o644)
    return pub.read_text().strip()


def _lab_containers(L: S.Lab = S.DEFAULT_LAB) -> dict[str, dict]:
    """Inspect data of the lab's node containers and its bastion, by name: the containers with the
    lab's label (swarm-registry-lab=1 or =X) and a node (swarm-registry-lab.node) or bastion
    (swarm-registry-lab.bastion) label. Not the lab's Ceph container (swarm-registry-lab.ceph)."""
    proc = docker("ps", "-a", "--filter", L.label_filter, "--format", "{{.Names}}")
    names = [n for n in proc.stdout.split() if n]
    return {name: obj for name, obj in inspect("container", names).items()
            if S.LABEL_NODE in _labels(obj) or S.LABEL_BASTION in _labels(obj)}


def _labels(obj: dict) -> dict:
    return (obj.get("Config") or {}).get("Labels") or {}


def _node_index(obj: dict) -> int | None:
    try:
        i = int(_labels(obj).get(S.LABEL_NODE, ""))
    except ValueError:
        return None
    return i if i >= 1 else None


def _node_containers(L: S.Lab, existing: dict[str, dict]) -> dict[int, dict]:
    """The lab's node containers by index (not the bastion, not other components)."""
    found = {}
    for name, obj in existing.items():
        i = _node_index(obj)
        if i is not None and name == L.container_name(i):
            found[i] = obj
    return found


_IP_KEYS = {4: ("IPv4Address", "IPAddress"), 6: ("IPv6Address", "GlobalIPv6Address")}  # IPAM's, network's


def _container_ip(obj: dict, network: str = S.NETWORK, version: int = 4) -> str | None:
    """The container's IPv4 (or, version=6, IPv6: an ipv6 lab) address on the lab network, or None."""
    nets = (obj.get("NetworkSettings") or {}).get("Networks") or {}
    net = nets.get(network) or {}
    ipam = net.get("IPAMConfig") or {}
    asked, given = _IP_KEYS[version]
    return ipam.get(asked) or net.get(given) or None


def _container_ip6(obj: dict, network: str = S.NETWORK) -> str | None:
    return _container_ip(obj, network, 6)


def _check_addresses(L: S.Lab, name: str, obj: dict, ip: str, ip6: str | None) -> None:
    """An existing container (node or bastion) has the addresses this lab gives it: else one line and the fix."""
    have = _container_ip(obj, L.network)
    if have and have != ip:
        raise LabError(f"{name} has address {have}, expected {ip}: run `{L.cli_hint}` first")
    have6 = _container_ip6(obj, L.network)
    if ip6 and not _same_ip(have6, ip6):
        raise LabError(f"{name} has IPv6 address {have6 or '(none)'}, expected {ip6}: run `{L.cli_hint}` first")


def _same_ip(a: str | None, b: str | None) -> bool:
    """Two addresses are one (IPv6 has several spellings)."""
    try:
        return ipaddress.ip_address(a or "") == ipaddress.ip_address(b or "")
    except ValueError:
        return a == b


def _ssh_name(addr: str, port: int = 22) -> str:
    """An address as OpenSSH's known_hosts names it: plain for port 22, else [addr]:port."""
    return addr if port == 22 else f"[{addr}]:{port}"


def _host_port(addr: str, port: int) -> str:
    """addr:port, with an IPv6 address in brackets (a swarm manager, a ProxyJump)."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _ssh_banner(ip: str, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"SSH-")
    except OSError:
        return False


def _running(obj: dict | None) -> bool:
    return bool(obj and (obj.get("State") or {}).get("Running"))


# ---------------------------------------------------------------------------------------
# up


def up(nodes: int | None = None, out: Out = print, *, name: str = "", managers: int = 1,
       registry_node: int = 1, user: str = "root", sudo: str = "none", bastion: bool = False,
       storage: str = "filesystem", registry_nodes: int | None = None, ipv6: bool = False) -> Path:
    """Bring a lab up (idempotent) and return the path of its settings file.

    name="" is the default lab (config/lab.yaml); name="X" a separate lab (config/lab-X.yaml).
    nodes=None keeps the size of an existing lab (3 for a new one); another size grows the
    lab (new nodes join as workers) or shrinks it (nodes leave the swarm and are removed).
    Nodes 1..managers are swarm managers; the registry runs on node<registry_node>.
    user: the SSH user of the settings; for a user other than root, sudo="nopasswd" or
    "password" gives it a sudoers rule (docker then needs sudo), sudo="none" puts it in the
    docker group. bastion=True adds a bastion container, the only host the nodes' sshd lets in.
    storage="s3": the lab's own Ceph RADOS Gateway (devtools.ceph) runs at .5 of its subnet; the
    settings get registry.nodes (node1..node<registry_nodes>, default all nodes, at most 3) and
    storage.s3 (endpoint, region, bucket), the S3 keys go to state_dir (swarm_registry.s3creds,
    0600), and every node resolves the registry name to every registry node.
    ipv6=True: the lab's network is dual-stack (its IPv4 /24 and a ULA /64, see settings.subnet6);
    the settings, known_hosts, SSH probes, the swarm and the registry name (nodes and this
    machine) use the nodes' IPv6 addresses. A lab keeps the IP versions it was made with.
    """
    t0 = time.monotonic()
    L = S.lab(name)
    _check_shape_args(managers, registry_node, user, sudo, bastion, ipv6)
    _check_storage_args(storage, registry_nodes, registry_node)
    _check_ipv6_storage(storage, ipv6)
    with _lab_lock(L, out):
        require_engine()
        existing = _lab_containers(L)
        net_obj = inspect("network", [L.network]).get(L.network)
        net = L.subnet(_network_subnet(net_obj)) if L.named else S.subnet()
        nodes = _decide_node_count(nodes, existing, L)
        if storage == "s3":
            shape = Shape(nodes, managers, registry_node, user, sudo, bastion, storage,
                          min(nodes, MAX_REGISTRY_NODES) if registry_nodes is None else registry_nodes)
        else:
            shape = Shape(nodes, managers, registry_node, user, sudo, bastion, ipv6=ipv6)
        shape = _check_shape(shape)
        net6 = _lab_subnet6(L, net, net_obj, shape.ipv6)
        ips = {i: L.node_ip(i, net) for i in range(1, nodes + 1)}
        ips6 = {i: L.node_ip6(i, net6) for i in range(1, nodes + 1)} if net6 else None
        addrs = ips6 or ips  # the nodes' addresses for SSH, the swarm and the registry name
        reg_ips = [addrs[i] for i in shape.registry_indices]
        reg_ip = reg_ips[0]
        bastion_ip = (L.bastion_ip6(net6) if net6 else L.bastion_ip(net)) if shape.bastion else None

        node_tag, registry_tag = _ensure_images(out)
        ceph_tag = _ensure_ceph_image(out) if shape.storage == "s3" else None
        _ensure_network(net, out, L, net6)
        if ceph_tag:
            from devtools import ceph  # started first: its bootstrap runs while the nodes come up
            ceph_ip = ceph.start(L, net, ceph_tag, out)
        pubkey = _ensure_key(out, L)
        present = _node_containers(L, existing)
        extra = sorted(i for i in present if i > nodes)
        _ensure_containers(nodes, ips, node_tag, existing, out, L, reg_ip, ips6)
        _ensure_bastion(L, net, shape, node_tag, existing, out, net6)
        host_keys, states = _wait_nodes(nodes, addrs, pubkey, out, L, shape, " ".join(reg_ips), bastion_ip)
        if shape.user != "root" and shape.sudo == "password":
            _ensure_sudo_password(L, nodes, shape.user, out)
        elif L.sudo_password_file.exists():
            L.sudo_password_file.unlink()
        bastion_key = _wait_bastion(L, bastion_ip, pubkey, shape.user, out) if bastion_ip else None
        if extra:
            _remove_nodes(L, extra, existing, out)
        _write_known_hosts(addrs, host_keys, out, L, (bastion_ip, bastion_key) if bastion_ip else None)
        _ensure_swarm(nodes, addrs, states, out, L, shape.managers)
        for i in shape.registry_indices:
            _ensure_registry_image_on_node(registry_tag, out, L, i)
        if hosts_file.ensure(reg_ip if len(reg_ips) == 1 else reg_ips, L.registry_host, tag=L.hosts_tag):
            out(f"[lab] /etc/hosts: {L.registry_host} -> {', '.join(reg_ips)}")
        s3_endpoint = None
        if ceph_tag:
            from swarm_registry import s3creds

            info = ceph.wait(L, ceph_ip, out)
            if s3creds.store(L.state_dir, info.access_key, info.secret_key):  # 0600; never an argv
                out(f"[lab] stored the S3 keys of {info.container} in {L.state_dir}/{s3creds.FILE} (0600)")
            s3_endpoint = info.endpoint
        path = _write_config(addrs, out, L, shape, bastion_ip, s3_endpoint)
    title = "lab" if not L.named else f"lab {L.name}"
    storage_note = f", S3 at {s3_endpoint}" if s3_endpoint else ""
    out(f"[lab] {title} is up: {nodes} node(s), registry host {L.registry_host} -> {', '.join(reg_ips)}"
        f"{storage_note}, settings {path} ({time.monotonic() - t0:.1f} s)")
    return path


def _check_shape_args(managers, registry_node, user, sudo, bastion, ipv6=False) -> None:
    for key, value in (("managers", managers), ("registry_node", registry_node)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LabError(f"{key} must be a positive integer, got {value!r}")
    if not isinstance(user, str) or not USER_RE.match(user):
        raise LabError(f"user must be a Unix user name like deploy, got {user!r}")
    if sudo not in SUDO_MODES:
        raise LabError(f"sudo must be one of {', '.join(SUDO_MODES)}, got {sudo!r}")
    if user == "root" and sudo != "none":
        raise LabError(f"sudo={sudo!r} needs a user other than root (e.g. user='deploy')")
    if not isinstance(bastion, bool):
        raise LabError(f"bastion must be True or False, got {bastion!r}")
    if not isinstance(ipv6, bool):
        raise LabError(f"ipv6 must be True or False, got {ipv6!r}")


def _check_storage_args(storage, registry_nodes, registry_node) -> None:
    if storage not in STORAGES:
        raise LabError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if storage != "s3":
        if registry_nodes is not None:
            raise LabError("registry_nodes needs storage='s3' (replicas share their storage); "
                           "with filesystem storage the registry runs on one node: registry_node")
        return
    if registry_nodes is not None and (not isinstance(registry_nodes, int) or isinstance(registry_nodes, bool)
                                       or registry_nodes < 1):
        raise LabError(f"registry_nodes must be a positive integer, got {registry_nodes!r}")
    if registry_node != 1:
        raise LabError("with storage='s3' the registry runs on node1..nodeN: use registry_nodes=N, "
                       "not registry_node")


def _check_shape(shape: Shape) -> Shape:
    if shape.managers > shape.nodes:
        raise LabError(f"managers={shape.managers} is more than the {shape.nodes} node(s) of the lab")
    if shape.registry_node > shape.nodes:
        raise LabError(f"registry_node={shape.registry_node} is not a node of the lab (1..{shape.nodes})")
    if shape.storage == "s3" and shape.registry_nodes > shape.nodes:
        raise LabError(f"registry_nodes={shape.registry_nodes} is more than the {shape.nodes} node(s) of the lab")
    return shape


def _check_ipv6_storage(storage, ipv6) -> None:
    if ipv6 and storage != "filesystem":
        raise LabError(f"ipv6=True works with storage='filesystem' only, got storage={storage!r} "
                       f"(the S3 endpoint of the lab's Ceph gateway is an IPv4 address): drop one of them")


def _network_subnets(obj: dict | None, version: int) -> list[str]:
    """The network's subnets of one IP version (4 or 6)."""
    found = []
    for cfg in ((obj or {}).get("IPAM") or {}).get("Config") or []:
        try:
            if ipaddress.ip_network(cfg.get("Subnet") or "", strict=False).version == version:
                found.append(cfg["Subnet"])
        except ValueError:
            pass
    return found


def _network_subnet(obj: dict | None) -> str | None:
    """The network's IPv4 subnet, or None."""
    found = _network_subnets(obj, 4)
    return found[0] if found else None


def _network_subnet6(obj: dict | None) -> str | None:
    """The network's IPv6 subnet (a dual-stack lab network), or None."""
    found = _network_subnets(obj, 6)
    return found[0] if found else None


def _lab_subnet6(L: S.Lab, net, obj: dict | None, ipv6: bool):
    """The lab's IPv6 /64 (the existing network's, else derived from `net`), None for an IPv4 lab.
    A lab keeps the IP versions its network was made with."""
    have = _network_subnet6(obj)
    if obj and bool(have) != ipv6:
        made = f"dual-stack ({have})" if have else "IPv4 only"
        fix = "pass --ipv6 (ipv6=True)" if have else "leave out --ipv6 (ipv6=False)"
        raise LabError(f"network {L.network} is {made}, not {'IPv4 only' if have else 'dual-stack'} as "
                       f"ipv6={ipv6} asks: {fix}, or run `{L.cli_hint}` first")
    if not ipv6:
        return None
    return S.subnet6(net, have)


def _recorded_nodes(L: S.Lab) -> int | None:
    """The node count the lab's settings file names (the lab's size after a grow or shrink)."""
    try:
        data = yaml.safe_load(L.config_file.read_text())
        return len(data["hosts"]) or None
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _decide_node_count(nodes: int | None, existing: dict[str, dict], L: S.Lab = S.DEFAULT_LAB) -> int:
    have = None
    for name, obj in existing.items():
        labels = _labels(obj)
        root = labels.get(S.LABEL_ROOT)
        if root and root != str(S.ROOT):
            raise LabError(f"a lab made from another checkout ({root}) exists: run `{L.cli_hint}` there first")
    present = _node_containers(L, existing)
    if present:
        # a resized lab: the settings file holds its size; else the label of its first nodes
        have = _recorded_nodes(L)
        if have is None:
            for obj in present.values():
                try:
                    n = int(_labels(obj).get(S.LABEL_NODES, "0"))
                except ValueError:
                    n = 0
                have = max(have or 0, n)
        have = max(have or 0, max(present))
    elif existing and not L.named:
        have = None
    if nodes is None:
        nodes = have or S.DEFAULT_NODES
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= S.MAX_NODES:
        raise LabError(f"nodes must be an integer from 1 to {S.MAX_NODES}, got {nodes!r}")
    return nodes


def _ensure_network(net, out: Out, L: S.Lab = S.DEFAULT_LAB, net6=None) -> None:
    """The lab's bridge network on `net` (and, for an ipv6 lab, also on the /64 `net6`)."""
    obj = inspect("network", [L.network]).get(L.network)
    if obj:
        subnets = [c.get("Subnet") for c in ((obj.get("IPAM") or {}).get("Config") or [])]
        for want in (net, net6):
            if want is not None and str(want) not in subnets:
                raise LabError(f"network {L.network} exists with subnet {', '.join(map(str, subnets)) or '?'}, "
                               f"not {want}: run `{L.cli_hint}` first")
        return
    v6 = ["--ipv6", "--subnet", str(net6)] if net6 is not None else []
    proc = docker("network", "create", "--driver", "bridge", "--subnet", str(net), *v6,
                  "--label", f"{S.LABEL}={L.label_value}", L.network, check=False)
    if proc.returncode != 0:
        raise LabError(f"cannot create network {L.network} with subnet {net}{f' and {net6}' if v6 else ''}: "
                       f"{proc.stderr.strip()} (set {L.subnet_env} to a free /24)")
    out(f"[lab] created network {L.network} ({net}{f', {net6}' if v6 else ''})")


def _ensure_containers(nodes: int, ips: dict[int, str], node_tag: str, existing: dict[str, dict], out: Out,
                       L: S.Lab = S.DEFAULT_LAB, registry_ip: str | None = None,
                       ips6: dict[int, str] | None = None) -> None:
    to_start, to_create = [], []
    for i in range(1, nodes + 1):
        name = L.container_name(i)
        obj = existing.get(name)
        if obj is None:
            to_create.append(i)
            continue
        _check_addresses(L, name, obj, ips[i], ips6[i] if ips6 else None)
        if (obj.get("Config") or {}).get("Image") != node_tag:
            out(f"[lab] note: {name} runs an older node image; `lab down` then `lab up` rebuilds it")
        if not _running(obj):
            to_start.append(i)
    if not to_create and not to_start:
        return
    label = ", ".join(S.hostname(i) for i in to_create + to_start)
    with Step(out, f"starting node container(s) {label}"):
        for i in to_create:
            _create_node(i, nodes, ips, node_tag, L, registry_ip or ips[1], ips6[i] if ips6 else None)
        if to_start:
            docker("start", *[L.container_name(i) for i in to_start], what="docker start (lab nodes)")


def _create_node(i: int, nodes: int, ips: dict[int, str], node_tag: str, L: S.Lab = S.DEFAULT_LAB,
                 registry_ip: str | None = None, ip6: str | None = None) -> None:
    vol = L.volume_name(i)
    if not inspect("volume", [vol]):
        docker("volume", "create", "--label", f"{S.LABEL}={L.label_value}", "--label", f"{S.LABEL_NODE}={i}",
               vol, what=f"docker volume create {vol}")
    docker(
        "run", "-d",
        "--name", L.container_name(i),
        "--hostname", S.hostname(i),
        "--network", L.network, "--ip", ips[i],
        *(["--ip6", ip6] if ip6 else []),
        "--add-host", f"{L.registry_host}:{registry_ip or ips[1]}",
        "-v", f"{vol}:/var/lib/docker",
        "--tmpfs", "/run:rw,exec,nosuid,mode=755",
        "--restart", "no",
        *S.NODE_RUN_FLAGS,
        "--label", f"{S.LABEL}={L.label_value}",
        "--label", f"{S.LABEL_NODE}={i}",
        "--label", f"{S.LABEL_NODES}={nodes}",
        "--label", f"{S.LABEL_ROOT}={S.ROOT}",
        node_tag,
        what=f"docker run {L.container_name(i)}",
    )


def _ensure_bastion(L: S.Lab, net, shape: Shape, node_tag: str, existing: dict[str, dict], out: Out,
                    net6=None) -> None:
    obj = existing.get(L.bastion_name)
    if not shape.bastion:
        if obj is not None:
            docker("rm", "--force", L.bastion_name, what=f"docker rm {L.bastion_name}")
            out(f"[lab] removed the bastion {L.bastion_name}")
        return
    ip = L.bastion_ip(net)
    ip6 = L.bastion_ip6(net6) if net6 is not None else None
    if obj is not None:
        _check_addresses(L, L.bastion_name, obj, ip, ip6)
        if not _running(obj):
            docker("start", L.bastion_name, what=f"docker start {L.bastion_name}")
        return
    with Step(out, f"starting the bastion {L.bastion_name} ({ip}{f', {ip6}' if ip6 else ''})"):
        docker(
            "run", "-d",
            "--name", L.bastion_name,
            "--hostname", "bastion",
            "--network", L.network, "--ip", ip,
            *(["--ip6", ip6] if ip6 else []),
            "--tmpfs", "/run:rw,exec,nosuid,mode=755",
            "--restart", "no",
            "--init",
            "--entrypoint", "/bin/sh",
            "--label", f"{S.LABEL}={L.label_value}",
            "--label", f"{S.LABEL_BASTION}=1",
            "--label", f"{S.LABEL_ROOT}={S.ROOT}",
            node_tag, "-c", BASTION_CMD,
            what=f"docker run {L.bastion_name}",
        )


def _wait_bastion(L: S.Lab, ip: str, pubkey: str, user: str, out: Out) -> str:
    """Poll the bastion until sshd answers; install the key on the way; returns its host key."""
    def probe():
        if not _ssh_banner(ip):
            return None
        proc = node_exec(L.bastion_name, "sh", "-c", BASTION_PROBE, "sh", user, input=pubkey + "\n",
                         check=False, timeout=30)
        if proc.returncode != 0:
            if not _running(inspect("container", [L.bastion_name]).get(L.bastion_name)):
                raise _Fatal(f"{L.bastion_name} is not running: see `docker logs {L.bastion_name}`")
            return None
        line = proc.stdout.strip().splitlines()[-1:] or [""]
        return line[0] if line[0].startswith("ssh-ed25519 ") else None

    value = probe()
    if value:
        return value
    deadline = time.monotonic() + NODE_READY_TIMEOUT
    with Step(out, "waiting for sshd in the bastion"):
        while not value:
            if time.monotonic() > deadline:
                raise LabError(f"the bastion {L.bastion_name} is not ready after {NODE_READY_TIMEOUT} s: "
                               f"see `docker logs {L.bastion_name}`")
            time.sleep(0.5)
            value = probe()
    return value


def _wait_nodes(nodes: int, ips: dict[int, str], pubkey: str, out: Out, L: S.Lab = S.DEFAULT_LAB,
                shape: Shape | None = None, registry_ip: str | None = None, bastion_ip: str | None = None):
    """Poll every node until sshd answers and its dockerd works; install the key and the shape on the way."""
    shape = shape or Shape(nodes)
    host_keys: dict[int, str] = {}
    states: dict[int, str] = {}
    pending = set(range(1, nodes + 1))
    args = [shape.user, shape.sudo, bastion_ip or "", L.registry_host, registry_ip or ips[1]]  # ip, or ips "a b c"

    def probe(i: int):
        if not _ssh_banner(ips[i]):
            return None
        proc = node_exec(L.container_name(i), "sh", "-c", NODE_PROBE, "sh", *args, input=pubkey + "\n",
                         check=False, timeout=30)
        if proc.returncode != 0:
            running = docker("inspect", "--format", "{{.State.Running}}", L.container_name(i), check=False)
            if running.stdout.strip() != "true":
                raise _Fatal(f"node container {L.container_name(i)} is not running: see "
                             f"`docker logs {L.container_name(i)}`")
            return None
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        if len(lines) < 2 or not lines[0].startswith("ssh-ed25519 "):
            return None
        if lines[-1] == "CGROUP-RO":
            raise _Fatal(f"{S.hostname(i)}: the cgroup hierarchy stayed read-only inside the node container, so "
                         f"its dockerd cannot start containers (see `docker logs {L.container_name(i)}`)")
        return lines[0], lines[-1]

    def sweep() -> None:
        order = sorted(pending)
        for i, res in zip(order, pool.map(probe, order)):
            if res:
                host_keys[i], states[i] = res
                pending.discard(i)

    deadline = time.monotonic() + NODE_READY_TIMEOUT
    with ThreadPoolExecutor(max_workers=min(8, nodes)) as pool:
        sweep()  # warm path: everything answers at once, no progress line
        if pending:
            with Step(out, "waiting for sshd and dockerd in the nodes"):
                while pending:
                    if time.monotonic() > deadline:
                        names = ", ".join(S.hostname(i) for i in sorted(pending))
                        raise LabError(
                            f"{names} not ready after {NODE_READY_TIMEOUT} s (sshd on port 22 or dockerd): see "
                            f"`docker logs {L.container_name(min(pending))}` and /var/log/dockerd.log inside")
                    time.sleep(0.5)
                    sweep()
    return host_keys, states


def _ensure_sudo_password(L: S.Lab, nodes: int, user: str, out: Out) -> None:
    """The SSH user's sudo password: made once on this machine (0600), set on every node through
    chpasswd's stdin (never in an argument list)."""
    path = L.sudo_password_file
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = ""
    if not password:
        password = secrets.token_urlsafe(18)
        _write_if_changed(path, password + "\n", 0o600)
        out(f"[lab] made the sudo password of {user} in {path} (0600)")
    path.chmod(0o600)
    line = f"{user}:{password}\n"
    with ThreadPoolExecutor(max_workers=min(8, nodes)) as pool:
        results = list(pool.map(
            lambda i: node_exec(L.container_name(i), "chpasswd", input=line, check=False, timeout=30,
                                what=f"chpasswd on {S.hostname(i)}"),
            range(1, nodes + 1)))
    for i, proc in zip(range(1, nodes + 1), results):
        if proc.returncode != 0:
            raise LabError(f"chpasswd on {S.hostname(i)} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def _write_known_hosts(ips: dict[int, str], host_keys: dict[int, str], out: Out, L: S.Lab = S.DEFAULT_LAB,
                       bastion: tuple[str, str] | None = None) -> None:
    lines = []
    for i in sorted(ips):
        parts = host_keys[i].split()
        lines.append(f"{_ssh_name(ips[i])} {parts[0]} {parts[1]}")
    if bastion:
        parts = bastion[1].split()
        lines.append(f"{_ssh_name(bastion[0])} {parts[0]} {parts[1]}")
    if _write_if_changed(L.known_hosts, "".join(ln + "\n" for ln in lines), 0o600):
        out(f"[lab] wrote {L.known_hosts}")


def _swarm_state(i: int, L: S.Lab = S.DEFAULT_LAB) -> str:
    proc = node_exec(L.container_name(i), "docker", "info", "--format", "{{.Swarm.LocalNodeState}}",
                     check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _swarm_table(L: S.Lab) -> list[tuple[str, str, str, str]]:
    """(id, hostname, status, manager status) of every swarm node, seen from node1; [] if unknown."""
    proc = node_exec(L.container_name(1), "docker", "node", "ls", "--format",
                     "{{.ID}} {{.Hostname}} {{.Status}} {{.ManagerStatus}}", check=False, timeout=30)
    if proc.returncode != 0:
        return []
    rows = []
    for ln in proc.stdout.splitlines():
        parts = ln.split()
        if len(parts) >= 3:
            rows.append((parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    return rows


def _swarm_ok(L: S.Lab, nodes: int, managers: int, table=None) -> bool:
    """Each wanted node has one Ready entry, nodes 1..managers as reachable managers and the
    others as workers; no other node is Ready. (Down leftovers do not count here; a non-warm
    up removes them.)"""
    table = _swarm_table(L) if table is None else table
    want = {S.hostname(i) for i in range(1, nodes + 1)}
    want_mgr = {S.hostname(i) for i in range(1, managers + 1)}
    ready = [row for row in table if row[2] == "Ready"]
    if sorted(row[1] for row in ready) != sorted(want):
        return False
    return all((host in want_mgr) == (mgr in ("Leader", "Reachable")) for _id, host, _st, mgr in ready)


def _ensure_swarm(nodes: int, ips: dict[int, str], states: dict[int, str], out: Out, L: S.Lab = S.DEFAULT_LAB,
                  managers: int = 1) -> None:
    node1 = L.container_name(1)

    def ready_hosts() -> set[str]:
        return {row[1] for row in _swarm_table(L) if row[2] == "Ready"}

    if all(states.get(i) == "active" for i in range(1, nodes + 1)) and _swarm_ok(L, nodes, managers):
        return  # the warm path: nothing to do

    what = f"manager node1 at {ips[1]}" if managers == 1 else f"managers node1..node{managers}"
    with Step(out, f"forming the swarm ({nodes} node(s), {what})"):
        # A restarted node says "pending" while it reconnects: let it settle first.
        def settled():
            for i in range(1, nodes + 1):
                if states.get(i) in ("pending", ""):
                    states[i] = _swarm_state(i, L)
            return all(states.get(i) not in ("pending", "") for i in range(1, nodes + 1))
        try:
            poll(settled, timeout=SWARM_SETTLE_TIMEOUT, interval=1, what="the swarm state of the nodes to settle")
        except LabError:
            pass  # a worker stuck in "pending" is re-joined below
        for i in range(1, nodes + 1):
            if states.get(i) in ("error", "locked"):
                raise LabError(f"{S.hostname(i)} swarm state is {states[i]!r}: run `{L.cli_hint}` then up")

        if states.get(1) != "active":
            docker("exec", node1, "docker", "swarm", "init", "--advertise-addr", ips[1],
                   what="docker swarm init on node1")
            out(f"[lab] swarm initialised on node1 ({ips[1]})")
            states[1] = "active"
        tokens: dict[str, str] = {}
        for i in range(2, nodes + 1):
            if states.get(i) == "active":
                continue
            role = "manager" if i <= managers else "worker"
            if role not in tokens:
                tokens[role] = node_exec(node1, "docker", "swarm", "join-token", "-q", role,
                                         what="docker swarm join-token on node1").stdout.strip()
            if states.get(i) == "pending":
                node_exec(L.container_name(i), "docker", "swarm", "leave", "--force", check=False)
            # an IPv6 node names its address (dockerd would advertise its IPv4 one)
            advertise = ["--advertise-addr", ips[i]] if ":" in ips[i] else []
            node_exec(L.container_name(i), "docker", "swarm", "join", *advertise, "--token", tokens[role],
                      _host_port(ips[1], 2377), what=f"docker swarm join on {S.hostname(i)}", timeout=180)
            out(f"[lab] {S.hostname(i)} joined the swarm" + (" as a manager" if role == "manager" else ""))
        want = {S.hostname(i) for i in range(1, nodes + 1)}
        poll(lambda: want <= ready_hosts(), timeout=SWARM_READY_TIMEOUT, interval=1,
             what=f"{nodes} Ready node(s) in `docker node ls` on node1",
             hint=f"run `{L.cli_hint}` then up")
        _fix_roles_and_leftovers(L, nodes, managers, out)
        poll(lambda: _swarm_ok(L, nodes, managers), timeout=SWARM_READY_TIMEOUT, interval=1,
             what=f"{nodes} Ready node(s), {managers} of them manager(s), in `docker node ls` on node1",
             hint=f"run `{L.cli_hint}` then up")


def _fix_roles_and_leftovers(L: S.Lab, nodes: int, managers: int, out: Out) -> None:
    """Promote/demote to the wanted managers; drop swarm entries of nodes that are gone (Down)."""
    node1 = L.container_name(1)
    table = _swarm_table(L)
    ready = {row[1] for row in table if row[2] == "Ready"}
    for _id, host, status, mgr in table:
        if status != "Ready" and (host in ready or host not in {S.hostname(i) for i in range(1, nodes + 1)}):
            if mgr:
                node_exec(node1, "docker", "node", "demote", _id, check=False)
            node_exec(node1, "docker", "node", "rm", "--force", _id, check=False)
    for _id, host, status, mgr in _swarm_table(L):
        if status != "Ready":
            continue
        try:
            i = int(host.removeprefix("node"))
        except ValueError:
            continue
        if i <= managers and not mgr:
            node_exec(node1, "docker", "node", "promote", _id, what=f"docker node promote {host}")
            out(f"[lab] {host} promoted to manager")
        elif i > managers and mgr:
            node_exec(node1, "docker", "node", "demote", _id, what=f"docker node demote {host}")
            out(f"[lab] {host} demoted to worker")


def _remove_nodes(L: S.Lab, indices: list[int], existing: dict[str, dict], out: Out) -> None:
    """Shrink: each node leaves the swarm, is removed from the node list on node1, then its
    container and volume go."""
    node1 = L.container_name(1)
    label = ", ".join(S.hostname(i) for i in indices)
    with Step(out, f"removing node(s) {label} from the swarm and the lab"):
        for i in sorted(indices, reverse=True):
            host, name = S.hostname(i), L.container_name(i)
            rows = [r for r in _swarm_table(L) if r[1] == host]
            for _id, _h, _status, mgr in rows:
                if mgr:
                    node_exec(node1, "docker", "node", "demote", _id, what=f"docker node demote {host}")
            if _running(existing.get(name)):
                # a demoted manager takes a moment to become a worker; leave --force otherwise
                left = node_exec(name, "docker", "swarm", "leave", check=False, timeout=60)
                if left.returncode != 0:
                    node_exec(name, "docker", "swarm", "leave", "--force", check=False, timeout=60)
            if rows:
                # the node has left (or is gone): --force only skips waiting ~10 s for the
                # managers' heartbeat to mark it Down
                node_exec(node1, "docker", "node", "rm", "--force", *sorted({r[0] for r in rows}),
                          what=f"docker node rm {host}")
            docker("rm", "--force", "--volumes", name, what=f"docker rm {name}", timeout=300)
            if inspect("volume", [L.volume_name(i)]):
                docker("volume", "rm", "--force", L.volume_name(i), what=f"docker volume rm {L.volume_name(i)}")
            out(f"[lab] {host} left the swarm and was removed")


def _ensure_registry_image_on_node(tag: str, out: Out, L: S.Lab = S.DEFAULT_LAB, index: int = 1) -> None:
    want = image_id(tag)
    if not want:
        raise LabError(f"registry image {tag} vanished from the control machine's engine")
    node = L.container_name(index)
    host = S.hostname(index)
    proc = node_exec(node, "docker", "image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=30)
    if proc.returncode == 0 and proc.stdout.strip() == want:
        return
    with Step(out, f"loading {tag} into {host}"):
        save = subprocess.Popen([docker_bin(), "save", tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.run([docker_bin(), "exec", "-i", node, "docker", "load"], stdin=save.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        save.stdout.close()
        save_err = save.stderr.read().decode(errors="replace").strip()
        save.wait()
        if save.returncode != 0:
            raise LabError(f"docker save {tag} failed: {save_err}")
        if load.returncode != 0:
            raise LabError(f"docker load into {host} failed: {load.stderr.decode(errors='replace').strip()}")
        proc = node_exec(node, "docker", "image", "inspect", "--format", "{{.Id}}", tag, check=False)
        if proc.stdout.strip() != want:
            raise LabError(f"{tag} in {host} has id {proc.stdout.strip() or '(none)'}, expected {want}")


def _ensure_registry_image_on_node1(tag: str, out: Out) -> None:
    _ensure_registry_image_on_node(tag, out)


def lab_settings(ips: dict[int, str], L: S.Lab = S.DEFAULT_LAB, shape: Shape | None = None,
                 bastion_ip: str | None = None, s3_endpoint: str | None = None) -> dict:
    shape = shape or Shape(len(ips))
    ssh: dict = {
        "identity_file": str(L.key_file),
        "known_hosts": str(L.known_hosts),
        "accept_new_host_keys": False,
    }
    if shape.user != "root" and shape.sudo != "none":
        ssh["sudo"] = True
    if bastion_ip:
        ssh["proxy_jump"] = f"root@{_host_port(bastion_ip, 22)}"
    registry: dict = {"host": L.registry_host, "port": S.REGISTRY_PORT}
    if shape.storage == "s3":
        registry["nodes"] = [S.hostname(i) for i in shape.registry_indices]
    else:
        registry["node"] = S.hostname(shape.registry_node)
    registry.update(image=S.REGISTRY_IMAGE, resolve_image="never", login_user=S.REGISTRY_USER)
    storage = {}
    if shape.storage == "s3":
        from devtools import ceph

        # the keys are not here: they are in state_dir (swarm_registry.s3creds)
        storage = {"storage": {"driver": "s3", "s3": {"endpoint": s3_endpoint, "region": ceph.REGION,
                                                      "bucket": S3_BUCKET}}}
    return {
        "registry": registry,
        **storage,
        "cert": {"alt_names": []},
        "users": [S.REGISTRY_USER],
        "hosts": {
            S.hostname(i): {"address": ips[i], "user": shape.user, "port": 22,
                            "roles": ["manager" if i <= shape.managers else "worker"]}
            for i in sorted(ips)
        },
        "ssh": ssh,
        "state_dir": str(L.state_dir),
    }


def _write_config(ips: dict[int, str], out: Out, L: S.Lab = S.DEFAULT_LAB, shape: Shape | None = None,
                  bastion_ip: str | None = None, s3_endpoint: str | None = None) -> Path:
    head = "# generated by lab.up; removed by lab.down\n"
    if L.named:
        head += f"# lab {L.name}: python -m devtools.lab up --name {L.name} ... / down --name {L.name}\n"
        if shape and shape.sudo == "password":
            head += f"# sudo password of {shape.user}: {L.sudo_password_file} (0600)\n"
    if shape and shape.storage == "s3":
        head += f"# S3 keys of storage.s3: {L.state_dir}/s3-credentials.json (0600), not here\n"
    text = head + yaml.safe_dump(lab_settings(ips, L, shape, bastion_ip, s3_endpoint), sort_keys=False,
                                 default_flow_style=False)
    if _write_if_changed(L.config_file, text, 0o644):
        out(f"[lab] wrote {L.config_file}")
    return L.config_file


# ---------------------------------------------------------------------------------------
# down


def down(purge: bool = False, out: Out = print, *, name: str = "") -> None:
    """Remove exactly what up() made for this lab (images too if purge)."""
    t0 = time.monotonic()
    L = S.lab(name)
    with _lab_lock(L, out):
        require_engine()
        did = 0
        containers = docker("ps", "-aq", "--filter", L.label_filter).stdout.split()
        if containers:
            with Step(out, f"removing {len(containers)} {'node ' if not L.named else ''}container(s)"):
                docker("rm", "--force", "--volumes", *containers, what="docker rm (lab nodes)", timeout=600)
            did += 1
        vols = set(docker("volume", "ls", "-q", "--filter", L.label_filter).stdout.split())
        if L.named:
            vols |= {v for v in docker("volume", "ls", "-q").stdout.split()
                     if v.startswith(L.prefix + "-node") and v.endswith("-docker")}
        else:
            vols |= {v for v in docker("volume", "ls", "-q").stdout.split()
                     if v.startswith("swarm-registry-lab-node") and v.endswith("-docker")}
        if vols:
            with Step(out, f"removing {len(vols)} volume(s)"):
                docker("volume", "rm", "--force", *sorted(vols), what="docker volume rm (lab)", timeout=600)
            did += 1
        if inspect("network", [L.network]):
            docker("network", "rm", L.network, what=f"docker network rm {L.network}")
            out(f"[lab] removed network {L.network}")
            did += 1
        if hosts_file.remove(tag=L.hosts_tag):
            out(f"[lab] removed the {L.hosts_tag} line from {S.HOSTS_FILE}")
            did += 1
        if _remove_lab_dir(L):
            out(f"[lab] removed {L.lab_dir}")
            did += 1
        if L.config_file.exists():
            L.config_file.unlink()
            out(f"[lab] removed {L.config_file}")
            did += 1
        if purge:
            others = docker("ps", "-aq", "--filter", f"label={S.LABEL}").stdout.split() if L.named else []
            if others:
                out("[lab] images kept: other labs still use them")
            elif images.remove_images(out):
                did += 1
    if did:
        out(f"[lab] {L.title} is down ({time.monotonic() - t0:.1f} s)")
    else:
        out(f"[lab] nothing to remove: no {L.title} here")


def _named_lab_dirs() -> list[Path]:
    try:
        return [d for d in S.LAB_DIR.iterdir() if d.is_dir() and (d / S.NAMED_MARKER).is_file()]
    except FileNotFoundError:
        return []


def _remove_lab_dir(L: S.Lab) -> bool:
    """Remove the lab's files; the default lab's down keeps the directories of named labs."""
    if L.named:
        if not L.lab_dir.exists():
            return False
        shutil.rmtree(L.lab_dir)
        try:
            S.LAB_DIR.rmdir()  # only if nothing else is left
        except OSError:
            pass
        return True
    if not S.LAB_DIR.exists():
        return False
    keep = set(_named_lab_dirs())
    if not keep:
        shutil.rmtree(S.LAB_DIR)
        return True
    changed = False
    for entry in S.LAB_DIR.iterdir():
        if entry in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        changed = True
    return changed


# ---------------------------------------------------------------------------------------
# status


def status(out: Out = print, *, name: str = "") -> dict:
    """What exists and runs; prints a short summary through out."""
    L = S.lab(name)
    info: dict = {
        "engine": False,
        "images": {},
        "network": {"name": L.network, "exists": False, "subnet": None, "subnet6": None},
        "nodes": {},
        "hosts_line": hosts_file.current(tag=L.hosts_tag),
        "config": str(L.config_file) if L.config_file.exists() else None,
        "key": L.key_file.exists(),
        "known_hosts": L.known_hosts.exists(),
        "up": False,
    }
    if L.named:
        info["name"] = L.name
        info["bastion"] = None
    try:
        require_engine()
        info["engine"] = True
    except LabError as exc:
        out(f"[lab] {exc}")
        return info
    for kind, tag in images.image_tags().items():
        info["images"][kind] = {"tag": tag, "present": image_id(tag) is not None}
    info["images"]["other"] = sorted(t for t in images.lab_images()
                                     if t not in (images.node_image_tag(), S.REGISTRY_IMAGE))
    net = inspect("network", [L.network]).get(L.network)
    if net:
        info["network"].update(exists=True, subnet=_network_subnet(net), subnet6=_network_subnet6(net))
    containers = _lab_containers(L)
    present = _node_containers(L, containers)
    count = _recorded_nodes(L) if present else None
    if count is None:
        count = 0
        for obj in containers.values():
            try:
                count = max(count, int(_labels(obj).get(S.LABEL_NODES, "0")))
            except ValueError:
                pass
    labelled = sum(1 for obj in containers.values() if _node_index(obj) is not None)  # nodes only
    top = max([count, *present]) if present else max(count, labelled if not L.named else 0)
    for i in range(1, top + 1):
        cname = L.container_name(i)
        obj = containers.get(cname)
        node = {"container": cname, "exists": obj is not None, "running": False, "ip": None, "ip6": None,
                "swarm": None}
        if obj:
            node["running"] = _running(obj)
            node["ip"] = _container_ip(obj, L.network)
            node["ip6"] = _container_ip6(obj, L.network)
            if node["running"]:
                node["swarm"] = _swarm_state(i, L) or None
        info["nodes"][S.hostname(i)] = node
    bastion_obj = containers.get(L.bastion_name)
    if bastion_obj is not None:
        info["bastion"] = {"container": L.bastion_name, "running": _running(bastion_obj),
                           "ip": _container_ip(bastion_obj, L.network)}
    from devtools import ceph

    ceph_info = ceph.probe(L)
    if ceph_info is not None:
        info["ceph"] = ceph_info
    info["up"] = bool(info["nodes"]) and all(n["running"] and n["swarm"] == "active" for n in info["nodes"].values()) \
        and info["config"] is not None and (bastion_obj is None or _running(bastion_obj)) \
        and (not _config_says_s3(L) or bool(ceph_info and ceph_info["s3"]))
    imgs = ", ".join(f"{v['tag']} ({'present' if v['present'] else 'absent'})"
                     for k, v in info["images"].items() if k != "other")
    out(f"[lab] images: {imgs}")
    out(f"[lab] network {L.network}: " + (", ".join(filter(None, (info["network"]["subnet"],
                                                               info["network"]["subnet6"]))) if net else "absent"))
    if not info["nodes"]:
        out("[lab] nodes: none")
    for host, n in info["nodes"].items():
        state = "running" if n["running"] else ("stopped" if n["exists"] else "missing")
        ip6 = f" ip6={n['ip6']}" if n["ip6"] else ""
        out(f"[lab] {host}: {n['container']} {state} ip={n['ip'] or '-'}{ip6} swarm={n['swarm'] or '-'}")
    if info.get("bastion"):
        b = info["bastion"]
        out(f"[lab] bastion: {b['container']} {'running' if b['running'] else 'stopped'} ip={b['ip'] or '-'}")
    if ceph_info is not None:
        c = ceph_info
        state = "up" if c["s3"] else ("down (running, S3 not answering)" if c["running"] else "down (stopped)")
        out(f"[lab] ceph: {c['container']} {state} endpoint={c['endpoint'] or '-'}")
    all_lines = hosts_file.tagged_lines(tag=L.hosts_tag)
    if len(all_lines) > 1:  # registry replicas: one line per registry node
        info["hosts_lines"] = all_lines
        out(f"[lab] /etc/hosts: {' | '.join(all_lines)}")
    else:
        out(f"[lab] /etc/hosts: {info['hosts_line'] or 'no lab line'}")
    out(f"[lab] settings: {info['config'] or 'absent'}; {L.title} is {'UP' if info['up'] else 'not up'}")
    return info


def _config_says_s3(L: S.Lab) -> bool:
    try:
        data = yaml.safe_load(L.config_file.read_text())
        return data["storage"]["driver"] == "s3"
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return False


def lab_names() -> list[str]:
    """Names of the named labs that have containers or files on this machine."""
    names = set()
    proc = docker("ps", "-a", "--filter", f"label={S.LABEL}", "--format",
                  '{{.Label "' + S.LABEL + '"}}', check=False)
    for value in proc.stdout.split():
        if value and value != "1":
            names.add(value)
    for d in _named_lab_dirs():
        names.add(d.name)
    return sorted(names)
