"""Command builders: argv in, argv out; hostile values quoted; secrets only on stdin and redacted.

The two remote scripts are also run for real with the local sh, on temp directories.
"""
import shlex
import subprocess

import pytest

from swarm_registry import commands as c
from swarm_registry.operations import trust_cert as trust_op

HOSTILE = "x'; rm -rf / #$(id)`id`\n"

TABLE = [
    (c.make_dirs(["/var/lib/registry", "/srv/a b/auth"], 0o700),
     ("install", "-d", "-m", "700", "--", "/var/lib/registry", "/srv/a b/auth")),
    (c.secret_list("onsen-registry"),
     ("docker", "secret", "ls", "--filter", "label=io.swarm-registry.stack=onsen-registry", "--format",
      "{{.Name}}\t{{.CreatedAt}}")),
    (c.secret_remove(["a", "b"]), ("docker", "secret", "rm", "a", "b")),
    (c.node_label_add("kawaii", "registry"), ("docker", "node", "update", "--label-add", "registry=true", "kawaii")),
    (c.node_label_remove("kawaii", "registry"), ("docker", "node", "update", "--label-rm", "registry", "kawaii")),
    (c.node_labels("kawaii"), ("docker", "node", "inspect", "--format", "{{json .Spec.Labels}}", "kawaii")),
    (c.stack_deploy("/srv/x/docker-compose.yml", "onsen-registry", "never"),
     ("docker", "stack", "deploy", "--with-registry-auth", "--resolve-image", "never", "--compose-file",
      "/srv/x/docker-compose.yml", "onsen-registry")),
    (c.stack_remove("onsen-registry"), ("docker", "stack", "rm", "onsen-registry")),
    (c.service_tasks("onsen-registry_registry"),
     ("docker", "service", "ps", "--no-trunc", "--format",
      "{{.ID}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}", "onsen-registry_registry")),
    (c.logout("registry.onsen.lan:5000"), ("docker", "logout", "registry.onsen.lan:5000")),
]


@pytest.mark.parametrize("cmd,argv", TABLE, ids=[t[1][1] + "-" + t[1][2] for t in TABLE])
def test_argv_table(cmd, argv):
    assert cmd.argv == argv
    assert shlex.split(cmd.shell()) == list(argv)


def test_secret_create_sends_content_on_stdin_only():
    cmd = c.secret_create("registry.onsen.lan.key-abcd1234", b"PRIVATE KEY BYTES", "onsen-registry")
    assert cmd.argv[-1] == "-" and cmd.stdin == b"PRIVATE KEY BYTES" and cmd.secret
    assert f"io.swarm-registry.sha256={c.sha256(b'PRIVATE KEY BYTES')}" in cmd.argv
    assert "PRIVATE KEY BYTES" not in cmd.shell() and "PRIVATE" not in cmd.display()
    assert "secret, redacted" in cmd.display()


def test_login_password_never_in_argv_or_display():
    cmd = c.login("registry.onsen.lan:5000", "lenain", "hunter2-pw")
    assert "--password-stdin" in cmd.argv and cmd.stdin == b"hunter2-pw"
    assert "hunter2" not in cmd.shell() and "hunter2" not in cmd.display()


def test_sudo_password_goes_first_on_stdin():
    cmd = c.with_sudo(c.login("r:5000", "u", "pw"), "sudopw")
    assert cmd.argv[:5] == ("sudo", "-S", "-p", "", "--")
    assert cmd.stdin == b"sudopw\npw" and cmd.secret and "sudopw" not in cmd.display()
    assert c.with_sudo(c.logout("r:5000"), None).argv[:3] == ("sudo", "-n", "--")


@pytest.mark.parametrize("builder", [
    lambda v: c.make_dirs([v]), lambda v: c.node_label_add(v, v), lambda v: c.stack_deploy(v, v, "never"),
    lambda v: c.secret_create(v, b"x", v), lambda v: c.login(v, v, "pw"), lambda v: c.trust_cert(v, b"x"),
    lambda v: c.converge_file(v, b"x"),
])
def test_hostile_values_come_out_quoted(builder, tmp_path):
    cmd = builder(HOSTILE)
    assert shlex.split(cmd.shell()).count(HOSTILE) == cmd.argv.count(HOSTILE) >= 1
    # and the shell really passes it through as one word: echo it back
    out = subprocess.run(["sh", "-c", "printf '%s' " + shlex.quote(HOSTILE)], capture_output=True, text=True)
    assert out.stdout == HOSTILE


def run_script(cmd, cwd=None):
    return subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, text=False, cwd=cwd)


def test_converge_file_writes_once_then_reports_ok(tmp_path):
    target = tmp_path / "htpasswd"
    data = b"lenain:$2y$12$abc\n"
    check = run_script(c.converge_file(str(target), data, 0o600, check=True))
    assert check.stdout == b"state=would-change\n" and not target.exists()
    first = run_script(c.converge_file(str(target), data, 0o600))
    assert first.stdout == b"state=changed\n" and target.read_bytes() == data
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert run_script(c.converge_file(str(target), data, 0o600)).stdout == b"state=ok\n"
    target.chmod(0o644)  # a mode drift alone is a change
    assert run_script(c.converge_file(str(target), data, 0o600)).stdout == b"state=changed\n"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind


def test_converge_file_refuses_truncated_content(tmp_path):
    cmd = c.converge_file(str(tmp_path / "f"), b"full content")
    short = c.Command(cmd.argv, b"full")
    r = run_script(short)
    assert r.returncode == 13 and not (tmp_path / "f").exists() and list(tmp_path.iterdir()) == []


def test_trust_cert_script_installs_reports_strays_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setattr(c, "CERTS_D", str(tmp_path / "certs.d"))
    anchor = b"-----BEGIN CERTIFICATE-----\nabc\n"
    endpoint = "registry.invalid:5000"
    first = run_script(c.trust_cert(endpoint, anchor))
    status, msg = trust_op.parse(first.returncode, first.stdout.decode(), first.stderr.decode(), endpoint)
    installed = tmp_path / "certs.d" / endpoint / "ca.crt"
    assert status == "changed" and installed.read_bytes() == anchor, msg
    assert oct(installed.stat().st_mode & 0o777) == "0o644"
    assert oct(installed.parent.stat().st_mode & 0o777) == "0o755"
    again = run_script(c.trust_cert(endpoint, anchor))
    assert trust_op.parse(again.returncode, again.stdout.decode(), "", endpoint)[0] == "ok"
    (installed.parent / "client.key").write_text("x")
    stray = run_script(c.trust_cert(endpoint, anchor))
    status, msg = trust_op.parse(stray.returncode, stray.stdout.decode(), "", endpoint)
    assert status == "failed" and "client.key" in msg


PARSE = [
    ((0, "state=changed\nstrays=\nverify=0 401\n"), ("changed", "TLS to r:5000 verified (HTTP 401)")),
    ((0, "state=ok\nstrays=\nverify=0 401\n"), ("ok", "already trusted")),
    ((0, "state=ok\nstrays=\nverify=7 000\n"), ("ok", "not reachable yet (connection refused)")),
    ((0, "state=ok\nstrays=\nverify=6 000\n"), ("ok", "name not resolved")),
    ((0, "state=changed\nstrays=\nverify=60 000\n"), ("failed", "not verified by ca.crt")),
    ((0, "state=changed\nstrays=\nverify=35 000\n"), ("failed", "TLS handshake failed")),
    ((0, "state=would-change\nstrays=\nverify=skipped\n"), ("changed", "would install trust")),
    ((0, "state=changed\nstrays=\nverify=skipped\n"), ("changed", "no curl on the node")),
    ((0, "state=ok\nstrays=x.cert \nverify=0 401\n"), ("failed", "x.cert")),
    ((10, ""), ("failed", "could not install")),
]


@pytest.mark.parametrize("given,expected", PARSE)
def test_trust_cert_parse_table(given, expected):
    status, msg = trust_op.parse(given[0], given[1], "", "r:5000")
    assert status == expected[0] and expected[1] in msg


def test_scripts_are_valid_sh():
    for name in ("converge-file", "trust-cert"):
        assert subprocess.run(["sh", "-n", "-c", c.script(name)]).returncode == 0
