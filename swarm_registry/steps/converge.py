"""converge: wait until a task made from the wanted spec runs on the registry node and /v2/ answers
over TLS verified against our CA with our certificate: 401 without, 200 with credentials.

A special step: its `Wait` polls the `tasks` fact on the manager (the same reader the facts
command uses), bounded by registry.converge_timeout; the TLS checks run from this machine.
Tasks that were running before a deploy never count (they run the old spec).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import facts as facts_mod, pki, registry_http
from ..commands import Command
from ..errors import Output
from ..facts import Facts, Task
from ..results import FAILED, OK
from . import Action, StepPlan, change

STEP = "converge"


@dataclass
class Converge:
    """The wait, with what it must see; `until` is called with each poll's output."""
    settings: object
    node_id: str
    spec: str
    exclude: frozenset[str]
    poll: Command | None
    tasks: list[Task]
    cert_sha: str
    password: str | None
    timeout: float
    last: str = field(default="")

    def until(self, output: Output | None) -> tuple[bool, str, str]:
        s = self.settings
        tasks = facts_mod.parse_tasks(output.stdout) if output is not None else self.tasks
        running = [t for t in tasks if t.running and t.node_id == self.node_id and t.spec == self.spec
                   and t.id not in self.exclude]
        errors = [t.error for t in tasks if t.error]
        if not running:
            seen = tasks[0].state if tasks else "no task yet"
            self.last = f"last task state {seen}; last error: {errors[0] if errors else 'none'}"
            return False, FAILED, self.last
        r = s.registry
        try:
            anon = registry_http.probe(s, "/v2/")
        except registry_http.RegistryError as exc:
            self.last = str(exc)
            return False, FAILED, self.last
        if anon.cert_sha256 != self.cert_sha or anon.status != 401:
            self.last = f"/v2/ answered {anon.status} with " + (
                "our certificate" if anon.cert_sha256 == self.cert_sha else "an older certificate")
            return False, FAILED, self.last
        msg = (f"task {running[0].id[:12]} (spec {self.spec[:12]}) running on {s.registry_host.node_name}; "
               "/v2/ 401 without credentials over verified TLS")
        if self.password is None:
            return True, OK, msg + "; 200 with credentials not checked (no password given: env REGISTRY_PASSWORD)"
        try:
            authed = registry_http.probe(s, "/v2/", auth=(r.login_user, self.password))
        except registry_http.RegistryError as exc:  # a registry just started may be slow: keep waiting
            self.last = str(exc)
            return False, FAILED, self.last
        if authed.status != 200:
            return True, FAILED, f"/v2/ with {r.login_user}'s credentials answered {authed.status}, not 200"
        return True, OK, msg + f", 200 with {r.login_user}'s"


def plan(w, host: str, f: Facts, deploying: bool) -> StepPlan:
    s = w.settings
    node_id = f.node_id(s.registry_host.node_name)
    exclude = frozenset(t.id for t in f.tasks if t.running) if deploying else frozenset()
    wanted_running = any(t.running and t.node_id == node_id and t.spec == w.spec_hash for t in f.tasks)
    poll = None if (wanted_running and not deploying) else facts_mod.command(s, ["tasks"])
    wait = Converge(s, node_id, w.spec_hash, exclude, poll, list(f.tasks),
                    pki.inspect(w.bundle.server_cert).sha256, w.password, float(s.registry.converge_timeout))
    action = Action(poll, wait=wait)
    if poll is None:
        return StepPlan(STEP, host, OK, f"task with spec {w.spec_hash[:12]} running; check /v2/ over TLS",
                        (action,))
    return change(STEP, host, f"wait (at most {s.registry.converge_timeout}s) for a task with spec "
                              f"{w.spec_hash[:12]} on {s.registry_host.node_name} and /v2/ over verified TLS", action)

