"""`inv gc [--dry-run] [--delete-untagged]`: garbage-collect the registry's storage, read-only meanwhile.

Facts from the manager (the service, its tasks) and the registry node (the image); the plan is
steps/gc.py's: read-only -> garbage-collect -> read-write (always). See steps/readonly.py for
what happens when a run is interrupted while the registry is read-only.
"""
from __future__ import annotations

from typing import Callable

from .. import facts as facts_mod
from ..settings import Settings
from ..steps import gc as gc_step, preflight, readonly
from ..wanted import wanted
from .runner import RUN, Job, run_plan
from .setup import first_manager

Out = Callable[[str], None]
BASE_FACTS = ("docker",)


def maintenance_hosts(settings: Settings) -> list[str]:
    """The managers (the first usable one deploys) and the registry node."""
    managers = settings.managers
    return list(dict.fromkeys([*managers, settings.registry.node]))


def maintenance_job(settings: Settings, name: str, password: str | None, mode: str, make_plan, *,
                    needs_wanted: bool = True, w=None, base: tuple[str, ...] = BASE_FACTS,
                    extra_facts: Callable[[str], tuple[str, ...]] = lambda host: (),
                    fact_stdin: Callable[[str], "bytes | None"] | None = None) -> Job:
    """A job on the managers and the registry node: `make_plan(w, manager, facts)` -> plan or problems
    (w: what setup wants, from state_dir, unless given; None without `needs_wanted`, e.g. restore into an
    empty one). `base`, `extra_facts`, `fact_stdin`: more facts to read, and their secret stdin."""
    if w is None and needs_wanted:
        w = wanted(settings, write_certs=False, password=password)
    reg = settings.registry.node
    managers = settings.managers

    def fact_names(host: str) -> tuple[str, ...]:
        return (facts_mod.names_for(host, manager=host if host in managers else None, registry=reg, base=base)
                + extra_facts(host))

    def judge(host: str, f) -> tuple[str, str]:
        return preflight.host_verdict(f, settings.hosts[host].is_manager)

    def plan(found: dict, usable: list[str]):
        manager = first_manager(settings, found, usable)
        if manager is None:
            return [(managers[0], "no manager usable: the registry's service is deployed from one")]
        if reg not in usable:
            return [(reg, f"the registry node {reg} is not usable (see above)")]
        return make_plan(w, manager, found)

    return Job(name, fact_names, judge, plan, fact_stdin=fact_stdin)


def gc(settings: Settings, out: Out, *, dry_run: bool = False, delete_untagged: bool = False, mode: str = RUN,
       password: str | None = None, sudo_password: str | None = None) -> int:
    reg = settings.registry.node

    def make_plan(w, manager, found):
        m, r = found[manager], found[reg]
        problems = readonly.problems(w, readonly.readonly_wanted(w), manager, m)
        if not r.image_id:
            problems.append((reg, f"image {settings.registry.image} is not on {reg}: run inv setup first"))
        return problems or gc_step.plan(w, manager, m, reg, dry_run=dry_run, delete_untagged=delete_untagged)

    job = maintenance_job(settings, "facts", password, mode, make_plan)
    return run_plan(settings, maintenance_hosts(settings), job, out, mode=mode, sudo_password=sudo_password)
