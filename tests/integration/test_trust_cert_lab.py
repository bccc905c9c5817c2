"""trust-cert on the lab swarm: real nodes with their own sshd and dockerd."""

import pytest

from tests.integration.clirun import run, statuses
from tests.integration.labutil import node_exec

pytestmark = pytest.mark.lab
CERTS = "/etc/docker/certs.d/registry.swarm-lab.test:5000"



def test_fab_nodes_trusts_on_every_node_then_changes_nothing(lab_config):
    for i in (1, 2, 3):
        node_exec(i, "rm", "-rf", CERTS)
    first = run("fab", "-H", "nodes", "trust-cert", config=lab_config)
    assert first.returncode == 0, first.stdout + first.stderr
    assert statuses(first.stdout, "trust-cert") == {"node1": "changed", "node2": "changed", "node3": "changed"}
    ca = (lab_config.parent.parent / ".lab" / "state" / "ca.crt").read_text()
    for i in (1, 2, 3):
        assert node_exec(i, "cat", f"{CERTS}/ca.crt").stdout == ca
        assert node_exec(i, "stat", "-c", "%a", CERTS, f"{CERTS}/ca.crt").stdout.split() == ["755", "644"]
    second = run("fab", "-H", "nodes", "trust-cert", config=lab_config)
    assert second.returncode == 0
    assert set(statuses(second.stdout, "trust-cert").values()) == {"ok"}


def test_check_mode_on_the_lab_changes_nothing(lab_config):
    node_exec(3, "rm", "-rf", CERTS)
    r = run("inv", "trust-cert", "--check", config=lab_config)
    assert statuses(r.stdout, "trust-cert")["node3"] == "would change"
    assert node_exec(3, "test", "-e", CERTS).returncode != 0
