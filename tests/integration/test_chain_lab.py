"""The recipe's whole loop on the lab: setup (credential helper + login) -> smoke-test -> catalog,
and the registry's data surviving a forced restart, renew-cert and teardown + setup."""
import json

import pytest

from tests.integration.clirun import run, statuses
from tests.integration.labutil import node_exec

pytestmark = pytest.mark.lab
PASSWORD = "chain-pass-5678"
ENV = {"REGISTRY_PASSWORD": PASSWORD}
CERTS = "/etc/docker/certs.d/registry.swarm-lab.test:5000"



@pytest.fixture(scope="module")
def lab(lab_config):
    r = run("inv", "users.add", "lenain", config=lab_config, env=ENV)
    assert r.returncode == 0, r.stderr
    setup = run("inv", "setup", config=lab_config, env=ENV, timeout=900)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return lab_config


def catalog(lab):
    r = run("inv", "catalog", "--tags", config=lab, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_setup_rerun_changes_nothing_with_login(lab):
    again = run("inv", "setup", config=lab, env=ENV)
    assert again.returncode == 0, again.stdout
    for step in ("credential-helper", "login", "trust-cert", "deploy"):
        assert set(statuses(again.stdout, step).values()) == {"ok"}, (step, again.stdout)


def test_credential_in_pass_not_in_config_json(lab):
    for i in (1, 2, 3):
        conf = json.loads(node_exec(i, "cat", "/root/.docker/config.json").stdout)
        assert conf["credsStore"] == "pass"
        assert not conf["auths"].get("registry.swarm-lab.test:5000", {}).get("auth")
        listed = node_exec(i, "docker-credential-pass", "list")
        assert listed.returncode == 0 and "registry.swarm-lab.test:5000" in listed.stdout
        assert node_exec(i, "grep", "-rF", PASSWORD, "/root/.docker", "/root/.password-store").stdout == ""


def test_smoke_test_then_catalog(lab):
    r = run("inv", "smoke-test", "--keep", config=lab, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(r.stdout, "pull") == {"node2": "ok", "node3": "ok"}
    assert statuses(r.stdout, "api") == {"control": "ok"}
    tag = r.stdout.split("swarm-registry-smoke:", 1)[1].split()[0]
    assert "swarm-registry-smoke: " in catalog(lab) and tag in catalog(lab)


def test_wrong_password_login_fails_clearly(lab):
    r = run("inv", "login", "--hosts", "node2", config=lab, env={"REGISTRY_PASSWORD": "not-the-password"})
    assert r.returncode != 0
    assert "FAILED node2: login: docker login to registry.swarm-lab.test:5000 failed" in r.stdout
    ok = run("inv", "login", "--hosts", "node2", config=lab, env=ENV)  # and back
    assert ok.returncode == 0


def test_smoke_test_fails_clearly_when_a_node_does_not_trust_the_cert(lab):
    node_exec(3, "rm", "-rf", CERTS)
    try:
        r = run("inv", "smoke-test", config=lab, env=ENV)
        assert r.returncode != 0
        line = next(x for x in r.stdout.splitlines() if x.startswith("FAILED node3"))
        assert "pull" in line and "x509" in line
    finally:
        assert run("inv", "trust-cert", config=lab).returncode == 0


def test_data_survives_restart_renew_and_teardown(lab):
    pushed = run("inv", "smoke-test", "--keep", config=lab, env=ENV)
    assert pushed.returncode == 0
    tag = pushed.stdout.split("swarm-registry-smoke:", 1)[1].split()[0]
    node_exec(1, "docker", "service", "update", "--force", "onsen-registry_registry")
    assert run("inv", "setup", config=lab, env=ENV).returncode == 0  # waits for it to answer again
    assert tag in catalog(lab)
    renew = run("inv", "renew-cert", config=lab, env=ENV)
    assert renew.returncode == 0, renew.stdout
    assert statuses(renew.stdout, "trust-cert") == {"node1": "ok", "node2": "ok", "node3": "ok"}  # mode ca
    assert tag in catalog(lab)
    pull = node_exec(2, "docker", "pull", f"registry.swarm-lab.test:5000/swarm-registry-smoke:{tag}")
    assert pull.returncode == 0, pull.stderr  # no new login needed
    down = run("inv", "teardown", config=lab)
    assert down.returncode == 0 and "kept /var/lib/registry" in down.stdout
    assert run("inv", "teardown", config=lab).returncode == 0  # re-run: ok
    assert run("inv", "setup", config=lab, env=ENV).returncode == 0
    assert tag in catalog(lab)


def test_purge_data_needs_confirmation(lab):
    r = run("inv", "teardown", "--purge-data", config=lab, input="")
    assert r.returncode == 2 and "--yes" in r.stderr
    assert node_exec(1, "test", "-d", "/var/lib/registry/docker").returncode == 0
