"""preflight: is each host usable (docker answering, in a swarm, managers managing), and can the
cluster be set up at all (a manager, the registry node in the swarm, the image somewhere)?"""
from __future__ import annotations

import ipaddress

from ..facts import Facts
from ..results import FAILED, OK

STEP = "preflight"
# docker parses an image name whose registry is an IPv6 address ([fd00::12]:5000/app) from 25.0 on
# (github.com/distribution/reference); before, push and pull say "invalid reference format"
IPV6_NAMES_SINCE = 25


def ipv6_name_problem(docker_version: str, registry_host: str) -> str:
    """A node whose docker cannot name images after registry.host (an IPv6 address): why, and the fix."""
    try:
        v6 = ipaddress.ip_address(registry_host).version == 6
    except ValueError:
        return ""
    major = docker_version.split(".", 1)[0]
    if not v6 or not major.isdigit() or int(major) >= IPV6_NAMES_SINCE:
        return ""
    return (f"registry.host is the IPv6 address {registry_host}, and docker {docker_version} here cannot name "
            f"images after it ([{registry_host}]:PORT/... is 'invalid reference format' before docker "
            f"{IPV6_NAMES_SINCE}): give the registry a DNS name with an AAAA record and set registry.host to it")


def host_verdict(f: Facts, listed_manager: bool, registry_host: str = "") -> tuple[str, str]:
    if not f.docker_up:
        return FAILED, "docker does not answer on this host"
    if f.swarm_state != "active":
        return FAILED, f"not part of a swarm (state {f.swarm_state or 'inactive'}); join it first"
    if listed_manager and not f.control:
        return FAILED, "listed as manager but is not a swarm manager (docker node promote it)"
    problem = ipv6_name_problem(f.docker_version, registry_host)
    if problem:
        return FAILED, problem
    return OK, "docker answers; swarm " + ("manager" if f.control else "worker")


def cluster_problems(w, facts: dict[str, Facts], manager: str | None, usable: list[str]) -> list[tuple[str, str]]:
    """(host, problem) pairs that stop setup before any change."""
    s = w.settings
    reg = s.registry.node
    if manager is None:
        managers = s.managers
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
