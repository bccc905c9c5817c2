"""deploy: `docker stack deploy` when the service the swarm runs is not the wanted one.

"Deployed" is read back from the swarm (`docker service inspect`): the spec label that render
puts on the service, and every field render controls (image, env, labels, secrets, mounts,
placement, ports, replicas). A deploy that failed or was interrupted, or a change made by hand
(`docker service update --env-add ...`), shows as a difference and is deployed again.
"""
from __future__ import annotations

from .. import commands, render
from ..facts import Facts, service_view
from . import Action, StepPlan, change, expect_ok, ok

STEP = "deploy"


def differences(w, f: Facts) -> list[str] | None:
    """Fields in which the running service differs from the wanted one; None: no service."""
    have = service_view(f.service)
    if have is None:
        return None
    want = render.wanted_view(w.stack_doc)
    return [k for k in want if have.get(k) != want[k]]


def plan(w, host: str, f: Facts, forced: str = "") -> StepPlan:
    """`forced`: deploy even when the spec matches, and why (e.g. the service was scaled to 0 by this plan)."""
    r = w.settings.registry
    diff = differences(w, f)
    if diff == [] and not forced:
        return ok(STEP, host, f"service {r.service} runs the wanted spec ({w.spec_hash[:12]})")
    why = forced or ("no service yet" if diff is None else "the running service differs in " + ", ".join(diff))
    cmd = commands.stack_deploy(r.stack, r.service, w.stack, r.resolve_image)
    return change(STEP, host, f"deploy stack {r.stack} ({why})", Action(cmd, expect_ok(f"deployed stack {r.stack}")))
