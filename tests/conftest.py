import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE_HOSTS = {"kawaii": {"address": "10.0.0.10", "roles": ["manager"]}, "node2": {"address": "10.0.0.11"}}


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs a Docker engine and the local lab cluster")
    config.addinivalue_line("markers", "sshd: needs /usr/sbin/sshd and root (plain sshd hosts on loopback)")


def require(tool: str) -> str:
    """A tool the test needs: its absence fails the test (make deps and .ci/run install it), never skips."""
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path:
        return path
    pytest.fail(f"{tool} is required but missing (make deps installs it)")


@pytest.fixture
def base_settings(tmp_path):
    """A minimal valid settings mapping with a private state_dir."""
    return {"hosts": {k: dict(v) for k, v in BASE_HOSTS.items()}, "state_dir": str(tmp_path / "state"),
            "cert": {"key_type": "ecdsa-p256"}}


@pytest.fixture(scope="session")
def _lab_session():
    """Takes the lab down once at the very end, unless SWARM_REGISTRY_KEEP_LAB=1.

    A missing Docker engine fails the test, never skips it (make test and .ci/run start one).
    """
    import subprocess

    from devtools import lab

    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    yield lab
    if os.environ.get("SWARM_REGISTRY_KEEP_LAB") != "1":
        lab.down(out=lambda line: None)


@pytest.fixture(scope="module")
def lab_config(_lab_session):
    """A running 3-node lab for this module: lab.up is idempotent (0.5 s when up) and brings it
    back if another module (test_lab's down test) removed it."""
    return _lab_session.up(nodes=3, out=lambda line: None)


@pytest.fixture
def hosts(tmp_path):
    """Four plain sshd hosts on loopback (devtools/sshd_hosts.py), each with its own /etc/docker."""
    from devtools.sshd_hosts import SshdHosts

    require("/usr/sbin/sshd")
    require("unshare")
    with SshdHosts(4, tmp_path / "hosts") as hs:
        yield hs
