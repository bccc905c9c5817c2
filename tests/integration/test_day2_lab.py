"""Day-2 operations on a named lab of their own ("day2", 3 nodes; up for the module, down at its end unless
SWARM_REGISTRY_KEEP_LAB=1; a missing Docker engine fails, never skips): images.rm + gc reclaim bytes
and every remaining tag still pulls everywhere; a push during gc is refused while pulls work; a gc
interrupted while read-only is undone by the next setup; backup -> lab down/up -> restore -> setup
gives the same catalog and digests; an upgrade of registry.image keeps the data."""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import tarfile
import time
from contextlib import contextmanager

import pytest
import yaml

from devtools.lab import settings as LS
from tests.conftest import require
from tests.integration.clirun import interruptible, run, statuses

pytestmark = pytest.mark.lab
NAME = "day2"
LAB = LS.Lab(NAME)
PASSWORD = "day2-lab-pass-42"
ENV = {"REGISTRY_PASSWORD": PASSWORD}
ENDPOINT = f"{LAB.registry_host}:5000"
SERVICE = "onsen-registry_registry"


@pytest.fixture(scope="module")
def day2(tmp_path_factory):
    """The day2 lab, set up with registry.delete_enabled (its own settings file beside the lab's)."""
    require("docker")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    from devtools import lab

    path = lab.up(nodes=3, name=NAME, out=lambda line: None)
    cfg = tmp_path_factory.mktemp("day2") / "lab-day2-delete.yaml"
    write_config(cfg, path, delete_enabled=True)
    try:
        assert run("inv", "users.add", "lenain", config=cfg, env=ENV).returncode == 0
        s = run("inv", "setup", config=cfg, env=ENV, timeout=900)
        assert s.returncode == 0, s.stdout + s.stderr
        yield cfg
    finally:
        if os.environ.get("SWARM_REGISTRY_KEEP_LAB") != "1":
            lab.down(name=NAME, out=lambda line: None)


def write_config(cfg, base, **registry) -> None:
    data = yaml.safe_load(base.read_text())
    data["registry"].update(registry)
    cfg.write_text(yaml.safe_dump(data))


def node(i: int, script: str, *, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["docker", "exec", "-i", LAB.container_name(i), "sh", "-c", script], capture_output=True,
                       text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"node{i}: {script}\n{r.stdout}{r.stderr}"
    return r


def push_random(i: int, ref: str, sizes_mb: list[int]) -> str:
    """Build an image FROM scratch on node i with one random-content layer per size, push it; its digest."""
    copies = "".join(f"COPY f{k} /f{k}\\n" for k in range(len(sizes_mb)))
    fill = "; ".join(f"head -c {mb * 1000000} /dev/urandom > f{k}" for k, mb in enumerate(sizes_mb))
    node(i, f"set -e; d=$(mktemp -d); cd $d; {fill}; printf 'FROM scratch\\n{copies}' > Dockerfile; "
            f"docker build -q -t {ENDPOINT}/{ref} . >/dev/null; docker push -q {ENDPOINT}/{ref} >/dev/null; "
            f"cd /; rm -rf $d")
    return repo_digest(i, ref)


def repo_digest(i: int, ref: str) -> str:
    out = node(i, f"docker image inspect --format '{{{{range .RepoDigests}}}}{{{{println .}}}}{{{{end}}}}' "
                  f"{ENDPOINT}/{ref}").stdout.split()
    return out[0].split("@", 1)[1]


def pull_everywhere(ref: str) -> dict[int, str]:
    """Remove the local image, pull it again on every node: node -> digest."""
    found = {}
    for i in (1, 2, 3):
        node(i, f"docker rmi -f {ENDPOINT}/{ref} >/dev/null 2>&1; docker pull -q {ENDPOINT}/{ref} >/dev/null")
        found[i] = repo_digest(i, ref)
    return found


def data_bytes() -> int:
    return int(node(1, "du -sb /var/lib/registry | cut -f1").stdout.split()[0])


def service_env() -> str:
    return node(1, f"docker service inspect --format '{{{{json .Spec.TaskTemplate.ContainerSpec.Env}}}}' {SERVICE}").stdout


def catalog(cfg) -> dict[str, str]:
    r = run("inv", "catalog", "--tags", config=cfg, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    return {line.split(":", 1)[0]: line.split(": ", 1)[1] for line in r.stdout.splitlines() if ": " in line}


def inv_proc(cfg, *args: str) -> subprocess.Popen:
    return interruptible("inv", *args, config=cfg, env=ENV)


SHIM = r"""#!/bin/sh
if [ -s /run/day2-hold/pattern ] && case "$*" in *"$(cat /run/day2-hold/pattern)"*) true ;; *) false ;; esac; then
  : > /run/day2-hold/pattern; touch /run/day2-hold/hit
  n=0; while [ ! -e /run/day2-hold/release ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
fi
exec /usr/bin/docker "$@"
"""


@contextmanager
def holding_docker(i: int, pattern: str):
    """The first `docker ...` on node i whose argv holds `pattern` waits (at most 120 s) until released."""
    r = subprocess.run(["docker", "exec", "-i", LAB.container_name(i), "sh", "-c",
                        "mkdir -p /run/day2-hold && rm -f /run/day2-hold/* && cat > /usr/local/bin/docker && "
                        "chmod 755 /usr/local/bin/docker && printf '%s' \"$1\" > /run/day2-hold/pattern", "arm", pattern],
                       input=SHIM, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        yield lambda: node(i, "touch /run/day2-hold/release")
    finally:
        node(i, "touch /run/day2-hold/release; rm -f /usr/local/bin/docker", check=False)
        time.sleep(0.5)
        node(i, "rm -rf /run/day2-hold", check=False)


def wait_held(i: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while node(i, "test -e /run/day2-hold/hit", check=False).returncode != 0:
        assert proc.poll() is None, f"the run ended before the command was held: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "the held command never ran"
        time.sleep(0.2)


# --- images.rm + catalog sizes + gc --------------------------------------------------------------------


def test_images_rm_is_refused_when_deletes_are_off(day2):
    r = run("inv", "images.rm", "anything:v1", "--yes", config=LAB.config_file, env=ENV)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "delete_enabled is false" in r.stderr, r


def test_rm_then_gc_reclaims_bytes_and_every_remaining_tag_pulls_everywhere(day2):
    keep = push_random(1, "day2-gc:keep", [3, 2])
    gone = push_random(1, "day2-gc:gone", [8])
    also = push_random(2, "day2-other:v1", [1])
    sizes = catalog(day2)
    assert re.search(r"gone \((7\.6|7\.7) MiB\)", sizes["day2-gc"]) and "keep (4.8 MiB)" in sizes["day2-gc"], sizes
    check = run("inv", "images.rm", "day2-gc:gone", "--check", config=day2, env=ENV)
    assert check.returncode == 0 and "would delete manifest day2-gc@" in check.stdout, check.stdout
    rm = run("inv", "images.rm", "day2-gc:gone", "--yes", config=day2, env=ENV)
    assert rm.returncode == 0 and statuses(rm.stdout, "images.rm") == {"control": "changed"}, rm.stdout
    assert "gone" not in catalog(day2)["day2-gc"]
    before = data_bytes()
    dry = run("inv", "gc", "--dry-run", config=day2, env=ENV)
    # at least the layer, its config and the manifest itself (stored as a blob)
    m = re.search(r"would delete (\d+) blob\(s\) \(.*, (\d+) bytes\)", dry.stdout)
    assert dry.returncode == 0 and m and int(m.group(1)) >= 3 and int(m.group(2)) >= 8_000_000, dry.stdout
    assert data_bytes() == before
    assert "MAINTENANCE_READONLY" not in service_env()
    gc = run("inv", "gc", config=day2, env=ENV, timeout=600)
    assert gc.returncode == 0, gc.stdout
    assert statuses(gc.stdout, "read-only") == {"node1": "changed"}
    assert statuses(gc.stdout, "read-write") == {"node1": "changed"}
    m = re.search(r"reclaimed .* \((\d+) bytes: (\d+) -> (\d+) on disk\)", gc.stdout)
    assert m and int(m.group(1)) >= 8_000_000 and data_bytes() <= before - 8_000_000, gc.stdout
    assert "MAINTENANCE_READONLY" not in service_env()
    assert pull_everywhere("day2-gc:keep") == {1: keep, 2: keep, 3: keep}
    assert pull_everywhere("day2-other:v1") == {1: also, 2: also, 3: also}
    again = run("inv", "setup", config=day2, env=ENV)
    assert again.returncode == 0 and statuses(again.stdout, "deploy") == {"node1": "ok"}, again.stdout
    assert gone not in (keep, also)


def test_a_push_during_gc_is_refused_while_pulls_work(day2):
    push_random(1, "day2-pull:v1", [1])
    with holding_docker(1, "garbage-collect") as release:
        proc = inv_proc(day2, "gc")
        wait_held(1, proc)
        assert "MAINTENANCE_READONLY" in service_env()
        node(2, f"cd /tmp && printf 'FROM scratch\\nCOPY hostname /h\\n' > Dockerfile && cp /etc/hostname . && "
                f"docker build -q -t {ENDPOINT}/day2-push:during . >/dev/null")
        pushed = node(2, f"docker push {ENDPOINT}/day2-push:during 2>&1", check=False)
        assert pushed.returncode != 0 and "405" in pushed.stdout, pushed.stdout
        node(3, f"docker rmi -f {ENDPOINT}/day2-pull:v1 >/dev/null 2>&1; docker pull -q {ENDPOINT}/day2-pull:v1")
        release()
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "MAINTENANCE_READONLY" not in service_env()
    node(2, f"docker push -q {ENDPOINT}/day2-push:during")


def test_gc_interrupted_while_read_only_is_undone_by_the_next_setup(day2):
    with holding_docker(1, "garbage-collect") as release:
        proc = inv_proc(day2, "gc")
        wait_held(1, proc)
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        release()
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted" in out and "read-write" not in out, out
    assert "MAINTENANCE_READONLY" in service_env()
    refused = node(2, f"docker tag {ENDPOINT}/day2-push:during {ENDPOINT}/day2-push:after && "
                      f"docker push {ENDPOINT}/day2-push:after 2>&1", check=False)
    assert refused.returncode != 0 and "405" in refused.stdout
    check = run("inv", "setup", "--check", config=day2, env=ENV)
    assert "the running service differs in env" in check.stdout, check.stdout
    fixed = run("inv", "setup", config=day2, env=ENV, timeout=600)
    assert fixed.returncode == 0 and statuses(fixed.stdout, "deploy") == {"node1": "changed"}, fixed.stdout
    assert "MAINTENANCE_READONLY" not in service_env()
    node(2, f"docker push -q {ENDPOINT}/day2-push:after")


# --- backup / restore across a new lab -----------------------------------------------------------------


def test_backup_then_new_lab_then_restore_then_setup_gives_the_same_registry(day2, tmp_path):
    from devtools import lab

    age, keygen = require("age"), require("age-keygen")
    push_random(1, "day2-big:v1", [6, 4])
    before = catalog(day2)
    digests = {f"{repo}:{tag.split(' (')[0]}": None for repo, tags in before.items() for tag in tags.split(", ")
               if tag}  # a repository whose tags were all deleted is listed without any
    for ref in digests:
        digests[ref] = pull_everywhere(ref)[1]
    plain, sealed = tmp_path / "b.tar", tmp_path / "b.age"
    r = run("inv", "backup", "--to", str(plain), config=day2, env=ENV, timeout=600)
    assert r.returncode == 0 and "MAINTENANCE_READONLY" not in service_env(), r.stdout
    assert statuses(r.stdout, "backup-data") == {"node1": "changed"} and oct(plain.stat().st_mode)[-3:] == "600"
    subprocess.run([keygen, "-o", str(tmp_path / "age.key")], check=True, capture_output=True)
    pub = next(ln.split()[-1] for ln in (tmp_path / "age.key").read_text().splitlines() if "public key" in ln)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    r = run("inv", "backup", "--to", str(sealed), "--recipient", pub, "--recipient", str(tmp_path / "id.pub"),
            config=day2, env=ENV, timeout=600)
    assert r.returncode == 0, r.stdout
    raw = sealed.read_bytes()
    assert b"PRIVATE KEY" not in raw and b"BEGIN CERTIFICATE" not in raw and b"lenain" not in raw
    assert b"PRIVATE KEY" in plain.read_bytes()  # the plain one holds the CA key: 0600, said in the README
    clear = subprocess.run([age, "-d", "-i", str(tmp_path / "age.key"), str(sealed)], capture_output=True, check=True)
    names = tarfile.open(fileobj=io.BytesIO(clear.stdout)).getnames()
    assert "state/ca.key" in names and names[-1] == "MANIFEST.json"

    lab.down(name=NAME, out=lambda line: None)
    base = lab.up(nodes=3, name=NAME, out=lambda line: None)
    write_config(day2, base, delete_enabled=True)
    assert not list(LAB.state_dir.glob("ca.*"))
    cut = tmp_path / "cut.age"
    cut.write_bytes(raw[: len(raw) // 2])
    refused = run("inv", "restore", "--from", str(cut), "--identity", str(tmp_path / "id"), config=day2)
    assert refused.returncode == 2 and "nothing was changed" in refused.stderr, refused.stderr
    assert node(1, "ls -A /var/lib/registry 2>/dev/null | wc -l").stdout.strip() == "0"
    r = run("inv", "restore", "--from", str(sealed), "--identity", str(tmp_path / "id"), config=day2, timeout=600)
    assert r.returncode == 0 and statuses(r.stdout, "restore-data") == {"node1": "changed"}, r.stdout + r.stderr
    s = run("inv", "setup", config=day2, env=ENV, timeout=900)
    assert s.returncode == 0, s.stdout
    assert catalog(day2) == before
    for ref, digest in digests.items():
        assert pull_everywhere(ref) == {1: digest, 2: digest, 3: digest}, ref


# --- upgrade ---------------------------------------------------------------------------------------------


def test_upgrade_of_registry_image_rolls_the_service_and_keeps_the_data(day2, tmp_path):
    before = catalog(day2)
    node(1, "cd /tmp && printf 'FROM swarm-registry-lab/registry:2\\nLABEL org.opencontainers.image.version=2.8.2-day2\\n'"
            " > Dockerfile.up && docker build -q -f Dockerfile.up -t swarm-registry-lab/registry:2-day2 . >/dev/null")
    upgraded = tmp_path / "upgraded.yaml"
    write_config(upgraded, day2, image="swarm-registry-lab/registry:2-day2")
    check = run("inv", "setup", "--check", config=upgraded, env=ENV)
    assert "the running service differs in image" in check.stdout, check.stdout
    r = run("inv", "setup", config=upgraded, env=ENV, timeout=600)
    assert r.returncode == 0 and statuses(r.stdout, "deploy") == {"node1": "changed"}, r.stdout
    image = node(1, f"docker service inspect --format '{{{{.Spec.TaskTemplate.ContainerSpec.Image}}}}' {SERVICE}").stdout
    assert image.startswith("swarm-registry-lab/registry:2-day2")
    assert catalog(upgraded) == before
    ref = "day2-gc:keep"
    digests = pull_everywhere(ref)
    assert len(set(digests.values())) == 1
    st = run("inv", "status", config=upgraded, env=ENV)
    assert "swarm-registry-lab/registry:2-day2 (version 2.8.2" in st.stdout, st.stdout
    back = run("inv", "setup", config=day2, env=ENV, timeout=600)
    assert back.returncode == 0 and statuses(back.stdout, "deploy") == {"node1": "changed"}, back.stdout
    assert catalog(day2) == before


# --- rotate-ca ----------------------------------------------------------------------------------------------


def pull_loop(ref: str, stop, results: dict, limit: int = 1500) -> list:
    """One thread per node: `docker pull` in a loop (bounded in count) until `stop` is set."""
    import threading

    def loop(i: int) -> None:
        for _ in range(limit):
            if stop.is_set():
                return
            t = time.monotonic()
            r = node(i, f"docker pull -q {ENDPOINT}/{ref}", check=False, timeout=60)
            results.setdefault(i, []).append((t, r.returncode, (r.stderr or r.stdout).strip()))
            time.sleep(0.2)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    return threads


def test_rotate_ca_under_a_pull_loop_then_a_node_that_was_down_is_updated_by_setup(day2):
    import threading

    push_random(1, "day2-rot:v1", [1])
    ca_before = (LAB.state_dir / "ca.crt").read_bytes()
    stop, results = threading.Event(), {}
    threads = pull_loop("day2-rot:v1", stop, results)
    time.sleep(3)
    r = run("inv", "rotate-ca", config=day2, env=ENV, timeout=600)
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert r.returncode == 0 and "rotation done" in r.stdout, r.stdout
    assert statuses(r.stdout, "trust-both") == {f"node{i}": "changed" for i in (1, 2, 3)}, r.stdout
    assert statuses(r.stdout, "trust-new") == {f"node{i}": "changed" for i in (1, 2, 3)}, r.stdout
    new_ca = (LAB.state_dir / "ca.crt").read_bytes()
    assert new_ca != ca_before and (LAB.state_dir / "ca.previous.crt").read_bytes() == ca_before
    assert not (LAB.state_dir / "ca.rotating").exists()
    failures = [(i, t, err) for i, res in results.items() for t, rc, err in res if rc != 0]
    pulls = sum(len(res) for res in results.values())
    # no pull ever failed on trust: both CAs were trusted before the certificate changed
    assert not [f for f in failures if re.search(r"x509|certificate|unknown authority|tls", f[2], re.I)], failures
    # what failed was the one restart of the registry's task (1 replica, host-mode port: stop-first): one window
    # (a few seconds on an idle machine, longer under load)
    if failures:
        span = max(t for _, t, _ in failures) - min(t for _, t, _ in failures)
        assert span < 60 and all(re.search(r"connection refused|EOF|reset", e) for _, _, e in failures), failures
    print(f"rotate-ca under load: {pulls} pulls, {len(failures)} failed (task restart), 0 on trust")
    for i in (1, 2, 3):
        files = node(i, f"ls /etc/docker/certs.d/{ENDPOINT}").stdout.split()
        assert files == ["ca.crt"] and node(i, f"cat /etc/docker/certs.d/{ENDPOINT}/ca.crt").stdout.encode() == new_ca

    # node3 down during a second rotation: the next setup brings it up to date
    subprocess.run(["docker", "stop", LAB.container_name(3)], check=True, capture_output=True, timeout=120)
    try:
        r = run("inv", "rotate-ca", config=day2, env=ENV, timeout=600)
        assert r.returncode == 1 and statuses(r.stdout, "preflight")["node3"] == "failed", r.stdout
        assert "rotation done" in r.stdout and statuses(r.stdout, "trust-new") == {"node1": "changed", "node2": "changed"}
    finally:
        subprocess.run(["docker", "start", LAB.container_name(3)], check=True, capture_output=True, timeout=120)
    third_ca = (LAB.state_dir / "ca.crt").read_bytes()
    deadline = time.monotonic() + 180
    while True:
        s = run("inv", "setup", config=day2, env=ENV, timeout=600)
        if s.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert s.returncode == 0 and statuses(s.stdout, "trust-cert")["node3"] == "changed", s.stdout
    assert node(3, f"cat /etc/docker/certs.d/{ENDPOINT}/ca.crt").stdout.encode() == third_ca
    assert node(3, f"ls /etc/docker/certs.d/{ENDPOINT}").stdout.split() == ["ca.crt"]
    node(3, f"docker rmi -f {ENDPOINT}/day2-rot:v1 >/dev/null 2>&1; docker pull -q {ENDPOINT}/day2-rot:v1")


def test_gc_runs_exactly_what_dry_printed(day2, tmp_path):
    from tests.integration.test_plan_lab import dry_then_traced_run

    trace = tmp_path / "trace"
    dry, _, printed, executed = dry_then_traced_run("gc", day2, ENV, trace)
    assert executed == printed and len(printed["node1"]) == 5, (dry.stdout, trace.read_text())
    assert PASSWORD not in dry.stdout + trace.read_text()
