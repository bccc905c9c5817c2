"""inventory: the swarm's nodes against the inventory, reported (never changed): nodes the swarm has
that the inventory lacks get no trust, credential store or login; inventory hosts the swarm lacks
are not part of the registry's swarm yet (join them, then `inv setup --hosts NAME`)."""
from __future__ import annotations

from ..facts import Facts
from . import StepPlan, ok

STEP = "inventory"


def differences(settings, f: Facts) -> tuple[list[str], list[str]]:
    """(swarm nodes not in the inventory, inventory hosts not in the swarm), by swarm node name."""
    swarm = {n.hostname for n in f.nodes}
    names = {h.node_name: h.name for h in settings.hosts.values()}
    return sorted(swarm - set(names)), sorted(names[n] for n in set(names) - swarm)


def plan(settings, host: str, f: Facts) -> StepPlan:
    extra, missing = differences(settings, f)
    if not extra and not missing:
        return ok(STEP, host, f"the swarm's {len(f.nodes)} nodes are the inventory's hosts")
    parts = []
    if extra:
        parts.append(f"swarm nodes not in the inventory (not set up): {', '.join(extra)}")
    if missing:
        parts.append(f"inventory hosts not in this swarm: {', '.join(missing)}")
    return ok(STEP, host, "; ".join(parts))
