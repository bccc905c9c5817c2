"""facts.parse and facts.service_view on realistic input: what the fact snippets print, and the
service spec as `docker service inspect --format '{{json .Spec}}'` gives it for the rendered stack.
The wanted view (render) and the read-back view (facts) must agree on a faithful deploy, and
disagree on any change made by hand."""
import base64
import copy
import json
from types import SimpleNamespace

import pytest

from swarm_registry import facts, render
from swarm_registry import settings as S
from swarm_registry.facts import Facts, Node, Task
from swarm_registry.steps import deploy

CERT, KEY = b"-----BEGIN CERTIFICATE-----\nfake\n", b"-----BEGIN PRIVATE KEY-----\nfake\n"
HTPASSWD_SHA = "5f" * 32
DIGEST = "sha256:" + "3d" * 32


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# --- parse: one line per fact, as the snippets print them -----------------------------------------------

CONFIG = b'{\n\t"auths": {\n\t\t"registry.onsen.lan:5000": {}\n\t},\n\t"credsStore": "pass"\n}'

PARSE = [
    ("docker=active|true", dict(docker_up=True, swarm_state="active", control=True)),
    ("docker=active|false", dict(docker_up=True, swarm_state="active", control=False)),
    ("docker=inactive|false", dict(docker_up=True, swarm_state="inactive", control=False)),
    ("docker=down", dict(docker_up=False, swarm_state="", control=False)),
    ("docker=active|true|20.10.24+dfsg1", dict(docker_up=True, control=True, docker_version="20.10.24+dfsg1")),
    ("docker=|false|", dict(docker_up=False, docker_version="")),  # docker info, daemon down: exit 0
    ("", dict(docker_up=False, trust="", pass_installed=False, list_rc=None, service=None)),
    ("trust=" + "ab" * 32 + ":644:755\ntrust_strays=", dict(trust="ab" * 32 + ":644:755", trust_strays="")),
    ("trust=::\ntrust_strays=client.key client.cert ", dict(trust="::", trust_strays="client.key client.cert")),
    ("pass=1\nhelper=" + "cd" * 32 + "\nhelper_path=/usr/bin/docker-credential-pass\ngpg_id=1\nlist=0",
     dict(pass_installed=True, helper_sha="cd" * 32, helper_path="/usr/bin/docker-credential-pass", gpg_id=True,
          list_rc=0)),
    ("pass=0\nhelper=\nhelper_path=\ngpg_id=\ndconfig=", dict(pass_installed=False, helper_sha="", gpg_id=False,
                                                             list_rc=None, docker_config=None)),
    ("list=124", dict(list_rc=124)),
    ("list=skipped", dict(list_rc=None)),
    (f"dconfig={b64(CONFIG)}", dict(docker_config=CONFIG)),  # base64 padding '=' kept: split at the first '='
    (f"dconfig={b64(b'{}')}", dict(docker_config=b"{}")),
    ("dconfig=%%%not base64", dict(docker_config=None)),
    ("login_user=lenain\nlogin_sha=" + "ef" * 32, dict(login_user="lenain", login_sha="ef" * 32)),
    ("image=sha256:" + "9a" * 32 + "\ndata_dir=755\nauth_dir=700\nhtpasswd=" + "01" * 32 + ":600\ncompose=:",
     dict(image_id="sha256:" + "9a" * 32, data_dir_mode="755", auth_dir_mode="700", htpasswd="01" * 32 + ":600",
          compose=":")),
    ("image=\ndata_dir=\nauth_dir=", dict(image_id="", data_dir_mode="", auth_dir_mode="")),
    ("node=p9a1tqcjh58r|kawaii|Ready|Active\nnode=x7s2|node2|Down|Drain\nnode=broken|line",
     dict(nodes=[Node("p9a1tqcjh58r", "kawaii", "Ready", "Active"), Node("x7s2", "node2", "Down", "Drain")])),
    ('nodelabels=kawaii|{"registry":"true","zone":"a"}\nnodelabels=node2|null\nnodelabels=node3|{bad',
     dict(node_labels={"kawaii": {"registry": "true", "zone": "a"}, "node2": {}, "node3": {}})),
    ("secret=registry.onsen.lan.crt-d8386f8b|2026-11-01 10:00:00.123 +0000 UTC\nsecret=registry.onsen.lan.key-513e409f|x",
     dict(secrets=[("registry.onsen.lan.crt-d8386f8b", "2026-11-01 10:00:00.123 +0000 UTC"),
                   ("registry.onsen.lan.key-513e409f", "x")])),
    ("service=", dict(service=None)),
    (f"service={b64('[1, 2]')}", dict(service=None)),  # not an object
    (f"service={b64('{not json')}", dict(service=None)),
    ("service=%%%", dict(service=None)),
    (f"service={b64(json.dumps({'Name': 'x', 'Labels': {'a': 'b=c|d'}}))}",
     dict(service={"Name": "x", "Labels": {"a": "b=c|d"}})),
    ("task=mn2k|p9a1|running|running||" + "aa" * 32 + "\ntask=q1|p9a1|shutdown|failed|No such image: registry:2|old",
     dict(tasks=[Task("mn2k", "p9a1", "running", "running", "", "aa" * 32),
                 Task("q1", "p9a1", "shutdown", "failed", "No such image: registry:2", "old")])),
    ("task=short|n1", dict(tasks=[Task("short", "n1", "", "", "", "")])),
    ("Cannot connect to the Docker daemon\n\nno equals sign here", dict(docker_up=False, nodes=[])),
]


@pytest.mark.parametrize("stdout,expected", PARSE, ids=[f"{i}-{p[0][:24]}" for i, p in enumerate(PARSE)])
def test_parse_table(stdout, expected):
    f = facts.parse(stdout + "\n")
    assert {k: getattr(f, k) for k in expected} == expected


def test_parse_tasks_running_and_lookups():
    tasks = facts.parse_tasks("docker=active|true\ntask=a|n1|running|running||s\ntask=b|n1|running|starting||s\n"
                              "task=c|n1|shutdown|running||s\n")
    assert [t.id for t in tasks] == ["a", "b", "c"] and [t.running for t in tasks] == [True, False, False]
    f = facts.parse("node=id1|kawaii|Ready|Active\n")
    assert f.node_id("kawaii") == "id1" and f.node_id("nope") == ""
    assert f.hostname("id1") == "kawaii" and f.hostname("0123456789abcdefXYZ") == "0123456789ab"


def test_names_for_the_registry_node_and_the_manager():
    assert facts.names_for("node2", manager="kawaii", registry="kawaii") == facts.HOST_FACTS
    assert facts.names_for("kawaii", manager="kawaii", registry="kawaii") == (
        "docker", "trust", "store", "login", "data", "registry_node", "manager", "tasks")
    assert facts.names_for("r", manager="m", registry="r") == facts.HOST_FACTS + ("registry_node",)


# --- service_view: the spec as docker stores it ----------------------------------------------------------------


def service_spec(doc: dict, secret_names: render.SecretNames) -> dict:
    """`docker service inspect --format '{{json .Spec}}'` after `docker stack deploy` of the default settings'
    stack file `doc`: labels with the stack's own, Env as a K=V list in docker's order, the image resolved
    to a digest, every field docker adds itself."""
    svc = doc["services"]["registry"]
    spec_hash, htpasswd_sha = svc["deploy"]["labels"]["io.swarm-registry.spec"], svc["labels"]["io.swarm-registry.htpasswd"]
    return {
        "Name": "onsen-registry_registry",
        "Labels": {"com.docker.stack.image": "registry:2", "com.docker.stack.namespace": "onsen-registry",
                   "io.swarm-registry.spec": spec_hash},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "registry:2@" + DIGEST,
                "Labels": {"com.docker.stack.namespace": "onsen-registry", "io.swarm-registry.htpasswd": htpasswd_sha,
                           "io.swarm-registry.spec": spec_hash},
                "Env": ["REGISTRY_AUTH=htpasswd", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd",
                        "REGISTRY_AUTH_HTPASSWD_REALM=Onsen Registry", "REGISTRY_HTTP_ADDR=0.0.0.0:5000",
                        "REGISTRY_HTTP_DRAINTIMEOUT=5s", "REGISTRY_HTTP_TLS_CERTIFICATE=/run/secrets/registry.crt",
                        "REGISTRY_HTTP_TLS_KEY=/run/secrets/registry.key", "REGISTRY_HTTP_TLS_MINIMUMTLS=tls1.2"],
                "Privileges": {"CredentialSpec": None, "SELinuxContext": None},
                "Mounts": [{"Type": "bind", "Source": "/var/lib/registry", "Target": "/var/lib/registry"},
                           {"Type": "bind", "Source": "/srv/docker/onsen-registry/auth", "Target": "/auth",
                            "ReadOnly": True}],
                "StopGracePeriod": 10000000000,
                "DNSConfig": {},
                "Secrets": [
                    {"File": {"Name": "registry.crt", "UID": "0", "GID": "0", "Mode": 292}, "SecretID": "k2b6o1",
                     "SecretName": secret_names.cert},
                    {"File": {"Name": "registry.key", "UID": "0", "GID": "0", "Mode": 256}, "SecretID": "u8d3x0",
                     "SecretName": secret_names.key}],
                "Isolation": "default",
            },
            "Resources": {},
            "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0},
            "Placement": {"Constraints": ["node.labels.registry == true"],
                          "Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
            "Networks": [{"Target": "w3rk0n2l", "Aliases": ["registry"]}],
            "ForceUpdate": 0,
            "Runtime": "container",
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000, "MaxFailureRatio": 0,
                         "Order": "stop-first"},
        "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": 5000,
                                                   "PublishMode": "host"}]},
    }


@pytest.fixture
def settings():
    return S.from_mapping({"hosts": {"kawaii": {"address": "10.0.0.10", "roles": ["manager"]}}})


@pytest.fixture
def rendered(settings):
    names = render.secret_names(settings, CERT, KEY)
    doc = render.stack(settings, names, HTPASSWD_SHA)
    return doc, service_spec(doc, names)


def read_back(spec: dict) -> dict:
    """The spec the way the manager fact sends it: base64 of its JSON in a `service=` line."""
    return facts.parse(f"docker=active|true\nservice={b64(json.dumps(spec))}\n").service


def test_a_faithful_deploy_reads_back_as_the_wanted_view(rendered):
    doc, spec = rendered
    have = facts.service_view(read_back(spec))
    assert have == render.wanted_view(doc)
    assert have["labels"] == {"io.swarm-registry.htpasswd": HTPASSWD_SHA,
                              "io.swarm-registry.spec": doc["services"]["registry"]["deploy"]["labels"][
                                  "io.swarm-registry.spec"]}  # com.docker.stack.namespace is docker's, ignored
    assert have["image"] == "registry:2" and have["mounts"][0] == "/srv/docker/onsen-registry/auth>/auth:ro"
    assert deploy.differences(SimpleNamespace(stack_doc=doc), Facts(service=read_back(spec))) == []


def test_no_service_is_none():
    assert facts.service_view(None) is None and facts.service_view({}) is None
    assert deploy.differences(SimpleNamespace(stack_doc={}), Facts()) is None


def _cs(spec):
    return spec["TaskTemplate"]["ContainerSpec"]


DRIFTS = {
    "env added by hand": (lambda s: _cs(s)["Env"].append("REGISTRY_LOG_LEVEL=debug"), ["env"]),
    "env value changed": (lambda s: _cs(s)["Env"].__setitem__(2, "REGISTRY_AUTH_HTPASSWD_REALM=Other"), ["env"]),
    "read-only dropped": (lambda s: _cs(s)["Mounts"][1].pop("ReadOnly"), ["mounts"]),
    "mount added": (lambda s: _cs(s)["Mounts"].append({"Type": "bind", "Source": "/x", "Target": "/y"}), ["mounts"]),
    "publish mode ingress": (lambda s: s["EndpointSpec"]["Ports"][0].update(PublishMode="ingress"), ["ports"]),
    "published port": (lambda s: s["EndpointSpec"]["Ports"][0].update(PublishedPort=5001), ["ports"]),
    "scaled to 0": (lambda s: s["Mode"]["Replicated"].update(Replicas=0), ["replicas"]),
    "constraint": (lambda s: s["TaskTemplate"]["Placement"].update(Constraints=["node.role == manager"]),
                   ["constraints"]),
    "secret target": (lambda s: _cs(s)["Secrets"][0]["File"].update(Name="other.crt"), ["secrets"]),
    "old htpasswd label": (lambda s: _cs(s)["Labels"].update({"io.swarm-registry.htpasswd": "0" * 64}), ["labels"]),
    "older spec label": (lambda s: s["Labels"].update({"io.swarm-registry.spec": "0" * 64}), ["spec_label"]),
    "other image": (lambda s: _cs(s).update(Image="registry:2.8@" + DIGEST), ["image"]),
    # not drifts: what docker owns, order, the digest a tag resolved to
    "stack labels": (lambda s: _cs(s)["Labels"].update({"com.docker.stack.namespace": "x", "other": "1"}), []),
    "env order": (lambda s: _cs(s)["Env"].reverse(), []),
    "new digest": (lambda s: _cs(s).update(Image="registry:2@sha256:" + "77" * 32), []),
    "no digest": (lambda s: _cs(s).update(Image="registry:2"), []),
    "update config": (lambda s: s["UpdateConfig"].update(Parallelism=2), []),
}


@pytest.mark.parametrize("name", DRIFTS)
def test_a_change_by_hand_shows_in_exactly_its_field(rendered, name):
    doc, spec = rendered
    change, fields = DRIFTS[name]
    drifted = copy.deepcopy(spec)
    change(drifted)
    assert deploy.differences(SimpleNamespace(stack_doc=doc), Facts(service=read_back(drifted))) == fields
    assert (facts.service_view(drifted) == render.wanted_view(doc)) is (fields == [])


def test_a_new_htpasswd_is_a_new_spec_the_running_one_differs_from(settings, rendered):
    doc, spec = rendered
    newer = render.stack(settings, render.secret_names(settings, CERT, KEY), "6a" * 32)
    assert deploy.differences(SimpleNamespace(stack_doc=newer), Facts(service=spec)) == ["labels", "spec_label"]


def test_ingress_mode_reads_back_the_same(base_settings):
    settings = S.from_mapping({**base_settings, "registry": {"publish_mode": "ingress", "port": 443}})
    names = render.secret_names(settings, CERT, KEY)
    doc = render.stack(settings, names, HTPASSWD_SHA)
    spec = service_spec(doc, names)
    spec["EndpointSpec"]["Ports"] = [{"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": 443,
                                      "PublishMode": "ingress"}]
    assert facts.service_view(read_back(spec)) == render.wanted_view(doc)


def test_a_digest_pinned_image_reads_back_as_wanted(base_settings):
    settings = S.from_mapping({**base_settings, "registry": {"image": "registry:2@" + DIGEST}})
    names = render.secret_names(settings, CERT, KEY)
    doc = render.stack(settings, names, HTPASSWD_SHA)
    spec = service_spec(doc, names)  # docker keeps tag@digest as given
    assert facts.service_view(spec) == render.wanted_view(doc)


@pytest.mark.parametrize("info, line", [
    ({"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}, "ServerVersion": "20.10.24+dfsg1"},
     "docker=active|true|20.10.24+dfsg1"),
    ({"Swarm": {"LocalNodeState": "active", "ControlAvailable": False}, "ServerVersion": "24.0.7"},
     "docker=active|false|24.0.7"),
    ({"Swarm": {"LocalNodeState": "inactive"}, "ServerVersion": "20.10.24"}, "docker=inactive|false|20.10.24"),
    ({"Swarm": {"LocalNodeState": ""}, "ServerVersion": "20.10.24"}, None),
    ({"ServerVersion": "20.10.24"}, None),
    ({"Swarm": {"LocalNodeState": "active", "ControlAvailable": "yes"}, "ServerVersion": "1"}, None),
    ([], None),
])
def test_the_docker_line_from_the_engines_info_reads_as_docker_info_prints_it(info, line):
    assert facts.docker_line(json.dumps(info).encode()) == line
    if line is not None:  # parsed as the facts command's own line is
        f = facts.parse(line)
        assert f.docker_up and (f.swarm_state, f.control) == (info["Swarm"]["LocalNodeState"],
                                                             info["Swarm"].get("ControlAvailable", False))


def test_the_docker_line_refuses_what_is_not_json():
    assert facts.docker_line(b"<html>") is None and facts.docker_line(b"") is None


# --- runner.read_facts: a manager's facts while the swarm has no leader ---------------------------------

class Replies:
    """A session whose facts commands answer `outputs` in turn (the last one from then on); no engine socket."""

    def __init__(self, *outputs: str):
        self.outputs, self.sent = list(outputs), []

    def ask_engine_info(self):
        return None

    def run(self, cmd, hold=False):
        from swarm_registry.errors import Output

        self.sent.append(cmd)
        return Output(0, self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0], "")


NO_LEADER = ("manager_error=Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a "
             "leader. It's possible that too few managers are online.\n")
ANSWERED = "node=id1|node1|Down|Active\nnode=id2|node2|Ready|Active\nservice=\n"


def test_a_managers_facts_are_read_again_until_the_swarm_has_a_leader(base_settings, monkeypatch):
    from swarm_registry.jobs import runner

    monkeypatch.setattr(runner, "LEADER_POLL", 0.01)
    settings, notes = S.from_mapping(base_settings), []
    session = Replies(NO_LEADER, NO_LEADER, ANSWERED)
    res = runner.read_facts(session, settings, ("docker", "manager", "tasks"), None, hold=True, note=notes.append)
    f = facts.parse(res.stdout)
    assert len(session.sent) == 3 and f.manager_error == "" and [n.hostname for n in f.nodes] == ["node1", "node2"]
    assert len(notes) == 1 and "the swarm has no leader" in notes[0] and "up to 60 s" in notes[0]
    # accepted at once: one command, no note
    session, notes = Replies(ANSWERED), []
    runner.read_facts(session, settings, ("docker", "manager", "tasks"), None, hold=True, note=notes.append)
    assert len(session.sent) == 1 and notes == []
    # not a manager's facts: never read again
    session = Replies(NO_LEADER, ANSWERED)
    runner.read_facts(session, settings, ("docker", "trust"), None, hold=True)
    assert len(session.sent) == 1


def test_a_swarm_without_a_leader_past_the_wait_fails_the_manager_with_the_fix(base_settings, monkeypatch):
    from swarm_registry.jobs import runner

    monkeypatch.setattr(runner, "LEADER_POLL", 0.01)
    monkeypatch.setattr(runner, "LEADER_WAIT", 0.1)
    settings = S.from_mapping(base_settings)
    session = Replies(NO_LEADER)
    f = facts.parse(runner.read_facts(session, settings, ("manager",), None, hold=False).stdout)
    assert 3 <= len(session.sent) <= 20 and facts.leaderless(f)
    problem = runner.manager_problem(f)
    assert "no leader after" in problem and "more than half of the managers must be online" in problem
    # another error is not waited on, and says what docker said
    worker = Replies("manager_error=Error response from daemon: This node is not a swarm manager.\n")
    f = facts.parse(runner.read_facts(worker, settings, ("manager",), None, hold=False).stdout)
    assert len(worker.sent) == 1 and not facts.leaderless(f)
    assert runner.manager_problem(f) == ("the swarm does not answer this manager (docker: Error response from "
                                         "daemon: This node is not a swarm manager.)")
