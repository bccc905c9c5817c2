"""lab.up / lab.down / lab.status: the local N-node swarm used by tests and the demo."""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import hosts_file, images
from . import settings as S
from .engine import Out, Step, docker, docker_bin, image_id, inspect, node_exec, poll, require_engine, run
from .errors import LabError

LOCK_FILE = Path(tempfile.gettempdir()) / "swarm-registry-lab.lock"

NODE_READY_TIMEOUT = 90      # sshd + dockerd up in every node
SWARM_SETTLE_TIMEOUT = 60    # LocalNodeState leaves "pending"
SWARM_READY_TIMEOUT = 90     # all nodes Ready in `docker node ls`

# Runs inside each node (fixed text, the public key comes on stdin): installs the lab key,
# prints the ed25519 host key, then the swarm state (fails while dockerd is not ready).
NODE_PROBE = r"""
set -e
umask 077
mkdir -p /root/.ssh
key=$(cat)
if [ -n "$key" ] && ! grep -qxF "$key" /root/.ssh/authorized_keys 2>/dev/null; then
    printf '%s\n' "$key" >> /root/.ssh/authorized_keys
fi
chmod 700 /root/.ssh
[ -f /root/.ssh/authorized_keys ] && chmod 600 /root/.ssh/authorized_keys
cat /etc/ssh/ssh_host_ed25519_key.pub
if [ -e /run/swarm-registry-lab.cgroup-ro ]; then echo CGROUP-RO; exit 0; fi
docker info --format '{{.Swarm.LocalNodeState}}'
"""


# ---------------------------------------------------------------------------------------
# small helpers


class _Fatal(LabError):
    """A node probe found a problem that waiting will not fix."""


@contextlib.contextmanager
def _locked(out: Out, timeout: float = 900):
    fd = os.open(str(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out("[lab] another lab up/down is running; waiting for it...")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(f"another lab up/down still holds {LOCK_FILE} after {timeout:.0f} s") from None
                    time.sleep(1)
        yield
    finally:
        os.close(fd)


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


def _ensure_lab_dir() -> None:
    for d in (S.LAB_DIR, S.STATE_DIR):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        d.chmod(0o700)


def _ensure_key(out: Out) -> str:
    """The lab key pair (made once); returns the public key line."""
    _ensure_lab_dir()
    pub = Path(str(S.KEY_FILE) + ".pub")
    if not S.KEY_FILE.exists() or not pub.exists():
        for p in (S.KEY_FILE, pub):
            if p.exists():
                p.unlink()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "swarm-registry-lab",
             "-f", str(S.KEY_FILE)], what="ssh-keygen (lab key)")
        out(f"[lab] made SSH key {S.KEY_FILE}")
    S.KEY_FILE.chmod(0o600)
    pub.chmod(0o644)
    return pub.read_text().strip()


def _lab_containers() -> dict[str, dict]:
    """Inspect data of every container labelled swarm-registry-lab, by name."""
    proc = docker("ps", "-a", "--filter", f"label={S.LABEL}=1", "--format", "{{.Names}}")
    names = [n for n in proc.stdout.split() if n]
    return inspect("container", names)


def _labels(obj: dict) -> dict:
    return (obj.get("Config") or {}).get("Labels") or {}


def _container_ip(obj: dict) -> str | None:
    nets = (obj.get("NetworkSettings") or {}).get("Networks") or {}
    net = nets.get(S.NETWORK) or {}
    ipam = net.get("IPAMConfig") or {}
    return ipam.get("IPv4Address") or net.get("IPAddress") or None


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


# ---------------------------------------------------------------------------------------
# up


def up(nodes: int | None = None, out: Out = print) -> Path:
    """Bring the lab up (idempotent) and return the path of config/lab.yaml.

    nodes=None keeps the size of an existing lab (3 for a new one).
    """
    t0 = time.monotonic()
    with _locked(out):
        require_engine()
        net = S.subnet()
        existing = _lab_containers()
        nodes = _decide_node_count(nodes, existing)
        ips = {i: S.node_ip(i, net) for i in range(1, nodes + 1)}

        node_tag = images.ensure_node_image(out)
        registry_tag = images.ensure_registry_image(out)
        _ensure_network(net, out)
        pubkey = _ensure_key(out)
        _ensure_containers(nodes, ips, node_tag, existing, out)
        host_keys, states = _wait_nodes(nodes, ips, pubkey, out)
        _write_known_hosts(ips, host_keys, out)
        _ensure_swarm(nodes, ips, states, out)
        _ensure_registry_image_on_node1(registry_tag, out)
        if hosts_file.ensure(ips[1], S.REGISTRY_HOST):
            out(f"[lab] /etc/hosts: {S.REGISTRY_HOST} -> {ips[1]}")
        path = _write_config(ips, out)
    out(f"[lab] lab is up: {nodes} node(s), registry host {S.REGISTRY_HOST} -> {ips[1]}, "
        f"settings {path} ({time.monotonic() - t0:.1f} s)")
    return path


def _decide_node_count(nodes: int | None, existing: dict[str, dict]) -> int:
    have = None
    for name, obj in existing.items():
        labels = _labels(obj)
        root = labels.get(S.LABEL_ROOT)
        if root and root != str(S.ROOT):
            raise LabError(f"a lab made from another checkout ({root}) exists: run `python -m devtools.lab down` there first")
        try:
            n = int(labels.get(S.LABEL_NODES, "0"))
        except ValueError:
            n = 0
        if n:
            have = max(have or 0, n)
    if existing and have is None:
        have = len(existing)
    if nodes is None:
        nodes = have or S.DEFAULT_NODES
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= S.MAX_NODES:
        raise LabError(f"nodes must be an integer from 1 to {S.MAX_NODES}, got {nodes!r}")
    if have is not None and have != nodes:
        raise LabError(f"the existing lab has {have} node(s), {nodes} requested: run `python -m devtools.lab down` first")
    return nodes


def _ensure_network(net, out: Out) -> None:
    obj = inspect("network", [S.NETWORK]).get(S.NETWORK)
    if obj:
        subnets = [c.get("Subnet") for c in ((obj.get("IPAM") or {}).get("Config") or [])]
        if str(net) not in subnets:
            raise LabError(f"network {S.NETWORK} exists with subnet {', '.join(map(str, subnets)) or '?'}, "
                           f"not {net}: run `python -m devtools.lab down` first")
        return
    proc = docker("network", "create", "--driver", "bridge", "--subnet", str(net),
                  "--label", f"{S.LABEL}=1", S.NETWORK, check=False)
    if proc.returncode != 0:
        raise LabError(f"cannot create network {S.NETWORK} with subnet {net}: {proc.stderr.strip()} "
                       f"(set {S.SUBNET_ENV} to a free /24)")
    out(f"[lab] created network {S.NETWORK} ({net})")


def _ensure_containers(nodes: int, ips: dict[int, str], node_tag: str,
                       existing: dict[str, dict], out: Out) -> None:
    to_start, to_create = [], []
    for i in range(1, nodes + 1):
        name = S.container_name(i)
        obj = existing.get(name)
        if obj is None:
            to_create.append(i)
            continue
        ip = _container_ip(obj)
        if ip and ip != ips[i]:
            raise LabError(f"{name} has address {ip}, expected {ips[i]}: run `python -m devtools.lab down` first")
        if (obj.get("Config") or {}).get("Image") != node_tag:
            out(f"[lab] note: {name} runs an older node image; `lab down` then `lab up` rebuilds it")
        if not (obj.get("State") or {}).get("Running"):
            to_start.append(i)
    if not to_create and not to_start:
        return
    label = ", ".join(S.hostname(i) for i in to_create + to_start)
    with Step(out, f"starting node container(s) {label}"):
        for i in to_create:
            _create_node(i, nodes, ips, node_tag)
        if to_start:
            docker("start", *[S.container_name(i) for i in to_start], what="docker start (lab nodes)")


def _create_node(i: int, nodes: int, ips: dict[int, str], node_tag: str) -> None:
    vol = S.volume_name(i)
    if not inspect("volume", [vol]):
        docker("volume", "create", "--label", f"{S.LABEL}=1", "--label", f"{S.LABEL_NODE}={i}", vol,
               what=f"docker volume create {vol}")
    docker(
        "run", "-d",
        "--name", S.container_name(i),
        "--hostname", S.hostname(i),
        "--network", S.NETWORK, "--ip", ips[i],
        "--add-host", f"{S.REGISTRY_HOST}:{ips[1]}",
        "-v", f"{vol}:/var/lib/docker",
        "--tmpfs", "/run:rw,exec,nosuid,mode=755",
        "--restart", "no",
        *S.NODE_RUN_FLAGS,
        "--label", f"{S.LABEL}=1",
        "--label", f"{S.LABEL_NODE}={i}",
        "--label", f"{S.LABEL_NODES}={nodes}",
        "--label", f"{S.LABEL_ROOT}={S.ROOT}",
        node_tag,
        what=f"docker run {S.container_name(i)}",
    )


def _wait_nodes(nodes: int, ips: dict[int, str], pubkey: str, out: Out):
    """Poll every node until sshd answers and its dockerd works; install the key on the way."""
    host_keys: dict[int, str] = {}
    states: dict[int, str] = {}
    pending = set(range(1, nodes + 1))

    def probe(i: int):
        if not _ssh_banner(ips[i]):
            return None
        proc = node_exec(S.container_name(i), "sh", "-c", NODE_PROBE, input=pubkey + "\n",
                         check=False, timeout=30)
        if proc.returncode != 0:
            running = docker("inspect", "--format", "{{.State.Running}}", S.container_name(i), check=False)
            if running.stdout.strip() != "true":
                raise _Fatal(f"node container {S.container_name(i)} is not running: see "
                             f"`docker logs {S.container_name(i)}`")
            return None
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        if len(lines) < 2 or not lines[0].startswith("ssh-ed25519 "):
            return None
        if lines[-1] == "CGROUP-RO":
            raise _Fatal(f"{S.hostname(i)}: the cgroup hierarchy stayed read-only inside the node container, so "
                         f"its dockerd cannot start containers (see `docker logs {S.container_name(i)}`)")
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
                            f"`docker logs {S.container_name(min(pending))}` and /var/log/dockerd.log inside")
                    time.sleep(0.5)
                    sweep()
    return host_keys, states


def _write_known_hosts(ips: dict[int, str], host_keys: dict[int, str], out: Out) -> None:
    lines = []
    for i in sorted(ips):
        parts = host_keys[i].split()
        lines.append(f"{ips[i]} {parts[0]} {parts[1]}")
    if _write_if_changed(S.KNOWN_HOSTS, "".join(ln + "\n" for ln in lines), 0o600):
        out(f"[lab] wrote {S.KNOWN_HOSTS}")


def _swarm_state(i: int) -> str:
    proc = node_exec(S.container_name(i), "docker", "info", "--format", "{{.Swarm.LocalNodeState}}",
                     check=False, timeout=30)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _ensure_swarm(nodes: int, ips: dict[int, str], states: dict[int, str], out: Out) -> None:
    node1 = S.container_name(1)

    def ready_hosts() -> set[str]:
        proc = node_exec(node1, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}",
                         check=False, timeout=30)
        if proc.returncode != 0:
            return set()
        return {ln.split()[0] for ln in proc.stdout.splitlines() if ln.split()[1:2] == ["Ready"]}

    want = {S.hostname(i) for i in range(1, nodes + 1)}
    if all(states.get(i) == "active" for i in range(1, nodes + 1)) and want <= ready_hosts():
        return  # the warm path: nothing to do

    with Step(out, f"forming the swarm ({nodes} node(s), manager node1 at {ips[1]})"):
        # A restarted node says "pending" while it reconnects: let it settle first.
        def settled():
            for i in range(1, nodes + 1):
                if states.get(i) in ("pending", ""):
                    states[i] = _swarm_state(i)
            return all(states.get(i) not in ("pending", "") for i in range(1, nodes + 1))
        try:
            poll(settled, timeout=SWARM_SETTLE_TIMEOUT, interval=1, what="the swarm state of the nodes to settle")
        except LabError:
            pass  # a worker stuck in "pending" is re-joined below
        for i in range(1, nodes + 1):
            if states.get(i) in ("error", "locked"):
                raise LabError(f"{S.hostname(i)} swarm state is {states[i]!r}: run `python -m devtools.lab down` then up")

        if states.get(1) != "active":
            docker("exec", node1, "docker", "swarm", "init", "--advertise-addr", ips[1],
                   what="docker swarm init on node1")
            out(f"[lab] swarm initialised on node1 ({ips[1]})")
            states[1] = "active"
        token = ""
        for i in range(2, nodes + 1):
            if states.get(i) == "active":
                continue
            if not token:
                token = node_exec(node1, "docker", "swarm", "join-token", "-q", "worker",
                                  what="docker swarm join-token on node1").stdout.strip()
            if states.get(i) == "pending":
                node_exec(S.container_name(i), "docker", "swarm", "leave", "--force", check=False)
            node_exec(S.container_name(i), "docker", "swarm", "join", "--token", token, f"{ips[1]}:2377",
                      what=f"docker swarm join on {S.hostname(i)}")
            out(f"[lab] {S.hostname(i)} joined the swarm")
        poll(lambda: want <= ready_hosts(), timeout=SWARM_READY_TIMEOUT, interval=1,
             what=f"{nodes} Ready node(s) in `docker node ls` on node1",
             hint="run `python -m devtools.lab down` then up")


def _ensure_registry_image_on_node1(tag: str, out: Out) -> None:
    want = image_id(tag)
    if not want:
        raise LabError(f"registry image {tag} vanished from the control machine's engine")
    node1 = S.container_name(1)
    proc = node_exec(node1, "docker", "image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=30)
    if proc.returncode == 0 and proc.stdout.strip() == want:
        return
    with Step(out, f"loading {tag} into node1"):
        save = subprocess.Popen([docker_bin(), "save", tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        load = subprocess.run([docker_bin(), "exec", "-i", node1, "docker", "load"], stdin=save.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        save.stdout.close()
        save_err = save.stderr.read().decode(errors="replace").strip()
        save.wait()
        if save.returncode != 0:
            raise LabError(f"docker save {tag} failed: {save_err}")
        if load.returncode != 0:
            raise LabError(f"docker load into node1 failed: {load.stderr.decode(errors='replace').strip()}")
        proc = node_exec(node1, "docker", "image", "inspect", "--format", "{{.Id}}", tag, check=False)
        if proc.stdout.strip() != want:
            raise LabError(f"{tag} in node1 has id {proc.stdout.strip() or '(none)'}, expected {want}")


def lab_settings(ips: dict[int, str]) -> dict:
    return {
        "registry": {
            "host": S.REGISTRY_HOST,
            "port": S.REGISTRY_PORT,
            "node": "node1",
            "image": S.REGISTRY_IMAGE,
            "resolve_image": "never",
            "login_user": S.REGISTRY_USER,
        },
        "cert": {"alt_names": []},
        "users": [S.REGISTRY_USER],
        "hosts": {
            S.hostname(i): {"address": ips[i], "user": "root", "port": 22,
                            "roles": ["manager" if i == 1 else "worker"]}
            for i in sorted(ips)
        },
        "ssh": {
            "identity_file": str(S.KEY_FILE),
            "known_hosts": str(S.KNOWN_HOSTS),
            "accept_new_host_keys": False,
        },
        "state_dir": str(S.STATE_DIR),
    }


def _write_config(ips: dict[int, str], out: Out) -> Path:
    text = ("# generated by lab.up; removed by lab.down\n"
            + yaml.safe_dump(lab_settings(ips), sort_keys=False, default_flow_style=False))
    if _write_if_changed(S.CONFIG_FILE, text, 0o644):
        out(f"[lab] wrote {S.CONFIG_FILE}")
    return S.CONFIG_FILE


# ---------------------------------------------------------------------------------------
# down


def down(purge: bool = False, out: Out = print) -> None:
    """Remove exactly what up() made (images too if purge)."""
    t0 = time.monotonic()
    with _locked(out):
        require_engine()
        did = 0
        containers = docker("ps", "-aq", "--filter", f"label={S.LABEL}=1").stdout.split()
        if containers:
            with Step(out, f"removing {len(containers)} node container(s)"):
                docker("rm", "--force", "--volumes", *containers, what="docker rm (lab nodes)", timeout=600)
            did += 1
        vols = set(docker("volume", "ls", "-q", "--filter", f"label={S.LABEL}=1").stdout.split())
        vols |= {v for v in docker("volume", "ls", "-q").stdout.split()
                 if v.startswith("swarm-registry-lab-node") and v.endswith("-docker")}
        if vols:
            with Step(out, f"removing {len(vols)} volume(s)"):
                docker("volume", "rm", "--force", *sorted(vols), what="docker volume rm (lab)", timeout=600)
            did += 1
        if inspect("network", [S.NETWORK]):
            docker("network", "rm", S.NETWORK, what=f"docker network rm {S.NETWORK}")
            out(f"[lab] removed network {S.NETWORK}")
            did += 1
        if hosts_file.remove():
            out(f"[lab] removed the {S.HOSTS_TAG} line from {S.HOSTS_FILE}")
            did += 1
        if S.LAB_DIR.exists():
            shutil.rmtree(S.LAB_DIR)
            out(f"[lab] removed {S.LAB_DIR}")
            did += 1
        if S.CONFIG_FILE.exists():
            S.CONFIG_FILE.unlink()
            out(f"[lab] removed {S.CONFIG_FILE}")
            did += 1
        if purge and images.remove_images(out):
            did += 1
    if did:
        out(f"[lab] lab is down ({time.monotonic() - t0:.1f} s)")
    else:
        out("[lab] nothing to remove: no lab here")


# ---------------------------------------------------------------------------------------
# status


def status(out: Out = print) -> dict:
    """What exists and runs; prints a short summary through out."""
    info: dict = {
        "engine": False,
        "images": {},
        "network": {"name": S.NETWORK, "exists": False, "subnet": None},
        "nodes": {},
        "hosts_line": hosts_file.current(),
        "config": str(S.CONFIG_FILE) if S.CONFIG_FILE.exists() else None,
        "key": S.KEY_FILE.exists(),
        "known_hosts": S.KNOWN_HOSTS.exists(),
        "up": False,
    }
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
    net = inspect("network", [S.NETWORK]).get(S.NETWORK)
    if net:
        cfg = (net.get("IPAM") or {}).get("Config") or []
        info["network"].update(exists=True, subnet=cfg[0].get("Subnet") if cfg else None)
    containers = _lab_containers()
    count = 0
    for obj in containers.values():
        try:
            count = max(count, int(_labels(obj).get(S.LABEL_NODES, "0")))
        except ValueError:
            pass
    for i in range(1, max(count, len(containers)) + 1):
        name = S.container_name(i)
        obj = containers.get(name)
        node = {"container": name, "exists": obj is not None, "running": False, "ip": None, "swarm": None}
        if obj:
            node["running"] = bool((obj.get("State") or {}).get("Running"))
            node["ip"] = _container_ip(obj)
            if node["running"]:
                node["swarm"] = _swarm_state(i) or None
        info["nodes"][S.hostname(i)] = node
    info["up"] = bool(info["nodes"]) and all(n["running"] and n["swarm"] == "active" for n in info["nodes"].values()) \
        and info["config"] is not None
    imgs = ", ".join(f"{v['tag']} ({'present' if v['present'] else 'absent'})"
                     for k, v in info["images"].items() if k != "other")
    out(f"[lab] images: {imgs}")
    out(f"[lab] network {S.NETWORK}: " + (info["network"]["subnet"] if net else "absent"))
    if not info["nodes"]:
        out("[lab] nodes: none")
    for host, n in info["nodes"].items():
        state = "running" if n["running"] else ("stopped" if n["exists"] else "missing")
        out(f"[lab] {host}: {n['container']} {state} ip={n['ip'] or '-'} swarm={n['swarm'] or '-'}")
    out(f"[lab] /etc/hosts: {info['hosts_line'] or 'no lab line'}")
    out(f"[lab] settings: {info['config'] or 'absent'}; lab is {'UP' if info['up'] else 'not up'}")
    return info
