"""Bad input is refused before anything remote runs: exit 2, one line naming the value, and no
SSH session opened on any host (counted in each sshd's log)."""
import datetime as dt

import pytest
import yaml

from swarm_registry import pki
from tests.conftest import require
from tests.integration.clirun import run
from devtools.sshd_hosts import SshdHosts

pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    require("/usr/sbin/sshd")
    with SshdHosts(3, tmp_path_factory.mktemp("badinput")) as hs:
        yield hs


def host(field, value):
    def mutate(d):
        d["hosts"]["h2"][field] = value
    return mutate


def section(name, field, value):
    def mutate(d):
        d.setdefault(name, {})[field] = value
    return mutate


def top(key, value):
    def mutate(d):
        d[key] = value
    return mutate


def rename_host(new):
    def mutate(d):
        d["hosts"][new] = d["hosts"].pop("h3")
    return mutate


def ident(path_text):
    def mutate(d, tmp):
        p = tmp / "badkey"
        p.write_text(path_text)
        d["ssh"]["identity_file"] = str(p)
    return mutate


def write_ca(d, tmp, key: bytes, cert: bytes) -> None:
    state = tmp / "state"
    state.mkdir(mode=0o700)
    for name, data in (("ca.key", key), ("ca.crt", cert)):
        (state / name).write_bytes(data)
        (state / name).chmod(0o600)
    d["state_dir"] = str(state)


def foreign_ca(d, tmp):
    _, cert = pki.make_ca("one", "ecdsa-p256")
    key, _ = pki.make_ca("two", "ecdsa-p256")
    write_ca(d, tmp, key, cert)


def expired_ca(d, tmp):
    write_ca(d, tmp, *pki.make_ca("old", "ecdsa-p256", now=pki.utcnow() - dt.timedelta(days=30), days=10))


def loose_state(d, tmp):
    state = tmp / "state"
    state.mkdir()
    state.chmod(0o755)
    d["state_dir"] = str(state)


def no_known_hosts(d, tmp):
    d["ssh"]["known_hosts"] = str(tmp / "absent_known_hosts")


def bad_htpasswd(d, tmp):
    state = tmp / "state"
    state.mkdir(mode=0o700)
    (state / "htpasswd").write_text("lenain-without-a-hash\n")
    (state / "htpasswd").chmod(0o600)
    d["state_dir"] = str(state)


TRUST = ["inv", "trust-cert"]
CASES = [
    # (id, settings mutation, argv, env/stdin, fragment of the one error line)
    ("host-semicolon", rename_host("h3;reboot"), TRUST, None, "hosts.h3;reboot"),
    ("addr-subshell", host("address", "$(id)"), TRUST, None, "hosts.h2.address"),
    ("addr-backticks", host("address", "`id`"), TRUST, None, "hosts.h2.address"),
    ("addr-quotes", host("address", "a'b\"c"), TRUST, None, "hosts.h2.address"),
    ("addr-newline", host("address", "127.0.0.1\nid"), TRUST, None, "hosts.h2.address"),
    ("user-semicolon", host("user", "root;id"), TRUST, None, "hosts.h2.user"),
    ("user-subshell", host("user", "$(reboot)"), TRUST, None, "hosts.h2.user"),
    ("user-quote", host("user", "ro'ot"), TRUST, None, "hosts.h2.user"),
    ("user-newline", host("user", "root\nid"), TRUST, None, "hosts.h2.user"),
    ("port-0", host("port", 0), TRUST, None, "hosts.h2.port = 0"),
    ("port-65536", host("port", 65536), TRUST, None, "hosts.h2.port = 65536"),
    ("port-text", host("port", "twenty-two"), TRUST, None, "hosts.h2.port"),
    ("reg-port-0", section("registry", "port", 0), TRUST, None, "registry.port = 0"),
    ("reg-port-65536", section("registry", "port", 65536), TRUST, None, "registry.port = 65536"),
    ("reg-port-text", section("registry", "port", "5000/tcp"), TRUST, None, "registry.port"),
    ("data-relative", section("registry", "data_dir", "var/lib/registry"), TRUST, None, "registry.data_dir"),
    ("data-dotdot", section("registry", "data_dir", "/var/lib/../../etc"), TRUST, None, "registry.data_dir"),
    ("config-relative", section("registry", "config_dir", "srv/x"), TRUST, None, "registry.config_dir"),
    ("config-dollar", section("registry", "config_dir", "/srv/$HOME"), TRUST, None, "registry.config_dir"),
    ("unknown-top", top("registri", {}), TRUST, None, "registri: unknown key"),
    ("unknown-registry", section("registry", "hots", "x"), TRUST, None, "registry.hots: unknown key"),
    ("unknown-host-key", host("adress", "1.2.3.4"), TRUST, None, "hosts.h2.adress: unknown key"),
    ("users-not-list", top("users", "lenain"), TRUST, None, "users"),
    ("hosts-list", top("hosts", ["h1", "h2"]), TRUST, None, "hosts"),
    ("parallel-text", section("ssh", "parallel", "10"), TRUST, None, "ssh.parallel"),
    ("accept-new-text", section("ssh", "accept_new_host_keys", "yes"), TRUST, None, "ssh.accept_new_host_keys"),
    ("dup-address", host("port", None), TRUST, None, "hosts.h2.port"),
    ("registry-node-unknown", section("registry", "node", "h9"), TRUST, None, "registry.node = 'h9'"),
    ("login-user-unknown", section("registry", "login_user", "bob"), TRUST, None, "registry.login_user = 'bob'"),
    ("users-colon", top("users", ["lenain", "a:b"]), TRUST, None, "users"),
    ("users-space", top("users", ["lenain", "a b"]), TRUST, None, "users"),
    ("realm-quote", section("registry", "realm", 'x"y'), TRUST, None, "registry.realm"),
    ("stack-space", section("registry", "stack", "my stack"), TRUST, None, "registry.stack"),
    ("label-semicolon", section("registry", "label", "reg;rm"), TRUST, None, "registry.label"),
    ("image-space", section("registry", "image", "registry:2 --privileged"), TRUST, None, "registry.image"),
    ("reg-host-semicolon", section("registry", "host", "reg;id"), TRUST, None, "registry.host"),
    ("cert-mode", section("cert", "mode", "letsencrypt"), TRUST, None, "cert.mode"),
    ("identity-missing", section("ssh", "identity_file", "/nonexistent/id_ed25519"), TRUST, None, "ssh.identity_file"),
    ("identity-not-key", ident("hello\n"), TRUST, None, "not a private key"),
    ("known-hosts-missing", no_known_hosts, TRUST, None, "ssh.known_hosts"),
    ("foreign-ca", foreign_ca, TRUST, None, "does not match ca.key"),
    ("expired-ca", expired_ca, TRUST, None, "expired"),
    ("loose-state-dir", loose_state, TRUST, None, "mode 0755"),
    ("fab-unknown-host", None, ["fab", "-H", "h9", "trust-cert"], None, "'h9' is neither"),
    ("fab-host-injection", None, ["fab", "-H", "h1;reboot", "trust-cert"], None, "'h1;reboot' is neither"),
    ("inv-hosts-unknown", None, ["inv", "trust-cert", "--hosts", "$(id)"], None, "'$(id)' is neither"),
    ("useradd-colon", None, ["inv", "users.add", "a:b"], {"REGISTRY_PASSWORD": "pw"}, "user name 'a:b'"),
    ("useradd-space", None, ["inv", "users.add", "a b"], {"REGISTRY_PASSWORD": "pw"}, "user name 'a b'"),
    ("useradd-empty-pw", None, ["inv", "users.add", "lenain"], {"REGISTRY_PASSWORD": ""}, "non-empty"),
    ("useradd-long-pw", None, ["inv", "users.add", "lenain"], {"REGISTRY_PASSWORD": "p" * 73}, "72 bytes"),
    ("login-empty-pw", None, ["inv", "login"], {"REGISTRY_PASSWORD": ""}, "non-empty"),
    ("login-long-pw", None, ["inv", "login"], {"REGISTRY_PASSWORD": "é" * 40}, "72 bytes"),
    ("smoke-bad-image", None, ["inv", "smoke-test", "--image", "alpine;reboot"], {"REGISTRY_PASSWORD": "pw"},
     "--image 'alpine;reboot'"),
    ("setup-no-password-in-htpasswd", None, ["inv", "setup"], None, "lenain listed but without a password"),
    ("setup-malformed-htpasswd", bad_htpasswd, ["inv", "setup"], None, "htpasswd line 1"),
    ("dry-setup-malformed-htpasswd", bad_htpasswd, ["inv", "--dry", "setup"], None, "htpasswd line 1"),
    ("host-defaults-scalar", top("host_defaults", "root"), ["inv", "--dry", "setup"], None, "host_defaults = 'root'"),
    ("reg-host-too-long", section("registry", "host", "r" * 45 + ".example.com"), ["inv", "--dry", "setup"], None,
     "at most 52 characters"),
    ("data-dir-root", section("registry", "data_dir", "/"), ["inv", "--dry", "setup"], None, "registry.data_dir = '/'"),
    ("config-dir-root", section("registry", "config_dir", "/"), ["inv", "teardown", "--purge-data", "--yes"], None,
     "registry.config_dir = '/'"),
    ("data-dir-etc", section("registry", "data_dir", "/etc"), ["inv", "teardown", "--purge-data", "--yes"], None,
     "registry.data_dir = '/etc'"),
    ("data-dir-docker", section("registry", "data_dir", "/var/lib/docker/volumes/x"), ["inv", "--dry", "setup"], None,
     "registry.data_dir"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exit_2_one_line_nothing_sent(hosts, tmp_path, case):
    name, mutate, argv, env, fragment = case
    data = hosts.settings()
    data["state_dir"] = str(tmp_path / "state")
    if name in ("data-dir-root", "config-dir-root"):  # one line: keep the other directory apart from "/"
        data.setdefault("registry", {})["config_dir" if name == "data-dir-root" else "data_dir"] = "/srv/x"
    if mutate is not None:
        if mutate.__code__.co_argcount == 2:
            mutate(data, tmp_path)
        else:
            mutate(data)
    if name == "dup-address":
        data["hosts"]["h2"]["port"] = data["hosts"]["h1"]["port"]
        fragment = "unique"
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(yaml.safe_dump(data))
    before = [h.sessions_opened() for h in hosts.hosts]
    r = run(argv[0], *argv[1:], config=cfg, env=env, input="")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert len(lines) == 1 and fragment in lines[0], lines
    assert [h.sessions_opened() for h in hosts.hosts] == before, "a connection was opened"


def test_malformed_yaml_file(hosts, tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("hosts: {h1: {address: 127.0.0.1\nregistry: [")
    before = [h.sessions_opened() for h in hosts.hosts]
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 2 and "not valid YAML" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [h.sessions_opened() for h in hosts.hosts] == before
