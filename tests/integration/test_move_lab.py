"""Moving registry.node on the lab: refused while the old node holds data, unless --move-data (the
data streamed node to node through this machine, file digests compared: every tag pulls after with
the same digest) or --abandon-data; the old node's label is removed either way."""

import pytest

from devtools import lab as lab_mod

from tests.integration.clirun import run
from tests.integration.labutil import ENDPOINT, ensure_setup, node_exec

pytestmark = pytest.mark.lab
PASSWORD = "move-pass-7"
ENV = {"REGISTRY_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, PASSWORD)
    return lab_config


def labelled(node: int) -> str:
    return node_exec(1, "docker", "node", "inspect", "--format", '{{index .Spec.Labels "registry"}}',
                     f"node{node}").stdout.strip()


def test_move_refused_then_moved_with_the_data_then_back(lab):
    smoke = run("inv", "smoke-test", "--keep", config=lab, env=ENV)
    assert smoke.returncode == 0, smoke.stdout
    tag = smoke.stdout.split("swarm-registry-smoke:", 1)[1].split()[0]
    node_exec(2, "rm", "-rf", "/var/lib/registry")  # a clean destination
    # the operator's part of a move: registry.node and the name's address (DNS; /etc/hosts in the lab)
    moved = lab_mod.up(nodes=3, registry_node=2, out=lambda line: None)
    refused = run("inv", "setup", config=moved, env=ENV)
    assert refused.returncode == 1 and "holds registry data" in refused.stdout and "--move-data" in refused.stdout
    assert "stopped before any change" in refused.stdout and labelled(1) == "true" and labelled(2) == ""
    dry = run("inv", "--dry", "setup", "--move-data", config=moved, env=ENV)
    assert "<files/scripts/data-send.sh>" in dry.stdout and "<files/scripts/data-receive.sh>" in dry.stdout
    go = run("inv", "setup", "--move-data", config=moved, env=ENV, timeout=900)
    assert go.returncode == 0, go.stdout + go.stderr
    assert "every file's sha256 equal on both nodes" in go.stdout
    assert labelled(2) == "true" and labelled(1) == ""  # the old label is gone
    pull = node_exec(3, "docker", "pull", f"{ENDPOINT}/swarm-registry-smoke:{tag}")
    assert pull.returncode == 0, pull.stderr
    after = run("inv", "catalog", "--tags", config=moved, env=ENV)
    assert tag in after.stdout
    again = run("inv", "setup", config=moved, env=ENV)
    assert again.returncode == 0 and " changed " not in again.stdout.split("RECAP")[0], again.stdout
    # back to node1, whose own copy is still there (a copy never deletes): its data is kept, node2's left
    lab_mod.up(nodes=3, registry_node=1, out=lambda line: None)
    back = run("inv", "setup", "--abandon-data", config=lab, env=ENV, timeout=900)
    assert back.returncode == 0, back.stdout
    assert labelled(1) == "true" and labelled(2) == ""
    assert tag in run("inv", "catalog", "--tags", config=lab, env=ENV).stdout
