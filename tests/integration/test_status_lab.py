"""`inv status` and `--json` on a real swarm (the named lab `status`, 2 nodes): exit status 0 when
all is well, 1 with the reason when a node is logged out or the registry's service is down; the
JSON of setup, smoke-test, status and catalog; and nothing on stderr but our own lines (no
library lines between the results)."""
import json
import secrets
import subprocess

import pytest

from devtools import lab as lab_mod
from devtools.lab import settings as L
from swarm_registry.settings import load as load_settings
from tests.integration.clirun import run

pytestmark = pytest.mark.lab
NAME = "status"
PASSWORD = "St-" + secrets.token_urlsafe(15)
ENV = {"REGISTRY_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def cfg():
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    path = lab_mod.up(nodes=2, name=NAME, out=lambda line: None)
    try:
        assert run("inv", "users.add", "lenain", config=path, env=ENV).returncode == 0
        setup = run("inv", "setup", "--json", config=path, env=ENV, timeout=900)
        doc = json.loads(setup.stdout)
        assert setup.returncode == 0 and doc["exit_status"] == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        assert "Traceback" not in setup.stderr and "Socket exception" not in setup.stderr
        yield path
    finally:
        lab_mod.down(name=NAME, out=lambda line: None)


def node(i: int, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", L.lab(NAME).container_name(i), *argv], capture_output=True, text=True,
                          timeout=120)


def status(cfg, *args):
    return run("inv", "status", *args, config=cfg, env=ENV)


def test_healthy_cluster_exits_0_and_reports_every_column(cfg):
    r = status(cfg)
    assert r.returncode == 0 and "attention:" not in r.stdout, r.stdout
    assert r.stderr == ""
    assert "  service: running on the labelled node" in r.stdout and "  storage: filesystem" in r.stdout
    doc = json.loads(status(cfg, "--json").stdout)
    assert doc["exit_status"] == 0 and doc["attention"] == []
    nodes = {n["host"]: n for n in doc["status"]["nodes"]}
    assert [nodes[h]["role"] for h in ("node1", "node2")] == ["manager", "worker"]
    for n in nodes.values():
        assert (n["reachable"], n["docker"], n["trusts_current_cert"], n["logged_in"], n["login_user"]) == (
            True, True, True, True, "lenain")
    assert (nodes["node1"]["registry_running"], nodes["node2"]["registry_running"]) == (True, False)
    reg = doc["status"]["registry"]
    assert reg["running"] is True and reg["running_on"] == ["node1"] and reg["storage"] == "filesystem"
    # the version is what the registry binary in the running task answers (Debian's: 2.8.2+ds1), not the tag
    service = load_settings(cfg).registry.service
    answer = node(1, "sh", "-c", f"docker exec $(docker ps -q -f label=com.docker.swarm.service.name={service})"
                                 " docker-registry --version").stdout.split()
    assert reg["image"].endswith(":2") and answer and reg["version"] == answer[-1] and reg["users"] == 1
    assert reg["repositories"] is not None and reg["certificate"]["days_left"] > 300


def test_smoke_test_and_catalog_json(cfg):
    smoke = run("inv", "smoke-test", "--keep", "--json", config=cfg, env=ENV, timeout=600)
    doc = json.loads(smoke.stdout)
    assert smoke.returncode == 0 and doc["exit_status"] == 0, smoke.stderr[-3000:]
    assert set(doc["hosts"]) == {"node1", "node2", "control"}
    steps = {s["step"]: s for s in doc["hosts"]["node1"]["steps"]}
    assert [c["command"].split()[:2] for c in steps["build"]["commands"]] == [["docker", "build"]]
    api = doc["hosts"]["control"]["steps"][0]
    assert api["step"] == "api" and api["status"] == "ok" and api["seconds"] > 0
    assert "Traceback" not in smoke.stderr and PASSWORD not in smoke.stdout + smoke.stderr
    cat = run("inv", "catalog", "--tags", "--json", config=cfg, env=ENV)
    repos = json.loads(cat.stdout)["repositories"]
    assert cat.returncode == 0 and cat.stderr.strip().endswith("repositories at registry.status.swarm-lab.test:5000)")
    assert any(r["name"] == "swarm-registry-smoke" and r["tags"] for r in repos), repos


def test_a_node_logged_out_by_hand_needs_attention(cfg):
    endpoint = json.loads(status(cfg, "--json").stdout)["status"]["registry"]["endpoint"]
    assert node(2, "docker", "logout", endpoint).returncode == 0
    r = status(cfg)
    assert r.returncode == 1 and "attention: node2: not logged in as lenain: run inv login" in r.stdout, r.stdout
    assert run("inv", "login", config=cfg, env=ENV).returncode == 0
    assert status(cfg).returncode == 0


def test_registry_service_down_needs_attention_and_setup_brings_it_back(cfg):
    service = json.loads(status(cfg, "--json").stdout)["status"]["registry"]["service"]
    assert node(1, "docker", "service", "scale", "--detach", f"{service}=0").returncode == 0
    doc = json.loads(status(cfg, "--json").stdout)
    assert doc["exit_status"] == 1 and doc["status"]["registry"]["running"] is False
    assert any(a.startswith("registry: service not running") for a in doc["attention"]), doc["attention"]
    assert run("inv", "setup", config=cfg, env=ENV, timeout=900).returncode == 0  # replicas differ: redeployed
    assert status(cfg).returncode == 0
