"""Pure verdicts of the steps that judge what a remote command printed: trust-cert (the install, then
the TLS check from the node, or curl's exit code where that falls back), old secrets (stale() and `docker secret rm`), teardown; the smoke build context."""
import io
import tarfile
from types import SimpleNamespace

import pytest

from swarm_registry import commands
from swarm_registry.errors import (FORWARDING_REFUSED, HANDSHAKE, NAME_MISMATCH, UNCHECKED, UNREACHABLE, UNRESOLVED,
                                   UNTRUSTED, VERIFIED, Output, TlsOutcome)
from swarm_registry.facts import Facts
from swarm_registry.jobs import smoke
from swarm_registry.results import CHANGED, FAILED, OK
from swarm_registry.steps import old_secrets, teardown, trust

ENDPOINT = "registry.onsen.lan:5000"
ANCHOR = b"-----BEGIN CERTIFICATE-----\nanchor\n"
INSTALLED = f"trust={commands.sha256(ANCHOR)}:644:755\ntrust_strays=\n"

# --- trust-cert ---------------------------------------------------------------------------------------

INSTALLS = [
    (0, INSTALLED, CHANGED, "trust installed"),
    (0, INSTALLED.replace("trust_strays=", "trust_strays=client.key client.cert "), FAILED,
     "/etc/docker/certs.d/registry.onsen.lan:5000 also holds client.key, client.cert"),
    (0, INSTALLED.replace(":644:", ":600:"), FAILED, "could not install"),  # mode not set
    (0, "trust=" + "00" * 32 + ":644:755\n", FAILED, "could not install"),  # another file
    (13, "", FAILED, f"could not install /etc/docker/certs.d/{ENDPOINT}/ca.crt: exit status 13"),
    (10, "", FAILED, "could not install"),
]


@pytest.mark.parametrize("rc,stdout,status,words", INSTALLS, ids=[f"{v[0]}-{i}" for i, v in enumerate(INSTALLS)])
def test_trust_install_verdict_table(rc, stdout, status, words):
    got = trust.verdict_for(ENDPOINT, ANCHOR)(Output(rc, stdout, ""))
    assert got[0] == status and words in got[1], got


def test_trust_verdict_names_the_install_error():
    out = Output(14, "", "mv: cannot move '/etc/docker/certs.d/x/.ca.crt.abc': Read-only file system\n")
    assert trust.verdict_for(ENDPOINT, ANCHOR)(out) == (
        FAILED, f"could not install /etc/docker/certs.d/{ENDPOINT}/ca.crt: mv: cannot move "
                "'/etc/docker/certs.d/x/.ca.crt.abc': Read-only file system")


TLS = [  # what remote.tls_check found -> the step's verdict
    (TlsOutcome(VERIFIED, "401"), CHANGED, f"TLS to {ENDPOINT} verified (HTTP 401)"),
    (TlsOutcome(VERIFIED, "200"), CHANGED, "verified (HTTP 200)"),
    (TlsOutcome(UNTRUSTED, "unable to get local issuer certificate"), FAILED,
     f"trust installed, but the registry at {ENDPOINT} fails verification: certificate not verified by ca.crt "
     "(unable to get local issuer certificate)"),
    (TlsOutcome(HANDSHAKE, "wrong version number"), FAILED, "TLS handshake failed (wrong version number)"),
    (TlsOutcome(NAME_MISMATCH, "Hostname mismatch"), FAILED, "certificate name mismatch (Hostname mismatch)"),
    (TlsOutcome(UNRESOLVED, "name or service not known"), FAILED,
     "trust installed, but this node cannot resolve registry.onsen.lan (name or service not known): add it to DNS "
     "or /etc/hosts on the node, pointing at the registry node"),
    (TlsOutcome(UNREACHABLE, "connection refused"), CHANGED, f"registry {ENDPOINT} not reachable yet (connection refused)"),
    (TlsOutcome(UNREACHABLE, "timed out"), CHANGED, "not reachable yet (timed out)"),
    (TlsOutcome(FORWARDING_REFUSED, "administratively prohibited"), CHANGED,
     "TLS not verified (the node's sshd refuses TCP forwarding: administratively prohibited)"),
    (TlsOutcome(UNCHECKED, "no curl"), CHANGED, "TLS not verified (no curl)"),
]


@pytest.mark.parametrize("outcome,status,words", TLS, ids=[f"{v[0].kind}-{i}" for i, v in enumerate(TLS)])
def test_trust_tls_verdict_table(outcome, status, words):
    got = trust.tls_verdict(ENDPOINT)(outcome)
    assert got[0] == status and words in got[1], got


CURL = [  # verify-tls.sh's line (curl on the node, where its sshd refuses forwarding) -> the outcome
    ("verify=0 401\n", TlsOutcome(VERIFIED, "401")),
    ("verify=60 000\n", TlsOutcome(UNTRUSTED, "curl exit 60")),
    ("verify=35 000\n", TlsOutcome(HANDSHAKE, "curl exit 35")),
    ("verify=51 000\n", TlsOutcome(NAME_MISMATCH, "curl exit 51")),
    ("verify=6 000\n", TlsOutcome(UNRESOLVED, "curl exit 6")),
    ("verify=7 000\n", TlsOutcome(UNREACHABLE, "connection refused")),
    ("verify=28 000\n", TlsOutcome(UNREACHABLE, "timed out")),
    ("verify=52 000\n", TlsOutcome(UNREACHABLE, "curl exit 52")),
    ("verify=skipped\n", TlsOutcome(UNCHECKED, "the node's sshd refuses TCP forwarding and the node has no curl")),
    ("", TlsOutcome(UNCHECKED, "the node's sshd refuses TCP forwarding and the node has no curl")),
]


@pytest.mark.parametrize("stdout,outcome", CURL, ids=[f"{i}" for i in range(len(CURL))])
def test_curl_fallback_reads_as_the_same_outcomes(stdout, outcome):
    assert trust.outcome_from_curl(Output(0, stdout, "")) == outcome


def test_trust_verdict_unresolved_names_the_host_without_the_port():
    for endpoint, host in (("reg.example:443", "reg.example"), ("[fd00::2]:5000", "fd00::2")):
        status, message = trust.tls_verdict(endpoint)(TlsOutcome(UNRESOLVED, "x"))
        assert status == FAILED and f"cannot resolve {host} (x)" in message and "/etc/hosts" in message


def test_trust_plan_ok_change_and_strays():
    converged = Facts(trust=f"{commands.sha256(ANCHOR)}:644:755")
    assert trust.plan(ENDPOINT, ANCHOR, "node2", converged).status == OK
    fresh = trust.plan(ENDPOINT, ANCHOR, "node2", Facts(trust="::"))
    assert fresh.status == CHANGED and len(fresh.actions) == 2
    cmd = fresh.actions[0].command
    assert cmd.argv[3:] == ("trust-cert", ENDPOINT, commands.sha256(ANCHOR)) and cmd.stdin == ANCHOR
    assert fresh.actions[0].verdict(Output(0, INSTALLED, ""))[0] == CHANGED
    check = fresh.actions[1]  # then TLS from the node: no command there, curl only as the fallback
    assert check.command is None and (check.tls.host, check.tls.port, check.tls.cas) == ("registry.onsen.lan", 5000, ANCHOR)
    assert check.tls.fallback.argv[3:] == ("verify-tls", ENDPOINT) and check.tls.read_fallback is trust.outcome_from_curl
    assert trust.plan("[fd00::2]:5000", ANCHOR, "n", Facts(trust="::")).actions[1].tls.host == "fd00::2"
    drifted = trust.plan(ENDPOINT, ANCHOR, "node2", Facts(trust=f"{commands.sha256(ANCHOR)}:600:755"))
    assert drifted.status == CHANGED
    stray = trust.plan(ENDPOINT, ANCHOR, "node2", Facts(trust=converged.trust, trust_strays="ca.key"))
    assert stray.status == FAILED and stray.actions == () and "ca.key" in stray.message


# --- old secrets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secrets,in_use,keep,expected", [
    ([], set(), 2, []),
    ([("h.crt-1", "1"), ("h.key-1", "1")], {"h.crt-1", "h.key-1"}, 0, []),
    ([("h.crt-1", "1"), ("h.crt-2", "2"), ("h.crt-3", "3")], {"h.crt-3"}, 1, ["h.crt-1"]),
    ([("h.crt-1", "1"), ("h.crt-2", "2"), ("h.key-1", "1"), ("h.key-2", "2")], set(), 0,
     ["h.crt-2", "h.crt-1", "h.key-2", "h.key-1"]),
    ([("h.crt-a", "2026-01-03"), ("h.crt-b", "2026-01-01"), ("h.crt-c", "2026-01-02"), ("h.crt-d", "2026-01-04")],
     {"h.crt-d"}, 1, ["h.crt-c", "h.crt-b"]),  # the newest not in use is kept, by creation time, not name
    ([("other-thing", "1")], set(), 0, []),  # neither .crt- nor .key-: never ours to remove
])
def test_old_secrets_stale_keeps_the_newest(secrets, in_use, keep, expected):
    assert old_secrets.stale(secrets, in_use, keep) == expected


@pytest.mark.parametrize("out,status,words", [
    (Output(0, "h.crt-1\n", ""), CHANGED, "removed old secret versions"),
    (Output(1, "", "Error response from daemon: rpc error: code = InvalidArgument desc = secret 'h.crt-1' is in "
                   "use by the following service: onsen-registry_registry\n"), OK, "still in use, kept for now"),
    (Output(1, "", "Error response from daemon: This node is not a swarm manager.\n"), FAILED,
     "docker secret rm failed: Error response from daemon: This node is not a swarm manager."),
    (Output(1, "", ""), FAILED, "docker secret rm failed: exit status 1"),
])
def test_old_secrets_verdict(out, status, words):
    got = old_secrets.verdict(out)
    assert got[0] == status and words in got[1]


def old_secrets_w(keep=1):
    return SimpleNamespace(settings=SimpleNamespace(registry=SimpleNamespace(secrets_keep=keep)),
                           names=SimpleNamespace(cert="h.crt-3", key="h.key-3", config=""))


def test_old_secrets_plan_removes_only_stale_ones():
    f = Facts(secrets=[("h.crt-1", "1"), ("h.crt-2", "2"), ("h.crt-3", "3"), ("h.key-3", "3")])
    plan = old_secrets.plan(old_secrets_w(keep=1), "kawaii", f)
    assert plan.status == CHANGED and plan.actions[0].command.argv == ("docker", "secret", "rm", "h.crt-1")
    assert plan.actions[0].verdict is old_secrets.verdict
    assert old_secrets.plan(old_secrets_w(keep=2), "kawaii", f).status == OK


# --- teardown -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rc,out,check,expected", [
    (0, "stack=removed\nsecrets=2\nlabel=removed\n", False, (CHANGED, "stack removed, 2 secret(s) removed, label removed")),
    (0, "stack=absent\nsecrets=0\nlabel=absent\n", False, (OK, "nothing left to remove")),
    (0, "stack=absent\nsecrets=1\nlabel=absent\n", False, (CHANGED, "stack absent, 1 secret(s) removed, label absent")),
    (0, "stack=would-remove\nsecrets=2\nlabel=would-remove\n", True,
     (CHANGED, "would remove: stack (would-remove), 2 secret(s), label (would-remove)")),
    (0, "stack=absent\nsecrets=0\nlabel=absent\n", True, (OK, "nothing to remove")),
    (22, "stack=removed\n", False, (FAILED, "secret x still in use")),
])
def test_teardown_parse(rc, out, check, expected):
    assert teardown.parse_teardown(rc, out, "secret x still in use\n", check) == expected


def test_teardown_parse_without_stderr_names_the_exit_status():
    assert teardown.parse_teardown(21, "", "", False) == (FAILED, "exit status 21")


# --- smoke ---------------------------------------------------------------------------------------------------


def test_smoke_build_context_is_a_tar_from_scratch():
    ctx = smoke.build_context("tok123")
    with tarfile.open(fileobj=io.BytesIO(ctx)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "token"]
        assert tar.extractfile("Dockerfile").read().startswith(b"FROM scratch\n")
        assert tar.extractfile("token").read() == b"tok123\n"
    assert smoke.build_context("tok123") == ctx  # reproducible: no timestamps
    assert smoke.build_context("tok124") != ctx
