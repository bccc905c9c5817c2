"""Pure parsers of the setup, login and maintenance operations: facts in, decisions out."""
import base64
import io
import json
import tarfile

import pytest

from swarm_registry import smoke
from swarm_registry.operations import login as lg
from swarm_registry.operations import maintenance as mt
from swarm_registry.operations import setup as st

FACTS = """docker=active|true|172.31.250.11
image=sha256:abc
data_dir=755
auth_dir=700
htpasswd=0123:600
compose=
node=node1|id1|Ready|Active
node=node2|id2|Down|Active
labels={"registry":"true"}
secret=r.crt-1111|2026-11-01 10:00:00 +0000 UTC
secret=r.key-2222|2026-11-01 10:00:00 +0000 UTC
service=registry:2@sha256:ffff|r.crt-1111,r.key-2222,|map[]
task=t1|node1|Running|Running 5 minutes ago|
task=t0|node1|Shutdown|Failed 6 minutes ago|No such image: registry:2
"""


def test_setup_facts_parse():
    f = st.parse(FACTS)
    assert f.docker_up and f.swarm_state == "active" and f.control
    assert f.image_id == "sha256:abc" and f.auth_dir_mode == "700" and f.compose == ""
    assert f.nodes == {"node1": "Ready", "node2": "Down"} and f.labels == {"registry": "true"}
    assert f.service_exists and f.service_image == "registry:2" and f.service_secrets == {"r.crt-1111", "r.key-2222"}
    assert [t.running for t in f.tasks] == [True, False] and f.tasks[1].error == "No such image: registry:2"


def test_setup_facts_docker_down_and_empty():
    f = st.parse("docker=down\n")
    assert not f.docker_up and not f.service_exists
    g = st.parse("docker=active|false|x\nservice=\nlabels=\n")
    assert g.docker_up and not g.control and not g.service_exists and g.labels == {}


@pytest.mark.parametrize("secrets,in_use,keep,expected", [
    ([], set(), 2, []),
    ([("h.crt-1", "1"), ("h.key-1", "1")], {"h.crt-1", "h.key-1"}, 0, []),
    ([("h.crt-1", "1"), ("h.crt-2", "2"), ("h.crt-3", "3")], {"h.crt-3"}, 1, ["h.crt-1"]),
    ([("h.crt-1", "1"), ("h.crt-2", "2"), ("h.key-1", "1"), ("h.key-2", "2")], set(), 0,
     ["h.crt-2", "h.crt-1", "h.key-2", "h.key-1"]),
])
def test_old_secrets_keeps_the_newest(secrets, in_use, keep, expected):
    assert st.old_secrets(secrets, in_use, keep) == expected


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def login_out(stored=None, config=None, rc=None, helper=True):
    lines = [f"rc={rc}"] if rc is not None else []
    lines.append(f"helper={1 if helper else 0}")
    lines.append("stored=" + (b64(json.dumps(stored).encode()) if stored else ""))
    lines.append("config=" + (b64(json.dumps(config).encode()) if config is not None else ""))
    return "\n".join(lines) + "\n"


def test_login_facts_and_verdicts():
    ep = "r.test:5000"
    good = lg.parse(login_out({"ServerURL": ep, "Username": "u", "Secret": "pw"},
                              {"auths": {ep: {}}, "credsStore": "pass"}, rc=0))
    assert lg.logged_in(good, "u", "pw") and not lg.logged_in(good, "u", "other")
    assert lg.verdict_after_login(good, ep, "")[0] == "changed"
    plain = lg.parse(login_out({"Username": "u", "Secret": "pw"}, {"auths": {ep: {"auth": "dTpwdw=="}}}, rc=0))
    assert lg.verdict_after_login(plain, ep, "") == ("failed", f"logged in, but config.json holds the password for {ep} (no credential helper?)")
    wrong = lg.parse(login_out(None, {}, rc=1))
    status, msg = lg.verdict_after_login(wrong, ep, "Error response from daemon: login attempt failed: unauthorized")
    assert status == "failed" and "unauthorized" in msg
    assert not lg.parse(login_out(helper=False)).helper


def test_login_command_keeps_the_password_on_stdin():
    cmd = lg.command("r.test:5000", "u", "login", "s3cret")
    assert cmd.stdin == b"s3cret" and cmd.secret and "s3cret" not in cmd.shell() + cmd.display()
    assert lg.command("r.test:5000", "u", "facts").stdin is None


@pytest.mark.parametrize("rc,out,check,expected", [
    (0, "stack=removed\nsecrets=2\nlabel=removed\n", False, "changed"),
    (0, "stack=absent\nsecrets=0\nlabel=absent\n", False, "ok"),
    (0, "stack=would-remove\nsecrets=2\nlabel=would-remove\n", True, "changed"),
    (0, "stack=absent\nsecrets=0\nlabel=absent\n", True, "ok"),
    (22, "stack=removed\n", False, "failed"),
])
def test_teardown_parse(rc, out, check, expected):
    assert mt.parse_teardown(rc, out, "secret x still in use", check)[0] == expected


def test_status_parse():
    s = mt.parse_status("docker=active|true\ntrust=abcd\nlogin=1\ntask=t1|node1|Running|Running 1 hour ago|\n")
    assert s.manager and s.trust_sha == "abcd" and s.logged_in and s.tasks[0].running
    assert mt.parse_status("docker=down\ntrust=\nlogin=0\n").docker == "down"


def test_smoke_build_context_is_a_tar_from_scratch():
    ctx = smoke.build_context("tok123")
    with tarfile.open(fileobj=io.BytesIO(ctx)) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "token"]
        assert tar.extractfile("Dockerfile").read().startswith(b"FROM scratch\n")
        assert tar.extractfile("token").read() == b"tok123\n"


def test_converged_host_needs_no_trust_credential_or_login_command():
    anchor = b"CA PEM"
    sha = __import__("hashlib").sha256(anchor).hexdigest()
    config = b64(json.dumps({"auths": {"r:5000": {}}, "credsStore": "pass"}).encode())
    stored = b64(json.dumps({"ServerURL": "r:5000", "Username": "u", "Secret": "pw"}).encode())
    out = (f"docker=active|false|x\ntrust={sha}:644:755\ntrust_strays=\npass=1\nhelper=abc\ngpg_id=1\n"
           f"dconfig={config}\nlist=0\nstored={stored}\n")
    f = st.parse(out)
    assert st.trust_converged(f, anchor) and not st.trust_converged(f, b"other")
    assert st.store_converged(f, None) and st.store_converged(f, "abc") and not st.store_converged(f, "def")
    assert f.stored_user == "u" and lg.same_secret(f.stored_secret, "pw") and not lg.same_secret("", "")
    drift = st.parse(out.replace(":644:755", ":600:755").replace("list=0", "list=1"))
    assert not st.trust_converged(drift, anchor) and not st.store_converged(drift, None)
    stray = st.parse(out.replace("trust_strays=", "trust_strays=client.key"))
    assert not st.trust_converged(stray, anchor)
