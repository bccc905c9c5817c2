"""Per-host, per-step results and the recap printed at the end of every run; `--json`.

Pure data and formatting: the execution layer fills a `Run`, the CLI prints `recap()`
and exits with `exit_code()`. A `Report` is where a task's output goes: its lines, and
with `--json` one JSON document (`Run.to_json()` and the task's data) printed at the end.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Callable

OK, CHANGED, FAILED, SKIPPED = "ok", "changed", "failed", "skipped"
EXIT_FAILED = 1
_COLOURS = {OK: "32", CHANGED: "33", FAILED: "31", SKIPPED: "36"}  # green, yellow, red, cyan


@dataclass(frozen=True)
class CommandRun:
    """One remote command as sent (`Command.display()`: secrets redacted), its exit status and time."""
    command: str
    exit_status: int | None  # None: no exit status (timed out, connection lost)
    seconds: float

    def to_json(self) -> dict:
        return {"command": self.command, "exit_status": self.exit_status, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class StepResult:
    host: str
    step: str
    status: str
    message: str = ""
    seconds: float | None = None  # the step's time on this host (None: decided without running anything)
    commands: tuple[CommandRun, ...] = ()

    def line(self, check: bool = False, colour: bool = False) -> str:
        status = "would change" if (check and self.status == CHANGED) else self.status
        shown = f"{status:<12}"
        if colour and self.status in _COLOURS:
            shown = f"\033[{_COLOURS[self.status]}m{status}\033[0m{' ' * (12 - len(status))}"
        return f"{self.host:<14} {self.step:<22} {shown} {self.message}".rstrip()

    def to_json(self) -> dict:
        return {"step": self.step, "status": self.status, "message": self.message,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "commands": [c.to_json() for c in self.commands]}


@dataclass
class Run:
    """Everything a task did (or, in check mode, would do), host by host."""
    hosts: list[str]
    check: bool = False
    results: list[StepResult] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)  # remote commands run per host
    planned: list[dict] | None = None  # --dry: {host, step, command} for every command it would send
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # kept by add(): every host's results, and its first error (has_failed runs for every host at every
    # step: scanning all results there made a fan-out quadratic in its hosts)
    _by_host: dict[str, list[StepResult]] = field(default_factory=dict, repr=False, compare=False)
    _failed: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        given, self.results = self.results, []
        for r in given:
            self.add(r)

    def add(self, result: StepResult) -> StepResult:
        """The one way a result joins the run (`results` is read, never appended to elsewhere)."""
        with self._lock:
            self.results.append(result)
            self._by_host.setdefault(result.host, []).append(result)
            if result.status == FAILED:
                self._failed.setdefault(result.host, f"{result.step}: {result.message}")
        return result

    def count_command(self, host: str) -> None:
        with self._lock:
            self.commands[host] = self.commands.get(host, 0) + 1

    def failed_hosts(self) -> dict[str, str]:
        """host -> its first error, in the order the hosts failed."""
        return dict(self._failed)

    def has_failed(self, host: str) -> bool:
        return host in self._failed

    def of(self, host: str) -> list[StepResult]:
        """`host`'s results, in order."""
        return self._by_host.get(host, [])

    def changed(self) -> int:
        return sum(r.status == CHANGED for r in self.results)

    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed_hosts() else 0

    def recap(self, stats: bool = True) -> str:
        title = "RECAP (check mode: nothing was changed; 'changed' = would change)" if self.check else "RECAP"
        rows = [title, f"{'host':<14} {'ok':>4} {'changed':>8} {'failed':>7} {'skipped':>8}"
                + (f" {'commands':>9}" if stats else "")]
        failed = self.failed_hosts()
        for host in self.hosts:
            mine = self.of(host)
            count = lambda s: sum(r.status == s for r in mine)  # noqa: E731
            row = f"{host:<14} {count(OK):>4} {count(CHANGED):>8} {count(FAILED):>7} {count(SKIPPED):>8}"
            if stats:
                row += f" {self.commands.get(host, 0):>9}"
            rows.append(row)
        for host, error in failed.items():
            rows.append(f"FAILED {host}: {error}")
        return "\n".join(rows)

    def counts(self, host: str) -> dict[str, int]:
        mine = [r.status for r in self.of(host)]
        return {s: mine.count(s) for s in (OK, CHANGED, FAILED, SKIPPED)} | {"commands": self.commands.get(host, 0)}

    def to_json(self) -> dict:
        """Per host: every step (status, message, time, the commands it sent); the recap; the failures."""
        hosts = list(dict.fromkeys([*self.hosts, *self._by_host]))
        doc = {"check": self.check,
               "hosts": {h: {"steps": [r.to_json() for r in self.of(h)]} for h in hosts},
               "recap": {h: self.counts(h) for h in hosts},
               "failed": self.failed_hosts()}
        if self.planned is not None:
            doc["planned"] = list(self.planned)
        return doc


def merged(runs: list[Run], check: bool = False) -> Run:
    """The runs of one task as one: every host once, its steps in order, commands added up."""
    if len(runs) == 1:
        return runs[0]
    one = Run(hosts=list(dict.fromkeys(h for r in runs for h in r.hosts)), check=check or any(r.check for r in runs))
    for r in runs:
        for result in r.results:
            one.add(result)
        for host, n in r.commands.items():
            one.commands[host] = one.commands.get(host, 0) + n
        if r.planned is not None:
            one.planned = (one.planned or []) + r.planned
    return one


def show(out: Callable[[str], None], result: StepResult, check: bool = False) -> StepResult:
    """A result decided on this machine, without an Executor (e.g. an API call): its line, and with a
    Report, the result kept for --json."""
    if isinstance(out, Report):
        out.record(result)
    out(result.line(check, getattr(out, "colour", False)))
    return result


class Report:
    """Where a task's output goes. `report(line)` prints a line (on stdout; with --json on stderr,
    so stdout holds only the document). With --json, `finish(code)` prints one JSON document on
    stdout: the task, its mode and exit status, the `Run`(s) it made (`Run.to_json()`) and the data
    it `add`ed (e.g. status's nodes, catalog's repositories)."""

    def __init__(self, task: str, *, as_json: bool = False, mode: str = "run", colour: bool = False,
                 stdout: Callable[[str], None] = print, stderr: Callable[[str], None] = print):
        self.task, self.as_json, self.mode = task, as_json, mode
        self.colour = colour and not as_json
        self._line = stderr if as_json else stdout
        self._stdout = stdout
        self.runs: list[Run] = []
        self.data: dict = {}
        self.finished = False
        self._here: Run | None = None  # results decided on this machine, without an Executor (see show())

    def __call__(self, line: str) -> None:
        self._line(line)

    def attach(self, run: Run) -> None:
        self.runs.append(run)

    def add(self, **data) -> None:
        self.data.update(data)

    def record(self, result: StepResult) -> None:
        if self._here is None:
            self._here = Run(hosts=[], check=self.mode == "check")
            self.attach(self._here)
        if result.host not in self._here.hosts:
            self._here.hosts.append(result.host)
        self._here.add(result)

    def document(self, code: int, errors: list[str] | None = None) -> dict:
        doc: dict = {"task": self.task, "mode": self.mode, "exit_status": code}
        if errors:
            doc["errors"] = errors
        doc.update(merged(self.runs, self.mode == "check").to_json())  # several runs: one after the other
        doc.update(self.data)
        return doc

    def finish(self, code: int, errors: list[str] | None = None) -> int:
        """With --json: print the document (once); return `code`."""
        if self.as_json and not self.finished:
            self.finished = True
            self._stdout(json.dumps(self.document(code, errors), indent=2, default=str))
        return code
