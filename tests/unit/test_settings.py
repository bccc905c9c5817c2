import copy

import pytest

from swarm_registry import settings as s
from tests.conftest import BASE_HOSTS


def build(**sections):
    data = {"hosts": copy.deepcopy(BASE_HOSTS)}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return data


def test_example_file_loads_with_recipe_values():
    cfg = s.load(s.PROJECT_ROOT / "config" / "cluster.example.yaml")
    assert cfg.registry.endpoint == "registry.onsen.lan:5000"
    assert cfg.registry.service == "onsen-registry_registry"
    assert cfg.registry.realm == "Onsen Registry"
    assert cfg.groups == {"nodes": ["kawaii", "node2"], "managers": ["kawaii"], "workers": ["node2"],
                          "registry": ["kawaii"]}


def test_defaults_fill_everything_but_the_inventory():
    cfg = s.from_mapping({"hosts": copy.deepcopy(BASE_HOSTS)})
    assert cfg.registry.publish_mode == "host"
    assert cfg.cert.mode == "ca" and cfg.cert.key_type == "rsa4096"
    assert cfg.hosts["node2"].user == "root" and cfg.hosts["node2"].port == 22
    assert cfg.hosts["node2"].roles == ("worker",) and cfg.hosts["node2"].node_name == "node2"
    assert cfg.ssh.parallel == 10 and cfg.ssh.accept_new_host_keys is False


def test_select_expands_groups_and_rejects_unknown_names():
    cfg = s.from_mapping({"hosts": copy.deepcopy(BASE_HOSTS)})
    assert cfg.select(["nodes"]) == ["kawaii", "node2"]
    assert cfg.select(["workers,kawaii"]) == ["node2", "kawaii"]
    assert cfg.select(None) == ["kawaii", "node2"]
    with pytest.raises(s.SettingsError) as exc:
        cfg.select(["node9"])
    assert "'node9'" in str(exc.value)


BAD = [
    # (settings mapping, the key named in the one line, a fragment of what is accepted)
    (build(registry={"port": 99999}), "registry.port", "1 to 65535"),
    (build(registry={"port": 0}), "registry.port", "1 to 65535"),
    (build(registry={"port": "5000"}), "registry.port", "integer"),
    (build(registry={"port": True}), "registry.port", "integer"),
    (build(registry={"bogus": 1}), "registry.bogus", "unknown key"),
    (build(extra_section={}), "extra_section", "unknown key"),
    (build(registry={"host": "reg;rm -rf /"}), "registry.host", "RFC 1123"),
    (build(registry={"host": "-bad.example"}), "registry.host", "RFC 1123"),
    (build(registry={"node": "nowhere"}), "registry.node", "inventory host"),
    (build(registry={"login_user": "bob"}), "registry.login_user", "one of users"),
    (build(registry={"data_dir": "var/lib/registry"}), "registry.data_dir", "absolute"),
    (build(registry={"data_dir": "/var/../etc"}), "registry.data_dir", "'..'"),
    (build(registry={"config_dir": "/srv/$(id)"}), "registry.config_dir", "shell"),
    (build(registry={"stack": "a b"}), "registry.stack", "name"),
    (build(registry={"label": "x`id`"}), "registry.label", "name"),
    (build(registry={"realm": 'say "hi"'}), "registry.realm", "'\"'"),
    (build(registry={"publish_mode": "mesh"}), "registry.publish_mode", "host, ingress"),
    (build(registry={"image": "Registry:2 ; ls"}), "registry.image", "image reference"),
    (build(registry={"preload_image": "yes"}), "registry.preload_image", "true or false"),
    (build(cert={"mode": "acme"}), "cert.mode", "ca, self-signed"),
    (build(cert={"key_type": "dsa"}), "cert.key_type", "rsa4096"),
    (build(cert={"days": 0}), "cert.days", "1 to 3650"),
    (build(cert={"renew_before_days": 400}), "cert.renew_before_days", "less than cert.days"),
    (build(cert={"alt_names": ["ok.example", "bad name"]}), "cert.alt_names", "item 1"),
    (build(users=["lenain", "a:b"]), "users", "no ':'"),
    (build(users=["lenain", "lenain"]), "users", "duplicates"),
    (build(users=[]), "users", "at least 1"),
    (build(ssh={"parallel": 0}), "ssh.parallel", "1 to 256"),
    (build(ssh={"accept_new_host_keys": "no"}), "ssh.accept_new_host_keys", "true or false"),
    (build(ssh={"forward_registry": True}), "ssh.forward_registry", "auto, always, never"),
    (build(credential_helper={"source": "release"}), "credential_helper.sha256", "sha256"),
    (build(credential_helper={"sha256": "xyz"}), "credential_helper.sha256", "64 hexadecimal"),
    ({"hosts": {}}, "hosts", "non-empty mapping"),
    ({"hosts": {"a": {"address": "10.0.0.1", "roles": ["worker"]}}, "registry": {"node": "a"}}, "hosts", "manager"),
    ({"hosts": {"nodes": {"address": "10.0.0.1", "roles": ["manager"]}}}, "hosts.nodes", "group name"),
    ({"hosts": {"a;b": {"address": "10.0.0.1"}}}, "hosts.a;b", "inventory name"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.11"}}), "hosts.n3.address", "unique"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12", "user": "root;id"}}), "hosts.n3.user", "Unix user"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12", "user": "$(id)"}}), "hosts.n3.user", "Unix user"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12", "port": 65536}}), "hosts.n3.port", "1 to 65535"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "host name"}}), "hosts.n3.address", "IP address"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12\nid"}}), "hosts.n3.address", "IP address"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12", "roles": ["boss"]}}), "hosts.n3.roles", "manager, worker"),
    (build(hosts={**BASE_HOSTS, "n3": {"address": "10.0.0.12", "colour": "red"}}), "hosts.n3.colour", "unknown key"),
    (build(registry={"data_dir": "/srv/docker/onsen-registry/data"}), "registry.data_dir", "apart from"),
    ([1, 2], "top level", "mapping"),
]


@pytest.mark.parametrize("data,key,accepted", BAD, ids=[f"{i}-{case[1]}" for i, case in enumerate(BAD)])
def test_bad_settings_give_one_line_naming_the_key(data, key, accepted):
    with pytest.raises(s.SettingsError) as exc:
        s.from_mapping(data, source="cluster.yaml")
    assert exc.value.exit_code == 2
    lines = exc.value.problems
    assert len(lines) == 1, lines
    assert key in lines[0] and accepted in lines[0], lines[0]
    assert "\n" not in lines[0]


def test_every_problem_is_reported_at_once():
    data = build(registry={"port": 99999, "bogus": 1}, cert={"mode": "x"})
    with pytest.raises(s.SettingsError) as exc:
        s.from_mapping(data)
    assert len(exc.value.problems) == 3


def test_malformed_yaml_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("registry: {port: 5000\nhosts: [")
    with pytest.raises(s.SettingsError) as exc:
        s.load(bad)
    assert len(exc.value.problems) == 1 and "not valid YAML" in exc.value.problems[0]


def test_missing_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(s.SettingsError) as exc:
        s.load(tmp_path / "nope.yaml")
    assert "does not exist" in exc.value.problems[0] and "cluster.example.yaml" in exc.value.problems[0]


def test_env_var_chooses_the_file(tmp_path):
    assert s.settings_path({}) == s.DEFAULT_SETTINGS_FILE
    assert str(s.settings_path({s.ENV_VAR: str(tmp_path / "x.yaml")})) == str(tmp_path / "x.yaml")


@pytest.mark.parametrize("host,endpoint,secret", [
    ("registry.onsen.lan", "registry.onsen.lan:5000", "registry.onsen.lan.crt-"),
    ("10.0.0.5", "10.0.0.5:5000", "10.0.0.5.crt-"),
    ("fd00::10", "[fd00::10]:5000", "fd00--10.crt-"),
])
def test_registry_host_may_be_an_address(base_settings, host, endpoint, secret):
    from swarm_registry import render

    base_settings["registry"] = {"host": host}
    cfg = s.from_mapping(base_settings)
    assert cfg.registry.endpoint == endpoint
    assert render.secret_names(cfg, b"c", b"k").cert.startswith(secret)


@pytest.mark.parametrize("mode,jump,host_jump,forwards", [
    ("auto", "", "", False),                  # a direct route: the registry's port is reached directly
    ("auto", "bastion.lan", "", True),        # behind a bastion: over SSH
    ("auto", "", "root@bastion.lan:2222", True),  # the registry node's own proxy_jump
    ("always", "", "", True),
    ("never", "bastion.lan", "", False),
])
def test_forward_registry_follows_the_registry_nodes_route(mode, jump, host_jump, forwards):
    data = build(ssh={"forward_registry": mode, "proxy_jump": jump})
    node = next(iter(data["hosts"]))
    data["hosts"][node]["proxy_jump"] = host_jump
    data["registry"] = {"node": node}
    assert s.from_mapping(data).forwards_registry is forwards
