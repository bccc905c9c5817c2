"""preflight: is each host usable (docker answering, in a swarm, managers managing), and can the
cluster be set up at all (a manager, the registry node in the swarm, the image somewhere)?"""
from __future__ import annotations

from ..facts import Facts
from ..results import FAILED, OK

STEP = "preflight"


def host_verdict(f: Facts, listed_manager: bool) -> tuple[str, str]:
    if not f.docker_up:
        return FAILED, "docker does not answer on this host"
    if f.swarm_state != "active":
        return FAILED, f"not part of a swarm (state {f.swarm_state or 'inactive'}); join it first"
    if listed_manager and not f.control:
        return FAILED, "listed as manager but is not a swarm manager (docker node promote it)"
    return OK, "docker answers; swarm " + ("manager" if f.control else "worker")


def cluster_problems(w, facts: dict[str, Facts], manager: str | None, usable: list[str]) -> list[tuple[str, str]]:
    """(host, problem) pairs that stop setup before any change."""
    s = w.settings
    reg = s.registry.node
    if manager is None:
        managers = [h for h, host in s.hosts.items() if host.is_manager]
        return [(managers[0], f"no manager usable (tried {', '.join(managers)}): swarm-wide work needs one")]
    problems = []
    down = [n for n in s.registry.nodes if n not in usable]
    if down:
        return [(n, f"the registry node {n} is not usable (see above)") for n in down]
    m, r = facts[manager], facts[reg]
    for n in s.registry.nodes:
        node = s.hosts[n].node_name
        if not m.node_id(node):
            problems.append((n, f"registry node {n} (swarm node name {node!r}) is not a node of the swarm managed "
                                f"by {manager} (nodes: {', '.join(sorted(x.hostname for x in m.nodes)) or 'none'})"))
    from . import move_data

    problems += move_data.problems(s, facts, m, w.move)
    if not r.image_id and not w.local_image_id and s.registry.resolve_image == "never":
        problems.append((reg, f"image {s.registry.image} is neither on {reg} nor on this machine, and "
                              "registry.resolve_image is never: load it on the node, or set resolve_image: always"))
    return problems
