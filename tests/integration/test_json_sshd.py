"""Operator output against plain sshd hosts on loopback: --json, status's forms and exit status,
colour only on a terminal, no stray library lines.

The hosts get a HOME of their own (home_skel): status and login read the credential store there,
never this machine's.
"""
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import require
from tests.integration.clirun import run, statuses
from devtools.sshd_hosts import SshdHosts

pytestmark = pytest.mark.sshd
PASSWORD = "json-test-pw-8d1f3c"  # a marker: must appear in no output
ANSI = "\x1b["


def _kill_agents(hosts: SshdHosts) -> None:
    """gpg-agents that reading the credential store started inside the hosts' namespaces."""
    spaces = {os.readlink(f"/proc/{h.proc.pid}/ns/mnt") for h in hosts.hosts if h.proc and h.proc.poll() is None}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (Path(f"/proc/{pid}/comm").read_text().strip() == "gpg-agent"
                    and os.readlink(f"/proc/{pid}/ns/mnt") in spaces):
                os.kill(int(pid), signal.SIGTERM)
        except OSError:
            pass


@pytest.fixture
def hosts(tmp_path):
    require("/usr/sbin/sshd")
    require("unshare")
    with SshdHosts(3, tmp_path / "hosts", home_skel="/etc/skel") as hs:
        try:
            yield hs
        finally:
            _kill_agents(hs)


def in_terminal(command: list[str], config: Path, env: dict | None = None) -> str:
    """Run `command` with its stdout on a terminal (script(1) gives it a pty); its output."""
    require("script")
    import shlex
    import subprocess

    from tests.integration.clirun import BIN, ROOT

    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "REGISTRY_PASSWORD")}
    full.update({"SWARM_REGISTRY_CONFIG": str(config), "TERM": "xterm", **(env or {})})
    line = shlex.join([str(BIN / command[0]), *command[1:]])
    r = subprocess.run(["script", "-qec", line, "/dev/null"], cwd=ROOT, env=full, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    return r.stdout.replace("\r\n", "\n")


def test_json_is_the_whole_stdout_per_host_and_step_and_a_down_host_is_failed(hosts):
    cfg = hosts.settings_file()
    hosts.hosts[2].stop()
    r = run("inv", "trust-cert", "--json", config=cfg)
    doc = json.loads(r.stdout)  # the whole of stdout is one JSON document
    assert r.returncode == 1 and doc["exit_status"] == 1, r.stdout + r.stderr
    assert doc["task"] == "trust-cert" and doc["mode"] == "run" and doc["check"] is False
    assert doc["failed"]["h3"].startswith("facts: unreachable: root@127.0.0.1:")
    assert [(s["step"], s["status"], s["commands"]) for s in doc["hosts"]["h3"]["steps"]] == [("facts", "failed", [])]
    assert doc["recap"]["h3"] == {"ok": 0, "changed": 0, "failed": 1, "skipped": 0, "commands": 0}
    for h in ("h1", "h2"):
        steps = {s["step"]: s for s in doc["hosts"][h]["steps"]}
        assert (steps["facts"]["status"], steps["trust-cert"]["status"]) == ("ok", "changed")
        assert "trust installed" in steps["trust-cert"]["message"]
        sent = [c for s in steps.values() for c in s["commands"]]
        assert len(sent) == doc["recap"][h]["commands"] == 2
        assert sent[0]["command"].startswith("<files/scripts/facts.sh> facts=trust endpoint=localhost:5000")
        assert sent[1]["command"].startswith("<files/scripts/trust-cert.sh> endpoint=localhost:5000")
        assert sent[1]["command"].endswith("bytes on stdin]") and all(c["exit_status"] == 0 for c in sent)
        assert 0 <= steps["trust-cert"]["commands"][0]["seconds"] <= steps["trust-cert"]["seconds"]
        assert doc["recap"][h] == {"ok": 1, "changed": 1, "failed": 0, "skipped": 0, "commands": 2}
    # the human output went to stderr, the same lines as without --json
    assert "RECAP" in r.stderr and "FAILED h3: facts: unreachable" in r.stderr and "RECAP" not in r.stdout
    assert statuses(r.stderr, "trust-cert") == {"h1": "changed", "h2": "changed"}


def test_json_check_and_dry_and_fab(hosts):
    cfg = hosts.settings_file()
    check = json.loads(run("inv", "trust-cert", "--check", "--json", config=cfg).stdout)
    assert check["mode"] == "check" and check["check"] is True
    assert {h: [s["status"] for s in v["steps"]] for h, v in check["hosts"].items()} == {
        h.name: ["ok", "changed"] for h in hosts.hosts}  # changed: would change
    dry = run("inv", "--dry", "trust-cert", "--json", config=cfg)
    doc = json.loads(dry.stdout)
    assert dry.returncode == 0 and doc["mode"] == "dry"
    assert [(p["host"], p["step"]) for p in doc["planned"]] == [(h.name, "trust-cert") for h in hosts.hosts]
    assert all(p["command"].startswith("<files/scripts/trust-cert.sh>") for p in doc["planned"])
    assert "$ <files/scripts/trust-cert.sh>" in dry.stderr
    fab = run("fab", "-H", "h1,h2", "trust-cert", "--json", config=cfg)
    doc = json.loads(fab.stdout)
    assert fab.returncode == 0 and doc["task"] == "trust-cert" and list(doc["hosts"]) == ["h1", "h2"]


def test_json_redacts_the_password_like_dry(hosts):
    require("docker-credential-pass")
    cfg = hosts.settings_file()
    real = run("inv", "login", "--json", "--password-stdin", config=cfg, input=PASSWORD + "\n")
    dry = run("inv", "--dry", "login", "--json", "--password-stdin", config=cfg, input=PASSWORD + "\n")
    doc, planned = json.loads(real.stdout), json.loads(dry.stdout)["planned"]
    sent = [c["command"] for h in doc["hosts"].values() for s in h["steps"] if s["step"] == "login"
            for c in s["commands"]]
    assert len(sent) == 3 and [p["command"] for p in planned] == sent, (sent, planned)
    assert all(c.endswith("bytes on stdin, secret, redacted]") for c in sent), sent
    # no registry answers there: docker login fails on every host, and the document says so
    assert real.returncode == 1 and doc["exit_status"] == 1 and set(doc["failed"]) == {"h1", "h2", "h3"}
    for r in (real, dry):
        assert PASSWORD not in r.stdout + r.stderr


def test_bad_input_with_json_is_a_document_too(hosts):
    cfg = hosts.settings_file(registry={"port": 99999})
    r = run("inv", "trust-cert", "--json", config=cfg)
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["exit_status"] == 2 and doc["hosts"] == {}
    assert any("registry.port = 99999" in e for e in doc["errors"]) and "registry.port = 99999" in r.stderr
    assert sum(h.sessions_opened() for h in hosts.hosts) == 0


def test_status_plain_lines_json_and_exit_status(hosts):
    cfg = hosts.settings_file()
    assert run("inv", "certs", config=cfg).returncode == 0
    assert run("inv", "trust-cert", "--hosts", "h1", config=cfg).returncode == 0
    hosts.hosts[2].stop()
    r = run("inv", "status", config=cfg)
    assert r.returncode == 1, r.stdout + r.stderr  # something needs attention: exit status 1
    lines = r.stdout.splitlines()
    assert ANSI not in r.stdout and "NODE" not in r.stdout  # not a terminal: plain lines, no table, no colour
    assert any(x.startswith("h1 ") and "trusts the current cert" in x for x in lines), r.stdout
    assert any(x.startswith("h2 ") and "trusts no cert for the registry" in x for x in lines)
    attention = [x for x in lines if x.startswith("attention: ")]
    assert "attention: h2: does not trust the current certificate: run inv trust-cert" in attention
    assert "attention: h1: not logged in as lenain: run inv login" in attention
    assert any(x.startswith("attention: h3: unreachable: root@127.0.0.1:") for x in attention)
    assert "attention: registry: service not running" in attention
    for fact in ("  image: registry:2 (version 2)", "  users: 0", "  storage: filesystem",
                 "  service: not running"):
        assert fact in lines, r.stdout
    assert "RECAP" in r.stdout and "FAILED h3: status: unreachable" in r.stdout

    j = run("inv", "status", "--json", config=cfg)
    doc = json.loads(j.stdout)
    assert j.returncode == 1 and doc["exit_status"] == 1 and doc["attention"] == [a[11:] for a in attention]
    nodes = {n["host"]: n for n in doc["status"]["nodes"]}
    assert (nodes["h1"]["reachable"], nodes["h1"]["trusts_current_cert"], nodes["h1"]["logged_in"]) == (True, True, False)
    assert (nodes["h2"]["trusts_current_cert"], nodes["h3"]["reachable"], nodes["h3"]["trusts_current_cert"]) == (
        False, False, None)
    reg = doc["status"]["registry"]
    assert (reg["running"], reg["image"], reg["version"], reg["storage"], reg["users"]) == (
        False, "registry:2", "2", "filesystem", 0)
    assert reg["certificate"]["days_left"] >= 364 and reg["certificate"]["subject"] == "CN=localhost"


def test_status_certificate_due_needs_attention(hosts, tmp_path):
    short = hosts.settings_file("short.yaml", cert={"days": 30, "renew_before_days": 10})
    assert run("inv", "certs", config=short).returncode == 0
    cfg = hosts.settings_file(cert={"days": 365, "renew_before_days": 100})
    doc = json.loads(run("inv", "status", "--json", config=cfg).stdout)
    assert doc["status"]["registry"]["certificate"]["days_left"] in (29, 30)
    assert any(a.startswith("certificate: 29 days to expiry, under renew_before_days=100: run inv renew-cert")
               or a.startswith("certificate: 30 days") for a in doc["attention"]), doc["attention"]
    assert doc["exit_status"] == 1


def test_status_is_a_table_on_a_terminal(hosts):
    cfg = hosts.settings_file()
    assert run("inv", "certs", config=cfg).returncode == 0
    shown = in_terminal(["inv", "status"], cfg)
    lines = shown.splitlines()
    header = next(x for x in lines if x.startswith("NODE"))
    assert header.split() == ["NODE", "ROLE", "REACHABLE", "TRUSTS", "CERT", "LOGGED", "IN", "REGISTRY"], shown
    rows = [x.split() for x in lines if x.split()[:1] in (["h1"], ["h2"], ["h3"])]
    assert [r[0] for r in rows] == ["h1", "h2", "h3"] and all("yes" in r for r in rows), shown
    for label in ("registry", "service", "image", "certificate", "users", "storage"):
        assert any(x.startswith(label + " ") for x in lines), (label, shown)
    assert "RECAP" not in shown and " status " not in shown  # the table replaces the result lines


def test_colour_only_on_a_terminal_and_never_with_NO_COLOR(hosts):
    cfg = hosts.settings_file()
    coloured = in_terminal(["inv", "trust-cert"], cfg)
    assert "\x1b[33mchanged\x1b[0m" in coloured and "\x1b[32mok\x1b[0m" in coloured, coloured
    assert ANSI not in in_terminal(["inv", "trust-cert"], cfg, env={"NO_COLOR": "1"})
    piped = run("inv", "trust-cert", config=cfg)
    assert piped.returncode == 0 and ANSI not in piped.stdout + piped.stderr


class GarbageSshServer:
    """Answers with an SSH banner, then bytes that are not the key exchange: paramiko's transport
    thread fails on them and logs an error with a traceback on its logger."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                time.sleep(0.2)
                conn.sendall(b"\x00\x00\x00\x0c\x0a\x15" + b"not-a-kex-init" * 8)
                time.sleep(1)


def test_no_stray_library_lines_when_a_connection_fails(hosts):
    server = GarbageSshServer()
    data = hosts.settings()
    data["hosts"]["odd"] = {"address": "127.0.0.1", "port": server.port, "user": "root", "roles": ["worker"]}
    cfg = hosts.workdir / "odd.yaml"
    cfg.write_text(yaml.safe_dump(data))
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 1 and "FAILED odd: facts: unreachable: root@127.0.0.1:" in r.stdout, r.stdout
    assert r.stderr == ""  # paramiko's own log records (its transport thread's error) stay off the terminal
    j = run("inv", "trust-cert", "--json", config=cfg)
    assert "odd" in json.loads(j.stdout)["failed"] and "Traceback" not in j.stderr and "paramiko" not in j.stderr
    server.sock.close()
