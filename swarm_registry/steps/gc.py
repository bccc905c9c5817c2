"""garbage-collect: `docker-registry garbage-collect` of the registry's storage on the registry node.

gc's plan: read-only (the registry deployed read-only and waited for) -> garbage-collect (a one-off
container of the same image, same data bind mount and config.yml; files/scripts/gc.sh refuses a real
collection unless the node's registry task is read-only) -> read-write (always, also after a failed
collection; a run interrupted before it leaves the registry read-only, which the next gc or setup
undoes). `--dry-run` only reports what would be deleted: no read-only mode, nothing deleted.
Untagged manifests are kept unless `--delete-untagged`.
"""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts
from ..progress import human
from ..results import CHANGED, FAILED, OK
from . import Action, StepPlan, change, readonly

STEP = "garbage-collect"
GC_TIMEOUT = 3600


def container_name(settings) -> str:
    return f"{settings.registry.stack}-gc"


def command(settings, *, dry_run: bool, delete_untagged: bool) -> commands.Command:
    r = settings.registry
    return commands.script("gc", {"image": r.image, "data_dir": r.data_dir, "service": r.service,
                                  "name": container_name(settings), "dry_run": "1" if dry_run else "0",
                                  "delete_untagged": "1" if delete_untagged else "0",
                                  "storage": settings.storage.driver}, timeout=GC_TIMEOUT)


def report(values: dict[str, str], dry_run: bool) -> dict[str, int]:
    """What gc.sh printed, as numbers: before, after, reclaimed (bytes), blobs, manifests, marked."""
    num = {k: int(values[k]) for k in ("before", "after", "marked", "blobs", "manifests", "eligible_bytes")
           if values.get(k, "").isdigit()}
    num["reclaimed"] = num.get("eligible_bytes", 0) if dry_run else max(0, num.get("before", 0) - num.get("after", 0))
    return num


def verdict_for(dry_run: bool):
    def verdict(out: Output) -> tuple[str, str]:
        v = out.values()
        if out.rc != 0:
            return FAILED, f"garbage-collect failed: {out.error()}"
        n = report(v, dry_run)
        if v.get("empty") == "1":
            return OK, "nothing to collect: no image was ever pushed to this registry (no repositories yet)"
        if "blobs" not in n:
            return FAILED, f"garbage-collect printed no summary: {out.error()}"
        if "before" not in n:  # storage s3: no byte counts on a node's disk
            done = "would delete" if dry_run else "deleted"
            return (OK if dry_run or not (n["blobs"] or n["manifests"]) else CHANGED), (
                f"{done} {n['blobs']} blob(s) and {n['manifests']} manifest(s) in the bucket; "
                f"{n['marked']} blob(s) in use kept")
        if dry_run:
            return OK, (f"would delete {n['blobs']} blob(s) ({human(n['reclaimed'])}, {n['reclaimed']} bytes) and "
                        f"{n['manifests']} manifest(s); {n['marked']} blob(s) in use (dry run: nothing deleted)")
        status = CHANGED if n["blobs"] or n["manifests"] else OK
        return status, (f"deleted {n['blobs']} blob(s) and {n['manifests']} manifest(s), reclaimed "
                        f"{human(n['reclaimed'])} ({n['reclaimed']} bytes: {n['before']} -> {n['after']} on disk); "
                        f"{n['marked']} blob(s) in use kept")
    return verdict


def _where(s) -> str:
    return f"bucket {s.storage.s3.bucket}" if s.storage.driver == "s3" else s.registry.data_dir


def plan(w, manager: str, m: Facts, reg: str, *, dry_run: bool, delete_untagged: bool) -> list[StepPlan]:
    """The whole gc job's plan (see the module doc)."""
    s = w.settings
    what = "untagged manifests deleted too" if delete_untagged else "untagged manifests kept"
    gc = change(STEP, reg, f"{'report what ' if dry_run else ''}garbage-collect{' would delete' if dry_run else ''} "
                           f"in {_where(s)} with {s.registry.image} ({what})",
                Action(command(s, dry_run=dry_run, delete_untagged=delete_untagged), verdict_for(dry_run)))
    if dry_run:
        off = readonly.plan_off(w, manager, m, going_readonly=False)
        return [gc] + ([off] if off.actions else [])
    w_ro = readonly.readonly_wanted(w)
    return [readonly.plan_on(w_ro, manager, m), gc, readonly.plan_off(w, manager, m, going_readonly=True)]
