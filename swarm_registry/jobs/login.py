"""`login` / `logout`: docker login (password on stdin) or logout on nodes; already done: ok."""
from __future__ import annotations

from ..results import OK
from ..settings import Settings
from ..steps import login as login_step
from .runner import RUN, Job, run_plan


def login(settings: Settings, hosts: list[str], out, *, password: str | None, logout: bool = False,
          mode: str = RUN, sudo_password: str | None = None) -> int:
    r = settings.registry

    def plan(found, usable):
        if logout:
            return [login_step.plan_logout(r.endpoint, r.login_user, h, found[h]) for h in usable]
        return [login_step.plan(r.endpoint, r.login_user, password, h, found[h]) for h in usable]

    job = Job("facts", lambda host: ("store", "login"), lambda host, f: (OK, "read"), plan, per_host=True)
    return run_plan(settings, hosts, job, out, mode=mode, sudo_password=sudo_password)
