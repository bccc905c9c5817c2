"""Day-2 operations, pure: the read-only spec, gc's plan and report, images.rm's reference and plan,
catalog sizes from manifests, the backup archive (round trip, truncated, tampered, wrongly keyed, age
CLI compatible), and the remote scripts gc.sh / restore-data.sh run with the local sh (no SSH)."""
import dataclasses
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from swarm_registry import backup as archive, commands, facts as facts_mod, render, settings as S
from swarm_registry.errors import Output
from swarm_registry.facts import Facts, Task
from swarm_registry.jobs import runner
from swarm_registry.registry_http import manifest_children, manifest_size
from swarm_registry.results import CHANGED, FAILED, OK, Run
from swarm_registry.settings import SettingsError
from swarm_registry.steps import StepPlan, backup as backup_step, gc, image_delete, readonly
from tests.conftest import require
from tests.unit.test_plan import converged_facts, spec_from, w  # noqa: F401 - the fixture
from tests.unit.test_scripts import Sandbox

MGR = REG = "kawaii"


# --- read-only mode -----------------------------------------------------------------------------


def test_readonly_spec_adds_the_maintenance_mapping_and_is_another_spec(w):
    doc = render.stack(w.settings, w.names, commands.sha256(w.htpasswd), readonly=True)
    env = doc["services"]["registry"]["environment"]
    assert env["REGISTRY_STORAGE_MAINTENANCE_READONLY"] == '{"enabled": true}'
    assert json.loads(env["REGISTRY_STORAGE_MAINTENANCE_READONLY"]) == {"enabled": True}
    assert not any(k.endswith("READONLY_ENABLED") for k in env)  # that form makes docker-registry 2.8 panic
    assert render.spec_hash(doc) != render.spec_hash(w.stack_doc)
    assert "REGISTRY_STORAGE_MAINTENANCE_READONLY" not in w.stack_doc["services"]["registry"]["environment"]


def test_a_service_left_read_only_differs_from_what_setup_wants(w):
    """An interrupted gc/backup leaves the read-only spec: setup's deploy step sees it and redeploys."""
    from swarm_registry.steps import deploy

    f = converged_facts(w)[MGR]
    ro = readonly.readonly_wanted(w)
    left = dataclasses.replace(f, service=spec_from(ro.stack_doc))
    assert readonly.is_readonly(left) and not readonly.is_readonly(f)
    p = deploy.plan(w, MGR, left)
    assert p.status == CHANGED and "env" in p.message and "spec_label" in p.message
    assert deploy.plan(w, MGR, f).status == OK


def test_readonly_problems_no_service_or_a_service_setup_did_not_deploy(w):
    f = converged_facts(w)[MGR]
    ro = readonly.readonly_wanted(w)
    assert readonly.problems(w, ro, MGR, f) == []
    assert readonly.problems(w, ro, MGR, dataclasses.replace(f, service=spec_from(ro.stack_doc))) == []
    assert "run inv setup first" in readonly.problems(w, ro, MGR, dataclasses.replace(f, service=None))[0][1]
    hand = spec_from(w.stack_doc)
    hand["TaskTemplate"]["ContainerSpec"]["Env"].append("HAND=made")
    assert "differs from the settings in env" in readonly.problems(w, ro, MGR, dataclasses.replace(f, service=hand))[0][1]


# --- gc -----------------------------------------------------------------------------------------


def test_gc_plan_read_only_then_collect_then_read_write_always(w):
    f = converged_facts(w)[MGR]
    plan = gc.plan(w, MGR, f, REG, dry_run=False, delete_untagged=False)
    assert [(p.step, p.status) for p in plan] == [("read-only", CHANGED), ("garbage-collect", CHANGED),
                                                  ("read-write", CHANGED)]
    on, collect, off = plan
    assert on.actions[0].command.argv[3] == "deploy" and b"MAINTENANCE_READONLY" in on.actions[0].command.stdin
    assert on.actions[1].wait is not None and on.actions[1].wait.spec == readonly.readonly_wanted(w).spec_hash
    assert "dry_run=0" in collect.actions[0].command.display() and "delete_untagged=0" in collect.actions[0].command.display()
    assert off.always and b"MAINTENANCE_READONLY" not in off.actions[0].command.stdin
    assert off.actions[1].wait.spec == w.spec_hash and "t1" in off.actions[1].wait.exclude
    assert not on.always and not collect.always


def test_gc_plan_when_left_read_only_waits_only_and_still_goes_back(w):
    ro = readonly.readonly_wanted(w)
    f = dataclasses.replace(converged_facts(w)[MGR], service=spec_from(ro.stack_doc),
                            tasks=[Task("t9", "id1", "running", "running", "", ro.spec_hash)])
    on, _, off = gc.plan(w, MGR, f, REG, dry_run=False, delete_untagged=True)
    assert on.status == OK and "already read-only" in on.message and len(on.actions) == 1 and on.actions[0].wait
    assert off.status == CHANGED and off.always


def test_gc_dry_run_plan_has_no_read_only_mode_but_repairs_one_left_behind(w):
    f = converged_facts(w)[MGR]
    plan = gc.plan(w, MGR, f, REG, dry_run=True, delete_untagged=False)
    assert [p.step for p in plan] == ["garbage-collect"] and "dry_run=1" in plan[0].actions[0].command.display()
    ro = readonly.readonly_wanted(w)
    left = dataclasses.replace(f, service=spec_from(ro.stack_doc))
    plan = gc.plan(w, MGR, left, REG, dry_run=True, delete_untagged=False)
    assert [p.step for p in plan] == ["garbage-collect", "read-write"] and plan[1].always


@pytest.mark.parametrize("dry_run,values,status,words", [
    (False, "before=1000\nafter=400\nmarked=3\nblobs=2\nmanifests=1\nrc=0\n", CHANGED,
     ["deleted 2 blob(s) and 1 manifest(s)", "(600 bytes: 1000 -> 400 on disk)", "3 blob(s) in use kept"]),
    (False, "before=1000\nafter=1000\nmarked=3\nblobs=0\nmanifests=0\nrc=0\n", OK, ["deleted 0 blob(s)"]),
    (True, "before=1000\nafter=1000\nmarked=3\nblobs=2\nmanifests=0\neligible_bytes=777\nrc=0\n", OK,
     ["would delete 2 blob(s)", "777 bytes", "nothing deleted"]),
])
def test_gc_verdict_reports_blobs_and_bytes(dry_run, values, status, words):
    got = gc.verdict_for(dry_run)(Output(0, values, ""))
    assert got[0] == status and all(wd in got[1] for wd in words), got


def test_gc_verdict_failures():
    assert gc.verdict_for(False)(Output(30, "before=1\nrc=1\n", "panic: boom"))[0] == FAILED
    assert "no summary" in gc.verdict_for(False)(Output(0, "before=1\nafter=1\nrc=0\n", ""))[1]
    refused = gc.verdict_for(False)(Output(21, "", "the registry task abc is not read-only: not collecting"))
    assert refused[0] == FAILED and "not read-only" in refused[1]


GC_LOG = """big
big: marking manifest sha256:{m}
big: marking blob sha256:{a}

1 blobs marked, 1 blobs and 0 manifests eligible for deletion
blob eligible for deletion: sha256:{b}
"""


def sandbox(root: Path) -> Sandbox:
    root.mkdir()
    return Sandbox(root)


def gc_box(tmp_path, readonly_env: bool):
    box = sandbox(tmp_path / "box")
    for tool in ("du", "find", "awk", "printf"):
        (box.bin / tool).symlink_to(shutil.which(tool))
    data = tmp_path / "data"
    blob = "b" * 64
    (data / f"docker/registry/v2/blobs/sha256/bb/{blob}").mkdir(parents=True)
    (data / f"docker/registry/v2/blobs/sha256/bb/{blob}/data").write_bytes(b"x" * 1234)
    log = GC_LOG.format(m="1" * 64, a="a" * 64, b=blob)
    env_line = 'REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled": true}' if readonly_env else "REGISTRY_AUTH=htpasswd"
    (tmp_path / "gc.log").write_text(log)
    box.fake("docker", f"""echo "docker $*" >> $LOG
case "$1" in
  ps) echo cid1 ;;
  inspect) printf '%s\\n' '{env_line}' ;;
  run) cat {tmp_path / "gc.log"}; case "$*" in *--dry-run*) ;; *) rm -rf {data}/docker/registry/v2/blobs/sha256/bb ;; esac ;;
esac""")
    return box, data


def gc_settings(base_settings, data):
    base_settings["registry"] = {"data_dir": str(data), "image": "registry:2"}
    return S.from_mapping(base_settings)


def test_gc_script_dry_run_measures_the_eligible_blobs_and_deletes_nothing(tmp_path, base_settings):
    box, data = gc_box(tmp_path, readonly_env=False)
    s = gc_settings(base_settings, data)
    out = box.run(gc.command(s, dry_run=True, delete_untagged=False))
    v = out.values()
    assert out.rc == 0 and v["blobs"] == "1" and v["eligible_bytes"] == "1234" and v["before"] == v["after"], out
    assert any("garbage-collect --dry-run /etc/docker/registry/config.yml" in c for c in box.calls())
    assert any(c.startswith("docker run --rm --name onsen-registry-gc --network none -v") for c in box.calls())


def test_gc_script_collects_only_beside_a_read_only_task(tmp_path, base_settings):
    box, data = gc_box(tmp_path, readonly_env=False)
    s = gc_settings(base_settings, data)
    out = box.run(gc.command(s, dry_run=False, delete_untagged=True))
    assert out.rc == 21 and "not read-only" in out.stderr and not any(c.startswith("docker run") for c in box.calls())
    assert (data / "docker/registry/v2/blobs/sha256/bb").exists()


def test_gc_script_collects_and_reports_the_bytes_reclaimed(tmp_path, base_settings):
    box, data = gc_box(tmp_path, readonly_env=True)
    s = gc_settings(base_settings, data)
    out = box.run(gc.command(s, dry_run=False, delete_untagged=True))
    assert out.rc == 0, out
    status, msg = gc.verdict_for(False)(out)
    assert status == CHANGED and int(out.values()["before"]) - int(out.values()["after"]) >= 1234, msg
    assert any("garbage-collect --delete-untagged /etc/docker/registry/config.yml" in c for c in box.calls())


def test_gc_of_a_registry_nothing_was_pushed_to_collects_nothing(tmp_path, base_settings):
    """What the lab's registry answered with no repository yet (exit 1): nothing to collect, not a failure."""
    box, data = gc_box(tmp_path, readonly_env=True)
    (tmp_path / "gc.log").write_text("failed to garbage collect: failed to mark: filesystem: Path not found: "
                                     "/docker/registry/v2/repositories\n")
    box.fake("docker", f"""case "$1" in
  ps) echo cid1 ;;
  inspect) echo 'REGISTRY_STORAGE_MAINTENANCE_READONLY={{"enabled": true}}' ;;
  run) cat {tmp_path / "gc.log"}; exit 1 ;;
esac""")
    out = box.run(gc.command(gc_settings(base_settings, data), dry_run=False, delete_untagged=False))
    assert out.rc == 0 and out.values()["empty"] == "1", out
    assert gc.verdict_for(False)(out) == (OK, "nothing to collect: no image was ever pushed to this registry "
                                              "(no repositories yet)")
    box.fake("docker", f"""case "$1" in
  ps) echo cid1 ;;
  inspect) echo 'REGISTRY_STORAGE_MAINTENANCE_READONLY={{"enabled": true}}' ;;
  run) echo 'panic: something else' ; exit 1 ;;
esac""")
    other = box.run(gc.command(gc_settings(base_settings, data), dry_run=False, delete_untagged=False))
    assert other.rc == 30 and gc.verdict_for(False)(other)[0] == FAILED  # any other failure stays one


# --- the runner: a restore step runs after a failure ----------------------------------------------


class FakeEx:
    def __init__(self, hosts):
        import threading
        self.run = Run(hosts=hosts)
        self.cancelled = threading.Event()
        self.ran = []

    def record(self, host, step, status, message=""):
        from swarm_registry.results import StepResult
        self.run.add(StepResult(host, step, status, message))

    def step(self, name, fn, hosts, include_failed=False):
        for h in hosts:
            if include_failed or not self.run.has_failed(h):
                self.ran.append((name, h))
                self.record(h, name, *fn(type("S", (), {"host": type("H", (), {"name": h})})()))


def test_runner_runs_an_always_step_on_a_host_that_failed_and_after_a_cluster_failure():
    plan = [StepPlan("read-only", MGR, FAILED, "converge timed out"),
            StepPlan("garbage-collect", MGR, CHANGED, "collect", ()),
            dataclasses.replace(StepPlan("read-write", MGR, OK, "back"), always=True)]
    ex = FakeEx([MGR])
    runner.execute(plan, ex, runner.RUN, ("read-only", "garbage-collect"))
    assert ex.ran == [("read-only", MGR), ("read-write", MGR)]


# --- images.rm and catalog sizes ------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    ("big:v1", ("big", "v1")),
    ("team/app:1.2.3-rc_1", ("team/app", "1.2.3-rc_1")),
    ("registry.onsen.lan:5000/team/app:latest", ("team/app", "latest")),
    ("app@sha256:" + "a" * 64, ("app", "sha256:" + "a" * 64)),
])
def test_images_rm_references(text, want):
    assert image_delete.parse_ref(text, "registry.onsen.lan:5000") == want


@pytest.mark.parametrize("text", ["big", "Big:v1", "big:", "big:v/1", "../x:1", "a;rm -rf /:1", "app@sha256:abc",
                                  "app:" + "x" * 129, ":v1", "a//b:1"])
def test_images_rm_bad_references_are_bad_input(text):
    with pytest.raises(SettingsError) as exc:
        image_delete.parse_ref(text, "registry.onsen.lan:5000")
    assert len(exc.value.problems) == 1 and "REPO:TAG" in exc.value.problems[0]


def test_images_rm_refused_when_deletes_are_off(base_settings):
    with pytest.raises(SettingsError) as exc:
        image_delete.refuse_without_delete(S.from_mapping(base_settings))
    assert exc.value.exit_code == 2 and "registry.delete_enabled is false" in exc.value.problems[0]
    base_settings["registry"] = {"delete_enabled": True}
    image_delete.refuse_without_delete(S.from_mapping(base_settings))


def test_images_rm_plan_names_every_tag_sharing_the_manifest():
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    p = image_delete.plan("app", "v1", d1, {"v1": d1, "latest": d1, "v2": d2}, 2048)
    assert p.tags == ("latest", "v1") and p.others == ("latest",) and p.path == f"/v2/app/manifests/{d1}"
    assert "tags latest, v1" in p.message and "2.0 KiB" in p.message and "inv gc" in p.message
    assert image_delete.delete_verdict(202, p)[0] is True
    assert "read-only" in image_delete.delete_verdict(405, p)[1]
    assert image_delete.delete_verdict(404, p)[0] is False


def test_sizes_come_from_the_manifest():
    doc = {"schemaVersion": 2, "config": {"digest": "sha256:c", "size": 100},
           "layers": [{"digest": "sha256:a", "size": 1000}, {"digest": "sha256:b", "size": 24}]}
    assert manifest_size(doc) == 1124 and manifest_children(doc) == []
    assert manifest_size({"schemaVersion": 1, "fsLayers": []}) is None
    index = {"manifests": [{"digest": "sha256:x"}, {"digest": "sha256:y"}]}
    assert manifest_children(index) == ["sha256:x", "sha256:y"]


# --- the archive ------------------------------------------------------------------------------------


def data_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo(".")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


FILES = {"docker/registry/v2/blobs/sha256/aa/" + "a" * 64 + "/data": os.urandom(300_000),
         "docker/registry/v2/repositories/big/_manifests/tags/v1/current/link": b"sha256:" + b"1" * 64}


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    for name, data in (("ca.crt", b"-----BEGIN CERTIFICATE-----\nx\n"), ("ca.key", b"-----BEGIN PRIVATE KEY-----\ny\n"),
                       ("htpasswd", b"lenain:$2y$05$abc\n")):
        (d / name).write_bytes(data)
        (d / name).chmod(0o600)
    return d


def make_archive(path: Path, state_dir: Path, recips=None, files=FILES) -> archive.Manifest:
    w = archive.Writer(path, recips)
    w.add_state(state_dir)
    assert w.add_data_tar(data_tar(files)) == (len(files), sum(len(v) for v in files.values()))
    return w.commit({"endpoint": "registry.onsen.lan:5000"})


def test_archive_round_trip_plain(tmp_path, state_dir):
    path = tmp_path / "b.tar"
    made = make_archive(path, state_dir)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not list(tmp_path.glob(".b.tar.partial-*"))
    manifest, state = archive.verify(path)
    assert manifest.data_files == 2 and manifest.data_bytes == made.data_bytes
    assert state == {n: (state_dir / n).read_bytes() for n in ("ca.crt", "ca.key", "htpasswd")}
    with tarfile.open(path) as tar:
        assert tar.getnames()[-1] == archive.MANIFEST and all(n.startswith(("state/", "data")) for n in tar.getnames()[:-1])
    # the data tar sent to the node: names relative to data_dir, content as backed up
    feed = archive.DataTar(path, None, manifest)
    got = tarfile.open(fileobj=io.BytesIO(b"".join(iter(lambda: feed.read(1 << 16), b""))))
    assert {m.name: got.extractfile(m).read() for m in got if m.isreg()} == FILES and feed.error is None


def test_data_tar_refuses_content_that_differs_from_the_manifest_before_its_last_bytes(tmp_path, state_dir):
    """The file changed between verify and the stream to the node: the member is cut short (the node's tar
    fails on it) and the reason is kept."""
    path = tmp_path / "b.tar"
    manifest = make_archive(path, state_dir)
    victim = next(m for m in manifest.members if m.name.startswith(archive.DATA) and m.size)
    victim.sha256 = "0" * 64
    feed = archive.DataTar(path, None, manifest)
    sent = b"".join(iter(lambda: feed.read(1 << 16), b""))
    feed.close()
    assert isinstance(feed.error, archive.ArchiveError) and "content differs" in str(feed.error), feed.error
    content = FILES[victim.name[len(archive.DATA):]]
    assert content[-4096:] not in sent  # its last bytes never left (the round trip above sends them all)


def test_archive_truncated_or_without_manifest_is_refused(tmp_path, state_dir):
    path = tmp_path / "b.tar"
    make_archive(path, state_dir)
    data = path.read_bytes()
    for cut in (len(data) // 2, data.index(b"MANIFEST.json") + 600, data.index(b"MANIFEST.json") - 100):
        bad = tmp_path / f"cut{cut}.tar"
        bad.write_bytes(data[:cut])
        with pytest.raises(archive.ArchiveError) as exc:
            archive.verify(bad)
        assert "nothing was changed" in exc.value.problems[0] and exc.value.exit_code == 2


def test_archive_tampered_member_or_manifest_is_refused(tmp_path, state_dir):
    path = tmp_path / "b.tar"
    make_archive(path, state_dir)
    data = bytearray(path.read_bytes())
    at = data.index(FILES[next(iter(FILES))][:64])
    data[at + 100] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    with pytest.raises(archive.ArchiveError) as exc:
        archive.verify(bad)
    assert "differ from the manifest" in exc.value.problems[0]
    # a member added that the manifest does not list
    extra = tmp_path / "extra.tar"
    with tarfile.open(path) as src, tarfile.open(extra, "w") as dst:
        for m in src.getmembers():
            if m.name == archive.MANIFEST:
                info = tarfile.TarInfo("data/evil")
                info.size = 4
                dst.addfile(info, io.BytesIO(b"evil"))
            dst.addfile(m, src.extractfile(m) if m.isreg() else None)
    with pytest.raises(archive.ArchiveError):
        archive.verify(extra)


def test_archive_refuses_links_and_escaping_names(tmp_path, state_dir):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("./evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    buf.seek(0)
    w = archive.Writer(tmp_path / "b.tar")
    with pytest.raises(archive.ArchiveError):
        w.add_data_tar(buf)
    w.abort()
    assert not list(tmp_path.glob("*b.tar*"))
    with pytest.raises(archive.ArchiveError):
        archive._safe_name("../x")


def test_archive_encrypted_holds_no_key_in_clear_and_the_age_cli_decrypts_it(tmp_path, state_dir):
    age, keygen = require("age"), require("age-keygen")
    subprocess.run([keygen, "-o", str(tmp_path / "key.txt")], check=True, capture_output=True)
    pub = next(ln.split()[-1] for ln in (tmp_path / "key.txt").read_text().splitlines() if "public key" in ln)
    path = tmp_path / "b.age"
    make_archive(path, state_dir, archive.recipients([pub]))
    raw = path.read_bytes()
    assert raw.startswith(archive.AGE_MAGIC) and b"PRIVATE KEY" not in raw and b"lenain" not in raw
    plain = subprocess.run([age, "-d", "-i", str(tmp_path / "key.txt"), str(path)], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(plain.stdout)) as tar:
        assert tar.extractfile("state/ca.key").read() == (state_dir / "ca.key").read_bytes()
    manifest, state = archive.verify(path, archive.identities(str(tmp_path / "key.txt")))
    assert manifest.data_files == 2 and state["htpasswd"] == (state_dir / "htpasswd").read_bytes()


def test_archive_encrypted_for_an_ssh_key_wrong_key_and_truncation_are_refused(tmp_path, state_dir):
    keygen = require("ssh-keygen")
    for name in ("id", "other"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    path = tmp_path / "b.age"
    make_archive(path, state_dir, archive.recipients([str(tmp_path / "id.pub")]))
    assert archive.verify(path, archive.identities(str(tmp_path / "id")))[0].data_files == 2
    with pytest.raises(archive.ArchiveError) as exc:
        archive.verify(path, archive.identities(str(tmp_path / "other")))
    assert "cannot decrypt" in exc.value.problems[0]
    with pytest.raises(archive.ArchiveError) as exc:
        archive.verify(path)
    assert "--identity" in exc.value.problems[0]
    cut = tmp_path / "cut.age"
    cut.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(archive.ArchiveError):
        archive.verify(cut, archive.identities(str(tmp_path / "id")))


def test_archive_encrypted_tampered_is_refused_and_an_aborted_one_leaves_nothing(tmp_path, state_dir):
    """age runs in its own process (pyrage holds the GIL): its MAC refusal reaches verify as ArchiveError,
    and an aborted writer stops that process and removes its temp file."""
    keygen = require("ssh-keygen")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    keys = archive.identities(str(tmp_path / "id"))
    path = tmp_path / "b.age"
    make_archive(path, state_dir, archive.recipients([str(tmp_path / "id.pub")]))
    assert archive.verify(path, keys)[0].data_files == 2  # positive control
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    bad = tmp_path / "bad.age"
    bad.write_bytes(bytes(raw))
    with pytest.raises(archive.ArchiveError) as exc:
        archive.verify(bad, keys)
    assert "cannot decrypt" in exc.value.problems[0] and "nothing was changed" in exc.value.problems[0]
    w = archive.Writer(tmp_path / "c.age", archive.recipients([str(tmp_path / "id.pub")]))
    w.add_state(state_dir)
    child = w._sink.proc
    assert child.poll() is None
    w.abort()
    assert child.poll() is not None and not list(tmp_path.glob("*c.age*"))
    # the age process is given the identity file's path, never the key (argv is visible to every user)
    reader = archive.open_plain(path, keys)
    secret = (tmp_path / "id").read_text().splitlines()[1]
    assert str(tmp_path / "id") in reader.proc.args and not any(secret in a for a in reader.proc.args)
    reader.close()


@pytest.mark.parametrize("value", ["age1notakey", "ssh-dss AAAA", "/nonexistent/file.pub", "hello"])
def test_bad_recipients_are_bad_input(value):
    with pytest.raises(SettingsError) as exc:
        archive.recipients([value])
    assert exc.value.exit_code == 2 and "--recipient" in exc.value.problems[0]


def test_bad_identities_are_bad_input(tmp_path):
    (tmp_path / "empty").write_text("nothing here\n")
    for path in (str(tmp_path / "missing"), str(tmp_path / "empty")):
        with pytest.raises(SettingsError):
            archive.identities(path)


# --- restore-data.sh with the local sh ----------------------------------------------------------------


def restore_box(tmp_path):
    box = sandbox(tmp_path / "box")
    for tool in ("tar", "find", "awk", "install", "date", "rmdir", "printf"):
        (box.bin / tool).symlink_to(shutil.which(tool))
    return box


def restore_case(tmp_path, base_settings):
    """The sandbox, a data_dir under it, settings naming it, and a data tar of FILES."""
    data = tmp_path / "srv" / "registry"
    base_settings["registry"] = {"data_dir": str(data)}
    return restore_box(tmp_path), data, S.from_mapping(base_settings), data_tar(FILES).getvalue()


def test_restore_script_stages_checks_and_renames(tmp_path, base_settings):
    box, data, s, stream = restore_case(tmp_path, base_settings)
    size = sum(len(v) for v in FILES.values())
    cmd = backup_step.restore_command(s, len(FILES), size, force=False)
    out = box.run(dataclasses.replace(cmd, stdin=stream))
    assert out.rc == 0 and out.values() == {"files": "2", "bytes": str(size)}, out
    assert {str(p.relative_to(data)) for p in data.rglob("*") if p.is_file()} == set(FILES)
    # now non-empty: refused without force; with force the old data is kept aside
    again = box.run(dataclasses.replace(cmd, stdin=stream))
    assert again.rc == 11 and "not empty" in again.stderr
    forced = box.run(dataclasses.replace(backup_step.restore_command(s, len(FILES), size, force=True), stdin=stream))
    assert forced.rc == 0 and Path(forced.values()["kept"]).is_dir()
    assert not list(data.parent.glob("registry.restore-*"))


def test_restore_script_refuses_a_short_or_cut_stream_and_leaves_nothing(tmp_path, base_settings):
    box, data, s, stream = restore_case(tmp_path, base_settings)
    short = box.run(dataclasses.replace(backup_step.restore_command(s, 3, 1, force=False), stdin=stream))
    assert short.rc == 13 and "the archive holds 3" in short.stderr
    cut = box.run(dataclasses.replace(backup_step.restore_command(s, 2, 1, force=False), stdin=stream[:150_000]))
    assert cut.rc == 12
    assert not data.exists() and not list(data.parent.glob("registry.restore-*"))


def test_restore_problems_a_service_or_data_present(w):
    f = converged_facts(w)[MGR]
    got = backup_step.restore_problems(w.settings, MGR, f, REG, Facts(data_files=True, data_bytes=10), force=False)
    assert any("inv teardown first" in p for _, p in got) and any("--force" in p for _, p in got)
    assert backup_step.restore_problems(w.settings, MGR, dataclasses.replace(f, service=None), REG,
                                        Facts(data_files=False), force=False) == []


# --- rotate-ca: trust of two CAs, the state in state_dir ------------------------------------------------


def test_trust_plan_during_a_rotation_installs_the_previous_ca_first_and_removes_it_after():
    from swarm_registry.steps import trust

    ep, new, old = "registry.onsen.lan:5000", b"NEW CA", b"OLD CA"
    fresh = trust.plan(ep, new, "node2", Facts(trust="::"), previous=old, step="trust-both")
    shown = [a.command.display() for a in fresh.actions if a.command is not None]
    assert fresh.step == "trust-both" and "install -d -m 755" in shown[0] and "ca-previous.crt" in shown[1]
    assert "trust-cert" in shown[2]  # ca.crt (the new CA) only once the old one is trusted beside it
    tls = fresh.actions[3].tls  # then TLS from the node, trusting both CAs, as docker there does now
    assert fresh.actions[3].command is None and tls.cas == new + old and (tls.host, tls.port) == ("registry.onsen.lan", 5000)
    both = Facts(trust=f"{commands.sha256(new)}:644:755", trust_previous=f"{commands.sha256(old)}:644")
    assert trust.plan(ep, new, "node2", both, previous=old).status == OK
    done = trust.plan(ep, new, "node2", both)  # rotation over: ca-previous.crt goes, ca.crt stays
    assert done.status == CHANGED and len(done.actions) == 1 and done.actions[0].command.argv[:2] == ("rm", "-rf")
    # a node that was down through a rotation: the old CA in ca.crt, maybe ca-previous.crt: both fixed
    stale = Facts(trust=f"{commands.sha256(old)}:644:755", trust_previous=f"{commands.sha256(b'OLDER')}:644")
    fixed = trust.plan(ep, new, "node3", stale)
    assert [a.command.argv[0] if a.command else "tls" for a in fixed.actions] == ["sh", "tls", "rm"]
    assert not trust.plan(ep, new, "n", Facts(trust="::", trust_strays="client.key")).actions


def test_fact_trust_reads_the_previous_ca_apart_from_strays(tmp_path, base_settings):
    box = sandbox(tmp_path / "box")
    s = S.from_mapping(base_settings)
    certs_d = tmp_path / "certs"
    cmd = facts_mod.command(s, ["trust"])
    cmd = dataclasses.replace(cmd, argv=tuple(a.replace(commands.CERTS_D, str(certs_d)) for a in cmd.argv))
    d = certs_d / s.registry.endpoint
    d.mkdir(parents=True)
    (d / "ca.crt").write_bytes(b"NEW")
    (d / "ca-previous.crt").write_bytes(b"OLD")
    os.chmod(d, 0o755)
    os.chmod(d / "ca.crt", 0o644)
    os.chmod(d / "ca-previous.crt", 0o644)
    f = facts_mod.parse(box.run(cmd).stdout)
    assert f.trust == f"{commands.sha256(b'NEW')}:644:755" and f.trust_previous == f"{commands.sha256(b'OLD')}:644"
    assert f.trust_strays == ""
    (d / "client.key").write_bytes(b"x")
    assert facts_mod.parse(box.run(cmd).stdout).trust_strays == "client.key"
    # hidden files and dangling links are strays too (docker reads the directory as it is)
    (d / ".old.crt").write_bytes(b"x")
    (d / "gone.cert").symlink_to(d / "nowhere")
    assert sorted(facts_mod.parse(box.run(cmd).stdout).trust_strays.split()) == [".old.crt", "client.key", "gone.cert"]
    # one stat reads both modes, the directory's first: drift in either is seen where it is
    os.chmod(d, 0o700)
    os.chmod(d / "ca.crt", 0o600)
    assert facts_mod.parse(box.run(cmd).stdout).trust == f"{commands.sha256(b'NEW')}:600:700"
    # the directory without ca.crt: its mode, no file mode, no sum
    (d / "ca.crt").unlink()
    assert facts_mod.parse(box.run(cmd).stdout).trust == "::700"
    # ca.crt a directory: no hash, its mode as found, nothing on stderr
    (d / "ca.crt").mkdir()
    os.chmod(d / "ca.crt", 0o755)
    out = box.run(cmd)
    assert (facts_mod.parse(out.stdout).trust, out.stderr) == (":755:700", "")
    (d / "ca.crt").rmdir()
    # the directory missing: no stray, no error
    shutil.rmtree(d)
    f = facts_mod.parse(box.run(cmd).stdout)
    assert f.trust_strays == "" and f.trust == "::"


def test_rotation_state_start_resume_finish(w):
    from swarm_registry import pki, rotation
    from swarm_registry.state import StateDir

    s = w.settings
    state = StateDir(s.state_dir)
    old = state.read("ca.crt")
    assert rotation.previous_anchor(s) is None and not rotation.in_progress(s)
    prev, new, made = rotation.start(s)
    assert made and prev == old and new == state.read("ca.crt") != old
    assert state.read("ca.previous.crt") == old and state.read("ca.previous.key") is not None
    assert rotation.previous_anchor(s) == old and rotation.in_progress(s)
    server = state.read(f"{s.registry.host}.crt")
    assert pki.signed_by(server, new) and not pki.signed_by(server, old)
    assert rotation.start(s) == (old, new, False)  # resumed, not a third CA
    from swarm_registry.wanted import wanted as wanted_
    assert wanted_(s, write_certs=False, password=None).previous_anchor == old
    assert rotation.finish(s) and rotation.previous_anchor(s) is None and state.read("ca.previous.crt") == old
    assert oct(state.file("ca.previous.key").stat().st_mode & 0o777) == "0o600"


def test_rotation_needs_a_ca(base_settings):
    from swarm_registry import rotation

    base_settings["cert"] = {"mode": "self-signed", "key_type": "ecdsa-p256"}
    with pytest.raises(SettingsError) as exc:
        rotation.start(S.from_mapping(base_settings))
    assert "self-signed" in exc.value.problems[0]
    base_settings["cert"] = {"key_type": "ecdsa-p256"}
    with pytest.raises(SettingsError) as exc:
        rotation.start(S.from_mapping(base_settings))
    assert "no CA" in exc.value.problems[0]


# --- status: the running registry's version ---------------------------------------------------------------


def test_fact_registry_version_asks_the_binary_in_the_running_task(tmp_path, base_settings):
    box = sandbox(tmp_path / "box")
    box.fake("docker", """case "$1 $2 $3" in
  "ps -q --filter") echo cid1 ;;
  "inspect --format {{.Config.Image}}") echo registry:2@sha256:abc ;;
  "exec cid1 registry") echo 'OCI runtime exec failed: exec: "registry": executable file not found: unknown'; exit 126 ;;
  "exec cid1 docker-registry") echo '/usr/bin/docker-registry github.com/docker/distribution 2.8.2+ds1' ;;
esac""")
    out = box.run(facts_mod.command(S.from_mapping(base_settings), ["registry_version"]))
    f = facts_mod.parse(out.stdout)
    assert (f.registry_image, f.registry_version) == ("registry:2@sha256:abc", "2.8.2+ds1"), out
