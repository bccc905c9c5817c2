"""Dev tooling: a real Ceph RADOS Gateway serving S3 on the lab network (not shipped product).

One unprivileged container ``swarm-registry-lab-ceph`` (Debian bookworm's Ceph: mon + one
bluestore OSD on a sparse file + radosgw) at the fixed address ``.5`` of the lab subnet,
on the lab's docker network, so that the lab nodes can reach it; its cluster lives in the
volume ``swarm-registry-lab-ceph-data`` and survives container restarts.

Public API::

    info = ceph.up(out=print)   # -> CephInfo; idempotent, builds the image only when its recipe changed
    ceph.down(out=print)        # removes the container and its volume (purge=True: the images too)
    ceph.status(out=print) -> dict

The S3 keys are generated inside the container and never appear on a command line; ``up``
writes them to ``.lab/ceph-credentials`` (mode 0600, env-file syntax).
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

__all__ = ["CephInfo", "LabError", "up", "down", "status", "CONTAINER", "VOLUME", "CREDENTIALS_FILE"]

CONTAINER = "swarm-registry-lab-ceph"
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


def up(out: Out = print) -> CephInfo:
    """Bring the Ceph container up (idempotent) and return how to reach its S3 API."""
    t0 = time.monotonic()
    require_engine()
    net = S.subnet()
    ip = ceph_ip(net)
    tag = image.ensure_image(out)
    with lab_cluster._locked(out):  # the lab's lock: lab up/down also create/remove the network
        lab_cluster._ensure_network(net, out)
        replaced = _ensure_container(tag, ip, out)
    if replaced:  # the old container held on to its image while the new one was built
        image._remove_stale_images(tag, out)
    _wait_ready(ip, out)
    info = _read_info(ip)
    _write_credentials(info, out)
    out(f"[ceph] S3 is up at {info.endpoint} (region {info.region}, keys in {CREDENTIALS_FILE}) "
        f"({time.monotonic() - t0:.1f} s)")
    return info


def _ensure_container(tag: str, ip: str, out: Out) -> bool:
    """Create or start the container as needed; True if one of an older image was replaced."""
    replaced = False
    obj = inspect("container", [CONTAINER]).get(CONTAINER)
    if obj is not None:
        have_ip = lab_cluster._container_ip(obj)
        if have_ip != ip:
            raise LabError(f"{CONTAINER} has address {have_ip or '(none)'}, expected {ip}: "
                           "run `python -m devtools.ceph down` first")
        if (obj.get("Config") or {}).get("Image") != tag:
            with Step(out, f"replacing {CONTAINER} (its image is not {tag}; data volume kept)"):
                docker("stop", "-t", str(STOP_TIMEOUT), CONTAINER, check=False, timeout=STOP_TIMEOUT + 60)
                docker("rm", "--force", CONTAINER, what=f"docker rm {CONTAINER}")
            replaced = True
        elif not (obj.get("State") or {}).get("Running"):
            with Step(out, f"starting {CONTAINER}"):
                docker("start", CONTAINER, what=f"docker start {CONTAINER}")
            return False
        else:
            return False
    with Step(out, f"starting {CONTAINER} at {ip}"):
        if not inspect("volume", [VOLUME]):
            docker("volume", "create", "--label", f"{S.LABEL}=1", "--label", f"{LABEL_CEPH}=1", VOLUME,
                   what=f"docker volume create {VOLUME}")
        docker(
            "run", "-d",
            "--name", CONTAINER,
            "--hostname", HOSTNAME,
            "--network", S.NETWORK, "--ip", ip,
            "-v", f"{VOLUME}:/var/lib/ceph",
            "--tmpfs", "/run:rw,nosuid,mode=755",
            "--init",
            "--stop-timeout", str(STOP_TIMEOUT),
            "--restart", "no",
            "-e", f"CEPH_IP={ip}",
            "--label", f"{S.LABEL}=1",
            "--label", f"{LABEL_CEPH}=1",
            "--label", f"{S.LABEL_ROOT}={S.ROOT}",
            tag,
            what=f"docker run {CONTAINER}",
        )
    return replaced


def _health() -> str:
    """'HEALTH_OK' etc. once the entrypoint is ready; '' before. Raises _Stopped if it stopped."""
    proc = docker("exec", CONTAINER, "sh", "-c",
                  f"test -e {READY_FILE} && exec timeout 20 ceph --connect-timeout 10 health",
                  check=False, timeout=40)
    if proc.returncode != 0:
        state = docker("inspect", "--format", "{{.State.Running}}", CONTAINER, check=False)
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


def _wait_ready(ip: str, out: Out) -> None:
    last = {"health": ""}

    def healthy() -> bool:
        last["health"] = _health()
        return last["health"] == "HEALTH_OK" and _s3_answers(ip)

    try:
        if healthy():
            return  # warm path: no progress line
        with Step(out, "waiting for Ceph (mon, osd, radosgw, S3 user) to be ready"):
            poll(healthy, timeout=READY_TIMEOUT, interval=1,
                 what=f"{CONTAINER} to be ready (HEALTH_OK and S3 answering on {ip}:{PORT})")
    except _Stopped:
        raise LabError(f"{CONTAINER} stopped: {_log_tail()}") from None
    except LabError as exc:
        raise LabError(f"{exc}; health: {last['health'] or '(not ready)'}; {_detail(last['health'])}") from None


def _detail(health: str) -> str:
    if health.startswith("HEALTH_"):
        proc = docker("exec", CONTAINER, "timeout", "20", "ceph", "health", "detail", check=False, timeout=40)
        return " | ".join(proc.stdout.strip().splitlines()[:4])
    return f"see `docker logs {CONTAINER}`"


def _log_tail(lines: int = 5) -> str:
    proc = docker("logs", "--tail", str(lines), CONTAINER, check=False)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return " | ".join(text[-lines:]) or "(no log)"


def _read_info(ip: str) -> CephInfo:
    # The keys come over docker exec's stdout, never through an argv.
    proc = docker("exec", CONTAINER, "cat", CREDS_IN_CONTAINER, what=f"reading the S3 user in {CONTAINER}")
    try:
        user = json.loads(proc.stdout)
        key = next(k for k in user["keys"] if k.get("user") == S3_UID)
        access, secret = key["access_key"], key["secret_key"]
    except (ValueError, KeyError, StopIteration, TypeError):
        raise LabError(f"{CREDS_IN_CONTAINER} in {CONTAINER} holds no S3 keys for user {S3_UID}") from None
    return CephInfo(endpoint=endpoint(ip), region=REGION, access_key=access, secret_key=secret,
                    container=CONTAINER, ip=ip)


def _write_credentials(info: CephInfo, out: Out) -> None:
    S.LAB_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = (
        "# the lab's Ceph RADOS Gateway (python -m devtools.ceph); removed by its down\n"
        f"S3_ENDPOINT={info.endpoint}\n"
        f"AWS_REGION={info.region}\n"
        f"AWS_ACCESS_KEY_ID={info.access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={info.secret_key}\n"
    )
    if lab_cluster._write_if_changed(CREDENTIALS_FILE, text, 0o600):
        out(f"[ceph] wrote {CREDENTIALS_FILE} (0600)")


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


def down(purge: bool = False, out: Out = print) -> None:
    """Remove the container, its data volume and the credentials file (the images too if purge).

    The lab network is removed only when nothing else is attached to it (no lab node).
    """
    t0 = time.monotonic()
    require_engine()
    did = 0
    with lab_cluster._locked(out):
        if inspect("container", [CONTAINER]):
            with Step(out, f"removing {CONTAINER}"):
                docker("rm", "--force", CONTAINER, what=f"docker rm {CONTAINER}", timeout=120)
            did += 1
        if inspect("volume", [VOLUME]):
            docker("volume", "rm", "--force", VOLUME, what=f"docker volume rm {VOLUME}")
            out(f"[ceph] removed volume {VOLUME}")
            did += 1
        net = inspect("network", [S.NETWORK]).get(S.NETWORK)
        if net is not None and not net.get("Containers"):
            if docker("network", "rm", S.NETWORK, check=False).returncode == 0:
                out(f"[ceph] removed the empty network {S.NETWORK}")
                did += 1
    if CREDENTIALS_FILE.exists():
        CREDENTIALS_FILE.unlink()
        out(f"[ceph] removed {CREDENTIALS_FILE}")
        did += 1
    if purge and image.remove_images(out):
        did += 1
    if did:
        out(f"[ceph] down ({time.monotonic() - t0:.1f} s)")
    else:
        out("[ceph] nothing to remove")


# ---------------------------------------------------------------------------------------
# status


def status(out: Out = print) -> dict:
    """What exists and runs; prints a short summary through out."""
    info: dict = {
        "engine": False,
        "image": {"tag": image.image_tag(), "present": False, "other": []},
        "container": {"name": CONTAINER, "exists": False, "running": False, "ip": None, "image": None},
        "volume": {"name": VOLUME, "exists": False},
        "health": None,
        "s3": False,
        "endpoint": endpoint(),
        "credentials": str(CREDENTIALS_FILE) if CREDENTIALS_FILE.exists() else None,
        "up": False,
    }
    try:
        require_engine()
        info["engine"] = True
    except LabError as exc:
        out(f"[ceph] {exc}")
        return info
    info["image"]["present"] = image_id(info["image"]["tag"]) is not None
    info["image"]["other"] = [t for t in image.ceph_images() if t != info["image"]["tag"]]
    obj = inspect("container", [CONTAINER]).get(CONTAINER)
    if obj:
        ip = lab_cluster._container_ip(obj)
        info["container"].update(exists=True, running=bool((obj.get("State") or {}).get("Running")),
                                 ip=ip, image=(obj.get("Config") or {}).get("Image"))
        if info["container"]["running"]:
            try:
                info["health"] = _health() or "starting"
            except _Stopped:
                info["health"] = None
            info["s3"] = bool(ip) and _s3_answers(ip)
    info["volume"]["exists"] = bool(inspect("volume", [VOLUME]))
    info["up"] = info["health"] == "HEALTH_OK" and info["s3"] and info["credentials"] is not None
    c = info["container"]
    out(f"[ceph] image {info['image']['tag']}: {'present' if info['image']['present'] else 'absent'}")
    out(f"[ceph] container {CONTAINER}: "
        + ("missing" if not c["exists"] else f"{'running' if c['running'] else 'stopped'} ip={c['ip'] or '-'}"))
    out(f"[ceph] volume {VOLUME}: {'present' if info['volume']['exists'] else 'absent'}")
    out(f"[ceph] health: {info['health'] or '-'}; S3 at {info['endpoint']}: {'answers' if info['s3'] else 'no answer'}")
    out(f"[ceph] credentials: {info['credentials'] or 'absent'}; Ceph is {'UP' if info['up'] else 'not up'}")
    return info
