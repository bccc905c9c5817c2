"""`inv setup`: every recipe step as one plan (see plan.py), read from the facts, then run.

A cluster-wide problem found by preflight (no usable manager, registry node unusable or not in
the swarm, image nowhere to be had) stops the run before any change; a node that fails only
fails itself while the others converge.
"""
from __future__ import annotations

from typing import Callable

from .. import facts as facts_mod
from ..plan import CLUSTER_STEPS, node_plan, setup_plan
from ..settings import Settings
from ..steps import bucket, preflight
from ..wanted import wanted
from .runner import RUN, Job, run_plan

Out = Callable[[str], None]


def first_manager(settings: Settings, facts: dict, usable: list[str]) -> str | None:
    """Manager work goes to the first manager, in inventory order, that passed preflight."""
    return next((h for h, host in settings.hosts.items() if host.is_manager and h in usable and facts[h].control),
                None)


def judge_for(settings: Settings):
    """Preflight's verdict on one host for setup (and setup --hosts): usable, and able to name our images."""
    def judge(host: str, f) -> tuple[str, str]:
        return preflight.host_verdict(f, settings.hosts[host].is_manager, settings.registry.host)
    return judge


def node_job(settings: Settings, *, password: str | None, mode: str) -> Job:
    """setup --hosts: bring nodes that joined later in (trust, credential store, login), on them only."""
    w = wanted(settings, write_certs=mode == RUN, password=password)
    return Job("preflight", lambda host: facts_mod.HOST_FACTS, judge_for(settings),
               lambda found, usable: node_plan(w, found, usable))


def setup_job(settings: Settings, *, password: str | None, mode: str, move: str = "") -> Job:
    w = wanted(settings, write_certs=mode == RUN, password=password, move=move)
    managers = settings.managers

    def fact_names(host: str) -> tuple[str, ...]:
        return facts_mod.names_for(host, manager=host if host in managers else None,
                                   registry=settings.registry.nodes) + bucket.fact_names(settings, host)

    def plan(found: dict, usable: list[str]):
        manager = first_manager(settings, found, usable)
        problems = preflight.cluster_problems(w, found, manager, usable)
        return problems or setup_plan(w, found, manager, usable)

    return Job("preflight", fact_names, judge_for(settings), plan, CLUSTER_STEPS, fact_stdin=bucket.fact_stdin(w))


def setup(settings: Settings, out: Out, *, mode: str = RUN, password: str | None = None,
          sudo_password: str | None = None, hosts: list[str] | None = None, move: str = "") -> int:
    """The whole recipe on every host; with `hosts`, only the node steps on those hosts. `move`: what to do
    with the data of a registry whose registry.node changed ("move", "abandon"; "" refuses)."""
    if hosts:
        job = node_job(settings, password=password, mode=mode)
        return run_plan(settings, hosts, job, out, mode=mode, sudo_password=sudo_password)
    job = setup_job(settings, password=password, mode=mode, move=move)
    return run_plan(settings, list(settings.hosts), job, out, mode=mode, sudo_password=sudo_password)
