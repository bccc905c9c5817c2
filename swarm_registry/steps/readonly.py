"""read-only / read-write: the registry in maintenance mode around gc and backup, and back.

Read-only is the same stack rendered with `readonly=True` (env REGISTRY_STORAGE_MAINTENANCE_READONLY,
see render): a different spec, deployed and waited for like setup's (a task of that spec running,
/v2/ over verified TLS). Pushes get 405, pulls are served. Going back is a deploy of the spec setup
wants. Because "read-only" is only a spec, a run interrupted while the registry is read-only leaves
a service that differs from what setup wants: the next `setup` (deploy step), `gc` or `backup`
deploys the read-write spec again.
"""
from __future__ import annotations

import dataclasses

from .. import commands, render
from ..facts import Facts
from . import Action, StepPlan, change, converge, deploy, expect_ok

ON = "read-only"
OFF = "read-write"


def readonly_wanted(w):
    """`w` (what setup wants) with the read-only spec instead."""
    doc = render.stack(w.settings, w.names, commands.sha256(w.htpasswd), readonly=True)
    return dataclasses.replace(w, stack_doc=doc, stack=render.dump(doc))


def is_readonly(f: Facts) -> bool:
    env = ((((f.service or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env")) or []
    return any(e.startswith(render.READONLY_ENV + "=") for e in env)


def problems(w, w_ro, manager: str, m: Facts) -> list[tuple[str, str]]:
    """Why the registry cannot be put read-only (and back) safely: it must run the spec setup deployed,
    read-write or read-only; anything else is setup's job first."""
    r = w.settings.registry
    if m.service is None:
        return [(manager, f"no service {r.service}: run inv setup first")]
    rw, ro = deploy.differences(w, m), deploy.differences(w_ro, m)
    if rw and ro:
        return [(manager, f"service {r.service} differs from the settings in {', '.join(rw)}: run inv setup "
                          "first (only the spec setup deploys is put read-only and back)")]
    return []


def _deploy(w, what: str) -> Action:
    r = w.settings.registry
    return Action(commands.stack_deploy(r.stack, r.service, w.stack, r.resolve_image), expect_ok(what))


def plan_on(w_ro, host: str, m: Facts) -> StepPlan:
    """Deploy the read-only spec (unless it runs already) and wait for a task of it and /v2/."""
    if deploy.differences(w_ro, m) == []:
        wait = converge.plan(w_ro, host, m, deploying=False)
        return StepPlan(ON, host, wait.status, f"already read-only (spec {w_ro.spec_hash[:12]}); {wait.message}",
                        wait.actions)
    wait = converge.plan(w_ro, host, m, deploying=True)
    return change(ON, host, f"deploy the registry read-only (spec {w_ro.spec_hash[:12]}: pushes refused, pulls "
                            f"served) and {wait.message}", _deploy(w_ro, "deployed read-only"), *wait.actions)


def plan_off(w, host: str, m: Facts, *, going_readonly: bool) -> StepPlan:
    """Back to the spec setup wants. `going_readonly`: this run makes it read-only first, so the deploy
    always happens (and runs even after a failed step: `always`); else only when it is read-only now."""
    if not going_readonly and not is_readonly(m):
        return dataclasses.replace(deploy.plan(w, host, m), step=OFF)
    wait = converge.plan(w, host, m, deploying=True)
    what = "deploy the registry read-write again" if going_readonly else \
        "deploy the registry read-write (left read-only by an interrupted run)"
    return dataclasses.replace(change(OFF, host, f"{what} (spec {w.spec_hash[:12]}) and {wait.message}",
                                      _deploy(w, "deployed read-write"), *wait.actions), always=True)
