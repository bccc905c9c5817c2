"""credential-helper (steps/credential_store.py): merge and parse tables, the command, the step's plan
from facts (converged: no command; missing: the script, then config.json; malformed config: failed),
and the script run for real with the local sh (gpg, pass and docker-credential-pass of this machine)
in a temporary HOME, so nothing of the real user's keys or store is touched."""
import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from swarm_registry import commands as c
from swarm_registry import facts
from swarm_registry import settings as S
from swarm_registry.errors import Output
from swarm_registry.facts import Facts
from swarm_registry.results import CHANGED, FAILED, OK
from swarm_registry.steps import credential_store as cr
from swarm_registry.steps import login
from tests.conftest import require

FPR = "11C7C986A3BC3FB9D260C98673E81540E49FB92A"
GRIP = "11D5356BC06B51DFCDBBF7D7C5D8B451A97CAE58"


def make_settings(base_settings, **helper):
    return S.from_mapping({**base_settings, "credential_helper": helper} if helper else base_settings)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- merge ------------------------------------------------------------------------------------------

AUTHS = {"auths": {"registry.onsen.lan:5000": {}, "other:5000": {"auth": "dTpw"}}}

MERGE = [
    ("absent", None, {"credsStore": "pass"}, True),
    ("empty", b"", {"credsStore": "pass"}, True),
    ("blank", b" \n\t\n", {"credsStore": "pass"}, True),
    ("empty object", b"{}", {"credsStore": "pass"}, True),
    ("keeps auths and other keys", json.dumps({**AUTHS, "psFormat": "table {{.ID}}", "experimental": "enabled"}).encode(),
     {**AUTHS, "psFormat": "table {{.ID}}", "experimental": "enabled", "credsStore": "pass"}, True),
    ("replaces another store", b'{"credsStore": "secretservice", "credHelpers": {"gcr.io": "gcloud"}}',
     {"credsStore": "pass", "credHelpers": {"gcr.io": "gcloud"}}, True),
    ("utf-8 with BOM", "\ufeff{\"detachKeys\": \"ctrl-é\"}".encode("utf-8"),
     {"detachKeys": "ctrl-é", "credsStore": "pass"}, True),
]


@pytest.mark.parametrize("name,existing,expected,changed", MERGE, ids=[m[0] for m in MERGE])
def test_merge_docker_config_table(name, existing, expected, changed):
    new, did = cr.merge_docker_config(existing)
    assert did is changed
    assert json.loads(new) == expected
    if existing and existing.strip():  # every other key kept, in its place; auths untouched
        before = json.loads(existing.decode("utf-8-sig"))
        assert [k for k in json.loads(new) if k != "credsStore"] == [k for k in before if k != "credsStore"]
        assert json.loads(new).get("auths") == before.get("auths")


def test_merge_leaves_a_converged_file_byte_for_byte():
    existing = b'{"auths":{"r:5000":{}},   "credsStore":"pass"}'  # not our layout: still not rewritten
    assert cr.merge_docker_config(existing) == (existing, False)
    new, _ = cr.merge_docker_config(None)
    assert cr.merge_docker_config(new) == (new, False)


@pytest.mark.parametrize("bad,words", [
    (b'{"auths": {', "not valid JSON"),
    (b'{"auths": {}} trailing', "not valid JSON"),
    (b'["credsStore", "pass"]', "JSON object, found list"),
    (b'"pass"', "JSON object, found str"),
    (b'\xff\xfe{}', "not UTF-8"),
])
def test_merge_refuses_malformed_config(bad, words):
    with pytest.raises(cr.DockerConfigError, match=words):
        cr.merge_docker_config(bad)


# --- parse ------------------------------------------------------------------------------------------

CONVERGED = f"home=/root\npackages=ok\nkey=ok {FPR}\nkeygrip={GRIP}\nstore=ok\nconfig={b64(b'{}')}\nlist=0\n"

PARSE = [
    ((0, CONVERGED), ("ok", "GPG key 73E81540E49FB92A and store ok; docker-credential-pass list answers")),
    ((0, f"home=/root\npackages=installed pass golang-docker-credential-helpers\napt_update=1\nkey=created {FPR}\n"
         f"keygrip={GRIP}\nstore=initialised\nconfig=\nlist=0\n"),
     ("changed", "installed pass golang-docker-credential-helpers (after apt-get update); "
                 f"created GPG key {FPR}; pass init {FPR}; docker-credential-pass list answers")),
    ((0, f"home=/root\npackages=ok\nhelper=installed\nkey=ok {FPR}\nstore=ok\nconfig=\nlist=0\n"),
     ("changed", f"installed {cr.RELEASE_BIN}")),
    ((0, f"home=/root\npackages=ok\nkey=ok {FPR}\nstore=ok\nconfig=\nlist=124\nlist_error=\n"),
     ("failed", "docker-credential-pass list failed: timed out after 10s")),
    ((0, f"home=/root\npackages=ok\nkey=ok {FPR}\nstore=ok\nconfig=\nlist=1\n"
         "list_error=pass not initialized: exit status 1: Error: password store is empty. Try \"pass init\".\n"),
     ("failed", "list failed: exit 1: pass not initialized")),
    ((0, "home=/root\npackages=ok\nkey=ok X\nstore=ok\nconfig=%%%\nlist=0\n"), ("failed", "bad base64")),
    ((23, "home=/root\napt_update=1\n"), ("failed", "(packages): E: Unable to locate package pass")),
    ((40, "home=/root\npackages=ok\n"), ("failed", "(GPG key): E: Unable to locate package pass")),
    ((0, "home=/root\npackages=ok\n"), ("failed", "credential helper set-up failed: E: Unable")),  # cut short
    ((255, ""), ("failed", "E: Unable to locate package pass")),
]


@pytest.mark.parametrize("given,expected", PARSE)
def test_parse_table(given, expected):
    facts = cr.parse(given[0], given[1], "E: Unable to locate package pass\n")
    assert facts.status == expected[0], facts.message
    assert expected[1] in facts.message


def test_parse_keeps_the_config_bytes_home_and_keygrip():
    config = b'{\n\t"auths": {}\n}'
    facts = cr.parse(0, CONVERGED.replace(b64(b"{}"), b64(config)), "")
    assert (facts.config, facts.home, facts.key, facts.keygrip) == (config, "/root", FPR, GRIP)
    assert facts.config_path == "/root/.docker/config.json"
    assert cr.parse(0, CONVERGED.replace(b64(b"{}"), ""), "").config is None


@pytest.mark.parametrize("home,path", [("/root", "/root/.docker/config.json"), ("/home/al/", "/home/al/.docker/config.json"),
                                       ("root", "/root/.docker/config.json"), ("al", "/home/al/.docker/config.json")])
def test_config_path(home, path):
    assert cr.config_path(home) == path


# --- the command --------------------------------------------------------------------------------------


def test_command_distro_argv_and_no_stdin(base_settings):
    cmd = cr.command(make_settings(base_settings), binary=b"ignored")
    assert cmd.argv[:2] == ("sh", "-c")
    assert cmd.argv[2].splitlines()[0] == 'source="${1}" user="${2}" bin="${3}" want="${4}" name_real="${5}"'
    assert cmd.argv[3:] == ("credential-helper", "distro", "", cr.RELEASE_BIN, "-", cr.KEY_NAME)
    assert cmd.stdin is None and not cmd.secret and cmd.timeout == 900
    assert cmd.display() == ("<files/scripts/credential-helper.sh> source=distro user='' "
                             f"bin={cr.RELEASE_BIN} want=- name_real='{cr.KEY_NAME}'")
    assert cr.command(make_settings(base_settings), binary=None, user="alice").argv[5] == "alice"


def test_command_release_sends_the_binary_with_its_sha(base_settings):
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    cmd = cr.command(settings, binary=b"\x7fELF binary")
    assert cmd.argv[4] == "release" and cmd.argv[7] == c.sha256(b"\x7fELF binary")
    assert cmd.stdin == b"\x7fELF binary" and "[11 bytes on stdin]" in cmd.display()
    with pytest.raises(ValueError, match="release.fetch_binary"):
        cr.command(settings, binary=None)


def test_preset_passphrase_commands_keep_the_passphrase_on_stdin():
    enable, preset = cr.preset_passphrase_commands(GRIP.lower(), "correct horse")
    assert enable.argv[:2] == ("sh", "-c") and enable.argv[-1] == "apply" and enable.stdin is None
    assert preset.argv == (cr.PRESET_TOOL, "--preset", GRIP)
    assert preset.stdin == b"correct horse" and preset.secret
    assert "horse" not in preset.shell() and "horse" not in preset.display() and "redacted" in preset.display()
    assert [x.argv[-1] for x in cr.preset_passphrase_commands(GRIP, "pw", check=True)] == ["check"]
    with pytest.raises(ValueError, match="keygrip"):
        cr.preset_passphrase_commands("ABC; rm -rf /", "pw")
    with pytest.raises(ValueError, match="one non-empty line"):
        cr.preset_passphrase_commands(GRIP, "two\nlines")


# --- the step's plan, from facts ------------------------------------------------------------------------

CONFIG_OK = json.dumps({"auths": {"registry.onsen.lan:5000": {}}, "credsStore": "pass"}).encode()


def store_facts(**changes) -> Facts:
    base = dict(pass_installed=True, helper_sha="ab" * 32, helper_path="/usr/bin/docker-credential-pass",
                gpg_id=True, list_rc=0, docker_config=CONFIG_OK)
    return Facts(**{**base, **changes})


def host(settings, name="kawaii"):
    return settings.hosts[name]


def test_plan_converged_host_costs_no_command(base_settings):
    settings = make_settings(base_settings)
    plan = cr.plan(settings, host(settings), store_facts(), None)
    assert (plan.status, plan.actions, plan.host, plan.step) == (OK, (), "kawaii", cr.STEP)


@pytest.mark.parametrize("missing", [dict(pass_installed=False), dict(helper_sha="", helper_path=""),
                                     dict(gpg_id=False), dict(list_rc=1), dict(list_rc=None)])
def test_plan_store_missing_runs_the_script_then_writes_config(base_settings, missing):
    settings = make_settings(base_settings)
    planted = json.dumps({"auths": {"r:5000": {}}, "planted": 1}).encode()
    plan = cr.plan(settings, host(settings), store_facts(docker_config=planted, **missing), None)
    assert plan.status == CHANGED and len(plan.actions) == 2
    script, write = (a.command for a in plan.actions)
    assert script.argv[3:5] == ("credential-helper", "distro") and script.stdin is None
    assert write.argv[3:6] == ("converge-file", "/root/.docker/config.json", "600")
    assert json.loads(write.stdin) == {"auths": {"r:5000": {}}, "planted": 1, "credsStore": "pass"}
    assert "set credsStore=pass in /root/.docker/config.json" in plan.message


def test_plan_store_ok_but_config_without_creds_store_only_writes_config(base_settings):
    settings = make_settings(base_settings)
    plan = cr.plan(settings, host(settings), store_facts(docker_config=None), None)
    assert [a.command.argv[3] for a in plan.actions] == ["converge-file"]
    assert plan.actions[0].command.stdin == b'{\n\t"credsStore": "pass"\n}\n'


@pytest.mark.parametrize("config,words", [(b"{not json", "not valid JSON"), (b"[]", "JSON object, found list"),
                                          (b"\xff\xfe{}", "not UTF-8")])
def test_plan_malformed_config_fails_and_writes_nothing(base_settings, config, words):
    settings = make_settings(base_settings)
    plan = cr.plan(settings, host(settings), store_facts(docker_config=config, gpg_id=False), None)
    assert plan.status == FAILED and plan.actions == ()
    assert plan.message.startswith("/root/.docker/config.json was left alone: ") and words in plan.message


def test_plan_release_reinstalls_a_helper_that_is_not_the_pinned_binary(base_settings):
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    binary = b"\x7fELF pinned"
    pinned = store_facts(helper_sha=c.sha256(binary), helper_path=cr.RELEASE_BIN)
    assert cr.plan(settings, host(settings), pinned, binary).status == OK
    for drift in (dict(helper_sha="ab" * 32), dict(helper_path="/usr/bin/docker-credential-pass")):
        plan = cr.plan(settings, host(settings), store_facts(**{**pinned.__dict__, **drift}), binary)
        assert plan.status == CHANGED and plan.actions[0].command.stdin == binary


def test_with_sudo_root_owns_the_store_and_the_login_whoever_logs_in(base_settings):
    """The account model: with ssh.sudo every command runs as root, so root runs docker, owns the
    credential store and config.json; without sudo, the SSH user does."""
    base_settings["hosts"]["node2"]["user"] = "alice"
    settings = make_settings({**base_settings, "ssh": {"sudo": True}})
    plan = cr.plan(settings, host(settings, "node2"), store_facts(gpg_id=False, docker_config=None), None)
    script, write = (a.command for a in plan.actions)
    assert script.argv[5] == "root" and cr.docker_account(settings, host(settings, "node2")) == "root"
    assert write.argv[3:6] == ("converge-file", "/root/.docker/config.json", "600")
    plain = make_settings(base_settings)
    own = cr.plan(plain, host(plain, "node2"), store_facts(gpg_id=False, docker_config=None), None)
    assert own.actions[0].command.argv[5] == "alice"
    assert own.actions[1].command.argv[4] == "/home/alice/.docker/config.json"


def test_plan_verdicts_on_what_the_commands_print(base_settings):
    settings = make_settings(base_settings)
    script, write = cr.plan(settings, host(settings), store_facts(pass_installed=False, docker_config=None),
                            None).actions
    assert script.verdict(Output(0, CONVERGED, ""))[0] == CHANGED  # the script ran: changed, even if all was there
    status, message = script.verdict(Output(0, CONVERGED.replace("list=0", "list=1\nlist_error=boom"), ""))
    assert status == FAILED and "list failed: exit 1: boom" in message
    status, message = script.verdict(Output(50, "home=/root\n", "gpg: oops\n"))
    assert status == FAILED and "(pass init): gpg: oops" in message
    assert write.verdict(Output(0, "state=changed\n", "")) == (CHANGED, "credsStore=pass set in /root/.docker/config.json")
    status, message = write.verdict(Output(13, "", "/root/.docker/config.json: content arrived truncated\n"))
    assert status == FAILED and message.startswith("writing /root/.docker/config.json failed: ")
    assert "arrived truncated" in message


# --- the script for real, in a temporary HOME ---------------------------------------------------------


@pytest.fixture
def home(tmp_path):
    for tool in ("gpg", "gpgconf", "pass", "docker-credential-pass"):
        require(tool)
    home = tmp_path / "h"
    home.mkdir()
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home / ".gnupg"), "--kill", "gpg-agent"], capture_output=True)


def run_local(cmd, home: Path, **extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C", **extra}
    r = subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, env=env, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def run_facts(settings, names, home: Path) -> Facts:
    rc, out, err = run_local(facts.command(settings, names), home)
    assert rc == 0, err
    return facts.parse(out)


def test_script_distro_apply_rerun_then_facts_plan_and_login_agree(home, base_settings):
    settings = make_settings(base_settings)
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text('{"auths": {"r:5000": {}}}')
    before = run_facts(settings, ["store"], home)
    assert before.pass_installed and before.helper_path and not before.gpg_id
    assert before.helper_sha == ""  # Debian's helper: apt's to check, not hashed on every run
    plan = cr.plan(settings, settings.hosts["kawaii"], before, None)
    assert [a.command.argv[3] for a in plan.actions] == ["credential-helper", "converge-file"]

    first = cr.parse(*run_local(plan.actions[0].command, home))
    assert first.status == "changed", first.message
    assert "created GPG key" in first.message and "pass init" in first.message and "list answers" in first.message
    assert (home / ".password-store" / ".gpg-id").read_text().strip() == first.key
    assert first.config == b'{"auths": {"r:5000": {}}}' and first.home == str(home)
    assert len(first.keygrip) == 40
    again = cr.parse(*run_local(cr.command(settings, binary=None), home))
    assert (again.status, again.key) == ("ok", first.key), again.message

    # config.json as the plan would write it (here, into the temporary HOME): then the plan is ok
    new, _ = cr.merge_docker_config(first.config)
    assert run_local(c.converge_file(str(home / ".docker" / "config.json"), new, 0o600), home)[1] == "state=changed\n"
    after = run_facts(settings, ["store"], home)
    assert after.gpg_id and after.list_rc == 0 and json.loads(after.docker_config)["credsStore"] == "pass"
    assert cr.plan(settings, settings.hosts["kawaii"], after, None).status == "ok"

    # the key has an encryption subkey: a credential really round-trips through pass, and the login
    # fact (which reads pass's store with gpg, not through the helper) finds and hashes the secret the
    # real (Go) helper answers, exactly as login.expected_sha does
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    endpoint, password = settings.registry.endpoint, 'pw<&>"\\é'
    cred = json.dumps({"ServerURL": endpoint, "Username": "lenain", "Secret": password}).encode()
    assert subprocess.run(["docker-credential-pass", "store"], input=cred, env=env).returncode == 0
    got = subprocess.run(["docker-credential-pass", "get"], input=endpoint.encode(), env=env, capture_output=True)
    assert json.loads(got.stdout)["Secret"] == password
    logged = run_facts(settings, ["login"], home)
    assert logged.login_user == "lenain"
    assert logged.login_sha == login.expected_sha(password)
    assert login.logged_in(logged, endpoint, "lenain", password)
    assert not login.logged_in(logged, endpoint, "lenain", "pw")
    # the helper's folder for a server URL is base64url: '-' and '_' where base64 has '+' and '/'
    odd = "h.lan:5000/~x>?"
    assert "-" in facts.helper_entry_dir(odd) and "_" in facts.helper_entry_dir(odd)
    cred = json.dumps({"ServerURL": odd, "Username": "lenain", "Secret": password}).encode()
    assert subprocess.run(["docker-credential-pass", "store"], input=cred, env=env).returncode == 0
    assert (home / ".password-store" / facts.helper_entry_dir(odd) / "lenain.gpg").is_file()


def test_script_reinitialises_a_store_naming_a_missing_key(home, base_settings):
    settings = make_settings(base_settings)
    first = cr.parse(*run_local(cr.command(settings, binary=None), home))
    (home / ".password-store" / ".gpg-id").write_text("0000000000000000000000000000000000000000\n")
    fixed = cr.parse(*run_local(cr.command(settings, binary=None), home))
    assert fixed.status == "changed" and f"pass init {first.key}" in fixed.message
    assert "created GPG key" not in fixed.message  # the existing key is reused
    assert (home / ".password-store" / ".gpg-id").read_text().strip() == first.key


def test_script_release_installs_the_binary_only_when_it_differs(home, base_settings, monkeypatch, tmp_path):
    target = tmp_path / "bin" / "docker-credential-pass"
    monkeypatch.setattr(cr, "RELEASE_BIN", str(target))
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    fake = b"#!/bin/sh\necho '{}'\n"
    first = cr.parse(*run_local(cr.command(settings, binary=fake), home))
    assert first.status == "changed" and f"installed {target}" in first.message, first.message
    assert target.read_bytes() == fake and oct(target.stat().st_mode & 0o777) == "0o755"
    again = cr.parse(*run_local(cr.command(settings, binary=fake), home))
    assert again.status == "ok", again.message
    newer = b"#!/bin/sh\necho newer >&2; exit 3\n" + b"#" * 300_000  # larger than a pipe buffer: still drained
    broken = cr.parse(*run_local(cr.command(settings, binary=newer), home))
    assert broken.status == "failed" and "list failed: exit 3: newer" in broken.message
    assert target.read_bytes() == newer
    assert sorted(p.name for p in target.parent.iterdir()) == ["docker-credential-pass"]  # no temp left


def test_script_refuses_a_truncated_binary(home, base_settings, monkeypatch, tmp_path):
    target = tmp_path / "bin" / "docker-credential-pass"
    monkeypatch.setattr(cr, "RELEASE_BIN", str(target))
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    cmd = cr.command(settings, binary=b"#!/bin/sh\necho '{}'\n")
    facts_ = cr.parse(*run_local(c.Command(cmd.argv, b"#!/bin/sh\n"), home))
    assert facts_.status == "failed" and "(helper binary)" in facts_.message
    assert "verified_write exit 13" in facts_.message  # 13: the content arrived truncated
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_script_failing_to_install_the_binary_leaves_no_temp_file(home, base_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(cr, "RELEASE_BIN", str(tmp_path / "bin" / "docker-credential-pass"))
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    cmd = cr.command(settings, binary=b"#!/bin/sh\necho '{}'\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    assert run_local(c.Command(cmd.argv, b"#!/bin/sh\n"), home, TMPDIR=str(tmp))[0] == 34
    assert list(tmp.iterdir()) == []


def test_preset_passphrase_lets_a_protected_key_decrypt_without_a_prompt(home):
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    (home / ".gnupg").mkdir(mode=0o700)
    (home / ".gnupg" / "gpg-agent.conf").write_text("s2k-count 65536\n")  # protect the test key fast (4 s -> 0.1 s)
    params = ("Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
              "Name-Real: preset test\nPassphrase: pp-secret\nExpire-Date: 0\n%commit\n")
    subprocess.run(["gpg", "--batch", "--gen-key"], input=params.encode(), env=env, capture_output=True, check=True)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--with-keygrip", "--list-secret-keys"], env=env,
                             capture_output=True, text=True).stdout.splitlines()
    ssb = next(i for i, line in enumerate(listing) if line.startswith("ssb:"))
    grip = next(line.split(":")[9] for line in listing[ssb:] if line.startswith("grp:"))
    secret = subprocess.run(["gpg", "--batch", "--trust-model", "always", "-e", "-r", "preset test"], input=b"hello",
                            env=env, capture_output=True, check=True).stdout
    decrypt = ["gpg", "--batch", "--pinentry-mode", "error", "-d"]
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env)
    assert subprocess.run(decrypt, input=secret, env=env, capture_output=True).returncode != 0  # would need a prompt
    enable, preset = cr.preset_passphrase_commands(grip, "pp-secret")
    assert run_local(enable, home)[1] == "state=changed\n"
    assert run_local(enable, home)[1] == "state=ok\n"
    assert (home / ".gnupg" / "gpg-agent.conf").read_text() == "s2k-count 65536\nallow-preset-passphrase\n"
    rc, _, err = run_local(preset, home)
    assert rc == 0, err
    out = subprocess.run(decrypt, input=secret, env=env, capture_output=True)
    assert out.returncode == 0 and out.stdout == b"hello", out.stderr
