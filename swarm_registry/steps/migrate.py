"""storage.migrate's steps (pure): a single-node filesystem registry's data copied into the S3 bucket,
then setup switches the registry to s3.

read-only (the running filesystem registry: `docker service update --env-add` of the maintenance switch,
so nothing is written while it is copied) -> copy (files/scripts/s3-upload.sh on the registry node:
streamed per file by curl, resumable, every object's sha256 checked by S3 and every blob's against its
digest) -> then jobs/storage.py runs setup (the s3 spec replaces the read-only one), or, when the copy
failed, puts the filesystem registry back read-write. The data on the node's disk is kept.
"""
from __future__ import annotations

from .. import commands, facts as facts_mod, render
from ..errors import Output
from ..facts import Facts
from ..progress import human
from ..results import CHANGED, FAILED
from . import Action, StepPlan, bucket, change, expect_ok, ok, readonly

READONLY = "read-only"
COPY = "copy to s3"
BACK = "read-write"


def runs_s3(m: Facts) -> bool:
    """The deployed service already reads its config (storage s3) from our secret."""
    cs = (((m.service or {}).get("TaskTemplate") or {}).get("ContainerSpec")) or {}
    return any((s.get("File") or {}).get("Name") == render.CONFIG_TARGET for s in cs.get("Secrets") or [])


def readonly_plan(w, manager: str, m: Facts) -> StepPlan:
    r = w.settings.registry
    if m.service is None:
        return ok(READONLY, manager, f"no service {r.service} running: nothing writes to the data meanwhile")
    if readonly.is_readonly(m):
        return ok(READONLY, manager, f"{r.service} is read-only already")
    cmd = commands.Command(("docker", "service", "update", "--detach=false", "--quiet", "--env-add",
                            f"{render.READONLY_ENV}={render.READONLY_VALUE}", r.service), timeout=600)
    return change(READONLY, manager, f"put {r.service} read-only while its data is copied (pushes refused, "
                                     "pulls served)", Action(cmd, expect_ok(f"{r.service} read-only")))


def back_plan(w, manager: str) -> StepPlan:
    """After a failed copy: the filesystem registry read-write again (it still serves its own data)."""
    r = w.settings.registry
    cmd = commands.Command(("docker", "service", "update", "--detach=false", "--quiet", "--env-rm",
                            render.READONLY_ENV, r.service), timeout=600)
    return change(BACK, manager, f"put {r.service} read-write again (the copy did not finish; still on filesystem)",
                  Action(cmd, expect_ok(f"{r.service} read-write again")))


def copy_verdict(out: Output) -> tuple[str, str]:
    v = out.values()
    if out.rc != 0 or v.get("ok") != "1":
        return FAILED, f"copy to s3 stopped: {out.error()} (run storage.migrate again: it resumes)"
    n = {k: int(v.get(k, "0") or 0) for k in ("files", "uploaded", "skipped", "bytes")}
    return CHANGED, (f"{n['files']} files in the bucket: {n['uploaded']} uploaded ({human(n['bytes'])}), "
                     f"{n['skipped']} already there; sha256 of each checked by S3")


def copy_plan(w, reg: str, f: Facts) -> StepPlan:
    s = w.settings
    s3 = s.storage.s3
    prefix = "" if s3.root_directory == "/" else s3.root_directory
    cmd = commands.script("s3-upload", {**facts_mod.script_values(s), "s3_prefix": prefix},
                          stdin=bucket.keys_stdin(w), secret=True, timeout=24 * 3600)
    size = human(f.data_bytes or 0)
    return change(COPY, reg, f"copy {s.registry.data_dir} ({size}) into bucket {s3.bucket} at {s3.endpoint} "
                             "(resumable; data on disk kept)", Action(cmd, copy_verdict))
