"""`inv backup --to FILE [--recipient R ...]` and `inv restore --from FILE [--identity KEYFILE] [--force]`.

backup: state_dir's files first, then the registry's data streamed from the node (read-only
meanwhile, see steps/backup.py), then the manifest; the file (0600) appears under its name only
when complete. restore: the archive is read through and checked against its manifest (and age's
MAC) before anything is read from or sent to a host; then the data goes to the node (staging +
rename), and only once that succeeded are state_dir's files written.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .. import backup as archive
from ..progress import human
from ..results import CHANGED, FAILED, OK, StepResult
from ..settings import Settings, SettingsError
from ..state import StateDir
from ..steps import backup as op
from .gc import maintenance_hosts, maintenance_job
from .runner import CHECK, DRY, RUN, run_plan

Out = Callable[[str], None]
CONTROL = "control"
REG_FACTS = ("data",)


def _rate(size: int, seconds: float) -> str:
    return f"{human(size)} in {seconds:.1f}s ({human(size / max(seconds, 1e-6))}/s)"


def backup(settings: Settings, out: Out, *, to: str, recipient: list[str] | None = None, mode: str = RUN,
           password: str | None = None, sudo_password: str | None = None) -> int:
    recips = archive.recipients(recipient or [])
    target = Path(to).expanduser()
    if target.exists():
        raise SettingsError([f"--to {to!r}: exists; backup never overwrites a file (remove it or choose another)"])
    if not target.parent.is_dir():
        raise SettingsError([f"--to {to!r}: directory {str(target.parent)!r} does not exist"])
    state = StateDir(settings.state_dir)
    state.check()
    if not state.path.is_dir():
        raise SettingsError([f"state_dir {str(state.path)!r} does not exist: nothing to back up"])
    reg = settings.registry.node
    kind = f"age-encrypted for {len(recips)} recipient(s)" if recips else "unencrypted"
    writer = archive.Writer(target, recips) if mode == RUN else None
    copied: dict = {}

    def sink(reader) -> str:
        t0 = time.monotonic()
        files, size = writer.add_data_tar(reader)
        copied.update(files=files, bytes=size, seconds=time.monotonic() - t0)
        return f"{files} files, {_rate(size, copied['seconds'])}"

    def make_plan(w, manager, found):
        m, r = found[manager], found[reg]
        if m.service is not None:
            from ..steps import readonly
            problems = readonly.problems(w, readonly.readonly_wanted(w), manager, m)
            if problems:
                return problems
        return op.backup_plan(w, manager, m, reg, r, sink, f"{target} ({kind})")

    try:
        state_names = writer.add_state(state.path) if writer else sorted(
            f.name for f in state.path.iterdir() if f.is_file() and not f.name.startswith("."))
        out(StepResult(CONTROL, "backup-state", CHANGED if writer else OK,
                       f"{'' if writer else 'would add '}state_dir {len(state_names)} files "
                       f"({', '.join(state_names)}) to {target} ({kind})").line())
        job = maintenance_job(settings, "facts", password, mode, make_plan)
        job.fact_names = _with_data(job.fact_names, reg)
        code = run_plan(settings, maintenance_hosts(settings), job, out, mode=mode, sudo_password=sudo_password)
    except BaseException:
        if writer:
            writer.abort()
        raise
    if writer is None:
        return code
    if "files" not in copied:
        writer.abort()
        out(StepResult(CONTROL, "backup", FAILED, f"nothing written to {target}: the data was not copied").line())
        return code or 1
    manifest = writer.commit({"tool": "swarm-registry", "endpoint": settings.registry.endpoint,
                              "data_dir": settings.registry.data_dir, "image": settings.registry.image,
                              "registry_node": reg, "state_files": state_names, "encrypted": bool(recips)})
    out(StepResult(CONTROL, "backup", CHANGED,
                   f"wrote {target} (0600, {kind}): {manifest.data_files} data files ({human(manifest.data_bytes)}), "
                   f"{len(state_names)} state files, {human(target.stat().st_size)} on disk").line())
    return code


def _with_data(fact_names, reg: str):
    return lambda host: fact_names(host) + (REG_FACTS if host == reg else ())


def restore(settings: Settings, out: Out, *, source: str, identity: str | None = None, force: bool = False,
            mode: str = RUN, password: str | None = None, sudo_password: str | None = None) -> int:
    path = Path(source).expanduser()
    idents = archive.identities(identity) if identity else None
    t0 = time.monotonic()
    manifest, files = archive.verify(path, idents)  # ArchiveError (exit 2) before anything remote
    out(StepResult(CONTROL, "verify-archive", OK,
                   f"{path}: {manifest.data_files} data files ({human(manifest.data_bytes)}), state files "
                   f"{', '.join(manifest.state_files)}, made {manifest.meta.get('created', '?')} for "
                   f"{manifest.meta.get('endpoint', '?')}: every member matches its sha256 "
                   f"({time.monotonic() - t0:.1f}s)").line())
    state = StateDir(settings.state_dir)
    state.check()
    differ = sorted(n for n, data in files.items() if state.read(n) not in (None, data))
    if differ and not force:
        raise SettingsError([f"state_dir {str(state.path)!r} holds other {', '.join(differ)} than the archive: "
                             "restore would replace them (--force keeps them as NAME.before-restore)"])
    reg = settings.registry.node
    done: dict = {}
    feeding: list = []

    def open_data():
        feeding[:] = [archive.DataTar(path, idents, manifest)]
        done["t0"] = time.monotonic()
        return feeding[0]

    def verdict(res) -> tuple[str, str]:
        why = feeding[0].error if feeding else None
        if why is not None:
            msg = why.problems[0] if isinstance(why, SettingsError) else f"{type(why).__name__}: {why}"
            return FAILED, f"the archive could not be streamed ({msg}); nothing restored on {reg}: {res.error()}"
        if res.rc != 0:
            return FAILED, f"restore on {reg} failed: {res.error()}"
        v = res.values()
        done.update(ok=True, seconds=time.monotonic() - done["t0"])
        kept = f"; the data found there kept as {v['kept']}" if v.get("kept") else ""
        return CHANGED, f"restored {v.get('files')} files, {_rate(manifest.data_bytes, done['seconds'])}{kept}"

    def make_plan(w, manager, found):
        m, r = found[manager], found[reg]
        problems = op.restore_problems(settings, manager, m, reg, r, force)
        return problems or [op.restore_plan(settings, reg, r, manifest.data_files, manifest.data_bytes, force,
                                            open_data, verdict, str(path))]

    job = maintenance_job(settings, "facts", password, mode, make_plan, needs_wanted=False)
    job.fact_names = _with_data(job.fact_names, reg)
    code = run_plan(settings, maintenance_hosts(settings), job, out, mode=mode, sudo_password=sudo_password)
    if mode in (CHECK, DRY):
        write = [n for n, data in files.items() if state.read(n) != data]
        out(StepResult(CONTROL, "restore-state", CHANGED if write else OK,
                       f"would write {', '.join(write)} to {state.path}" if write else
                       f"{state.path} already holds the archive's state files").line(check=True))
        return code
    if not done.get("ok"):
        out(StepResult(CONTROL, "restore-state", FAILED, f"not written: the data was not restored; {state.path} "
                                                           "unchanged").line())
        return code or 1
    written = []
    for name, data in sorted(files.items()):
        old = state.read(name)
        if old is not None and old != data:
            state.write(f"{name}.before-restore", old)
        if state.write(name, data):
            written.append(name)
    out(StepResult(CONTROL, "restore-state", CHANGED if written else OK,
                   (f"wrote {', '.join(written)} to {state.path} (0600)" if written else
                    f"{state.path} already held the archive's state files") + "; next: inv setup").line())
    return code
