"""Fan-out: run a step on many hosts in parallel (at most `ssh.parallel` at once).

A step is a function `(session) -> (status, message)`. A host whose step fails, or that
cannot be reached, is marked failed with the reason, and later steps skip it; the other
hosts go on. Every result is printed as it arrives and kept in the `Run` for the recap, with
the step's time on that host and the commands it sent (as `--dry` shows them), for `--json`.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable

from .. import local_checks
from ..results import CHANGED, FAILED, OK, SKIPPED, Report, Run, StepResult
from ..settings import Settings
from ..errors import HostError
from . import dial
from .hostkeys import KnownHosts
from .session import Session

Step = Callable[[Session], "tuple[str, str]"]


class Executor:
    def __init__(self, settings: Settings, hosts: list[str], *, check: bool = False,
                 out: Callable[[str], None] = print, sudo_password: str | None = None, progress: bool = True):
        """progress=False: results are kept (recap, --json) but not printed as they arrive."""
        local_checks.ssh_files(settings)  # before any connection: bad local files are bad input (exit 2)
        self.settings = settings
        self.run = Run(hosts=list(hosts), check=check)
        self.check = check
        self._out = out
        self._progress = progress
        self._colour = isinstance(out, Report) and out.colour
        if isinstance(out, Report):
            out.attach(self.run)
        self._print_lock = threading.Lock()
        # known_hosts is parsed once for the run (on the first connection) and shared by every session
        self.known_hosts = KnownHosts(settings.ssh.known_hosts, settings.ssh.accept_new_host_keys)
        self._sudo_password = sudo_password
        self.sessions = {name: self._session(name) for name in hosts}
        self.cancelled = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(settings.ssh.parallel, len(hosts))))
        self._sessions_lock = threading.Lock()
        if settings.may_forward_registry:  # (registry_http imports requests: only where the API is used)
            from .. import registry_http

            registry_http.set_route(self.forward_registry)

    def _session(self, name: str) -> Session:
        return Session(self.settings.hosts[name], self.settings, sudo_password=self._sudo_password,
                       on_command=self.run.count_command, known_hosts=self.known_hosts)

    def say(self, line: str) -> None:
        with self._print_lock:
            self._out(line)

    def waiting(self, host: str, step: str) -> Callable[[str], None]:
        """Where `host`'s `step` says what it waits for: `waiting` lines, in the result lines' columns."""
        return lambda line: self.say(StepResult(host, step, "waiting", line).line())

    def record(self, host: str, step: str, status: str, message: str = "", seconds: float | None = None,
               commands: tuple = ()) -> StepResult:
        result = self.run.add(StepResult(host, step, status, message, seconds, tuple(commands)))
        if self._progress:
            self.say(result.line(self.check, self._colour))
        return result

    def on_host(self, host: str, name: str, fn: Step) -> StepResult:
        """Run `fn` on `host` in this thread and record it as step `name` (its time, its commands; an
        error, or an unreachable host, is a failed step)."""
        session = self.sessions[host]
        session.journal, t0 = [], time.monotonic()
        try:
            status, message = fn(session)
        except HostError as exc:
            status, message = FAILED, str(exc)
        except Exception as exc:  # a bug or an unexpected answer must not stop the other hosts
            status, message = FAILED, f"{type(exc).__name__}: {exc}"
        journal, session.journal = session.journal, None
        return self.record(host, name, status, message, time.monotonic() - t0, journal)

    def step(self, name: str, fn: Step, hosts: list[str] | None = None, *, include_failed: bool = False,
             then: Callable[[str], None] | None = None) -> dict[str, StepResult]:
        """Run `fn` on each host (default: all) not yet failed (also failed ones with include_failed: a
        restore step), in parallel; return host -> result. `then(host)`: what a host does next, in the
        same worker, as soon as its step did not fail (the hosts do not wait for each other)."""
        targets = [h for h in (hosts if hosts is not None else self.run.hosts)
                   if include_failed or not self.run.has_failed(h)]

        def one(host: str) -> StepResult:
            result = self.on_host(host, name, fn)
            if then is not None and result.status != FAILED and not self.cancelled.is_set():
                then(host)
            return result

        futures = [self._pool.submit(one, h) for h in targets]
        try:
            return dict(zip(targets, (f.result() for f in futures)))
        except KeyboardInterrupt:
            # Ctrl-C: start nothing new; commands already running finish (a remote file is
            # never left half-written: they write to a temp name and rename), loops stop.
            self.cancelled.set()
            for f in futures:
                f.cancel()
            self.say("interrupted: letting the commands already running finish, starting no new ones")
            raise

    def forward_registry(self, address: str) -> int | None:
        """registry_http's route while ssh.forward_registry may be on: the registry node at `address` (any
        other address, e.g. registry.host: registry.node) forwards its registry port over its SSH connection.
        With `auto` and an OpenSSH client config, only when that connection goes through a ProxyJump from
        it (None: connect directly)."""
        s = self.settings
        name = next((n for n in s.registry.nodes if s.hosts[n].address == address), s.registry.node)
        with self._sessions_lock:
            if name not in self.sessions:  # a registry node this run does not otherwise work on
                self.sessions[name] = self._session(name)
            session = self.sessions[name]
        try:
            if not s.forwards_registry:
                session.connect()
                if not session.jumps:
                    return None
            return session.forward(s.registry.port)
        except HostError as exc:
            from ..registry_http import RegistryError

            raise RegistryError(f"the registry's port over SSH: {exc}") from None

    def close(self) -> None:
        if self.settings.may_forward_registry:
            from .. import registry_http

            registry_http.set_route(None)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for s in self.sessions.values():
            s.close()
        dial.discard(self.sessions)  # its hosts dialled early that the run never reached

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def registry_api(settings: Settings):
    """For a job that only talks to the registry's API (catalog, images.rm): with ssh.forward_registry on,
    its port goes over an SSH connection to the registry node for the job's duration."""
    if not settings.may_forward_registry:
        yield
        return
    with Executor(settings, [], out=lambda line: None, progress=False):
        yield


__all__ = ["Executor", "Session", "HostError", "OK", "CHANGED", "FAILED", "SKIPPED"]
