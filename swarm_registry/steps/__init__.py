"""Steps: one module per recipe step, each pure: `plan(...)` turns facts and wanted settings into
a `StepPlan` (the commands to run on one host, or ok with the reason), and `verdict(output)`
judges what a command printed. Nothing here talks to a host: `jobs.runner` executes plans.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..commands import Command
from ..errors import Output, TlsOutcome
from ..results import CHANGED, FAILED, OK, SKIPPED

Verdict = Callable[[Output], "tuple[str, str]"]


class Wait(Protocol):
    """A step that polls (convergence): `poll` is run until `until` says done, bounded in time."""
    poll: Command | None
    timeout: float

    def until(self, output: Output | None) -> "tuple[bool, str, str]": ...


@dataclass(frozen=True)
class TlsCheck:
    """TLS to `host`:`port` as the node sees it, with no command there (remote.tls_check: the node's sshd
    opens the connection, TLS runs on this machine trusting only `cas`, PEM). Where the node's sshd refuses
    forwarding, `fallback` runs on the node instead and `read_fallback` reads its output as the outcome."""
    host: str
    port: int
    cas: bytes
    fallback: Command | None = None
    read_fallback: "Callable[[Output], TlsOutcome] | None" = None


@dataclass(frozen=True)
class Action:
    """One remote command of a plan (None: a wait that only checks from this machine, or a TLS check from
    the node); `verdict` judges its output."""
    command: Command | None
    verdict: Verdict | None = None  # with stream_from: verdict(output, sender's output)
    stream_image: str = ""  # `docker save IMAGE` on this machine is streamed after stdin
    wait: Wait | None = None
    stream_from: "tuple[str, Command] | None" = None  # (host, command): its stdout is this command's stdin
    label: str = ""  # what a stream carries, for its progress line
    source: "Callable[[], object] | None" = None  # opens a local binary reader: its bytes follow stdin
    sink: "Callable[[object], str] | None" = None  # consumes the command's stdout (a reader); says what it got
    tls: TlsCheck | None = None  # with command None: a TLS check from the node; verdict(TlsOutcome)


@dataclass(frozen=True)
class StepPlan:
    step: str
    host: str
    status: str           # OK: nothing to do; CHANGED: run `actions`; FAILED/SKIPPED: decided by the plan
    message: str          # why it is ok, or what the actions will do ("would ..." in check mode)
    actions: tuple[Action, ...] = field(default=())
    always: bool = False  # runs even on a host that failed an earlier step (a restore, e.g. back to read-write)


def ok(step: str, host: str, why: str) -> StepPlan:
    return StepPlan(step, host, OK, why)


def change(step: str, host: str, what: str, *actions: Action) -> StepPlan:
    return StepPlan(step, host, CHANGED, what, tuple(actions))


def failed(step: str, host: str, why: str) -> StepPlan:
    return StepPlan(step, host, FAILED, why)


def skipped(step: str, host: str, why: str) -> StepPlan:
    return StepPlan(step, host, SKIPPED, why)


def expect_ok(what: str) -> Verdict:
    """A verdict: exit 0 -> changed (`what` done); else failed with the last error line."""
    def verdict(out: Output) -> tuple[str, str]:
        return (CHANGED, what) if out.ok else (FAILED, f"{what}: failed: {out.error()}")
    return verdict
