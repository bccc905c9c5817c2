"""The lab shape of issue 13: registry replicas over S3 on a real Ceph RADOS Gateway.

One named lab ``s3shape`` comes up once for the module through the CLI
(``python -m devtools.lab up --name s3shape --nodes 3 --storage s3``): 3 nodes and the lab's own
Ceph container at .5 of its subnet. Checked with docker and files, not with the product (only
``swarm_registry.s3creds`` reads the stored keys). The last test takes the lab down; the fixture
does too if a test failed first (unless SWARM_REGISTRY_KEEP_LAB=1). Needs root and a Docker
engine: a missing engine fails, never skips.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import pytest
import yaml

from devtools import ceph, lab
from devtools.lab import hosts_file
from devtools.lab import settings as S
from swarm_registry import s3creds
from tests.conftest import require

pytestmark = pytest.mark.lab

KEEP = os.environ.get("SWARM_REGISTRY_KEEP_LAB") == "1"
LAB = S.Lab("s3shape")
NODES = 3


def sh(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _exists(kind: str, name: str) -> bool:
    return sh("docker", kind, "inspect", name, check=False).returncode == 0


@pytest.fixture(scope="module")
def s3lab():
    require("docker")
    if sh("docker", "info", check=False, timeout=60).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    if os.geteuid() != 0:
        pytest.fail("the lab needs root")
    argv = [sys.executable, "-m", "devtools.lab", "up", "--name", LAB.name, "--nodes", str(NODES), "--storage", "s3"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=S.ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subnet = json.loads(sh("docker", "network", "inspect", LAB.network).stdout)[0]["IPAM"]["Config"][0]["Subnet"]
    net = ipaddress.IPv4Network(subnet)
    yield {"net": net, "ips": [LAB.node_ip(i, net) for i in range(1, NODES + 1)],
           "ceph_ip": str(net.network_address + 5), "stdout": proc.stdout}
    if not KEEP:
        lab.down(out=lambda _l: None, name=LAB.name)


def test_settings_name_the_replicas_and_the_s3_storage_but_no_key(s3lab):
    text = LAB.config_file.read_text()
    data = yaml.safe_load(text)
    assert data["registry"]["nodes"] == ["node1", "node2", "node3"] and "node" not in data["registry"]
    assert data["storage"] == {"driver": "s3", "s3": {"endpoint": f"http://{s3lab['ceph_ip']}:7480",
                                                      "region": "us-east-1", "bucket": "registry"}}
    keys = s3creds.load(data["state_dir"], {})
    assert keys.access_key not in text and keys.secret_key not in text
    assert keys.secret_key not in s3lab["stdout"]


def test_keys_are_stored_0600_in_state_dir_and_are_the_rgw_users(s3lab):
    keys = s3creds.load(LAB.state_dir, {})
    assert keys is not None
    assert ((LAB.state_dir / s3creds.FILE).stat().st_mode & 0o777) == 0o600
    user = json.loads(sh("docker", "exec", ceph.container_name(LAB), "cat", ceph.CREDS_IN_CONTAINER).stdout)
    assert {(k["access_key"], k["secret_key"]) for k in user["keys"]} == {(keys.access_key, keys.secret_key)}
    # never on a command line or in the environment of the Ceph container
    cfg = json.loads(sh("docker", "inspect", ceph.container_name(LAB)).stdout)[0]
    assert keys.secret_key not in json.dumps([cfg["Args"], cfg["Config"]["Env"], cfg["Config"]["Cmd"]])


def test_rgw_answers_from_a_node(s3lab):
    code = sh("docker", "exec", LAB.container_name(2), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
              "--max-time", "10", f"http://{s3lab['ceph_ip']}:7480/", check=False).stdout
    assert code in ("200", "403"), code


def test_registry_name_resolves_to_every_registry_node(s3lab):
    for i in range(1, NODES + 1):
        rows = sh("docker", "exec", LAB.container_name(i), "getent", "hosts", LAB.registry_host).stdout.splitlines()
        assert sorted(r.split()[0] for r in rows) == sorted(s3lab["ips"]), f"node{i}: {rows}"
    assert hosts_file.tagged_lines(tag=LAB.hosts_tag) == [hosts_file.hosts_line(ip, LAB.registry_host, LAB.hosts_tag)
                                                          for ip in s3lab["ips"]]


def test_status_shows_the_ceph_container(s3lab):
    info = lab.status(out=lambda _l: None, name=LAB.name)
    assert info["up"] is True and sorted(info["nodes"]) == ["node1", "node2", "node3"]
    assert info["ceph"] == {"container": ceph.container_name(LAB), "running": True, "ip": s3lab["ceph_ip"],
                            "endpoint": f"http://{s3lab['ceph_ip']}:7480", "s3": True}


def test_down_removes_the_ceph_container_and_its_volume(s3lab):
    if KEEP:
        pytest.skip("SWARM_REGISTRY_KEEP_LAB=1: the lab stays up")
    assert _exists("container", ceph.container_name(LAB)) and _exists("volume", ceph.volume_name(LAB))
    lab.down(out=lambda _l: None, name=LAB.name)
    assert not _exists("container", ceph.container_name(LAB))
    assert not _exists("volume", ceph.volume_name(LAB))
    assert sh("docker", "ps", "-aq", "--filter", f"label={S.LABEL}={LAB.name}").stdout.strip() == ""
    assert not LAB.config_file.exists() and not LAB.lab_dir.exists()
