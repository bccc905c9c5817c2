"""converge: wait until a task made from the wanted spec runs on every registry node (registry.nodes,
one replica each) and /v2/ answers over TLS verified against our CA with our certificate: 401
without, 200 with credentials, on every replica.

A special step: its `Wait` polls the `tasks` fact on the manager (the same reader the facts
command uses), bounded by registry.converge_timeout; the TLS checks run from this machine (one
replica: registry.host, else the registry node's address; several: each registry node's address).
Tasks that were running before a deploy never count (they run the old spec). When the swarm already
showed the wanted tasks (no poll planned) but a replica does not answer, the wait reads the tasks again
from then on: the swarm's view read before may be stale (a node that just rejoined), and the message
names what the swarm says of the task on the node that fails.
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
    node_ids: dict[str, str]  # registry node (inventory name) -> its swarm node ID
    spec: str
    exclude: frozenset[str]
    poll: Command | None
    tasks: list[Task]
    repoll: Command  # the tasks fact: polled once a replica fails where no poll was planned
    cert_sha: str
    password: str | None
    timeout: float
    last: str = field(default="")

    def _replica(self, host: str) -> str | None:
        """None when the replica on `host` answers as wanted, else what is wrong."""
        s = self.settings
        r = s.registry
        address = s.hosts[host].address if len(self.node_ids) > 1 else None
        where = f" on {host}" if address else ""
        try:
            anon = registry_http.probe(s, "/v2/", address=address)
        except registry_http.RegistryError as exc:
            return f"{exc}{where}"
        if anon.cert_sha256 != self.cert_sha or anon.status != 401:
            return f"/v2/{where} answered {anon.status} with " + (
                "our certificate" if anon.cert_sha256 == self.cert_sha else "an older certificate")
        if self.password is None:
            return None
        try:
            authed = registry_http.probe(s, "/v2/", auth=(r.login_user, self.password), address=address)
        except registry_http.RegistryError as exc:  # a registry just started may be slow: keep waiting
            return f"{exc}{where}"
        if authed.status != 200:
            return f"/v2/{where} with {r.login_user}'s credentials answered {authed.status}, not 200"
        return None

    def _task_on(self, tasks: list[Task], host: str) -> str:
        """What the swarm says of the newest task on `host`'s node (tasks come newest first)."""
        mine = [t for t in tasks if t.node_id == self.node_ids[host]]
        if not mine:
            return "no task on this node"
        t = mine[0]
        return (f"task {t.id[:12]} {t.state}, desired {t.desired}"
                + (f", spec {t.spec[:12]}" if t.spec != self.spec else "") + (f": {t.error}" if t.error else ""))

    def until(self, output: Output | None) -> tuple[bool, str, str]:
        s = self.settings
        tasks = facts_mod.parse_tasks(output.stdout) if output is not None else self.tasks
        fresh = [t for t in tasks if t.running and t.spec == self.spec and t.id not in self.exclude]
        missing = [h for h, nid in self.node_ids.items() if not any(t.node_id == nid for t in fresh)]
        errors = [t.error for t in tasks if t.error]
        if missing:
            seen = "; ".join(f"{h}: {self._task_on(tasks, h)}" for h in missing)
            self.last = (f"no task with the wanted spec running on {', '.join(missing)} ({seen}); "
                         f"last error: {errors[0] if errors else 'none'}")
            return False, FAILED, self.last
        for host in self.node_ids:
            wrong = self._replica(host)
            if wrong is not None:
                if self.poll is None:  # the tasks read before may be stale: read them from the next poll on
                    self.poll = self.repoll
                wrong += f" (swarm: {self._task_on(tasks, host)})" if len(self.node_ids) > 1 else ""
                self.last = wrong
                # a wrong password is final once the replica answers with our certificate
                return ("credentials answered" in wrong), FAILED, wrong
        ids = ", ".join(t.id[:12] for t in fresh if t.node_id in self.node_ids.values())
        where = ", ".join(s.hosts[h].node_name for h in self.node_ids)
        msg = (f"task {ids} (spec {self.spec[:12]}) running on {where}; "
               "/v2/ 401 without credentials over verified TLS")
        if self.password is None:
            return True, OK, msg + "; 200 with credentials not checked (no password given: env REGISTRY_PASSWORD)"
        return True, OK, msg + f", 200 with {s.registry.login_user}'s"


def plan(w, host: str, f: Facts, deploying: bool) -> StepPlan:
    s = w.settings
    node_ids = {n: f.node_id(s.hosts[n].node_name) for n in s.registry.nodes}
    exclude = frozenset(t.id for t in f.tasks if t.running) if deploying else frozenset()
    wanted_running = all(any(t.running and t.node_id == nid and t.spec == w.spec_hash for t in f.tasks)
                         for nid in node_ids.values())
    tasks_cmd = facts_mod.command(s, ["tasks"])
    poll = None if (wanted_running and not deploying) else tasks_cmd
    wait = Converge(s, node_ids, w.spec_hash, exclude, poll, list(f.tasks), tasks_cmd,
                    pki.inspect(w.bundle.server_cert).sha256, w.password, float(s.registry.converge_timeout))
    action = Action(poll, wait=wait)
    where = ", ".join(s.hosts[n].node_name for n in s.registry.nodes)
    if poll is None:
        return StepPlan(STEP, host, OK, f"task with spec {w.spec_hash[:12]} running on {where}; check /v2/ over TLS "
                                   "(a replica that does not answer: the tasks are read again until it does)",
                        (action,))
    return change(STEP, host, f"wait (at most {s.registry.converge_timeout}s) for a task with spec "
                              f"{w.spec_hash[:12]} on {where} and /v2/ over verified TLS", action)
