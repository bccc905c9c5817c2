"""backup data / restore data: the registry's data_dir streamed from / to the registry node (pure).

backup: read-only -> `tar -C data_dir -c .` on the registry node, its stdout read here as a stream
into the archive (swarm_registry/backup.py) -> read-write (always). Without a service, nothing can
write to data_dir, so no read-only mode is needed.
restore: files/scripts/restore-data.sh unpacks the archive's data into a staging directory, checks
the file count and bytes against the manifest and renames it into place. It runs only when no
registry service exists (a running registry would keep serving the old directory) and data_dir is
empty, unless --force (then the old data is kept aside, never deleted).
"""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts
from ..progress import human
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, readonly

BACKUP = "backup-data"
RESTORE = "restore-data"
TIMEOUT = 3600  # seconds without a byte before a stream is given up


def tar_command(settings) -> commands.Command:
    return commands.Command(("tar", "-C", settings.registry.data_dir, "-cf", "-", "."), timeout=TIMEOUT)


def restore_command(settings, files: int, size: int, force: bool) -> commands.Command:
    return commands.script("restore-data", {"data_dir": settings.registry.data_dir, "want_files": str(files),
                                            "want_bytes": str(size), "force": "1" if force else "0"},
                           timeout=TIMEOUT)


def _tar_verdict(out: Output) -> tuple[str, str]:
    if out.rc != 0:
        return FAILED, f"tar of the data on the node failed: {out.error()}"
    return CHANGED, "copied"


def backup_plan(w, manager: str, m: Facts, reg: str, r: Facts, sink, label: str) -> list[StepPlan]:
    s = w.settings
    size = f" ({human(r.data_bytes)})" if r.data_bytes is not None else ""
    copy = change(BACKUP, reg, f"stream {s.registry.data_dir}{size} from {reg} into {label}",
                  Action(tar_command(s), _tar_verdict, sink=sink, label=f"data from {reg} into {label}"))
    if m.service is None:
        return [StepPlan(copy.step, reg, copy.status, copy.message + " (no registry service: nothing writes to it)",
                         copy.actions)]
    return [readonly.plan_on(readonly.readonly_wanted(w), manager, m), copy,
            readonly.plan_off(w, manager, m, going_readonly=True)]


def restore_problems(settings, manager: str, m: Facts, reg: str, r: Facts, force: bool) -> list[tuple[str, str]]:
    s = settings.registry
    problems = []
    if m.service is not None:
        problems.append((manager, f"service {s.service} exists: restore replaces the data under it; run inv teardown "
                                  "first (data kept), then restore, then inv setup"))
    if r.data_files and not force:
        problems.append((reg, f"{s.data_dir} on {reg} holds data ({human(r.data_bytes or 0)}): restore does not mix "
                              "registries; --force keeps it aside as DATA_DIR.before-restore-TIME"))
    return problems


def restore_plan(s, reg: str, r: Facts, files: int, size: int, force: bool, source, verdict, label: str) -> StepPlan:
    aside = " (the data there kept aside)" if r.data_files else ""
    return change(RESTORE, reg, f"stream {files} files ({human(size)}) from {label} into {s.registry.data_dir} on "
                                f"{reg}{aside}", Action(restore_command(s, files, size, force), verdict, source=source,
                                                        label=f"data from {label} to {reg}"))
