"""Dev tooling: a real Ceph RADOS Gateway serving S3 on the lab network (not shipped product).

One unprivileged container ``swarm-registry-lab-ceph`` (Debian bookworm's Ceph: mon + one
bluestore OSD on a sparse file + radosgw) at the fixed address ``.5`` of the lab subnet,
on the lab's docker network, so that the lab nodes can reach it; its cluster lives in the
volume ``swarm-registry-lab-ceph-data`` and survives container restarts. A named lab X has
its own: ``swarm-registry-lab-X-ceph`` and ``swarm-registry-lab-X-ceph-data`` on its network
``swarm-registry-lab-X`` (labelled swarm-registry-lab=X, so ``lab down --name X`` removes them).

Public API::

    info = ceph.up(out=print)   # -> CephInfo; idempotent, builds the image only when its recipe changed
    ceph.down(out=print)        # removes the container and its volume (purge=True: the images too)
    ceph.status(out=print) -> dict
    ceph.up(name="X") ...       # the same for the named lab X (its network is made if missing)

``lab.up(storage="s3")`` uses ``start`` and ``wait`` (under the lab's own lock).

The S3 keys are generated inside the container and never appear on a command line; ``up``
writes them to ``.lab/ceph-credentials`` (``.lab/X/ceph-credentials``; mode 0600, env-file syntax).
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools.lab import cluster as lab_cluster
from devtools.lab import settings as S
from devtools.lab.engine import Out, Step, docker, image_id, inspect, poll, require_engine
from devtools.lab.errors import LabError

from . import image

__all__ = ["CephInfo", "LabError", "up", "down", "status", "start", "wait", "container_name", "volume_name",
           "credentials_file", "CONTAINER", "VOLUME", "CREDENTIALS_FILE"]

CONTAINER = "swarm-registry-lab-ceph"       # the default lab's; a named lab's: container_name(L)
VOLUME = "swarm-registry-lab-ceph-data"
HOSTNAME = "ceph"
IP_OFFSET = 5                       # .5 of the lab subnet (nodes are .11, .12, ...)
PORT = 7480
REGION = "us-east-1"
S3_UID = "registry"
LABEL_CEPH = "swarm-registry-lab.ceph"  # marks the Ceph container and volume among the lab's objects
CREDENTIALS_FILE = S.LAB_DIR / "ceph-credentials"

READY_FILE = "/run/ceph-lab/ready"   # written by entrypoint.sh once the S3 user exists
CREDS_IN_CONTAINER = "/var/lib/ceph/s3-user.json"
READY_TIMEOUT = 240                 # cold bootstrap takes ~20-40 s; a restart ~10 s
STOP_TIMEOUT = 30                   # docker stop/restart grace for a clean OSD shutdown


@dataclass(frozen=True)
class CephInfo:
    endpoint: str                   # http://IP:7480
    region: str
    access_key: str
    secret_key: str = field(repr=False)
    container: str = CONTAINER
    ip: str = ""


def container_name(L: S.Lab = S.DEFAULT_LAB) -> str:
    return f"{L.prefix}-ceph"


def volume_name(L: S.Lab = S.DEFAULT_LAB) -> str:
    return f"{L.prefix}-ceph-data"


def credentials_file(L: S.Lab = S.DEFAULT_LAB) -> Path:
    return L.lab_dir / "ceph-credentials"


def _subnet(L: S.Lab):
    """The lab's subnet: the default lab's, or a named lab's (its network's if it exists)."""
    if not L.named:
        return S.subnet()
    return L.subnet(lab_cluster._network_subnet(inspect("network", [L.network]).get(L.network)))


def ceph_ip(net=None) -> str:
    net = net or S.subnet()
    addr = net.network_address + IP_OFFSET
    if addr not in net or addr == net.broadcast_address:
        raise LabError(f"the Ceph address .{IP_OFFSET} does not fit in subnet {net}")
    return str(addr)


def endpoint(ip: str | None = None) -> str:
    return f"http://{ip or ceph_ip()}:{PORT}"


# ---------------------------------------------------------------------------------------
# up


class _Stopped(Exception):
    """The container stopped while we waited for it: waiting longer will not help."""


def up(out: Out = print, *, name: str = "") -> CephInfo:
    """Bring the Ceph container of the lab `name` ("" = the default lab) up (idempotent) and
    return how to reach its S3 API."""
    t0 = time.monotonic()
    L = S.lab(name)
    require_engine()
    tag = image.ensure_image(out)
    with lab_cluster._lab_lock(L, out):  # the lab's lock: lab up/down also create/remove the network
        net = _subnet(L)
        lab_cluster._ensure_network(net, out, L)
        ip = start(L, net, tag, out)
    info = wait(L, ip, out)
    _write_credentials(info, out, L)
    out(f"[ceph] S3 is up at {info.endpoint} (region {info.region}, keys in {credentials_file(L)}) "
        f"({time.monotonic() - t0:.1f} s)")
    return info


def start(L: S.Lab, net, tag: str, out: Out) -> str:
    """Create or start the lab's Ceph container (its network exists; the caller holds the lab's
    lock); returns its address. Does not wait for it: see wait()."""
    ip = ceph_ip(net)
    if _ensure_container(tag, ip, out, L):  # the old container held on to its image while the new one was built
        image._remove_stale_images(tag, out)
    return ip


def wait(L: S.Lab, ip: str, out: Out) -> CephInfo:
    """Wait until the lab's Ceph answers (HEALTH_OK, S3 on ip:7480); its endpoint and keys."""
    _wait_ready(ip, out, container_name(L))
    return _read_info(ip, container_name(L))


def _ensure_container(tag: str, ip: str, out: Out, L: S.Lab = S.DEFAULT_LAB) -> bool:
    """Create or start the container as needed; True if one of an older image was replaced."""
    replaced = False
    container, volume = container_name(L), volume_name(L)
    obj = inspect("container", [container]).get(container)
    if obj is not None:
        have_ip = lab_cluster._container_ip(obj, L.network)
        if have_ip != ip:
            raise LabError(f"{container} has address {have_ip or '(none)'}, expected {ip}: "
                           f"run `{_down_hint(L)}` first")
        if (obj.get("Config") or {}).get("Image") != tag:
            with Step(out, f"replacing {container} (its image is not {tag}; data volume kept)"):
                docker("stop", "-t", str(STOP_TIMEOUT), container, check=False, timeout=STOP_TIMEOUT + 60)
                docker("rm", "--force", container, what=f"docker rm {container}")
            replaced = True
        elif not (obj.get("State") or {}).get("Running"):
            with Step(out, f"starting {container}"):
                docker("start", container, what=f"docker start {container}")
            return False
        else:
            return False
    with Step(out, f"starting {container} at {ip}"):
        if not inspect("volume", [volume]):
            docker("volume", "create", "--label", f"{S.LABEL}={L.label_value}", "--label", f"{LABEL_CEPH}=1",
                   volume, what=f"docker volume create {volume}")
        docker(
            "run", "-d",
            "--name", container,
            "--hostname", HOSTNAME,
            "--network", L.network, "--ip", ip,
            "-v", f"{volume}:/var/lib/ceph",
            "--tmpfs", "/run:rw,nosuid,mode=755",
            "--init",
            "--stop-timeout", str(STOP_TIMEOUT),
            "--restart", "no",
            "-e", f"CEPH_IP={ip}",
            "--label", f"{S.LABEL}={L.label_value}",
            "--label", f"{LABEL_CEPH}=1",
            "--label", f"{S.LABEL_ROOT}={S.ROOT}",
            tag,
            what=f"docker run {container}",
        )
    return replaced


def _down_hint(L: S.Lab) -> str:
    return "python -m devtools.ceph down" + (f" --name {L.name}" if L.named else "")


def _health(container: str = CONTAINER) -> str:
    """'HEALTH_OK' etc. once the entrypoint is ready; '' before. Raises _Stopped if it stopped."""
    proc = docker("exec", container, "sh", "-c",
                  f"test -e {READY_FILE} && exec timeout 20 ceph --connect-timeout 10 health",
                  check=False, timeout=40)
    if proc.returncode != 0:
        state = docker("inspect", "--format", "{{.State.Running}}", container, check=False)
        if state.stdout.strip() != "true":
            raise _Stopped()
        return ""
    return proc.stdout.strip()


def _s3_answers(ip: str) -> bool:
    """An anonymous GET / from this machine answers 200 (no proxy: straight to the container)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{ip}:{PORT}/", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(ip: str, out: Out, container: str = CONTAINER) -> None:
    last = {"health": ""}

    def healthy() -> bool:
        last["health"] = _health(container)
        return last["health"] == "HEALTH_OK" and _s3_answers(ip)

    try:
        if healthy():
            return  # warm path: no progress line
        with Step(out, "waiting for Ceph (mon, osd, radosgw, S3 user) to be ready"):
            poll(healthy, timeout=READY_TIMEOUT, interval=1,
                 what=f"{container} to be ready (HEALTH_OK and S3 answering on {ip}:{PORT})")
    except _Stopped:
        raise LabError(f"{container} stopped: {_log_tail(container)}") from None
    except LabError as exc:
        raise LabError(f"{exc}; health: {last['health'] or '(not ready)'}; "
                       f"{_detail(last['health'], container)}") from None


def _detail(health: str, container: str = CONTAINER) -> str:
    if health.startswith("HEALTH_"):
        proc = docker("exec", container, "timeout", "20", "ceph", "health", "detail", check=False, timeout=40)
        return " | ".join(proc.stdout.strip().splitlines()[:4])
    return f"see `docker logs {container}`"


def _log_tail(container: str = CONTAINER, lines: int = 5) -> str:
    proc = docker("logs", "--tail", str(lines), container, check=False)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return " | ".join(text[-lines:]) or "(no log)"


def _read_info(ip: str, container: str = CONTAINER) -> CephInfo:
    # The keys come over docker exec's stdout, never through an argv.
    proc = docker("exec", container, "cat", CREDS_IN_CONTAINER, what=f"reading the S3 user in {container}")
    try:
        user = json.loads(proc.stdout)
        key = next(k for k in user["keys"] if k.get("user") == S3_UID)
        access, secret = key["access_key"], key["secret_key"]
    except (ValueError, KeyError, StopIteration, TypeError):
        raise LabError(f"{CREDS_IN_CONTAINER} in {container} holds no S3 keys for user {S3_UID}") from None
    return CephInfo(endpoint=endpoint(ip), region=REGION, access_key=access, secret_key=secret,
                    container=container, ip=ip)


def _write_credentials(info: CephInfo, out: Out, L: S.Lab = S.DEFAULT_LAB) -> None:
    if L.named:
        lab_cluster._ensure_lab_dir(L)
    else:
        S.LAB_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = credentials_file(L)
    text = (
        "# the lab's Ceph RADOS Gateway (python -m devtools.ceph); removed by its down\n"
        f"S3_ENDPOINT={info.endpoint}\n"
        f"AWS_REGION={info.region}\n"
        f"AWS_ACCESS_KEY_ID={info.access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={info.secret_key}\n"
    )
    if lab_cluster._write_if_changed(path, text, 0o600):
        out(f"[ceph] wrote {path} (0600)")


def read_credentials(path: Path = CREDENTIALS_FILE) -> dict[str, str]:
    """The KEY=VALUE lines of .lab/ceph-credentials ({} if absent)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (ln.split("=", 1) for ln in lines if "=" in ln and not ln.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


# ---------------------------------------------------------------------------------------
# down


def down(purge: bool = False, out: Out = print, *, name: str = "") -> None:
    """Remove the lab's Ceph container, its data volume and the credentials file (the images too if purge).

    The lab network is removed only when nothing else is attached to it (no lab node).
    """
    t0 = time.monotonic()
    L = S.lab(name)
    container, volume, creds = container_name(L), volume_name(L), credentials_file(L)
    require_engine()
    did = 0
    with lab_cluster._lab_lock(L, out):
        if inspect("container", [container]):
            with Step(out, f"removing {container}"):
                docker("rm", "--force", container, what=f"docker rm {container}", timeout=120)
            did += 1
        if inspect("volume", [volume]):
            docker("volume", "rm", "--force", volume, what=f"docker volume rm {volume}")
            out(f"[ceph] removed volume {volume}")
            did += 1
        net = inspect("network", [L.network]).get(L.network)
        if net is not None and not net.get("Containers"):
            if docker("network", "rm", L.network, check=False).returncode == 0:
                out(f"[ceph] removed the empty network {L.network}")
                did += 1
    if creds.exists():
        creds.unlink()
        out(f"[ceph] removed {creds}")
        did += 1
    if purge and image.remove_images(out):
        did += 1
    if did:
        out(f"[ceph] down ({time.monotonic() - t0:.1f} s)")
    else:
        out("[ceph] nothing to remove")


# ---------------------------------------------------------------------------------------
# status


def probe(L: S.Lab = S.DEFAULT_LAB) -> dict | None:
    """The lab's Ceph container as lab.status shows it: None if there is none, else
    {container, running, ip, endpoint, s3} (s3: an anonymous GET / answers)."""
    container = container_name(L)
    obj = inspect("container", [container]).get(container)
    if obj is None:
        return None
    ip = lab_cluster._container_ip(obj, L.network)
    running = bool((obj.get("State") or {}).get("Running"))
    return {"container": container, "running": running, "ip": ip,
            "endpoint": endpoint(ip) if ip else None, "s3": bool(running and ip and _s3_answers(ip))}


def _credentials_path(L: S.Lab) -> str | None:
    """Where the keys are: credentials_file(L) (ceph up), else the lab's state_dir (lab up --storage s3)."""
    from swarm_registry import s3creds

    for path in (credentials_file(L), L.state_dir / s3creds.FILE):
        if path.exists():
            return str(path)
    return None


def status(out: Out = print, *, name: str = "") -> dict:
    """What exists and runs; prints a short summary through out."""
    L = S.lab(name)
    container, volume = container_name(L), volume_name(L)
    info: dict = {
        "engine": False,
        "image": {"tag": image.image_tag(), "present": False, "other": []},
        "container": {"name": container, "exists": False, "running": False, "ip": None, "image": None},
        "volume": {"name": volume, "exists": False},
        "health": None,
        "s3": False,
        "endpoint": None if L.named else endpoint(),
        "credentials": _credentials_path(L),
        "up": False,
    }
    try:
        require_engine()
        info["engine"] = True
    except LabError as exc:
        out(f"[ceph] {exc}")
        return info
    if L.named:
        try:
            info["endpoint"] = endpoint(ceph_ip(_subnet(L)))
        except LabError:
            pass
    info["image"]["present"] = image_id(info["image"]["tag"]) is not None
    info["image"]["other"] = [t for t in image.ceph_images() if t != info["image"]["tag"]]
    obj = inspect("container", [container]).get(container)
    if obj:
        ip = lab_cluster._container_ip(obj, L.network)
        info["container"].update(exists=True, running=bool((obj.get("State") or {}).get("Running")),
                                 ip=ip, image=(obj.get("Config") or {}).get("Image"))
        if info["container"]["running"]:
            try:
                info["health"] = _health(container) or "starting"
            except _Stopped:
                info["health"] = None
            info["s3"] = bool(ip) and _s3_answers(ip)
    info["volume"]["exists"] = bool(inspect("volume", [volume]))
    info["up"] = info["health"] == "HEALTH_OK" and info["s3"] and info["credentials"] is not None
    c = info["container"]
    out(f"[ceph] image {info['image']['tag']}: {'present' if info['image']['present'] else 'absent'}")
    out(f"[ceph] container {container}: "
        + ("missing" if not c["exists"] else f"{'running' if c['running'] else 'stopped'} ip={c['ip'] or '-'}"))
    out(f"[ceph] volume {volume}: {'present' if info['volume']['exists'] else 'absent'}")
    out(f"[ceph] health: {info['health'] or '-'}; S3 at {info['endpoint'] or '-'}: "
        f"{'answers' if info['s3'] else 'no answer'}")
    out(f"[ceph] credentials: {info['credentials'] or 'absent'}; Ceph is {'UP' if info['up'] else 'not up'}")
    return info
