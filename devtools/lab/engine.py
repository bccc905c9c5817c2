"""Thin helpers around the local docker CLI (argv lists only, never a shell)."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Callable, Iterable, Sequence

from .errors import LabError

Out = Callable[[str], None]


def docker_bin() -> str:
    path = shutil.which("docker")
    if not path:
        raise LabError("no docker CLI on PATH on the control machine: install docker.io")
    return path


def run(argv: Sequence[str], *, check: bool = True, input: bytes | str | None = None,
        timeout: float | None = 300, what: str | None = None) -> subprocess.CompletedProcess:
    """Run a command, capture text output; raise LabError (one line) on failure if check."""
    if isinstance(input, str):
        input = input.encode()
    try:
        proc = subprocess.run(list(argv), input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError:
        raise LabError(f"command not found on the control machine: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what or ' '.join(argv[:4])}: timed out after {timeout:.0f} s") from None
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise LabError(f"{what or ' '.join(argv[:6])} failed (exit {proc.returncode}): {last_line(proc.stderr or proc.stdout)}")
    return proc


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def docker(*args: str, check: bool = True, input: bytes | str | None = None,
           timeout: float | None = 300, what: str | None = None) -> subprocess.CompletedProcess:
    return run([docker_bin(), *args], check=check, input=input, timeout=timeout, what=what)


def node_exec(container: str, *args: str, check: bool = True, input: bytes | str | None = None,
              timeout: float | None = 120, what: str | None = None) -> subprocess.CompletedProcess:
    argv = ["exec"]
    if input is not None:
        argv.append("-i")
    argv += [container, *args]
    return docker(*argv, check=check, input=input, timeout=timeout,
                  what=what or f"docker exec {container} {' '.join(args[:3])}")


def require_engine() -> None:
    try:
        proc = run([docker_bin(), "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    except LabError as exc:
        if "timed out" in str(exc):
            raise LabError("no Docker engine answers on the control machine (docker info timed out): start dockerd") from None
        raise
    if proc.returncode != 0 or not proc.stdout.strip():
        raise LabError("no Docker engine answers on the control machine (docker info failed): start dockerd")


def inspect(kind: str, names: Iterable[str]) -> dict[str, dict]:
    """docker <kind> inspect for several objects; missing ones are simply absent."""
    names = list(names)
    if not names:
        return {}
    proc = docker(kind, "inspect", *names, check=False, timeout=60)
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        data = []
    result: dict[str, dict] = {}
    for obj in data or []:
        name = obj.get("Name") or ""
        name = name.lstrip("/")
        if kind == "image":
            for tag in obj.get("RepoTags") or []:
                if tag in names:
                    result[tag] = obj
        else:
            result[name] = obj
    return result


def image_id(tag: str) -> str | None:
    proc = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False, timeout=60)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def image_label(tag: str, label: str) -> str | None:
    obj = inspect("image", [tag]).get(tag)
    if not obj:
        return None
    return ((obj.get("Config") or {}).get("Labels") or {}).get(label)


def poll(check: Callable[[], object], *, timeout: float, interval: float = 0.5,
         what: str, hint: str = "") -> object:
    """Call check() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except LabError as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc})" if last_exc else ""
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{'; ' + hint if hint else ''}")
        time.sleep(interval)


class Step:
    """Context manager printing '[lab] msg...' and '[lab] msg: done (N.N s)'."""

    def __init__(self, out: Out, msg: str):
        self.out, self.msg = out, msg

    def __enter__(self):
        self.t0 = time.monotonic()
        self.out(f"[lab] {self.msg}...")
        return self

    def __exit__(self, exc_type, exc, tb):
        dt = time.monotonic() - self.t0
        if exc_type is None:
            self.out(f"[lab] {self.msg}: done ({dt:.1f} s)")
        else:
            self.out(f"[lab] {self.msg}: FAILED after {dt:.1f} s")
        return False
