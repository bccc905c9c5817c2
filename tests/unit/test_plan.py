"""setup's plan, table-tested without SSH: every step in every state (fresh, converged, drifted,
half-done), from hand-made facts and the real `wanted` (certificates, htpasswd, rendered stack)."""
import base64
import dataclasses
import json

import pytest

from swarm_registry import commands, htpasswd, render, settings as S
from swarm_registry.facts import Facts, Node, Task
from swarm_registry.plan import ORDER, setup_plan
from swarm_registry.results import CHANGED, FAILED, OK, SKIPPED
from swarm_registry.state import StateDir
from swarm_registry.steps import bucket, credential_store, login, move_data, preflight, trust
from swarm_registry.wanted import wanted

PASSWORD = "plan-pass-1"
MGR, REG, NODES = "kawaii", "kawaii", ["kawaii", "node2"]


@pytest.fixture
def w(base_settings, monkeypatch):
    monkeypatch.setattr("swarm_registry.wanted.local_image_id", lambda image: "")
    settings = S.from_mapping(base_settings)
    entries, _ = htpasswd.set_password({}, "lenain", PASSWORD)
    StateDir(settings.state_dir).write("htpasswd", htpasswd.render(entries))
    return wanted(settings, write_certs=True, password=PASSWORD)


def spec_from(doc: dict) -> dict:
    """The service spec as `docker stack deploy` stores it for this compose document."""
    svc = doc["services"]["registry"]
    return {
        "Labels": {**svc["deploy"]["labels"], "com.docker.stack.namespace": "onsen-registry"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": svc["image"] + "@sha256:" + "0" * 64,
                "Labels": {**svc["labels"], "com.docker.stack.namespace": "onsen-registry"},
                "Env": [f"{k}={v}" for k, v in svc["environment"].items()],
                "Mounts": [{"Type": "bind", "Source": m["source"], "Target": m["target"],
                            **({"ReadOnly": True} if m.get("read_only") else {})} for m in svc["volumes"]],
                "Secrets": [{"SecretName": s["source"], "File": {"Name": s["target"]}} for s in svc["secrets"]],
            },
            "Placement": {"Constraints": svc["deploy"]["placement"]["constraints"]},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 5000, "PublishedPort": 5000,
                                    "PublishMode": "host"}]},
    }


def converged_facts(w) -> dict[str, Facts]:
    s = w.settings
    config = json.dumps({"auths": {s.registry.endpoint: {}}, "credsStore": "pass"}).encode()
    node = dict(docker_up=True, swarm_state="active", trust=f"{commands.sha256(w.bundle.trust_anchor)}:644:755",
                pass_installed=True, helper_sha="ab" * 32, helper_path="/usr/bin/docker-credential-pass",
                gpg_id=True, list_rc=0, docker_config=config, login_user="lenain",
                login_sha=login.expected_sha(PASSWORD))
    mgr = Facts(**node, control=True, image_id="sha256:img", data_dir_mode="755", auth_dir_mode="700",
                htpasswd=f"{commands.sha256(w.htpasswd)}:600",
                compose=f"{commands.sha256(w.stack)}:644",
                nodes=[Node("id1", "kawaii", "Ready", "Active"), Node("id2", "node2", "Ready", "Active")],
                node_labels={"kawaii": {"registry": "true"}, "node2": {}},
                secrets=[(w.names.cert, "2026-01-01"), (w.names.key, "2026-01-01")],
                service=spec_from(w.stack_doc),
                tasks=[Task("t1", "id1", "running", "running", "", w.spec_hash)])
    return {"kawaii": mgr, "node2": Facts(**node)}


def fresh_facts() -> dict[str, Facts]:
    mgr = Facts(docker_up=True, swarm_state="active", control=True,
                nodes=[Node("id1", "kawaii", "Ready", "Active"), Node("id2", "node2", "Ready", "Active")],
                node_labels={"kawaii": {}, "node2": {}}, htpasswd=":", compose=":", trust="::")
    return {"kawaii": mgr, "node2": Facts(docker_up=True, swarm_state="active", trust="::")}


def by_step(plan):
    return {(p.step, p.host): p for p in plan}


def test_converged_cluster_every_step_ok_and_no_remote_command(w):
    plan = setup_plan(w, converged_facts(w), MGR, NODES)
    assert [p.step for p in plan if p.host == MGR] == [s for s in ORDER if s not in (move_data.STOP, move_data.STEP,
                                                                                     bucket.STEP)]  # s3 only
    assert {p.status for p in plan} == {OK}, [(p.step, p.message) for p in plan if p.status != OK]
    assert [a.command for p in plan for a in p.actions] == [None]  # only converge's check from this machine


def test_fresh_cluster_every_step_changes_with_the_commands_it_needs(w):
    plan = by_step(setup_plan(w, fresh_facts(), MGR, NODES))
    argv0 = {k: [("tls check" if a.tls else None) if a.command is None else a.command.argv[:3]
                 if a.command.argv[0] != "sh" else a.command.argv[3] for a in p.actions]
             for k, p in plan.items() if p.status == CHANGED}
    assert argv0[("directories", REG)] == [("install", "-d", "-m")] * 3
    assert argv0[("htpasswd", REG)] == ["converge-file"]
    assert argv0[("secrets", MGR)] == [("docker", "secret", "create")] * 2
    assert argv0[("label", MGR)] == [("docker", "node", "update")]
    assert argv0[("compose file", REG)] == ["converge-file"]
    assert argv0[("deploy", MGR)] == ["deploy"]
    assert argv0[("converge", MGR)] == ["facts"]  # polls the tasks fact
    for host in NODES:
        assert argv0[("trust-cert", host)] == ["trust-cert", "tls check"]  # the check: no command on the node
        assert argv0[("credential-helper", host)] == ["credential-helper", "converge-file"]
        assert argv0[("login", host)] == ["login"]
    assert plan[("image", REG)].status == OK and plan[("old secrets", MGR)].status == OK
    assert "no service yet" in plan[("deploy", MGR)].message


def test_secrets_only_in_stdin_and_redacted(w):
    plan = setup_plan(w, fresh_facts(), MGR, NODES)
    shown = "\n".join(a.command.display() for p in plan for a in p.actions if a.command)
    key = w.bundle.server_key.decode()
    assert "PRIVATE KEY" not in shown and PASSWORD not in shown and key not in shown
    for p in plan:
        for a in p.actions:
            if a.command and a.command.stdin and (w.bundle.server_key in a.command.stdin
                                                  or PASSWORD.encode() in a.command.stdin
                                                  or w.htpasswd == a.command.stdin):
                assert a.command.secret, (p.step, a.command.display())
            assert PASSWORD not in " ".join(a.command.argv if a.command else ())


@pytest.mark.parametrize("drift,field", [
    (lambda spec: spec["TaskTemplate"]["ContainerSpec"]["Env"].append("FOO=bar"), "env"),
    (lambda spec: spec["TaskTemplate"]["ContainerSpec"].update(Image="registry:2.7"), "image"),
    (lambda spec: spec["TaskTemplate"]["Placement"].update(Constraints=[]), "constraints"),
    (lambda spec: spec["TaskTemplate"]["ContainerSpec"]["Mounts"].pop(), "mounts"),
    (lambda spec: spec["EndpointSpec"]["Ports"][0].update(PublishedPort=5001), "ports"),
])
def test_a_service_changed_by_hand_is_deployed_again_and_the_old_task_does_not_count(w, drift, field):
    facts = converged_facts(w)
    drift(facts[MGR].service)
    plan = by_step(setup_plan(w, facts, MGR, NODES))
    deploy = plan[("deploy", MGR)]
    assert deploy.status == CHANGED and f"differs in {field}" in deploy.message
    wait = plan[("converge", MGR)].actions[0].wait
    assert wait.poll is not None and wait.exclude == {"t1"}  # the task running before the deploy


def test_half_done_htpasswd_uploaded_but_deploy_interrupted(w):
    """htpasswd reached the node, the run stopped before the deploy: the service still carries the old
    htpasswd hash in its spec, so the next plan deploys (and the task restarts with the new file)."""
    facts = converged_facts(w)
    old_doc = render.stack(w.settings, w.names, "0" * 64)
    facts[MGR].service = spec_from(old_doc)
    facts[MGR].tasks = [Task("t1", "id1", "running", "running", "", render.spec_hash(old_doc))]
    plan = by_step(setup_plan(w, facts, MGR, NODES))
    assert plan[("htpasswd", REG)].status == OK
    assert plan[("deploy", MGR)].status == CHANGED and "labels" in plan[("deploy", MGR)].message


def test_a_compose_file_on_disk_is_not_proof_of_a_deploy(w):
    facts = fresh_facts()
    facts[REG].compose = f"{commands.sha256(w.stack)}:644"  # written, but the deploy never happened
    plan = by_step(setup_plan(w, facts, MGR, NODES))
    assert plan[("compose file", REG)].status == OK and plan[("deploy", MGR)].status == CHANGED


def test_converge_waits_for_the_wanted_spec_when_an_old_task_still_runs(w):
    facts = converged_facts(w)
    facts[MGR].tasks = [Task("t0", "id1", "running", "running", "", "old-spec")]
    plan = by_step(setup_plan(w, facts, MGR, NODES))
    wait = plan[("converge", MGR)].actions[0].wait
    assert plan[("converge", MGR)].status == CHANGED and wait.poll is not None
    done, _, msg = wait.until(None)
    assert not done and "running" in msg


@pytest.mark.parametrize("secrets,want", [
    ("one missing", 1), ("both missing", 2), ("both there", 0)])
def test_secrets_made_only_when_missing(w, secrets, want):
    facts = converged_facts(w)
    facts[MGR].secrets = {"one missing": [(w.names.cert, "x")], "both missing": [],
                          "both there": facts[MGR].secrets}[secrets]
    p = by_step(setup_plan(w, facts, MGR, NODES))[("secrets", MGR)]
    assert len(p.actions) == want and p.status == (CHANGED if want else OK)


def test_label_added_to_the_registry_node_and_removed_from_another(w):
    facts = converged_facts(w)
    facts[MGR].node_labels = {"kawaii": {}, "node2": {"registry": "true"}}
    p = by_step(setup_plan(w, facts, MGR, NODES))[("label", MGR)]
    assert [a.command.argv[3:] for a in p.actions] == [("--label-add", "registry=true", "kawaii"),
                                                       ("--label-rm", "registry", "node2")]


def test_old_secrets_beyond_keep_are_removed(w):
    facts = converged_facts(w)
    host = w.settings.registry.host
    facts[MGR].secrets += [(f"{host}.crt-0000000{i}", f"2025-0{i}-01") for i in range(1, 5)]
    p = by_step(setup_plan(w, facts, MGR, NODES))[("old secrets", MGR)]
    assert p.actions[0].command.argv[:3] == ("docker", "secret", "rm")
    assert set(p.actions[0].command.argv[3:]) == {f"{host}.crt-00000001", f"{host}.crt-00000002"}  # 2 newest kept


def test_image_streamed_when_the_node_lacks_it_and_this_machine_has_it(w):
    w2 = dataclasses.replace(w, local_image_id="sha256:local")
    facts = converged_facts(w)
    facts[REG].image_id = ""
    p = by_step(setup_plan(w2, facts, MGR, NODES))[("image", REG)]
    assert p.status == CHANGED and p.actions[0].stream_image == w.settings.registry.image
    facts[REG].image_id = "sha256:img"
    assert by_step(setup_plan(w2, facts, MGR, NODES))[("image", REG)].status == OK


def test_trust_login_and_store_per_node_states(w):
    facts = converged_facts(w)
    n2 = facts["node2"]
    n2.trust, n2.login_sha = "::", "0" * 64  # distrusts, and stored a different password
    n2.docker_config = b'{"auths": {}}'
    plan = by_step(setup_plan(w, facts, MGR, NODES))
    assert plan[("trust-cert", "node2")].status == CHANGED and plan[("login", "node2")].status == CHANGED
    cred = plan[("credential-helper", "node2")]
    assert cred.status == CHANGED and [a.command.argv[3] for a in cred.actions] == ["converge-file"]
    assert plan[("trust-cert", MGR)].status == OK and plan[("login", MGR)].status == OK
    n2.trust_strays = "client.key"
    assert by_step(setup_plan(w, facts, MGR, NODES))[("trust-cert", "node2")].status == FAILED


def test_login_without_password_is_skipped_and_without_helper_fails():
    f = Facts(docker_up=True)
    assert login.plan("r:5000", "u", None, "h", f).status == SKIPPED
    assert login.plan("r:5000", "u", "pw", "h", f).status == FAILED
    assert login.plan("r:5000", "u", "pw", "h", f, helper_coming=True).status == CHANGED


def test_malformed_config_json_fails_the_store_step_and_is_left_alone(w):
    facts = converged_facts(w)
    facts["node2"].docker_config = b"{not json"
    p = credential_store.plan(w.settings, w.settings.hosts["node2"], facts["node2"], None)
    assert p.status == FAILED and "left alone" in p.message and not p.actions


def test_users_is_the_allow_list(base_settings):
    settings = S.from_mapping({**base_settings, "users": ["lenain", "bob"]})
    entries, _ = htpasswd.set_password({}, "lenain", "a-pass-1")
    entries, _ = htpasswd.set_password(entries, "eve", "e-pass-1")
    StateDir(settings.state_dir).write("htpasswd", htpasswd.render(entries))
    with pytest.raises(S.SettingsError, match="bob listed but without a password"):
        wanted(settings, write_certs=True, password=None)
    entries, _ = htpasswd.set_password(entries, "bob", "b-pass-1")
    StateDir(settings.state_dir).write("htpasswd", htpasswd.render(entries))
    w = wanted(settings, write_certs=True, password=None)
    assert set(htpasswd.parse(w.htpasswd)) == {"lenain", "bob"} and w.unlisted_users == ("eve",)
    p = by_step(setup_plan(w, fresh_facts(), MGR, NODES))[("htpasswd", REG)]
    assert "not deployed (not in settings users): eve" in p.message


def test_malformed_htpasswd_is_bad_input(base_settings):
    settings = S.from_mapping(base_settings)
    StateDir(settings.state_dir).write("htpasswd", b"lenain-without-a-hash\n")
    with pytest.raises(S.SettingsError, match="htpasswd"):
        wanted(settings, write_certs=True, password=None)


def test_service_spec_fact_roundtrip(w):
    from swarm_registry.facts import parse
    spec = spec_from(w.stack_doc)
    out = "service=" + base64.b64encode(json.dumps(spec).encode()).decode()
    assert parse(out).service == spec


@pytest.mark.parametrize("move,problem,steps", [
    ("", "holds registry data", []),
    ("abandon", None, []),
    ("move", None, [move_data.STOP, move_data.STEP]),
])
def test_registry_node_moved_away_from_a_node_holding_data(w, move, problem, steps):
    """The label is on node2 (the registry ran there) and node2 holds data; registry.node is kawaii."""
    w = dataclasses.replace(w, move=move)
    facts = converged_facts(w)
    facts[MGR].node_labels = {"kawaii": {}, "node2": {"registry": "true"}}
    facts["node2"].data_files, facts["node2"].data_bytes = True, 12 * 1048576
    found = preflight.cluster_problems(w, facts, MGR, NODES)
    assert [p for _, p in found if problem and problem in p] or (problem is None and found == []), found
    if problem is None:
        plan = setup_plan(w, facts, MGR, NODES)
        assert [p.step for p in plan if p.step in (move_data.STOP, move_data.STEP)] == steps
        if steps:
            copy = by_step(plan)[(move_data.STEP, REG)].actions[0]
            assert copy.stream_from[0] == "node2" and copy.stream_from[1].argv[3] == "data-send"
            assert copy.command.argv[3] == "data-receive"
        label = by_step(plan)[("label", MGR)]
        assert [a.command.argv[3] for a in label.actions] == ["--label-add", "--label-rm"]
        assert (by_step(plan)[("deploy", MGR)].status == CHANGED) == bool(steps)


def test_move_data_refuses_a_destination_that_holds_data(w):
    w = dataclasses.replace(w, move="move")
    facts = converged_facts(w)
    facts[MGR].node_labels = {"kawaii": {}, "node2": {"registry": "true"}}
    facts["node2"].data_files = facts[REG].data_files = True
    found = preflight.cluster_problems(w, facts, MGR, NODES)
    assert any("not empty" in p for _, p in found), found


@pytest.mark.parametrize("registry_host,version,refused", [
    ("fd00::12", "20.10.24+dfsg1", True),   # this machine's docker: [fd00::12]:5000/app is an invalid reference
    ("fd00::12", "24.0.7", True),
    ("fd00::12", "25.0.0", False),          # parses IPv6 registry names
    ("fd00::12", "", False),                # version unknown: not judged
    ("172.31.1.11", "20.10.24+dfsg1", False),  # IPv4 addresses and names were always fine
    ("registry.onsen.lan", "20.10.24+dfsg1", False),
])
def test_preflight_refuses_an_ipv6_registry_address_a_node_docker_cannot_name(registry_host, version, refused):
    f = Facts(docker_up=True, swarm_state="active", control=False, docker_version=version)
    status, message = preflight.host_verdict(f, False, registry_host)
    assert (status == FAILED) == refused, message
    if refused:
        assert f"docker {version}" in message and "DNS name with an AAAA record" in message
