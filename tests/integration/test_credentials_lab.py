"""credential-helper on the lab swarm over real SSH: pass + docker-credential-pass, a GPG key, pass init,
credsStore in config.json (other keys kept), `docker-credential-pass list` answering; re-runs change
nothing and cost one command per host."""
import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from swarm_registry import settings as S
from devtools.lab import settings as L
from swarm_registry.steps import credential_store as cr
from tests.conftest import require

pytestmark = pytest.mark.lab
STEP = "credential-helper"
CONFIG = "/root/.docker/config.json"
PLANTED = "swarmRegistryTestPlanted"


def node_exec(i, *argv, input=None):
    return subprocess.run(["docker", "exec", "-i", L.container_name(i), *argv], capture_output=True, input=input,
                          timeout=60)


def read_config(i) -> dict | None:
    r = node_exec(i, "cat", CONFIG)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None


def write_config(i, data: dict) -> None:
    assert node_exec(i, "sh", "-c", f"mkdir -p -m 700 /root/.docker && cat > {CONFIG}",
                     input=json.dumps(data).encode()).returncode == 0


def run_op(settings, *, check=False, binary=None):
    """The credential-helper plan on every lab node, run as the project's task runs it; returns the Run."""
    from swarm_registry.jobs.runner import CHECK, RUN, Job, run_plan

    got = {}
    job = Job("facts", lambda host: ("store",), lambda host, f: ("ok", "read"),
              lambda found, usable: [cr.plan(settings, settings.hosts[h], found[h], binary) for h in usable])
    t0 = time.monotonic()
    run_plan(settings, list(settings.hosts), job, print, mode=CHECK if check else RUN,
             after=lambda ex: got.update(run=ex.run))
    return got["run"], round(time.monotonic() - t0, 1)


@pytest.fixture
def unplant():
    yield
    for i in (1, 2, 3):  # leave the nodes' config.json as the operation made it
        config = read_config(i)
        if config and PLANTED in config:
            write_config(i, {k: v for k, v in config.items() if k != PLANTED})


def statuses(run):
    return {r.host: r.status for r in run.results if r.step == STEP}


def test_credential_store_on_every_node_then_a_rerun_is_one_command_and_ok(lab_config, unplant):
    settings = S.load(lab_config)
    for i in (1, 2, 3):  # an unrelated key the merge must keep (whatever else is there stays too)
        write_config(i, {**(read_config(i) or {}), PLANTED: "keep-me"})
    first, t_first = run_op(settings)
    assert first.exit_code() == 0, first.recap()
    assert set(statuses(first).values()) <= {"changed", "ok"}
    assert all(n <= 3 for n in first.commands.values()), first.commands  # facts, script, config.json
    for i in (1, 2, 3):
        listed = node_exec(i, "timeout", "10", "docker-credential-pass", "list")
        assert listed.returncode == 0 and json.loads(listed.stdout) is not None, listed.stderr
        assert node_exec(i, "test", "-s", "/root/.password-store/.gpg-id").returncode == 0
        config = read_config(i)
        assert config["credsStore"] == "pass" and config[PLANTED] == "keep-me", config
        assert node_exec(i, "stat", "-c", "%a", CONFIG).stdout.split() == [b"600"]
        # the key really encrypts: a credential round-trips through pass, without a prompt
        cred = {"ServerURL": "swarm-registry-test.invalid", "Username": "u", "Secret": "s3cret"}
        assert node_exec(i, "timeout", "10", "docker-credential-pass", "store", input=json.dumps(cred).encode()).returncode == 0
        got = node_exec(i, "timeout", "10", "docker-credential-pass", "get", input=b"swarm-registry-test.invalid")
        assert json.loads(got.stdout)["Secret"] == "s3cret", got.stderr
        node_exec(i, "timeout", "10", "docker-credential-pass", "erase", input=b"swarm-registry-test.invalid")

    second, t_second = run_op(settings)
    assert statuses(second) == {"node1": "ok", "node2": "ok", "node3": "ok"}, second.recap()
    assert second.commands == {"node1": 1, "node2": 1, "node3": 1}
    print(f"timings: first run {t_first}, re-run {t_second}")


def test_check_mode_reports_a_drift_and_changes_nothing(lab_config):
    settings = S.load(lab_config)
    run_op(settings)  # converged first (a no-op when the test above ran)
    config = read_config(3)
    try:
        write_config(3, {k: v for k, v in config.items() if k != "credsStore"})
        checked, _ = run_op(settings, check=True)
        assert statuses(checked) == {"node1": "ok", "node2": "ok", "node3": "changed"}, checked.recap()
        assert "would set credsStore=pass" in next(r.message for r in checked.results
                                                   if r.host == "node3" and r.step == STEP)
        assert "credsStore" not in read_config(3)
        assert checked.commands == {"node1": 1, "node2": 1, "node3": 1}
    finally:
        fixed, _ = run_op(settings)
    assert statuses(fixed)["node3"] == "changed" and read_config(3)["credsStore"] == "pass"
    assert read_config(3) == config


def test_release_binary_arrives_on_stdin_and_is_installed_once(lab_config, tmp_path):
    """source: release with a real executable (this machine's docker-credential-pass stands in for the
    downloaded one: the lab has no internet); removed again at the end."""
    local = Path(require("/usr/bin/docker-credential-pass"))  # make deps installs it: missing fails, never skips
    binary = local.read_bytes()
    data = yaml.safe_load(Path(lab_config).read_text())
    data["credential_helper"] = {"source": "release", "sha256": hashlib.sha256(b"tarball").hexdigest()}
    settings = S.from_mapping(data, source=str(lab_config))
    try:
        first, _ = run_op(settings, binary=binary)
        assert first.exit_code() == 0, first.recap()
        assert all(f"installed {cr.RELEASE_BIN}" in r.message for r in first.results if r.step == STEP), first.recap()
        for i in (1, 2, 3):
            r = node_exec(i, "sh", "-c", f"sha256sum {cr.RELEASE_BIN} | cut -c1-64; stat -c %a {cr.RELEASE_BIN}")
            assert r.stdout.decode().split() == [hashlib.sha256(binary).hexdigest(), "755"]
        second, _ = run_op(settings, binary=binary)
        assert set(statuses(second).values()) == {"ok"} and set(second.commands.values()) == {1}, second.recap()
    finally:
        for i in (1, 2, 3):
            node_exec(i, "rm", "-f", cr.RELEASE_BIN)
