"""Scale-out over S3 (storage.driver s3, registry.nodes), pure parts: settings validation, the S3 keys in
state_dir, the registry config secret and the stack for several replicas, and setup's plan for them
(bucket, per-node steps, labels, convergence on every replica)."""
import os
import stat

import pytest
import yaml

from swarm_registry import commands, facts as facts_mod, htpasswd, render, s3creds, settings as S
from swarm_registry.errors import Output
from swarm_registry.facts import Facts, Node, Task
from swarm_registry.plan import CLUSTER_STEPS, setup_plan
from swarm_registry.results import CHANGED, FAILED, OK
from swarm_registry.state import StateDir
from swarm_registry.steps import bucket, converge, migrate
from swarm_registry.wanted import wanted

AK, SK = "AKIAEXAMPLE0001", "s3cr3t/Key+value=="
PASSWORD = "storage-pass-1"
HOSTS = {"n1": {"address": "10.9.0.11", "roles": ["manager"]}, "n2": {"address": "10.9.0.12"},
         "n3": {"address": "10.9.0.13"}}
S3 = {"driver": "s3", "s3": {"endpoint": "http://10.9.0.5:7480", "bucket": "registry"}}


def mapping(tmp_path, **over):
    base = {"hosts": HOSTS, "state_dir": str(tmp_path / "state"), "cert": {"key_type": "ecdsa-p256"},
            "registry": {"nodes": ["n1", "n2", "n3"]}, "storage": S3}
    base.update(over)
    return base


def problems(data) -> list[str]:
    with pytest.raises(S.SettingsError) as exc:
        S.from_mapping(data)
    return exc.value.problems


# --- settings ---------------------------------------------------------------------------------


def test_s3_settings_with_three_nodes_accepted(tmp_path):
    s = S.from_mapping(mapping(tmp_path))
    assert s.registry.nodes == ("n1", "n2", "n3") and s.registry.node == "n1"
    assert s.storage == S.Storage("s3", S.S3("http://10.9.0.5:7480", "us-east-1", "registry", "/"))
    assert s.groups["registry"] == ["n1", "n2", "n3"]


def test_one_node_form_unchanged(tmp_path):
    s = S.from_mapping(mapping(tmp_path, registry={"node": "n2"}, storage={}))
    assert (s.registry.node, s.registry.nodes, s.storage.driver) == ("n2", ("n2",), "filesystem")


@pytest.mark.parametrize("over, needle", [
    ({"storage": {"driver": "filesystem"}}, "registry.nodes = ['n1', 'n2', 'n3']: must be one node while "
                                            "storage.driver is filesystem"),
    ({"registry": {"nodes": ["n1", "nope"]}}, "settings registry.nodes = 'nope': must be an inventory host"),
    ({"registry": {"nodes": ["n1", "n1"]}}, "without duplicates (repeated: n1)"),
    ({"registry": {"nodes": ["n1", "n2"], "node": "n2"}}, "registry.node = 'n2': must be left out, or the first"),
    ({"storage": {"driver": "s3"}}, "storage.s3 = None: must be a mapping"),
    ({"storage": {"driver": "s3", "s3": {"endpoint": "ftp://x", "bucket": "registry"}}}, "storage.s3.endpoint"),
    ({"storage": {"driver": "s3", "s3": {"endpoint": "http://a:b@x:1", "bucket": "registry"}}}, "storage.s3.endpoint"),
    ({"storage": {"driver": "s3", "s3": {"endpoint": "http://x:7480", "bucket": "Bad_Bucket"}}}, "storage.s3.bucket"),
    ({"storage": {"driver": "s3", "s3": {"endpoint": "http://x:7480", "bucket": "b1", "key": 1}}},
     "storage.s3.key: unknown key"),
    ({"storage": {"driver": "filesystem", "s3": {"bucket": "b1"}}, "registry": {"node": "n1"}},
     "storage.s3 = {'bucket': 'b1'}: must be left out unless storage.driver is s3"),
    ({"storage": {"driver": "gcs"}}, "storage.driver = 'gcs': must be one of filesystem, s3"),
])
def test_bad_storage_settings_refused_with_one_line(tmp_path, over, needle):
    found = problems(mapping(tmp_path, **over))
    assert any(needle in p for p in found), found


def test_s3_keys_stored_0600_env_first_and_bad_ones_refused(tmp_path):
    state = tmp_path / "state"
    assert s3creds.load(state, {}) is None
    assert s3creds.store(state, AK, SK) is True and s3creds.store(state, AK, SK) is False
    f = state / s3creds.FILE
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert s3creds.load(state, {}) == s3creds.S3Keys(AK, SK)
    env = {s3creds.ENV_ACCESS: "AKIAENV", s3creds.ENV_SECRET: "envsecret"}
    assert s3creds.load(state, env) == s3creds.S3Keys("AKIAENV", "envsecret")
    assert SK not in repr(s3creds.load(state, {}))
    with pytest.raises(S.SettingsError, match="set both"):
        s3creds.load(state, {s3creds.ENV_ACCESS: "AKIAENV"})
    with pytest.raises(S.SettingsError, match="secret key"):
        s3creds.store(state, AK, 'bad"quote')
    os.chmod(f, 0o644)
    with pytest.raises(S.SettingsError, match="must be 0600"):
        s3creds.load(state, {})


# --- render -------------------------------------------------------------------------------------


def s3_wanted(tmp_path, write=True, **over):
    settings = S.from_mapping(mapping(tmp_path, **over))
    entries, _ = htpasswd.set_password({}, "lenain", PASSWORD)
    StateDir(settings.state_dir).write("htpasswd", htpasswd.render(entries))
    s3creds.store(settings.state_dir, AK, SK)
    return wanted(settings, write_certs=write, password=PASSWORD)


def test_config_secret_holds_keys_and_http_secret_and_the_stack_holds_neither(tmp_path, monkeypatch):
    monkeypatch.setattr("swarm_registry.wanted.local_image_id", lambda image: "")
    w = s3_wanted(tmp_path)
    config = yaml.safe_load(w.registry_config)
    s3 = config["storage"]["s3"]
    assert (s3["accesskey"], s3["secretkey"], s3["regionendpoint"], s3["bucket"], s3["secure"]) == (
        AK, SK, "http://10.9.0.5:7480", "registry", False)
    assert config["storage"]["redirect"] == {"disable": True} and "filesystem" not in config["storage"]
    secret = (w.settings.state_dir / "http-secret").read_text().strip()
    assert config["http"]["secret"] == secret and len(secret) == 64
    assert stat.S_IMODE((w.settings.state_dir / "http-secret").stat().st_mode) == 0o600
    assert AK not in w.stack.decode() and SK not in w.stack.decode() and secret not in w.stack.decode()
    svc = w.stack_doc["services"]["registry"]
    assert {"source": w.names.config, "target": render.CONFIG_TARGET, "mode": 0o400} in svc["secrets"]
    assert w.names.config == render.secret_name("registry.onsen.lan.yml", w.registry_config)
    assert [v["target"] for v in svc["volumes"]] == ["/auth"]  # no data_dir bind: the data is in the bucket
    assert svc["deploy"]["replicas"] == 3 and svc["deploy"]["placement"]["max_replicas_per_node"] == 1
    assert w.stack_doc["version"] == "3.8" and w.names.config in w.stack_doc["secrets"]
    # the same HTTP secret next time: replicas and restarts share it
    assert s3_wanted(tmp_path).names.config == w.names.config


def test_root_directory_and_https(tmp_path, monkeypatch):
    monkeypatch.setattr("swarm_registry.wanted.local_image_id", lambda image: "")
    w = s3_wanted(tmp_path, storage={"driver": "s3", "s3": {"endpoint": "https://s3.example:443",
                                                           "bucket": "b-1", "root_directory": "/team"}})
    s3 = yaml.safe_load(w.registry_config)["storage"]["s3"]
    assert (s3["secure"], s3["rootdirectory"]) == (True, "/team")


def test_s3_without_keys_is_bad_input_naming_the_fix(tmp_path):
    settings = S.from_mapping(mapping(tmp_path))
    entries, _ = htpasswd.set_password({}, "lenain", PASSWORD)
    StateDir(settings.state_dir).write("htpasswd", htpasswd.render(entries))
    with pytest.raises(S.SettingsError, match="inv storage.credentials"):
        wanted(settings, write_certs=False, password=PASSWORD)


# --- plan -------------------------------------------------------------------------------------


def spec_of(w) -> dict:
    svc = w.stack_doc["services"]["registry"]
    return {"Labels": dict(svc["deploy"]["labels"]),
            "TaskTemplate": {"ContainerSpec": {
                "Image": svc["image"], "Labels": dict(svc["labels"]),
                "Env": [f"{k}={v}" for k, v in svc["environment"].items()],
                "Mounts": [{"Source": m["source"], "Target": m["target"], "ReadOnly": True} for m in svc["volumes"]],
                "Secrets": [{"SecretName": s["source"], "File": {"Name": s["target"]}} for s in svc["secrets"]]},
                "Placement": {"Constraints": svc["deploy"]["placement"]["constraints"], "MaxReplicas": 1}},
            "Mode": {"Replicated": {"Replicas": 3}},
            "EndpointSpec": {"Ports": [{"TargetPort": 5000, "PublishedPort": 5000, "PublishMode": "host"}]}}


def cluster_facts(w, *, converged: bool, bucket_code: str = "200") -> dict[str, Facts]:
    s = w.settings
    nodes = [Node(f"id{i}", n, "Ready", "Active") for i, n in enumerate(s.hosts, 1)]
    out = {}
    for i, h in enumerate(s.hosts, 1):
        f = Facts(docker_up=True, swarm_state="active", control=h == "n1")
        if converged:
            f.image_id, f.auth_dir_mode = "sha256:img", "700"
            f.htpasswd = f"{commands.sha256(w.htpasswd)}:600"
        else:
            f.htpasswd = f.compose = ":"
        out[h] = f
    m = out["n1"]
    m.bucket, m.nodes = bucket_code, nodes
    m.node_labels = {n: ({"registry": "true"} if converged else {}) for n in s.hosts}
    if converged:
        m.compose = f"{commands.sha256(w.stack)}:644"
        m.secrets = [(w.names.cert, "1"), (w.names.key, "1"), (w.names.config, "1")]
        m.service = spec_of(w)
        m.tasks = [Task(f"t{i}", f"id{i}", "running", "running", "", w.spec_hash) for i in (1, 2, 3)]
    return out


@pytest.fixture
def w(tmp_path, monkeypatch):
    monkeypatch.setattr("swarm_registry.wanted.local_image_id", lambda image: "")
    return s3_wanted(tmp_path)


def by_step(plan):
    return {(p.step, p.host): p for p in plan}


def test_fresh_s3_cluster_every_registry_node_gets_its_steps_and_the_label(w):
    plan = by_step(setup_plan(w, cluster_facts(w, converged=False), "n1", ["n1", "n2", "n3"]))
    for n in ("n1", "n2", "n3"):
        assert plan[("directories", n)].status == CHANGED and "data" not in plan[("directories", n)].message
        assert plan[("htpasswd", n)].status == CHANGED
    assert ("compose file", "n1") in plan and ("compose file", "n2") not in plan
    label = plan[("label", "n1")]
    assert [a.command.argv[-1] for a in label.actions] == ["n1", "n2", "n3"]
    secrets = plan[("secrets", "n1")]
    assert [a.command.argv[-2] for a in secrets.actions] == [w.names.cert, w.names.key, w.names.config]
    assert all(a.command.secret for a in secrets.actions)
    assert plan[("bucket", "n1")].status == OK  # the bucket answers (fact 200)
    wait = plan[("converge", "n1")].actions[0].wait
    assert wait.node_ids == {"n1": "id1", "n2": "id2", "n3": "id3"}


def test_converged_s3_cluster_needs_no_remote_command(w):
    plan = [p for p in setup_plan(w, cluster_facts(w, converged=True), "n1", ["n1", "n2", "n3"])
            if p.step in CLUSTER_STEPS]  # the node steps (trust, login) are setup's as for one node
    assert {p.status for p in plan} == {OK}, [(p.step, p.host, p.message) for p in plan if p.status != OK]
    assert [a.command for p in plan for a in p.actions] == [None]  # only converge's check from this machine


def test_converge_waits_until_a_replica_runs_on_every_registry_node(w):
    facts = cluster_facts(w, converged=True)
    facts["n1"].tasks = facts["n1"].tasks[:2]  # nothing on n3
    step = by_step(setup_plan(w, facts, "n1", ["n1", "n2", "n3"]))[("converge", "n1")]
    assert step.status == CHANGED and step.actions[0].command is not None
    done, status, why = step.actions[0].wait.until(None)
    assert (done, status) == (False, FAILED) and "running on n3" in why


def test_a_replica_that_refuses_where_the_swarm_said_running_makes_the_wait_read_the_tasks_again(w, monkeypatch):
    """A node that just rejoined: the tasks read by the facts say running, its port refuses. The wait
    names the swarm's task on that node and polls the tasks from then on (no poll was planned)."""
    from swarm_registry import registry_http

    def probe(settings, path, *, auth=None, timeout=5.0, address=None):
        if address == "10.9.0.13":
            raise registry_http.RegistryError("cannot connect to 10.9.0.13:5000: [Errno 111] Connection refused")
        return registry_http.Answer(200 if auth else 401, wait.cert_sha, {}, b"")

    monkeypatch.setattr(registry_http, "probe", probe)
    step = by_step(setup_plan(w, cluster_facts(w, converged=True), "n1", ["n1", "n2", "n3"]))[("converge", "n1")]
    wait = step.actions[0].wait
    assert step.status == OK and wait.poll is None
    done, status, why = wait.until(None)
    assert (done, status, wait.poll) == (False, FAILED, facts_mod.command(w.settings, ["tasks"]))
    assert why.endswith("on n3 (swarm: task t3 running, desired running)"), why
    tasks = "task=t9|id3|running|rejected||" + w.spec_hash + "\ntask=t3|id3|shutdown|running||" + w.spec_hash
    done, status, why = wait.until(Output(0, tasks, ""))
    assert (done, status) == (False, FAILED) and "n3: task t9 rejected, desired running" in why, why
    monkeypatch.setattr(registry_http, "probe", lambda settings, path, *, auth=None, timeout=5.0, address=None:
                        registry_http.Answer(200 if auth else 401, wait.cert_sha, {}, b""))
    assert wait.until(None)[:2] == (True, OK)  # the positive control: every replica answers


@pytest.mark.parametrize("code, status, needle", [
    ("200", OK, "answers at http://10.9.0.5:7480"),
    ("404", CHANGED, "create bucket registry"),
    ("403", FAILED, "S3 refused the access key"),
    ("000", FAILED, "S3 endpoint does not answer"),
    ("nocurl", FAILED, "has no curl"),
])
def test_bucket_step(w, code, status, needle):
    step = bucket.plan(w, "n1", Facts(bucket=code))
    assert step.status == status and needle in step.message, step.message
    if status == CHANGED:
        cmd = step.actions[0].command
        assert cmd.stdin == f"{AK}\n{SK}\n".encode() and cmd.secret
        assert AK not in " ".join(cmd.argv) and SK not in cmd.display()


def test_bucket_fact_read_with_the_keys_on_stdin_on_the_first_registry_node_only(w):
    stdin = bucket.fact_stdin(w)
    assert stdin("n1") == f"{AK}\n{SK}\n".encode() and stdin("n2") is None
    cmd = facts_mod.command(w.settings, ("docker", "bucket"), stdin("n1"))
    assert cmd.secret and SK not in cmd.display() and SK not in " ".join(cmd.argv)


def test_migrate_plan_copies_with_keys_on_stdin_and_knows_an_s3_service(w):
    facts = cluster_facts(w, converged=True)
    assert migrate.runs_s3(facts["n1"])
    step = migrate.copy_plan(w, "n1", Facts(data_bytes=3 * 1048576))
    cmd = step.actions[0].command
    assert cmd.argv[3] == "s3-upload" and cmd.secret and SK not in cmd.display()
    assert not migrate.runs_s3(Facts(service={"TaskTemplate": {"ContainerSpec": {"Secrets": []}}}))


# --- the bucket fact and bucket.sh, run with the local sh and a fake curl --------------------------


def test_bucket_fact_and_create_send_the_keys_to_curl_on_stdin_never_in_argv(w, tmp_path):
    from tests.unit.test_scripts import Sandbox

    (tmp_path / "box").mkdir()
    box = Sandbox(tmp_path / "box")
    # a fake curl: logs its argv and the config it reads on stdin (-K -); the bucket "exists" after a PUT
    box.fake("curl", 'echo "argv: $*" >>"$LOG"; sed "s/^/stdin: /" >>"$LOG"\n'
                     'case "$*" in *-X\\ PUT*) touch "$STATE/made"; printf 200 ;; '
                     '*) [ -e "$STATE/made" ] && printf 200 || printf 404 ;; esac')
    stdin = bucket.fact_stdin(w)("n1")
    f = facts_mod.parse(box.run(facts_mod.command(w.settings, ("bucket",), stdin)).stdout)
    assert f.bucket == "404"
    step = bucket.plan(w, "n1", f)
    out = box.run(step.actions[0].command)
    assert step.actions[0].verdict(out) == (CHANGED, "created bucket registry"), out
    log = box.calls()
    argv = [line for line in log if line.startswith("argv: ")]
    assert [a.split()[-1] for a in argv] == ["http://10.9.0.5:7480/registry"] * 3
    assert "-I" in argv[0].split() and "PUT" in argv[1].split()
    assert all(AK not in a and SK not in a for a in argv)
    assert log.count(f'stdin: user = "{AK}:{SK}"') == 3
    assert 'stdin: aws-sigv4 = "aws:amz:us-east-1:s3"' in log
