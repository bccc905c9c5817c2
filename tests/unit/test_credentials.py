"""credential-helper: parse and merge tables, the command's argv, the step's command count, and the
script run for real with the local sh (gpg, pass and docker-credential-pass of this machine) in a
temporary HOME, so nothing of the real user's keys or store is touched."""
import base64
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from swarm_registry import commands as c
from swarm_registry import settings as S
from swarm_registry.operations import credentials as cr
from swarm_registry.remote.session import Output
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
    ((0, "home=/root\npackages=would-install pass\nkey=would-create\nstore=would-init\nconfig=\nlist=skipped\n"),
     ("changed", "would install pass; would create a GPG key; would run pass init; docker-credential-pass list "
                 "not tried (check mode)")),
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
    cmd = cr.command(make_settings(base_settings), check=False, binary=b"ignored")
    assert cmd.argv[:2] == ("sh", "-c") and cmd.argv[2] == c.script("credential-helper")
    assert cmd.argv[3:] == ("credential-helper", "distro", "apply", "", cr.RELEASE_BIN, "-", cr.KEY_NAME)
    assert cmd.stdin is None and not cmd.secret
    assert cmd.display().startswith("sh -c '<files/scripts/credential-helper.sh>' credential-helper distro apply")
    checked = cr.command(make_settings(base_settings), check=True, binary=None, user="alice")
    assert checked.argv[4:7] == ("distro", "check", "alice")
    assert shlex.split(checked.shell()) == list(checked.argv)


def test_command_release_sends_the_binary_with_its_sha(base_settings):
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    cmd = cr.command(settings, check=False, binary=b"\x7fELF binary")
    assert cmd.argv[4] == "release" and cmd.argv[8] == c.sha256(b"\x7fELF binary")
    assert cmd.stdin == b"\x7fELF binary" and "[11 bytes on stdin]" in cmd.display()
    with pytest.raises(ValueError, match="release.fetch_binary"):
        cr.command(settings, check=False, binary=None)


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


def test_script_is_valid_sh():
    assert subprocess.run(["sh", "-n", "-c", c.script("credential-helper")]).returncode == 0


# --- run_step with a scripted session ---------------------------------------------------------------


class FakeSession:
    def __init__(self, *outputs):
        self.outputs = list(outputs)
        self.sent = []

    def run(self, cmd):
        self.sent.append(cmd)
        return self.outputs.pop(0)


def test_run_step_writes_config_once_then_runs_one_command(base_settings):
    settings = make_settings(base_settings)
    planted = json.dumps({"auths": {"r:5000": {}}, "planted": 1}).encode()
    first = FakeSession(Output(0, CONVERGED.replace(b64(b"{}"), b64(planted)), ""), Output(0, "state=changed\n", ""))
    status, message = cr.run_step(first, settings, check=False, binary=None)
    assert status == "changed" and "credsStore=pass set in /root/.docker/config.json" in message
    write = first.sent[1]
    assert write.argv[3:6] == ("converge-file", "/root/.docker/config.json", "600")
    assert json.loads(write.stdin) == {"auths": {"r:5000": {}}, "planted": 1, "credsStore": "pass"}
    second = FakeSession(Output(0, CONVERGED.replace(b64(b"{}"), b64(write.stdin)), ""))
    assert cr.run_step(second, settings, check=False, binary=None)[0] == "ok"
    assert len(second.sent) == 1


@pytest.mark.parametrize("stdout,rc,status,words", [
    (CONVERGED.replace(b64(b"{}"), b64(b"{not json")), 0, "failed", "left alone: config.json is not valid JSON"),
    (CONVERGED.replace("list=0", "list=1\nlist_error=boom"), 0, "failed", "list failed: exit 1: boom"),
    ("home=/root\n", 50, "failed", "(pass init)"),
])
def test_run_step_failures_write_nothing(base_settings, stdout, rc, status, words):
    session = FakeSession(Output(rc, stdout, "gpg: oops\n"))
    got = cr.run_step(session, make_settings(base_settings), check=False, binary=None)
    assert got[0] == status and words in got[1] and len(session.sent) == 1


def test_run_step_check_mode_writes_nothing(base_settings):
    session = FakeSession(Output(0, CONVERGED, ""))
    status, message = cr.run_step(session, make_settings(base_settings), check=True, binary=None)
    assert status == "changed" and "would set credsStore=pass" in message and len(session.sent) == 1


def test_run_step_reports_a_failed_write(base_settings):
    session = FakeSession(Output(0, CONVERGED, ""), Output(13, "", "content arrived truncated\n"))
    status, message = cr.run_step(session, make_settings(base_settings), check=False, binary=None)
    assert status == "failed" and "writing /root/.docker/config.json failed: content arrived truncated" in message


# --- the script for real, in a temporary HOME ---------------------------------------------------------


@pytest.fixture
def home(tmp_path):
    for tool in ("gpg", "gpgconf", "pass", "docker-credential-pass"):
        require(tool)
    home = tmp_path / "h"
    home.mkdir()
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home / ".gnupg"), "--kill", "gpg-agent"], capture_output=True)


def run_local(cmd, home: Path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C"}
    r = subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, env=env, timeout=120)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_script_distro_check_apply_rerun(home, base_settings):
    settings = make_settings(base_settings)
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text('{"auths": {"r:5000": {}}}')
    before = cr.parse(*run_local(cr.command(settings, check=True, binary=None), home))
    assert before.status == "changed" and "would create a GPG key" in before.message
    assert not (home / ".gnupg").exists() and not (home / ".password-store").exists()  # check mode: nothing made

    first = cr.parse(*run_local(cr.command(settings, check=False, binary=None), home))
    assert first.status == "changed", first.message
    assert "created GPG key" in first.message and "pass init" in first.message and "list answers" in first.message
    assert (home / ".password-store" / ".gpg-id").read_text().strip() == first.key
    assert first.config == b'{"auths": {"r:5000": {}}}' and first.home == str(home)
    assert len(first.keygrip) == 40
    # the key has an encryption subkey: a credential really round-trips through pass
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    cred = b'{"ServerURL":"r.test:5000","Username":"u","Secret":"s3"}'
    assert subprocess.run(["docker-credential-pass", "store"], input=cred, env=env).returncode == 0
    got = subprocess.run(["docker-credential-pass", "get"], input=b"r.test:5000", env=env, capture_output=True)
    assert json.loads(got.stdout)["Secret"] == "s3"

    again = cr.parse(*run_local(cr.command(settings, check=False, binary=None), home))
    assert (again.status, again.key) == ("ok", first.key), again.message
    assert cr.parse(*run_local(cr.command(settings, check=True, binary=None), home)).status == "ok"


def test_script_reinitialises_a_store_naming_a_missing_key(home, base_settings):
    settings = make_settings(base_settings)
    first = cr.parse(*run_local(cr.command(settings, check=False, binary=None), home))
    (home / ".password-store" / ".gpg-id").write_text("0000000000000000000000000000000000000000\n")
    check = cr.parse(*run_local(cr.command(settings, check=True, binary=None), home))
    assert check.status == "changed" and "would run pass init" in check.message
    fixed = cr.parse(*run_local(cr.command(settings, check=False, binary=None), home))
    assert fixed.status == "changed" and f"pass init {first.key}" in fixed.message
    assert "created GPG key" not in fixed.message  # the existing key is reused
    assert (home / ".password-store" / ".gpg-id").read_text().strip() == first.key


def test_script_release_installs_the_binary_only_when_it_differs(home, base_settings, monkeypatch, tmp_path):
    target = tmp_path / "bin" / "docker-credential-pass"
    monkeypatch.setattr(cr, "RELEASE_BIN", str(target))
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    fake = b"#!/bin/sh\necho '{}'\n"
    first = cr.parse(*run_local(cr.command(settings, check=False, binary=fake), home))
    assert first.status == "changed" and f"installed {target}" in first.message, first.message
    assert target.read_bytes() == fake and oct(target.stat().st_mode & 0o777) == "0o755"
    again = cr.parse(*run_local(cr.command(settings, check=False, binary=fake), home))
    assert again.status == "ok", again.message
    newer = b"#!/bin/sh\necho newer >&2; exit 3\n" + b"#" * 300_000  # larger than a pipe buffer: still drained
    check = cr.parse(*run_local(cr.command(settings, check=True, binary=newer), home))
    assert check.status == "changed" and "would install" in check.message and target.read_bytes() == fake
    broken = cr.parse(*run_local(cr.command(settings, check=False, binary=newer), home))
    assert broken.status == "failed" and "list failed: exit 3: newer" in broken.message
    assert sorted(p.name for p in target.parent.iterdir()) == ["docker-credential-pass"]  # no temp left


def test_script_refuses_a_truncated_binary(home, base_settings, monkeypatch, tmp_path):
    target = tmp_path / "bin" / "docker-credential-pass"
    monkeypatch.setattr(cr, "RELEASE_BIN", str(target))
    settings = make_settings(base_settings, source="release", sha256="a" * 64)
    cmd = cr.command(settings, check=False, binary=b"#!/bin/sh\necho '{}'\n")
    facts = cr.parse(*run_local(c.Command(cmd.argv, b"#!/bin/sh\n"), home))
    assert facts.status == "failed" and "arrived truncated" in facts.message
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_preset_passphrase_lets_a_protected_key_decrypt_without_a_prompt(home):
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    params = ("Key-Type: RSA\nKey-Length: 2048\nSubkey-Type: RSA\nSubkey-Length: 2048\nSubkey-Usage: encrypt\n"
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
    rc, _, err = run_local(preset, home)
    assert rc == 0, err
    out = subprocess.run(decrypt, input=secret, env=env, capture_output=True)
    assert out.returncode == 0 and out.stdout == b"hello", out.stderr
