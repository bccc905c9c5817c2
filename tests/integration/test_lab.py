"""The local lab cluster, for real: N Docker-in-Docker nodes with sshd forming a swarm.

Needs root and a working Docker engine on this machine. The module brings a 3-node lab up
once (the node image is built on first use, about 1 min) and takes it down at the end,
unless SWARM_REGISTRY_KEEP_LAB=1 (then the lab stays and the down() test is skipped).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from devtools import lab
from devtools.lab import hosts_file, images
from devtools.lab import settings as S

pytestmark = pytest.mark.lab

NODES = 3
KEEP = os.environ.get("SWARM_REGISTRY_KEEP_LAB") == "1"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    pytest.fail(f"{tool} is required but missing (make deps installs it)")


def _engine_or_skip() -> None:
    _need("docker")
    if subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed)")
    if os.geteuid() != 0:
        pytest.fail("the lab needs root")


def sh(*argv: str, check: bool = True, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def node_exec(i: int, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("docker", "exec", S.container_name(i), *argv, check=check)


def wait_for(check, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - report the last one on timeout
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last!r})")
        time.sleep(interval)


@pytest.fixture(scope="module")
def ips() -> dict[int, str]:
    return {i: S.node_ip(i) for i in range(1, NODES + 1)}


@pytest.fixture(scope="module")
def the_lab(ips):
    _engine_or_skip()
    lines: list[str] = []
    path = lab.up(nodes=NODES, out=lines.append)
    yield {"path": path, "lines": lines}
    if not KEEP:
        lab.down(out=lambda _l: None)


def _containers() -> dict[str, dict]:
    names = sh("docker", "ps", "-a", "--filter", f"label={S.LABEL}=1", "--format", "{{.Names}}").stdout.split()
    if not names:
        return {}
    return {o["Name"].lstrip("/"): o for o in json.loads(sh("docker", "inspect", *names).stdout)}


# ---------------------------------------------------------------------------------------


def test_three_nodes_running_with_fixed_ips(the_lab, ips):
    conts = _containers()
    assert sorted(conts) == [S.container_name(i) for i in range(1, NODES + 1)]
    for i in range(1, NODES + 1):
        obj = conts[S.container_name(i)]
        assert obj["State"]["Running"], f"{S.container_name(i)} not running"
        assert obj["Config"]["Hostname"] == f"node{i}"
        assert obj["NetworkSettings"]["Networks"][S.NETWORK]["IPAddress"] == ips[i]
        assert obj["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert ips[1].endswith(".11") and ips[3].endswith(".13")


def test_ssh_with_lab_key_and_strict_known_hosts(the_lab, ips):
    _need("ssh")
    for i in range(1, NODES + 1):
        proc = sh("ssh", "-i", str(S.KEY_FILE),
                  "-o", f"UserKnownHostsFile={S.KNOWN_HOSTS}", "-o", "StrictHostKeyChecking=yes",
                  "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "GlobalKnownHostsFile=/dev/null",
                  f"root@{ips[i]}", "docker", "info", "--format", "'{{.Swarm.LocalNodeState}}'")
        assert proc.stdout.strip() == "active", f"node{i}: {proc.stdout!r} {proc.stderr!r}"


def test_known_hosts_lines_match_node_host_keys(the_lab, ips):
    lines = S.KNOWN_HOSTS.read_text().splitlines()
    assert len(lines) == NODES
    for i in range(1, NODES + 1):
        key = node_exec(i, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        assert f"{ips[i]} {key[0]} {key[1]}" in lines
    # each node has its own host key
    assert len({ln.split()[2] for ln in lines}) == NODES


def test_node1_is_the_only_manager(the_lab):
    rows = node_exec(1, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}").stdout
    table = {r.split()[0]: r.split()[1:] for r in rows.splitlines() if r.strip()}
    assert set(table) == {f"node{i}" for i in range(1, NODES + 1)}
    assert table["node1"] == ["Ready", "Leader"]
    for i in range(2, NODES + 1):
        assert table[f"node{i}"] == ["Ready"], table


def test_registry_host_resolves_to_node1(the_lab, ips):
    assert socket.gethostbyname(S.REGISTRY_HOST) == ips[1]
    tagged = [ln for ln in Path("/etc/hosts").read_text().splitlines() if ln.endswith(S.HOSTS_TAG)]
    assert tagged == [f"{ips[1]} {S.REGISTRY_HOST}  {S.HOSTS_TAG}"]
    out = node_exec(NODES, "getent", "hosts", S.REGISTRY_HOST).stdout.split()
    assert out[0] == ips[1]


def test_registry_image_is_on_node1(the_lab):
    host_id = sh("docker", "image", "inspect", "--format", "{{.Id}}", S.REGISTRY_IMAGE).stdout.strip()
    node_id = node_exec(1, "docker", "image", "inspect", "--format", "{{.Id}}", S.REGISTRY_IMAGE).stdout.strip()
    assert host_id and node_id == host_id


def test_nodes_can_run_containers(the_lab):
    """The cgroup hierarchy is writable inside the nodes: their dockerd starts containers."""
    proc = node_exec(1, "docker", "run", "--rm", "--entrypoint", "/usr/bin/docker-registry",
                     S.REGISTRY_IMAGE, "--version")
    assert "registry" in proc.stdout.lower() or proc.stdout.strip()


def test_lab_yaml(the_lab, ips):
    path = the_lab["path"]
    assert path == S.CONFIG_FILE and path.is_file()
    assert path.read_text().startswith("# generated by lab.up; removed by lab.down")
    data = yaml.safe_load(path.read_text())
    assert data["registry"]["host"] == S.REGISTRY_HOST
    assert data["registry"]["image"] == S.REGISTRY_IMAGE
    assert data["registry"]["resolve_image"] == "never"
    assert len(data["hosts"]) == NODES
    assert data["hosts"]["node1"] == {"address": ips[1], "user": "root", "port": 22, "roles": ["manager"]}
    assert data["hosts"]["node3"]["roles"] == ["worker"]
    assert data["ssh"]["accept_new_host_keys"] is False
    assert Path(data["ssh"]["identity_file"]).is_file()
    assert Path(data["ssh"]["known_hosts"]).is_file()
    assert (S.LAB_DIR.stat().st_mode & 0o777) == 0o700
    assert (S.KEY_FILE.stat().st_mode & 0o777) == 0o600
    assert (S.KNOWN_HOSTS.stat().st_mode & 0o777) == 0o600


def test_status_reports_up(the_lab, ips):
    info = lab.status(out=lambda _l: None)
    assert info["up"] is True
    assert {n: v["ip"] for n, v in info["nodes"].items()} == {f"node{i}": ips[i] for i in ips}
    assert info["images"]["node"]["present"] and info["images"]["registry"]["present"]


def test_the_lab_grows_and_shrinks_in_place(the_lab):
    """inv lab.up --nodes N on a running lab: nodes join (as workers) or leave the swarm."""
    lab.up(nodes=NODES + 1, out=lambda _l: None)
    names = sh("docker", "exec", S.container_name(1), "docker", "node", "ls", "--format", "{{.Hostname}}").stdout.split()
    assert sorted(names) == [S.hostname(i) for i in range(1, NODES + 2)]
    lab.up(nodes=NODES, out=lambda _l: None)
    names = sh("docker", "exec", S.container_name(1), "docker", "node", "ls", "--format", "{{.Hostname}}").stdout.split()
    assert sorted(names) == [S.hostname(i) for i in range(1, NODES + 1)]


def test_up_restarts_stopped_nodes(the_lab, ips):
    """Like a host dockerd restart: the containers are stopped, up() starts them again."""
    sh("docker", "stop", *[S.container_name(i) for i in range(1, NODES + 1)], timeout=120)
    volumes_before = {n: o["Mounts"] for n, o in _containers().items()}
    lines: list[str] = []
    lab.up(nodes=NODES, out=lines.append)
    conts = _containers()
    for i in range(1, NODES + 1):
        obj = conts[S.container_name(i)]
        assert obj["State"]["Running"]
        assert obj["NetworkSettings"]["Networks"][S.NETWORK]["IPAddress"] == ips[i]
        assert obj["Mounts"] == volumes_before[S.container_name(i)]
        assert node_exec(i, "docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "active"
    rows = node_exec(1, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
    assert sorted(r for r in rows if r.strip()) == [f"node{i} Ready" for i in range(1, NODES + 1)]


def test_second_up_is_a_quick_no_op(the_lab):
    before = {n: (o["Id"], o["State"]["StartedAt"]) for n, o in _containers().items()}
    yaml_mtime = S.CONFIG_FILE.stat().st_mtime_ns
    kh_mtime = S.KNOWN_HOSTS.stat().st_mtime_ns
    hosts_before = Path("/etc/hosts").read_text()
    lines: list[str] = []
    t0 = time.monotonic()
    path = lab.up(nodes=NODES, out=lines.append)
    elapsed = time.monotonic() - t0
    assert elapsed < 5, f"second up took {elapsed:.1f} s"
    assert path == S.CONFIG_FILE
    assert len(lines) == 1 and lines[0].startswith("[lab] lab is up"), lines
    after = {n: (o["Id"], o["State"]["StartedAt"]) for n, o in _containers().items()}
    assert after == before
    assert S.CONFIG_FILE.stat().st_mtime_ns == yaml_mtime
    assert S.KNOWN_HOSTS.stat().st_mtime_ns == kh_mtime
    assert Path("/etc/hosts").read_text() == hosts_before


def test_registry_image_serves_v2():
    """A container from the registry image answers GET /v2/ (run on the control machine's engine)."""
    _engine_or_skip()
    images.ensure_registry_image(out=lambda _l: None)
    name = f"swarm-registry-lab-v2-test-{os.getpid()}"
    sh("docker", "run", "-d", "--name", name, "-p", "127.0.0.1::5000", S.REGISTRY_IMAGE)
    try:
        port = wait_for(lambda: sh("docker", "port", name, "5000/tcp").stdout.split(":")[-1].strip(),
                        10, "the published port")

        def answers():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
                return resp.status == 200 and resp.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"

        assert wait_for(answers, 20, "the registry to answer /v2/")
    finally:
        sh("docker", "rm", "-f", name, check=False)


def test_down_removes_everything(the_lab):
    if KEEP:
        pytest.skip("SWARM_REGISTRY_KEEP_LAB=1: the lab stays up")
    lab.down(out=lambda _l: None)
    assert sh("docker", "ps", "-aq", "--filter", f"label={S.LABEL}=1").stdout.strip() == ""
    assert sh("docker", "network", "ls", "-q", "--filter", f"name=^{S.NETWORK}$").stdout.strip() == ""
    assert sh("docker", "volume", "ls", "-q", "--filter", f"label={S.LABEL}=1").stdout.strip() == ""
    vols = sh("docker", "volume", "ls", "-q").stdout.split()
    # the default lab's volumes (named labs, swarm-registry-lab-NAME-..., are theirs to remove)
    assert not [v for v in vols if v.startswith("swarm-registry-lab-node") or v == "swarm-registry-lab-ceph-data"]
    assert hosts_file.current() is None
    assert not S.CONFIG_FILE.exists()
    assert not S.LAB_DIR.exists()
    # images stay without purge
    assert sh("docker", "image", "inspect", S.REGISTRY_IMAGE, check=False).returncode == 0
    # a second down has nothing to do
    lines: list[str] = []
    lab.down(out=lines.append)
    assert lines == ["[lab] nothing to remove: no lab here"]
