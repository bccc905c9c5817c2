"""Execution of plans: facts (one command per host) -> plan -> print it (--check, --dry) or run it.

Every remote job goes through `run_plan`: the same plan is printed by --check ("would ..."),
printed command by command by --dry (secrets redacted), or executed; a converged host costs
its one facts command. A step runs on its hosts in parallel; a host whose step fails is
skipped by later steps and the others go on; the recap names it. A job whose plan for a host needs
only that host's facts (Job.per_host) does not wait for every host's facts: each host goes on to its
steps as soon as its own are read.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Callable

from .. import commands, facts as facts_mod
from ..errors import FORWARDING_REFUSED, Output
from ..facts import Facts
from ..progress import Meter
from ..results import CHANGED, FAILED, OK, SKIPPED, StepResult
from ..settings import Settings
from ..steps import Action, StepPlan

Out = Callable[[str], None]
RUN, CHECK, DRY = "run", "check", "dry"


@dataclass
class Job:
    """What a job needs from the runner: which facts each host reads, how they are judged, the plan."""
    name: str                                   # the facts step's name in the output ("preflight", "facts")
    fact_names: Callable[[str], tuple[str, ...]]  # host -> facts to read
    judge: Callable[[str, Facts], "tuple[str, str]"]  # host, facts -> (status, message) of the facts step
    plan: Callable[[dict[str, Facts], list[str]], "list[StepPlan] | list[tuple[str, str]]"]
    # (facts, usable hosts) -> the plan, or (host, problem) pairs that stop the job before any change
    cluster_steps: tuple[str, ...] = ()         # once a host fails in one of these, the rest of them stop
    fact_stdin: Callable[[str], "bytes | None"] | None = None  # host -> secret stdin of its facts command
    # a host's plan depends on its own facts only (trust-cert, login): in a run or --check, each host goes on to
    # its steps as soon as its facts are read, not after every host's (what --dry prints is the same plan)
    per_host: bool = False


# how long a manager's facts are read again while the swarm has no leader (facts.leaderless): an election
# after a manager is lost took ~20 s here (the first call waits on the lost leader); past this, the host fails
LEADER_WAIT = 60.0
LEADER_POLL = 1.0


def read_facts(session, settings: Settings, names: tuple[str, ...], stdin: bytes | None, *, hold: bool,
               note: Callable[[str], None] | None = None) -> Output:
    """The facts `names` of a host, as one command's output. The docker fact comes from the engine's socket
    where the host's sshd can open it (remote.engine: no command for it, and the facts command leaves it out);
    else, or when the socket does not answer as the engine does, from the facts command's `docker info`.

    A manager's facts are read again, for up to LEADER_WAIT, while the swarm has no leader (managers electing
    one after a manager was lost): read then, "no nodes, no service" would be docker's error, not the swarm.
    `note` hears, once, that it waits."""
    res = _read_once(session, settings, names, stdin, hold=hold)
    if "manager" not in names:
        return res
    deadline = time.monotonic() + LEADER_WAIT
    while res.ok and facts_mod.leaderless(f := facts_mod.parse(res.stdout)) and time.monotonic() < deadline:
        if note is not None:
            note(f"the swarm has no leader ({f.manager_error.strip()}): reading it again for up to "
                 f"{LEADER_WAIT:.0f} s")
            note = None
        time.sleep(LEADER_POLL)
        res = _read_once(session, settings, names, stdin, hold=hold)
    return res


def _read_once(session, settings: Settings, names: tuple[str, ...], stdin: bytes | None, *, hold: bool) -> Output:
    info = session.ask_engine_info() if "docker" in names else None
    rest = tuple(n for n in names if n != "docker") if info is not None else names
    try:
        res = session.run(facts_mod.command(settings, rest, stdin), hold=hold) if rest else Output(0, "", "")
    finally:
        body = info.answer() if info is not None else None  # its channel closed either way
    if info is None or not res.ok:
        return res
    line = facts_mod.docker_line(body or b"")
    if line is None:
        fallback = session.run(facts_mod.command(settings, ("docker",)), hold=hold)
        if not fallback.ok:
            return fallback
        line = fallback.stdout.strip()
    return Output(res.rc, f"{line}\n{res.stdout}", res.stderr)


def manager_problem(f: Facts) -> str:
    """Why a manager whose swarm did not answer (facts.manager_error) cannot do swarm-wide work, and the fix."""
    said = f.manager_error.strip()
    if facts_mod.leaderless(f):
        return (f"the swarm has no leader after {LEADER_WAIT:.0f} s (docker: {said}): more than half of the "
                "managers must be online; start the ones that are down, or, if they are lost, run docker swarm "
                "init --force-new-cluster on a manager that holds the swarm's state")
    return f"the swarm does not answer this manager (docker: {said})"


def mode_of(check: bool, dry: bool) -> str:
    return DRY if dry else CHECK if check else RUN


def run_plan(settings: Settings, hosts: list[str], job: Job, out: Out, *, mode: str = RUN,
             sudo_password: str | None = None, after: Callable[[object], None] | None = None) -> int:
    from .. import local_checks
    from ..remote import dial

    local_checks.ssh_files(settings)  # bad local files are bad input: no host is dialled then
    dial.start(settings, hosts)  # sshd's side of each connection begins while paramiko is imported
    try:
        from ..remote.executor import Executor

        executor = Executor(settings, hosts, check=mode != RUN, out=out, sudo_password=sudo_password)
    except BaseException:
        dial.discard(hosts)  # no executor to close them: close what was dialled
        raise
    with executor as ex:
        found: dict[str, Facts] = {}

        def read(session) -> tuple[str, str]:
            name = session.host.name
            stdin = job.fact_stdin(name) if job.fact_stdin else None
            # a run holds the facts command's shell: a host's first command of the plan goes through it
            res = read_facts(session, settings, job.fact_names(name), stdin, hold=mode == RUN,
                             note=ex.waiting(name, job.name))
            if not res.ok:
                return FAILED, f"facts could not be read: {res.error()}"
            found[name] = f = facts_mod.parse(res.stdout)
            status, message = job.judge(name, f)
            if status != FAILED and f.manager_error:
                return FAILED, manager_problem(f)
            return status, message

        if job.per_host and mode != DRY:
            ex.step(job.name, read, then=lambda host: _go_on(job.plan({host: found[host]}, [host]), ex, mode))
        else:
            ex.step(job.name, read)
            _plan_and_execute(job, found, [h for h in hosts if not ex.run.has_failed(h)], ex, mode, out,
                              settings, sudo_password)
        if after is not None:
            after(ex)
    out(ex.run.recap())
    return ex.run.exit_code()


def _plan_and_execute(job: Job, found: dict[str, Facts], usable: list[str], ex, mode: str, out: Out,
                      settings: Settings, sudo_password: str | None) -> None:
    """Every host's facts read: the plan (or the problems that stop the job), printed (--dry) or executed."""
    plan = job.plan(found, usable)
    if plan and isinstance(plan[0], tuple):
        for host, problem in plan:
            ex.record(host, f"{job.name} (cluster)", FAILED, problem)
        out("stopped before any change: fix the problems above")
    elif mode == DRY:
        for host in usable:
            out(f"{host:<14} {'route':<22} # ssh {ex.sessions[host].route()}")
        ex.run.planned = []
        print_commands(plan, settings, out, sudo_password is not None, ex.run.planned)
    else:
        execute(plan, ex, mode, job.cluster_steps)


def print_commands(plan: list[StepPlan], settings: Settings, out: Out, sudo_password: bool = False,
                   planned: list[dict] | None = None) -> None:
    """--dry: every command the run would execute, in order, as it is sent (sudo included), redacted;
    each also added to `planned` ({host, step, command}) for --json."""
    sudo, password = settings.ssh.sudo or sudo_password, ("<redacted>" if sudo_password else None)
    for p in plan:
        if p.status != CHANGED and not any(a.wait for a in p.actions):
            out(f"{p.host:<14} {p.step:<22} # {p.status}: {p.message}")
            continue
        for a in p.actions:
            if a.tls is not None:
                fallback = commands.as_run(a.tls.fallback, sudo, password).display() if a.tls.fallback else "none"
                # a comment line (no " $ "): nothing runs on the host unless its sshd refuses the channel
                out(f"{p.host:<14} {p.step:<22} # TLS to {a.tls.host}:{a.tls.port} from this host: its sshd connects "
                    f"(direct-tcpip), TLS runs on this machine; no command (if its sshd refuses: {fallback})")
                continue
            if a.command is None:
                out(f"{p.host:<14} {p.step:<22} # checked from this machine: {p.message}")
                continue
            if a.stream_from is not None:
                host, send = a.stream_from
                out(f"{host:<14} {p.step:<22} $ {commands.as_run(send, sudo, password).display()}  # | to {p.host}")
            prefix = f"docker save {a.stream_image} | " if a.stream_image else ""
            repeat = "  # repeated until converged" if a.wait else ""
            repeat += f"  # < {a.label}" if a.source is not None else f"  # > {a.label}" if a.sink is not None else ""
            shown = f"{prefix}{commands.as_run(a.command, sudo, password).display()}"
            out(f"{p.host:<14} {p.step:<22} $ {shown}{repeat}")
            if planned is not None:
                planned.append({"host": p.host, "step": p.step, "command": shown})


def execute(plan: list[StepPlan], ex, mode: str, cluster_steps: tuple[str, ...]) -> None:
    by_step: dict[str, dict[str, StepPlan]] = {}
    for p in plan:
        by_step.setdefault(p.step, {})[p.host] = p
    cluster_failed = stopped = False
    for step, plans in by_step.items():
        always = any(p.always for p in plans.values())
        stopped = stopped or (step in cluster_steps and cluster_failed)
        if stopped and not always:  # the rest stops, but a restore step (always) still runs
            continue
        if mode == CHECK:
            for host, p in plans.items():
                if always or not ex.run.has_failed(host):
                    msg = p.message if p.status != CHANGED else f"would {p.message}"
                    ex.record(host, step, p.status, msg)
        else:
            ex.step(step, lambda session, plans=plans: _run_one(plans[session.host.name], session, ex),
                    list(plans), include_failed=always)
        if step in cluster_steps and any(ex.run.has_failed(h) for h in plans):
            cluster_failed = True


def _go_on(plan: list[StepPlan], ex, mode: str) -> None:
    """One host's steps, in order, in its worker (Job.per_host): the first that fails ends them."""
    for p in plan:
        if ex.cancelled.is_set():
            return
        if mode == CHECK:
            ex.record(p.host, p.step, p.status, p.message if p.status != CHANGED else f"would {p.message}")
        elif ex.on_host(p.host, p.step, lambda session, p=p: _run_one(p, session, ex)).status == FAILED:
            return


def _run_one(p: StepPlan, session, ex) -> tuple[str, str]:
    """A host's step: its actions in order, stopping at the first failure (or at Ctrl-C)."""
    if p.status != CHANGED and not any(a.wait for a in p.actions):
        return p.status, p.message
    results: list[tuple[str, str]] = []
    for a in p.actions:
        if ex.cancelled.is_set():
            return FAILED, "interrupted before this command started"
        results.append(_run_action(a, session, ex))
        if results[-1][0] == FAILED:
            return results[-1]
    status = CHANGED if any(s == CHANGED for s, _ in results) else OK
    return status, "; ".join(m for _, m in results)


def _run_action(a: Action, session, ex) -> tuple[str, str]:
    if a.wait is not None:
        return _wait(a, session, ex)
    if a.tls is not None:
        outcome = session.check_tls(a.tls.host, a.tls.port, a.tls.cas)
        if outcome.kind == FORWARDING_REFUSED and a.tls.fallback is not None:
            outcome = a.tls.read_fallback(session.run(a.tls.fallback))
        return a.verdict(outcome)
    if a.stream_from is not None:
        host, send = a.stream_from
        sender = ex.sessions[host].reader(send)
        res = session.run(a.command, source=Meter(sender, a.label or f"from {host}"))
        return a.verdict(res, sender.finish())
    if a.sink is not None:  # the command's stdout is read here as a stream (a backup)
        reader = session.reader(a.command)
        try:
            got = a.sink(Meter(reader, a.label or f"from {session.host.name}"))
        except BaseException:
            reader.chan.close()  # the rest of the stream is not read (nor kept in memory)
            raise
        res = reader.finish()
        status, message = a.verdict(res) if a.verdict is not None else (
            (CHANGED, "done") if res.ok else (FAILED, res.error()))
        return status, f"{message}; {got}" if status != FAILED else message
    if a.source is not None:  # a local stream follows stdin (a restore)
        src = a.source()
        try:
            res = session.run(a.command, source=Meter(src, a.label or f"to {session.host.name}"))
        finally:
            getattr(src, "close", lambda: None)()
    elif a.stream_image:
        res = _stream(a, session)
    else:
        res = session.run(a.command)
    if a.verdict is not None:
        return a.verdict(res)
    return (CHANGED, "done") if res.ok else (FAILED, res.error())


def _stream(a: Action, session) -> Output:
    save = subprocess.Popen(["docker", "save", a.stream_image], stdout=subprocess.PIPE)
    try:
        res = session.run(a.command, source=Meter(save.stdout, f"{a.stream_image} to {session.host.name}"))
    finally:
        save.stdout.close()
        save.wait()
    if save.returncode != 0:
        return Output(1, "", f"docker save {a.stream_image} failed on this machine (exit {save.returncode})")
    return res


POLL_INTERVAL = 0.25  # between two polls of a wait (one facts command, ~0.05 s on a node): a task that
                     # starts is seen within a quarter second, and a read-only switch costs no idle second


def _wait(a: Action, session, ex) -> tuple[str, str]:
    w = a.wait
    deadline = time.monotonic() + w.timeout
    while True:
        output = session.run(w.poll) if w.poll is not None else None
        done, status, message = w.until(output)
        if done:
            return status, message
        if ex.cancelled.is_set():
            return FAILED, "interrupted while waiting for the registry"
        if time.monotonic() > deadline:
            return FAILED, f"not converged after {w.timeout:.0f}s: {message}"
        time.sleep(POLL_INTERVAL)


__all__ = ["Job", "run_plan", "mode_of", "RUN", "CHECK", "DRY", "OK", "CHANGED", "FAILED", "SKIPPED",
           "StepResult"]
