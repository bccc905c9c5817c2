"""The real remote scripts (files/scripts/), built by the product's builders, run with the local sh
in a sandbox: a PATH of only the tools they need (symlinks) plus fake `docker`, `pass` and
`docker-credential-pass` written here, and a temporary HOME. No SSH, no real docker. Their output is
read with the product's parsers (`facts.parse`, `Output.values()`) and judged by the steps' verdicts.
"""
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from swarm_registry import commands, facts, render
from swarm_registry import settings as S
from swarm_registry.errors import Output
from swarm_registry.facts import Facts
from swarm_registry.results import CHANGED, FAILED, OK
from swarm_registry.settings import PROJECT_ROOT
from swarm_registry.steps import compose_file, htpasswd_file, login, teardown, trust

SCRIPTS = PROJECT_ROOT / "files" / "scripts"
TOOLS = ("sh", "cat", "cut", "sha256sum", "stat", "base64", "mktemp", "dirname", "basename", "chmod", "mv", "rm",
         "ls", "grep", "tr", "sed", "timeout", "sleep", "wc", "id", "touch", "head")


class Sandbox:
    """A PATH holding only TOOLS and the fakes, a HOME, and a log the fakes append to."""

    def __init__(self, root: Path):
        self.root, self.bin, self.home = root, root / "bin", root / "home"
        self.bin.mkdir()
        self.home.mkdir()
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found, f"{tool} missing on this machine"
            (self.bin / tool).symlink_to(found)
        self.log = root / "calls.log"

    def fake(self, name: str, body: str) -> Path:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\nLOG={self.log}\nSTATE={self.root}\n{body}\n")
        path.chmod(0o755)
        return path

    def run(self, cmd: commands.Command) -> Output:
        env = {"PATH": str(self.bin), "HOME": str(self.home), "LC_ALL": "C", "TMPDIR": str(self.root)}
        r = subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, env=env, cwd=self.root, timeout=30)
        return Output(r.returncode, r.stdout.decode(), r.stderr.decode())

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


@pytest.fixture
def settings(base_settings, tmp_path):
    return S.from_mapping({**base_settings, "registry": {
        "host": "no-such-registry.invalid", "port": 65000,
        "data_dir": str(tmp_path / "data"), "config_dir": str(tmp_path / "cfg")}})


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- every script parses ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.stem for p in SCRIPTS.glob("*.sh")))
def test_every_script_with_lib_and_facts_is_valid_sh(name):
    text = commands.script(name, {}).argv[2]
    r = subprocess.run(["sh", "-n", "-c", text], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --- converge-file -----------------------------------------------------------------------------------

HTPASSWD = b"lenain:$2y$12$abcdefghijklmnopqrstuuOqI7L1cE9lXpAn3vM0q8OBqQm0rF2xW\n"


def test_converge_file_writes_with_mode_then_ok_then_fixes_drift(box, tmp_path):
    target = tmp_path / "auth" / "htpasswd"
    target.parent.mkdir()
    first = box.run(commands.converge_file(str(target), HTPASSWD, 0o600, secret=True))
    assert (first.rc, first.values()) == (0, {"state": "changed"}), first.stderr
    assert target.read_bytes() == HTPASSWD and oct(target.stat().st_mode & 0o7777) == "0o600"
    again = box.run(commands.converge_file(str(target), HTPASSWD, 0o600))
    assert (again.rc, again.values()) == (0, {"state": "ok"})
    target.chmod(0o644)  # a mode drift alone is a change
    assert box.run(commands.converge_file(str(target), HTPASSWD, 0o600)).values() == {"state": "changed"}
    assert oct(target.stat().st_mode & 0o7777) == "0o600"
    assert box.run(commands.converge_file(str(target), b"new\n", 0o600)).values() == {"state": "changed"}
    assert target.read_bytes() == b"new\n"
    assert entries(target.parent) == ["htpasswd"]  # no temp file left behind


def test_converge_file_refuses_truncated_content_and_keeps_the_old_file(box, tmp_path):
    target = tmp_path / "d" / "docker-compose.yml"
    target.parent.mkdir()
    target.write_bytes(b"old\n")
    target.chmod(0o644)
    full = commands.converge_file(str(target), b"version: '3.7'\nservices: {}\n", 0o600)
    cut = box.run(commands.Command(full.argv, full.stdin[:10]))  # the connection dropped mid-stdin
    assert cut.rc == 13 and "arrived truncated" in cut.stderr and "state=" not in cut.stdout
    assert target.read_bytes() == b"old\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert entries(target.parent) == ["docker-compose.yml"]
    fresh = tmp_path / "e" / "f"
    fresh.parent.mkdir()
    assert box.run(commands.Command(commands.converge_file(str(fresh), b"abc").argv, b"")).rc == 13
    assert entries(fresh.parent) == []


def test_verified_write_sets_a_mode_without_execute_bits_as_it_creates_the_file(box, tmp_path):
    """No mktemp and no chmod process where the mode has no execute bits (umask as the shell creates the
    temp file); with execute bits both run (the control: the logging wrappers do see calls)."""
    for name in ("mktemp", "chmod"):
        real = shutil.which(name)
        (box.bin / name).unlink()
        box.fake(name, f'echo "{name} $*" >>"$LOG"; exec {real} "$@"')
    d = tmp_path / "d"
    d.mkdir()
    for mode in (0o644, 0o600, 0o640, 0o444, 0o000):
        target = d / f"f{mode:o}"
        out = box.run(commands.converge_file(str(target), b"data\n", mode))
        assert out.values() == {"state": "changed"}, out.stderr
        assert target.read_bytes() == b"data\n" and target.stat().st_mode & 0o7777 == mode, oct(mode)
    assert box.calls() == [] and sorted(entries(d)) == ["f0", "f444", "f600", "f640", "f644"]
    for mode in (0o755, 0o4644):  # execute or set-id bits: mktemp and chmod
        tool = d / f"tool{mode:o}"
        assert box.run(commands.converge_file(str(tool), b"#!/bin/sh\n", mode)).values() == {"state": "changed"}
        assert tool.stat().st_mode & 0o7777 == mode
    assert [c.split()[0] for c in box.calls()] == ["mktemp", "chmod"] * 2


def test_verified_write_takes_another_name_when_its_temp_name_is_taken(box, tmp_path):
    """The shell's temp name is .NAME.PID; a file already there under it (a run killed by SIGKILL) is left
    alone, and mktemp gives another name."""
    d = tmp_path / "d"
    d.mkdir()
    body = f'printf stale >"{d}/.f.$$"; verified_write "{d}/f" 0644 "{commands.sha256(b"new")}"; echo rc=$?'
    r = subprocess.run(["sh", "-c", f"{commands._library()}\n{body}"],
                       input=b"new", capture_output=True, env={"PATH": str(box.bin)}, timeout=30)
    assert r.stdout.strip().endswith(b"rc=0"), r
    assert (d / "f").read_bytes() == b"new" and (d / "f").stat().st_mode & 0o777 == 0o644
    stale = [p for p in d.iterdir() if p.name.startswith(".f.")]
    assert len(stale) == 1 and stale[0].read_bytes() == b"stale"  # only the one that was there


def test_converge_file_takes_a_hostile_path_as_one_name(box, tmp_path):
    target = tmp_path / "a b'$(touch executed);`touch executed2`\"x\" * -n"  # no newline or \\: settings forbid them
    out = box.run(commands.converge_file(str(target), b"data", 0o640))  # runs in tmp_path
    assert out.values() == {"state": "changed"}, out.stderr
    assert target.read_bytes() == b"data" and oct(target.stat().st_mode & 0o777) == "0o640"
    assert not (tmp_path / "executed").exists() and not (tmp_path / "executed2").exists()


# --- facts: docker -------------------------------------------------------------------------------------


def test_fact_docker_without_docker_is_down(box, settings):
    out = box.run(facts.command(settings, ["docker"]))
    assert out.rc == 0 and out.stdout == "docker=down\n"
    assert not facts.parse(out.stdout).docker_up


def test_fact_docker_manager_and_worker(box, settings):
    box.fake("docker", 'echo "$*" >>"$LOG"\necho "active|true|20.10.24+dfsg1"')
    f = facts.parse(box.run(facts.command(settings, ["docker"])).stdout)
    assert (f.docker_up, f.swarm_state, f.control, f.docker_version) == (True, "active", True, "20.10.24+dfsg1")
    assert box.calls() == ["info --format {{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{.ServerVersion}}"]
    box.fake("docker", 'echo "inactive|false"')
    f = facts.parse(box.run(facts.command(settings, ["docker"])).stdout)
    assert (f.docker_up, f.swarm_state, f.control) == (True, "inactive", False)


def test_fact_docker_daemon_refusing_the_cli_is_down(box, settings):
    box.fake("docker", 'echo "permission denied while trying to connect to the Docker daemon socket" >&2\nexit 1')
    assert not facts.parse(box.run(facts.command(settings, ["docker"])).stdout).docker_up


def test_fact_docker_cli_that_formats_an_empty_info_is_down(box, settings):
    # cli/command/system/info.go: on a server error with --format, Info stays empty, the template runs, exit 0
    box.fake("docker", 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2\necho "|false"')
    assert not facts.parse(box.run(facts.command(settings, ["docker"])).stdout).docker_up


# --- facts: store and login -------------------------------------------------------------------------------


def test_fact_store_and_login_without_pass_or_helper(box, settings):
    out = box.run(facts.command(settings, ["store", "login"]))
    f = facts.parse(out.stdout)
    assert out.rc == 0 and out.values()["pass"] == "0"
    assert (f.pass_installed, f.helper_sha, f.helper_path, f.gpg_id, f.list_rc) == (False, "", "", False, None)
    assert f.docker_config is None and (f.login_user, f.login_sha) == ("", "")
    assert "login_user" not in out.values()  # no helper: nothing to ask


PASSWORD = 'p<w>&"q\\é'  # characters that JSON, shell or Go's encoder would treat specially


def fake_helper(box, *, list_rc=0):
    """docker-credential-pass answering `list` (the login fact reads the store, not the helper), and a gpg
    that "decrypts" by printing the file; with $STATE/no-key it then fails, as gpg whose key is gone."""
    box.fake("gpg", 'for f; do :; done; echo "gpg $*" >>"$LOG"; cat "$f" || exit 2\n'
                    '[ -e "$STATE/no-key" ] && { echo "gpg: decryption failed: No secret key" >&2; exit 2; }; exit 0')
    return box.fake("docker-credential-pass", f"""echo "helper $*" >>"$LOG"
case "$1" in
  list) echo '{{}}'; exit {list_rc} ;;
esac
exit 2""")


def stored(box, endpoint: str, user: str = "lenain") -> Path:
    """Where docker-credential-pass keeps the credential for endpoint (what the fake gpg decrypts)."""
    return box.home / ".password-store" / facts.helper_entry_dir(endpoint) / f"{user}.gpg"


def store(box, endpoint: str, secret: str, user: str = "lenain") -> None:
    stored(box, endpoint, user).parent.mkdir(parents=True, exist_ok=True)
    stored(box, endpoint, user).write_text(secret)


def test_fact_store_with_pass_helper_store_and_config(box, settings, base_settings, monkeypatch):
    box.fake("pass", "exit 0")
    helper = fake_helper(box)
    (box.home / ".password-store").mkdir()
    (box.home / ".password-store" / ".gpg-id").write_text("ABCDEF\n")
    (box.home / ".docker").mkdir()
    config = b'{\n\t"auths": {},\n\t"credsStore": "pass"\n}\n'
    (box.home / ".docker" / "config.json").write_bytes(config)
    f = facts.parse(box.run(facts.command(settings, ["store"])).stdout)
    assert f.pass_installed and f.gpg_id and f.list_rc == 0
    assert (f.helper_sha, f.helper_path) == ("", str(helper))  # source distro: found, not hashed
    monkeypatch.setattr(facts, "RELEASE_BIN", str(helper))  # source release, the pinned binary is this one
    release = S.from_mapping({**base_settings, "credential_helper": {"source": "release", "sha256": "a" * 64}})
    f = facts.parse(box.run(facts.command(release, ["store"])).stdout)
    assert (f.helper_sha, f.helper_path) == (commands.sha256(helper.read_bytes()), str(helper))
    assert f.docker_config == config
    fake_helper(box, list_rc=1)
    assert facts.parse(box.run(facts.command(settings, ["store"])).stdout).list_rc == 1


def test_fact_login_hashes_what_gpg_decrypts_from_the_helpers_entry_like_expected_sha(box, settings):
    endpoint = settings.registry.endpoint
    fake_helper(box)
    store(box, endpoint, PASSWORD)
    out = box.run(facts.command(settings, ["login"]))
    f = facts.parse(out.stdout)
    assert f.login_user == "lenain"
    assert f.login_sha == login.expected_sha(PASSWORD)
    assert f.login_sha != login.expected_sha("other")
    assert PASSWORD not in out.stdout and "q\\" not in out.stdout  # the password never comes back
    assert box.calls() == [f"gpg --quiet --batch --yes -d {stored(box, endpoint)}"]  # not the helper, not pass


def test_fact_login_is_empty_when_gpg_cannot_decrypt_the_entry(box, settings):
    endpoint = settings.registry.endpoint
    fake_helper(box)
    store(box, endpoint, PASSWORD)
    assert box.run(facts.command(settings, ["login"])).values()["login_user"] == "lenain"  # control
    (box.root / "no-key").touch()  # gpg prints what it read, then fails: a failure, whatever came out
    f = box.run(facts.command(settings, ["login"])).values()
    assert (f["login_user"], f["login_sha"]) == ("", "")


# --- facts: registry node, trust -----------------------------------------------------------------------------


def test_fact_registry_node_modes_and_sums(box, settings, tmp_path):
    r = settings.registry
    box.fake("docker", 'echo "$*" >>"$LOG"\n[ "$1 $2" = "image inspect" ] && echo sha256:img1')
    empty = facts.parse(box.run(facts.command(settings, ["registry_node"])).stdout)
    assert (empty.data_dir_mode, empty.auth_dir_mode, empty.htpasswd, empty.compose) == ("", "", ":", ":")
    assert empty.image_id == "sha256:img1"
    assert box.calls() == [f"image inspect --format {{{{.Id}}}} {r.image}"]

    os.makedirs(r.data_dir, mode=0o755)
    os.makedirs(r.auth_dir)
    os.chmod(r.config_dir, 0o755)
    os.chmod(r.auth_dir, 0o700)
    assert box.run(commands.converge_file(f"{r.auth_dir}/htpasswd", HTPASSWD, 0o600)).values()["state"] == "changed"
    stack = render.render_stack(settings, render.SecretNames("c-1", "k-1"), commands.sha256(HTPASSWD))
    box.run(commands.converge_file(facts.compose_path(settings), stack, 0o644))
    f = facts.parse(box.run(facts.command(settings, ["registry_node"])).stdout)
    assert (f.data_dir_mode, f.auth_dir_mode) == ("755", "700")
    assert f.htpasswd == f"{commands.sha256(HTPASSWD)}:600" and f.compose == f"{commands.sha256(stack)}:644"
    # what the scripts wrote is what the steps call converged
    w = SimpleNamespace(settings=settings, htpasswd=HTPASSWD, unlisted_users=(), stack=stack)
    assert htpasswd_file.plan(w, "kawaii", f).status == OK
    assert compose_file.plan(w, "kawaii", f).status == OK
    os.chmod(f"{r.auth_dir}/htpasswd", 0o644)
    drift = facts.parse(box.run(facts.command(settings, ["registry_node"])).stdout)
    assert drift.htpasswd.endswith(":644") and htpasswd_file.plan(w, "kawaii", drift).status == CHANGED


def test_fact_trust_for_an_endpoint_without_certs_dir(box, settings):
    out = box.run(facts.command(settings, ["trust"]))
    f = facts.parse(out.stdout)
    assert out.rc == 0 and (f.trust, f.trust_strays) == ("::", "")
    assert not trust.converged(f, b"anchor")
    assert trust.plan(settings.registry.endpoint, b"anchor", "node2", f).status == CHANGED


def test_fact_trust_on_a_fresh_node_starts_no_process(tmp_path, settings):
    """trust-cert's facts on a node without certs.d/ENDPOINT run on the shell's builtins alone (a first
    fan-out pays for no sha256sum or stat per host): every command on PATH logs its call, and none is made."""
    cmd = facts.command(settings, ["trust"])
    tools, log = tmp_path / "tools", tmp_path / "calls"
    tools.mkdir()
    for name in ("sha256sum", "stat", "cat", "ls"):
        (tools / name).write_text(f'#!/bin/sh\necho {name} >>{log}\nexit 1\n')
        (tools / name).chmod(0o755)
    argv = (shutil.which(cmd.argv[0]), *cmd.argv[1:])  # sh itself from this machine
    r = subprocess.run(argv, capture_output=True, env={"PATH": str(tools)}, timeout=30)
    assert (r.returncode, r.stderr, log.exists()) == (0, b"", False)
    assert facts.parse(r.stdout.decode()).trust == "::"


def test_a_first_trust_cert_through_the_held_shell_starts_few_processes(tmp_path, settings):
    """What a changed node runs, as Session sends it: the facts held (commands.holding), then the trust
    script through that shell. The facts run in a subshell (no second sh), the script is exec'd as
    itself, and the read-back after the write takes the sum verified_write checked (one sha256sum, one
    stat). Logging wrappers in front of the real sh, sha256sum and stat count the calls."""
    certs_d, tools, log = tmp_path / "certs", tmp_path / "tools", tmp_path / "calls"
    tools.mkdir()
    for name in TOOLS + ("install",):
        real = shutil.which(name)
        if name in ("sh", "sha256sum", "stat"):
            (tools / name).write_text(f'#!{shutil.which("sh")}\necho {name} >>{log}\nexec {real} "$@"\n')
            (tools / name).chmod(0o755)
        else:
            (tools / name).symlink_to(real)

    def here(cmd):
        return commands.Command(tuple(a.replace(commands.CERTS_D, str(certs_d)) for a in cmd.argv), cmd.stdin)

    anchor = b"-----BEGIN CERTIFICATE-----\nanchor\n-----END CERTIFICATE-----\n"
    held = here(commands.holding(facts.command(settings, ["trust"]), "the-mark"))
    install = here(trust.command(settings.registry.endpoint, anchor))
    r = subprocess.run(held.argv, input=commands.held_next(install) + anchor, capture_output=True,
                       env={"PATH": str(tools), "LC_ALL": "C"}, timeout=30)
    assert r.returncode == 0, r.stderr
    facts_out, _, script_out = r.stdout.decode().partition("the-mark 0\n")
    assert facts.parse(facts_out).trust == "::"  # nothing there before
    assert facts.parse(script_out).trust == f"{commands.sha256(anchor)}:644:755"
    assert (certs_d / settings.registry.endpoint / "ca.crt").read_bytes() == anchor
    assert log.read_text().split() == ["sh", "sh", "sha256sum", "stat"]  # held shell, trust script
    # a changed ca.crt under the same sum would be a bug of verified_write, not of the read-back: the
    # facts command alone (a re-run) still hashes the file itself
    (certs_d / settings.registry.endpoint / "ca.crt").write_bytes(b"other")
    log.unlink()
    again = subprocess.run(held.argv, input=b"", capture_output=True, env={"PATH": str(tools), "LC_ALL": "C"},
                           timeout=30)
    assert facts.parse(again.stdout.decode().partition("the-mark 0")[0]).trust.startswith(commands.sha256(b"other"))
    assert log.read_text().split() == ["sh", "stat", "sha256sum"]


def test_fact_data_reads_size_and_files_and_starts_no_process_without_the_directory(box, settings):
    """The data fact runs on every node (a registry moved away leaves its data); where registry.data_dir is
    not there (most nodes) it starts no du or find. Logging fakes on PATH, then the real tools."""
    data = Path(settings.registry.data_dir)
    for name in ("du", "find"):
        box.fake(name, f'echo "{name} $*" >>"$LOG"; exit 1')
    f = facts.parse(box.run(facts.command(settings, ["data"])).stdout)
    assert (f.data_bytes, f.data_files, box.calls()) == (None, False, [])
    data.mkdir()
    box.run(facts.command(settings, ["data"]))  # control: the directory is read
    assert [c.split()[0] for c in box.calls()] == ["du", "find"]
    for name in ("du", "find"):
        (box.bin / name).unlink()
        (box.bin / name).symlink_to(shutil.which(name))
    (data / "blob").write_bytes(b"x" * 5000)
    f = facts.parse(box.run(facts.command(settings, ["data"])).stdout)
    assert f.data_bytes is not None and f.data_bytes >= 5000 and f.data_files


# --- facts: the manager's view, through a scripted docker ------------------------------------------------------

SPEC = {"Name": "onsen-registry_registry", "Labels": {"io.swarm-registry.spec": "abc"},
        "TaskTemplate": {"ContainerSpec": {"Image": "registry:2@sha256:" + "1" * 64, "Env": ["A=b c"],
                                           "Labels": {"x": "1|2"}}},
        "Mode": {"Replicated": {"Replicas": 1}}}

FAKE_SWARM = """echo "$*" >>"$LOG"
case "$1 $2" in
  "info --format") echo "active|true" ;;
  "node ls") printf 'node=id1|kawaii|Ready|Active\\nnode=id2|node2|Down|Active\\n' ;;
  "node inspect") printf 'nodelabels=kawaii|{"registry":"true"}\\nnodelabels=node2|null\\n' ;;
  "secret ls") printf 'secret=registry.onsen.lan.crt-1111|2026-11-01 10:00:00 +0000 UTC\\n' ;;
  "service inspect") cat "$STATE/spec.json" ;;
  "service ps") printf 't2\\nt1\\n' ;;
  "inspect --type") printf 'task=t2|id1|running|running||abc\\ntask=t1|id1|shutdown|failed|No such image: registry:2|old\\n' ;;
  *) exit 1 ;;
esac"""


def test_fact_manager_and_tasks_read_back_through_the_parser(box, settings):
    box.fake("docker", FAKE_SWARM)
    (box.root / "spec.json").write_text(json.dumps(SPEC) + "\n")
    out = box.run(facts.command(settings, facts.names_for("kawaii", manager="kawaii", registry="node2")))
    f = facts.parse(out.stdout)
    assert out.rc == 0 and f.control
    assert [(n.id, n.hostname, n.status) for n in f.nodes] == [("id1", "kawaii", "Ready"), ("id2", "node2", "Down")]
    assert f.node_labels == {"kawaii": {"registry": "true"}, "node2": {}}
    assert f.secrets == [("registry.onsen.lan.crt-1111", "2026-11-01 10:00:00 +0000 UTC")]
    assert f.service == SPEC  # base64 on the wire: JSON with spaces, '|' and '=' arrives whole
    assert [(t.id, t.running, t.error, t.spec) for t in f.tasks] == [
        ("t2", True, "", "abc"), ("t1", False, "No such image: registry:2", "old")]
    calls = box.calls()
    assert "secret ls --filter label=io.swarm-registry.stack=onsen-registry --format secret={{.Name}}|{{.CreatedAt}}" in calls
    assert "service inspect --format {{json .Spec}} onsen-registry_registry" in calls
    # one `node ls`: the IDs for `node inspect` come from its own lines
    assert [c for c in calls if c.startswith("node ")] == [
        "node ls --format node={{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}",
        "node inspect --format nodelabels={{.Description.Hostname}}|{{json .Spec.Labels}} id1 id2"]
    assert f.node_id("kawaii") == "id1" and f.hostname("id2") == "node2"


def test_fact_manager_without_a_service(box, settings):
    box.fake("docker", 'case "$1 $2" in "info --format") echo "active|true" ;; "node ls") ;; *) exit 1 ;; esac')
    out = box.run(facts.command(settings, ["docker", "manager", "tasks"]))
    f = facts.parse(out.stdout)
    assert out.rc == 0 and "service=\n" in out.stdout
    assert (f.service, f.tasks, f.nodes, f.secrets, f.manager_error) == (None, [], [], [], "")


LEADERLESS_ERROR = ("Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. "
                    "It's possible that too few managers are online. Make sure more than half of the managers are "
                    "online.")  # as node2's docker said here with 2 of its 3 managers stopped


@pytest.mark.parametrize("said, error, leaderless", [
    (LEADERLESS_ERROR, LEADERLESS_ERROR, True),
    # the first call after the leader was lost waits on it (~20 s here), then:
    ("Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded",
     "Error response from daemon: rpc error: code = DeadlineExceeded desc = context deadline exceeded", True),
    ("Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify "
     "cluster state. Please run this command on a manager node or promote the current node to a manager.",
     "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify "
     "cluster state. Please run this command on a manager node or promote the current node to a manager.", False),
    ("", "docker node ls failed", False),  # no word from docker: still not "no nodes"
])
def test_fact_manager_where_the_swarm_does_not_answer_says_so_and_reads_nothing_else(box, settings, said, error,
                                                                                      leaderless):
    box.fake("docker", f"""echo "$*" >>"$LOG"
case "$1 $2" in
  "info --format") echo "active|true" ;;
  "node ls") printf '%s\\n' "{said}" | sed 's/\\. /.\\n/' >&2; exit 1 ;;
  *) echo "ok=1" ;;
esac""")
    out = box.run(facts.command(settings, ["docker", "manager", "tasks"]))
    f = facts.parse(out.stdout)
    assert out.rc == 0 and f.manager_error == error  # on one line, though docker's may span two
    assert facts.leaderless(f) is leaderless
    assert (f.service, f.tasks, f.nodes, f.secrets) == (None, [], [], [])
    assert [c.split(" --")[0] for c in box.calls()] == ["info", "node ls"]  # no secret ls, service inspect, ps


# --- login.sh ---------------------------------------------------------------------------------------------------

FAKE_DOCKER_LOGIN = """echo "$*" >>"$LOG"
case "$1" in
  login) pw=$(cat); printf '%s' "$pw" >"$STATE/password-seen"
         [ "$pw" = "$(cat "$STATE/password")" ] || { echo "Error response from daemon: login attempt to https://$5/v2/ failed with status: 401 Unauthorized" >&2; exit 1; }
         printf '%s' "$pw" >"$(cat "$STATE/entry")"  # where credsStore pass keeps it
         echo "Login Succeeded" ;;
  logout) rm -f "$(cat "$STATE/entry")"; echo "Removing login credentials for $2" ;;
esac"""


@pytest.fixture
def login_box(box, settings):
    endpoint = settings.registry.endpoint
    box.fake("docker", FAKE_DOCKER_LOGIN)
    fake_helper(box)
    (box.root / "password").write_text(PASSWORD)
    (box.root / "entry").write_text(str(stored(box, endpoint)))  # where the fake docker login stores it
    stored(box, endpoint).parent.mkdir(parents=True)
    (box.home / ".docker").mkdir()
    (box.home / ".docker" / "config.json").write_text(json.dumps({"auths": {endpoint: {}}, "credsStore": "pass"}))
    return box


def test_login_script_logs_in_and_the_step_verdict_accepts_it(login_box, settings):
    endpoint, box = settings.registry.endpoint, login_box
    plan = login.plan(endpoint, "lenain", PASSWORD, "node2", Facts(helper_path="/usr/bin/docker-credential-pass"))
    assert plan.status == CHANGED and len(plan.actions) == 1
    action = plan.actions[0]
    out = box.run(action.command)
    values = out.values()
    assert values["rc"] == "0" and values["login_user"] == "lenain"
    assert values["login_sha"] == login.expected_sha(PASSWORD)
    assert base64.b64decode(values["dconfig"]) == (box.home / ".docker" / "config.json").read_bytes()
    assert (box.root / "password-seen").read_text() == PASSWORD  # exactly the password: stdin, no newline
    assert box.calls()[0] == f"login --username lenain --password-stdin {endpoint}"
    assert PASSWORD not in out.stdout
    assert action.verdict(out)[0] == CHANGED, action.verdict(out)
    # and the facts read afterwards say: nothing more to do
    again = facts.parse(box.run(facts.command(settings, ["login"])).stdout)
    assert login.plan(endpoint, "lenain", PASSWORD, "node2", Facts(helper_path="/usr/bin/docker-credential-pass", login_user=again.login_user,
                                                                    login_sha=again.login_sha)).status == OK


def test_login_script_wrong_password_fails_with_the_daemon_error(login_box, settings):
    endpoint = settings.registry.endpoint
    action = login.plan(endpoint, "lenain", "wrong", "node2", Facts(helper_path="/usr/bin/docker-credential-pass")).actions[0]
    out = login_box.run(action.command)
    assert out.values()["rc"] == "1" and out.values()["login_user"] == ""
    status, message = action.verdict(out)
    assert status == FAILED and message == (f"docker login to {endpoint} failed: Error response from daemon: login "
                                            f"attempt to https://{endpoint}/v2/ failed with status: 401 Unauthorized")


def test_login_script_password_in_config_json_fails(login_box, settings):
    endpoint = settings.registry.endpoint
    (login_box.home / ".docker" / "config.json").write_text(json.dumps({"auths": {endpoint: {"auth": "bGVuYWluOnB3"}}}))
    action = login.plan(endpoint, "lenain", PASSWORD, "node2", Facts(helper_path="/usr/bin/docker-credential-pass")).actions[0]
    status, message = action.verdict(login_box.run(action.command))
    assert status == FAILED and "config.json holds the password" in message


def test_logout_script_removes_the_credential(login_box, settings):
    endpoint = settings.registry.endpoint
    store(login_box, endpoint, PASSWORD)
    plan = login.plan_logout(endpoint, "lenain", "node2", Facts(login_user="lenain"))
    out = login_box.run(plan.actions[0].command)
    assert plan.actions[0].command.stdin is None
    assert out.values()["rc"] == "0" and out.values()["login_user"] == ""
    assert plan.actions[0].verdict(out) == (CHANGED, f"logged out of {endpoint}")
    assert f"logout {endpoint}" in login_box.calls()


def test_fact_login_is_empty_when_the_helper_finds_nothing(box, settings):
    fake_helper(box)
    f = box.run(facts.command(settings, ["login"])).values()
    assert (f["login_user"], f["login_sha"]) == ("", "")


# --- deploy.sh, teardown.sh ---------------------------------------------------------------------------------------


def test_deploy_script_feeds_the_stack_file_to_docker_stack_deploy(box, settings):
    box.fake("docker", """echo "$*" >>"$LOG"
case "$1 $2" in
  "service inspect") exit 1 ;;
  "network ls") n=$(cat "$STATE/nets" 2>/dev/null || echo 0); echo $((n + 1)) >"$STATE/nets"
                [ "$n" -lt 1 ] && echo netid1 ;;  # a network of an earlier `stack rm`, gone on the 2nd look
  "stack deploy") cat >"$STATE/deployed" ;;
esac""")
    r = settings.registry
    stack = render.render_stack(settings, render.SecretNames("c-1", "k-1"), "0" * 64)
    out = box.run(commands.stack_deploy(r.stack, r.service, stack, r.resolve_image))
    assert out.rc == 0, out.stderr
    assert (box.root / "deployed").read_bytes() == stack
    calls = box.calls()
    assert calls[0] == f"service inspect {r.service}"
    assert calls.count(f"network ls -q --filter label=com.docker.stack.namespace={r.stack}") == 2
    assert calls[-1] == f"stack deploy --with-registry-auth --resolve-image always --compose-file - {r.stack}"


FAKE_TEARDOWN = """echo "$*" >>"$LOG"
case "$1 $2" in
  "service inspect") [ -f "$STATE/svc" ]; exit $? ;;
  "stack rm") rm -f "$STATE/svc" ;;
  "secret ls") [ -f "$STATE/secrets" ] && cat "$STATE/secrets" ;;
  "secret rm") grep -v -x "$3" "$STATE/secrets" >"$STATE/s2"; mv "$STATE/s2" "$STATE/secrets" ;;
  "node inspect") [ -f "$STATE/label" ] && echo true ;;
  "node update") rm -f "$STATE/label" ;;
esac
exit 0"""


def test_teardown_script_check_then_apply_then_nothing_left(box, settings):
    box.fake("docker", FAKE_TEARDOWN)
    for name, text in (("svc", ""), ("secrets", "s1\ns2\n"), ("label", "")):
        (box.root / name).write_text(text)
    check = box.run(teardown.teardown_command(settings, check=True))
    assert teardown.parse_teardown(check.rc, check.stdout, check.stderr, True) == (
        CHANGED, "would remove: stack (would-remove), 2 secret(s), label (would-remove)")
    assert (box.root / "svc").exists()  # check mode changes nothing
    done = box.run(teardown.teardown_command(settings, check=False))
    assert done.values() == {"stack": "removed", "secrets": "2", "label": "removed"}, done.stderr
    assert teardown.parse_teardown(done.rc, done.stdout, done.stderr, False)[0] == CHANGED
    assert "node update --label-rm registry kawaii" in box.calls()
    again = box.run(teardown.teardown_command(settings, check=False))
    assert teardown.parse_teardown(again.rc, again.stdout, again.stderr, False) == (OK, "nothing left to remove")


# --- the inline image commands -----------------------------------------------------------------------------------


def test_image_pull_if_missing_pulls_only_when_absent(box):
    box.fake("docker", 'echo "$*" >>"$LOG"\n[ "$1 $2" = "image inspect" ] && [ -f "$STATE/have" ] && exit 0\n'
                       '[ "$1" = pull ] && exit 0\nexit 1')
    assert box.run(commands.image_pull_if_missing("registry:2")).rc == 0
    assert box.calls() == ["image inspect registry:2", "pull -q registry:2"]
    (box.root / "have").write_text("")
    box.log.unlink()
    assert box.run(commands.image_pull_if_missing("registry:2")).rc == 0
    assert box.calls() == ["image inspect registry:2"]


def test_image_push_prints_the_repo_digest(box):
    box.fake("docker", 'case "$1" in push) exit 0 ;; image) printf "r:5000/s@sha256:aa\\n\\n" ;; esac')
    assert box.run(commands.image_push("r:5000/s:1")).stdout.split() == ["r:5000/s@sha256:aa"]
    box.fake("docker", 'echo "denied: requested access to the resource is denied" >&2; exit 1')
    out = box.run(commands.image_push("r:5000/s:1"))
    assert out.rc == 1 and out.stdout == "" and out.error() == "denied: requested access to the resource is denied"
