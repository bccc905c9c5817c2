"""Shared helpers for the tests that run on the lab."""
import subprocess

from devtools.lab import settings as S
from tests.integration.clirun import run

ENDPOINT = "registry.swarm-lab.test:5000"
CERTS = f"/etc/docker/certs.d/{ENDPOINT}"


def node_exec(i: int, *argv: str, input: str | None = None) -> subprocess.CompletedProcess:
    interactive = ["-i"] if input is not None else []
    return subprocess.run(["docker", "exec", *interactive, S.container_name(i), *argv], capture_output=True,
                          text=True, input=input)


def ensure_setup(lab, password: str) -> None:
    """lenain has `password` and the registry is set up with it (login on every node)."""
    env = {"REGISTRY_PASSWORD": password}
    r = run("inv", "users.add", "lenain", config=lab, env=env)
    assert r.returncode == 0, r.stderr
    s = run("inv", "setup", config=lab, env=env, timeout=900)
    assert s.returncode == 0, s.stdout + s.stderr
