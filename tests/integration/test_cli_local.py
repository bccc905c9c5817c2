"""The CLI shells on the local tasks (no SSH): exit codes, one-line errors, real files."""
import subprocess

import pytest
import yaml

from tests.conftest import BASE_HOSTS, require
from tests.integration.clirun import run


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"hosts": BASE_HOSTS, "state_dir": str(tmp_path / "state"),
                                    "cert": {"key_type": "ecdsa-p256"}}))
    return path


def test_lists_show_every_task_with_help():
    inv = run("inv", "--list")
    assert inv.returncode == 0
    for name in ("certs", "render", "trust-cert", "config.check", "users.add", "users.remove", "users.list",
                 "lab.up", "lab.down"):
        assert name in inv.stdout
    fab = run("fab", "--list")
    assert fab.returncode == 0 and "trust-cert" in fab.stdout
    helped = run("inv", "--help", "users.add")
    assert "--password-stdin" in helped.stdout and "never from an argument" in helped.stdout


@pytest.mark.parametrize("change,key", [
    ({"registry": {"port": 99999}}, "registry.port = 99999"),
    ({"registry": {"portt": 5000}}, "registry.portt: unknown key"),
    ({"hosts": {"a": {"address": "1.2.3.4; reboot", "roles": ["manager"]}}}, "hosts.a.address"),
])
@pytest.mark.parametrize("tool,task", [("inv", "config.check"), ("inv", "trust-cert"), ("fab", "trust-cert")])
def test_bad_config_exits_2_with_one_line(tmp_path, change, key, tool, task):
    data = {"hosts": BASE_HOSTS, **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    r = run(tool, task, config=path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and str(path) in lines[0]


def test_config_check_prints_resolved_settings(config):
    r = run("inv", "config.check", config=config)
    assert r.returncode == 0, r.stderr
    shown = yaml.safe_load(r.stdout.split("\n", 1)[1])
    assert shown["registry"]["port"] == 5000 and shown["groups"]["workers"] == ["node2"]


def test_certs_make_files_openssl_verifies_then_reuse(config, tmp_path):
    r = run("inv", "certs", config=config)
    assert r.returncode == 0 and "DNS" not in r.stderr, r.stderr
    assert "registry.onsen.lan" in r.stdout and "expires" in r.stdout
    state = tmp_path / "state"
    v = subprocess.run([require("openssl"), "verify", "-CAfile", str(state / "ca.crt"),
                        str(state / "registry.onsen.lan.crt")], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    again = run("inv", "certs", config=config)
    assert "certs: ok, reusing" in again.stdout


def test_users_add_from_env_and_stdin_verify_with_htpasswd(config, tmp_path):
    r = run("inv", "users.add", "lenain", config=config, env={"REGISTRY_PASSWORD": "env-secret-1"})
    assert r.returncode == 0 and "password set" in r.stdout, r.stderr
    assert "env-secret-1" not in r.stdout + r.stderr
    r2 = run("inv", "users.add", "bob", "--password-stdin", config=config, input="stdin-secret-2\n")
    assert r2.returncode == 0, r2.stderr
    path = tmp_path / "state" / "htpasswd"
    for user, pw in (("lenain", "env-secret-1"), ("bob", "stdin-secret-2")):
        assert subprocess.run([require("htpasswd"), "-vb", str(path), user, pw], capture_output=True).returncode == 0
    again = run("inv", "users.add", "lenain", config=config, env={"REGISTRY_PASSWORD": "env-secret-1"})
    assert "ok, unchanged" in again.stdout
    listed = run("inv", "users.list", config=config)
    assert "lenain" in listed.stdout and "bob" in listed.stdout
    removed = run("inv", "users.remove", "bob", config=config)
    assert removed.returncode == 0 and "removed" in removed.stdout


@pytest.mark.parametrize("args,env,fragment", [
    (["users.add", "a:b"], {"REGISTRY_PASSWORD": "pw"}, "user name 'a:b'"),
    (["users.add", "lenain"], {"REGISTRY_PASSWORD": ""}, "non-empty"),
    (["users.add", "lenain"], {"REGISTRY_PASSWORD": "x" * 73}, "at most 72 bytes"),
    (["users.add", "lenain"], {}, "none given"),
])
def test_users_add_refuses_bad_input(config, args, env, fragment):
    r = run("inv", *args, config=config, env=env, input="")
    assert r.returncode == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_render_prints_the_stack(config):
    """What setup deploys: so it needs the users' passwords (their htpasswd's hash is in the spec)."""
    refused = run("inv", "render", config=config)
    assert refused.returncode == 2 and "lenain listed but without a password" in refused.stderr
    assert run("inv", "users.add", "lenain", config=config, env={"REGISTRY_PASSWORD": "render-pw-1"}).returncode == 0
    r = run("inv", "render", config=config)
    doc = yaml.safe_load(r.stdout)
    assert r.returncode == 0 and doc["services"]["registry"]["ports"][0]["mode"] == "host"


def test_storage_credentials_from_stdin_0600_bad_keys_exit_2_and_migrate_needs_s3(config, tmp_path):
    """Keys only from stdin (never argv), kept 0600; a bad key is one line and exit 2 with nothing written;
    storage.migrate on a filesystem registry is refused before anything remote (positive control: stored)."""
    import stat

    bad = run("inv", "storage.credentials", "--keys-stdin", config=config, input='AKIA1\nbad"secret\n')
    assert bad.returncode == 2 and bad.stderr.count("error:") == 1 and "S3 secret key" in bad.stderr, bad.stderr
    assert not (tmp_path / "state" / "s3-credentials.json").exists()
    good = run("inv", "storage.credentials", "--keys-stdin", config=config, input="AKIAEXAMPLE1\nsecret/Key+1\n")
    assert good.returncode == 0 and "stored in" in good.stdout and "secret/Key+1" not in good.stdout + good.stderr
    f = tmp_path / "state" / "s3-credentials.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and "secret/Key+1" in f.read_text()
    again = run("inv", "storage.credentials", "--keys-stdin", config=config, input="AKIAEXAMPLE1\nsecret/Key+1\n")
    assert again.returncode == 0 and "unchanged" in again.stdout
    migrate = run("inv", "storage.migrate", config=config)
    assert migrate.returncode == 2 and "set storage.driver: s3" in migrate.stderr, migrate.stderr


def test_exit_status_of_several_tasks_with_the_fast_exit(config):
    """inv/fab leave without the interpreter's teardown (cli._exit_fast): every task on the command line
    still runs, its output is all there, and the status is the failing task's (or 0)."""
    both = run("inv", "config.check", "users.list", config=config)
    assert both.returncode == 0 and "registry:" in both.stdout and "lenain" in both.stdout, both.stdout
    then_bad = run("inv", "config.check", "users.add", "a:b", config=config, env={"REGISTRY_PASSWORD": "pw"})
    assert then_bad.returncode == 2 and "registry:" in then_bad.stdout and "user name 'a:b'" in then_bad.stderr
    render_refused = run("inv", "users.list", "render", config=config)  # a later task's refusal is the status
    assert render_refused.returncode == 2 and "lenain" in render_refused.stdout, render_refused.stdout


def test_tasks_called_in_another_program_leave_its_exit_status_alone():
    from swarm_registry import cli

    @cli.handles_errors
    def task():
        return 3

    with pytest.raises(Exception):  # invoke's Exit(3), as a task body in-process gives it
        task()
    assert cli._EXIT == {}  # no atexit hook in this (pytest's) process
