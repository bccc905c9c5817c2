"""Per-host, per-step results and the recap printed at the end of every run.

Pure data and formatting: the execution layer fills a `Run`, the CLI prints `recap()`
and exits with `exit_code()`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

OK, CHANGED, FAILED, SKIPPED = "ok", "changed", "failed", "skipped"
EXIT_FAILED = 1


@dataclass(frozen=True)
class StepResult:
    host: str
    step: str
    status: str
    message: str = ""

    def line(self, check: bool = False) -> str:
        status = "would change" if (check and self.status == CHANGED) else self.status
        return f"{self.host:<14} {self.step:<22} {status:<12} {self.message}".rstrip()


@dataclass
class Run:
    """Everything a task did (or, in check mode, would do), host by host."""
    hosts: list[str]
    check: bool = False
    results: list[StepResult] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)  # remote commands run per host
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: StepResult) -> StepResult:
        with self._lock:
            self.results.append(result)
        return result

    def count_command(self, host: str) -> None:
        with self._lock:
            self.commands[host] = self.commands.get(host, 0) + 1

    def failed_hosts(self) -> dict[str, str]:
        """host -> its first error."""
        out: dict[str, str] = {}
        for r in self.results:
            if r.status == FAILED:
                out.setdefault(r.host, f"{r.step}: {r.message}")
        return out

    def has_failed(self, host: str) -> bool:
        return any(r.host == host and r.status == FAILED for r in self.results)

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
            mine = [r for r in self.results if r.host == host]
            count = lambda s: sum(r.status == s for r in mine)  # noqa: E731
            row = f"{host:<14} {count(OK):>4} {count(CHANGED):>8} {count(FAILED):>7} {count(SKIPPED):>8}"
            if stats:
                row += f" {self.commands.get(host, 0):>9}"
            rows.append(row)
        for host, error in failed.items():
            rows.append(f"FAILED {host}: {error}")
        return "\n".join(rows)
