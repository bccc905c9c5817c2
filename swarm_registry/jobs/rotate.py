"""`inv rotate-ca`: a new CA, rolled out without a moment where a node distrusts the registry.

1. state_dir (rotation.start): the current CA kept as ca.previous.*, a new CA, a server certificate
   from it, the marker ca.rotating. 2. trust-both (every node): ca-previous.crt (the old CA) beside
   ca.crt (the new one): docker trusts every *.crt there, so the running (old) certificate still
   verifies. 3. secrets, deploy, converge: the new certificate rolled out as setup does it. 4.
   trust-new (every node): ca-previous.crt removed. 5. the marker removed; ca.previous.* stay in
   state_dir. A node unreachable meanwhile is brought up to date by the next `inv setup`. Interrupted,
   `inv rotate-ca` again resumes with the same new CA (setup and trust-cert keep both trusted until then).
"""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .. import commands, facts as facts_mod, pki, rotation
from ..results import CHANGED, OK
from ..settings import Settings
from ..steps import Action, change, compose_file, converge, deploy, expect_ok, old_secrets, preflight, secrets, trust
from ..wanted import wanted
from .runner import RUN, Job, run_plan
from .setup import first_manager

Out = Callable[[str], None]
BOTH, NEW = "trust-both", "trust-new"


def rotate_ca(settings: Settings, out: Out, *, mode: str = RUN, password: str | None = None,
              sudo_password: str | None = None) -> int:
    scratch = None
    try:
        if mode == RUN:
            cfg = settings
        else:  # what a run would do, on a copy of state_dir (the new CA there is thrown away)
            scratch = Path(tempfile.mkdtemp(prefix="rotate-ca-"))
            shutil.copytree(settings.state_dir, scratch / "state")
            cfg = dataclasses.replace(settings, state_dir=scratch / "state")
        old, new, made = rotation.start(cfg)
        verb = ("made" if mode == RUN else "would make") if made else ("resumes" if mode == RUN else "would resume")
        out(f"certs: {verb} the rotation to CA {pki.inspect(new).subject} (sha256 {commands.sha256(new)[:16]}...); "
            f"previous CA {pki.inspect(old).subject} kept as {rotation.PREVIOUS_CRT}/.key"
            + ("" if mode == RUN or not made else "; the new CA shown is a stand-in: the run makes its own key"))
        w = wanted(cfg, write_certs=False, password=password)
        job = rotate_job(settings, w, old, new)
        outcome: dict = {}

        def after(ex) -> None:
            outcome["converged"] = any(r.step == converge.STEP and r.status in (OK, CHANGED) for r in ex.run.results)

        code = run_plan(settings, list(settings.hosts), job, out, mode=mode, sudo_password=sudo_password, after=after)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if mode != RUN:
        return code
    if outcome.get("converged"):
        rotation.finish(settings)
        out(f"certs: rotation done: the registry serves a certificate from the new CA, reached nodes trust it only; "
            f"the previous CA stays in {settings.state_dir} ({rotation.PREVIOUS_CRT}/.key); a node not reached "
            "gets the new CA from the next inv setup")
    else:
        out("certs: rotation NOT finished: nodes keep trusting both CAs; run inv rotate-ca again")
    return code


def rotate_job(settings: Settings, w, old: bytes, new: bytes) -> Job:
    managers = settings.managers
    endpoint = settings.registry.endpoint

    def fact_names(host: str) -> tuple[str, ...]:
        return facts_mod.names_for(host, manager=host if host in managers else None,
                                   registry=settings.registry.nodes, base=("docker", "trust"))

    def judge(host: str, f) -> tuple[str, str]:
        return preflight.host_verdict(f, settings.hosts[host].is_manager)

    def plan(found: dict, usable: list[str]):
        manager = first_manager(settings, found, usable)
        problems = preflight.cluster_problems(w, found, manager, usable)
        if problems:
            return problems
        m = found[manager]
        if m.service is None:
            return [(manager, f"no service {settings.registry.service}: run inv setup first")]
        nodes = [h for h in settings.hosts if h in usable]
        deploying = deploy.plan(w, manager, m)
        prev = trust.previous_path(endpoint)
        return ([trust.plan(endpoint, new, h, found[h], previous=old, step=BOTH) for h in nodes]
                + [secrets.plan(w, manager, m), deploying,
                   compose_file.plan(w, settings.registry.node, found[settings.registry.node]),
                   converge.plan(w, manager, m, deploying=bool(deploying.actions)), old_secrets.plan(w, manager, m)]
                + [change(NEW, h, f"remove {prev} (the previous CA): trust the new CA only",
                          Action(commands.remove_paths([prev]), expect_ok(f"removed {trust.PREVIOUS}; the new CA only")))
                   for h in nodes])

    return Job("preflight", fact_names, judge, plan, (secrets.STEP, deploy.STEP, converge.STEP))
