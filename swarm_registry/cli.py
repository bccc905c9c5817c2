"""Helpers shared by the two thin CLI shells (tasks.py for inv, fabfile/ for fab).

Turns SettingsError into one line per problem on stderr and exit status 2, reads
passwords without ever taking them from an argument, and tells --dry apart. `report()` makes
the output of a task that reports: lines on stdout (colour only on a terminal, never with
NO_COLOR), or with --json one JSON document on stdout and the lines on stderr.
"""
from __future__ import annotations

import functools
import getpass
import os
import sys
from pathlib import Path

from invoke.exceptions import Exit

from . import settings as settings_mod
from . import validators
from .results import Report
from .settings import SettingsError

PASSWORD_ENV = "REGISTRY_PASSWORD"
_REPORT: list[Report] = []  # the report of the task running now (handles_errors finishes it)


def err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def out(line: str) -> None:
    try:
        print(line, flush=True)
    except BrokenPipeError:  # `inv ... | head`: the reader left; stop writing quietly
        sys.stdout = open(os.devnull, "w")


def colour() -> bool:
    """Colour the statuses: only when stdout is a terminal, never with NO_COLOR set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def report(c, task: str, as_json: bool = False, check: bool = False) -> Report:
    """Start the output of a task that reports (`sink()` returns it, for the job's `out`). With
    --json, handles_errors prints the JSON document when the task ends (also after bad input)."""
    rep = Report(task, as_json=as_json, mode=mode(c, check), colour=colour(), stdout=out, stderr=err)
    _REPORT[:] = [rep]
    return rep


def sink():
    """Where a job's lines go: the task's report (see report()), else stdout."""
    return _REPORT[-1] if _REPORT else out


def _finish(code: int, errors: list[str] | None = None) -> None:
    while _REPORT:
        _REPORT.pop().finish(code, errors)


def handles_errors(fn):
    """Run a task body; bad input -> its lines on stderr and exit 2; a failed run -> its exit status.
    With --json (see report()), the JSON document is printed last, whatever the outcome."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _exit_fast(1)  # until the task returns: a crash in it exits 1
        try:
            code = fn(*args, **kwargs)
        except SettingsError as exc:
            _finish(exc.exit_code, exc.problems)
            for line in exc.problems:
                err(f"error: {line}")
            _exit_fast(exc.exit_code)
            raise Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            _finish(130, ["interrupted"])
            err("interrupted")
            _exit_fast(130)
            raise Exit(code=130) from None
        _finish(code or 0)
        _exit_fast(code or 0)
        if code:
            raise Exit(code=code)
    return wrapper


_EXIT = {}


def _exit_fast(code: int) -> None:
    """Once every task of the command line has run, leave without the interpreter's teardown (its module
    and object clean-up cost ~60 ms, measured at N=8 hosts, more than a tenth of a re-run of trust-cert):
    an atexit hook flushes stdout and stderr and ends the process with `code`, the exit status of the
    last task (Python runs atexit hooks after invoke or fab decided to exit and after every non-daemon
    thread ended). Nothing of ours needs that teardown: connections are closed and files written when a
    job returns."""
    if not _EXIT:
        if not _is_cli():
            return  # tasks called in another program (a test runner): its exit status is its own
        import atexit

        atexit.register(_leave)
    _EXIT["code"] = code


def _is_cli() -> bool:
    """This process is `inv`/`fab` (or `python -m invoke`/`fabric`)."""
    prog = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return prog.name in ("inv", "invoke", "fab") or (prog.name == "__main__.py" and prog.parent.name in
                                                     ("invoke", "fabric"))


def _leave() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_EXIT.get("code", 0))


def load_settings():
    return settings_mod.load()


def is_dry(c) -> bool:
    """True under `inv --dry` / `fab --dry`: read the facts, print every command of the plan, change nothing."""
    try:
        return bool(c.config.run.dry)
    except AttributeError:
        return False


def mode(c, check: bool = False) -> str:
    """run, check (--check: print what would change) or dry (inv --dry: print every command)."""
    from .jobs.runner import mode_of

    return mode_of(check, is_dry(c))


SUDO_PASSWORD_ENV = "SWARM_REGISTRY_SUDO_PASSWORD"


def sudo_password(c) -> str | None:
    """The sudo password: --prompt-for-sudo-password (inv and fab), else env SWARM_REGISTRY_SUDO_PASSWORD;
    never from argv. None: sudo must not ask (NOPASSWD), or ssh.sudo is off."""
    try:
        given = c.config.sudo.password or None
    except AttributeError:
        given = None
    return given or os.environ.get(SUDO_PASSWORD_ENV) or None


def read_password(user: str, *, from_stdin: bool, confirm: bool = True) -> str:
    """A password from stdin (--password-stdin), env REGISTRY_PASSWORD, or a hidden prompt."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        source = "stdin"
    elif os.environ.get(PASSWORD_ENV) is not None:
        value, source = os.environ[PASSWORD_ENV], f"env {PASSWORD_ENV}"
    elif sys.stdin.isatty():
        value = getpass.getpass(f"password for {user}: ")
        if confirm and getpass.getpass(f"again, password for {user}: ") != value:
            raise SettingsError([f"password for {user!r}: the two entries differ"])
        source = "prompt"
    else:
        raise SettingsError([f"password for {user!r}: none given; use a terminal prompt, env {PASSWORD_ENV}, "
                             "or --password-stdin"])
    try:
        validators.password(value)
    except validators.Invalid as exc:
        raise SettingsError([f"password for {user!r} (from {source}): must be {exc}"]) from None
    return value


def read_s3_keys(*, from_stdin: bool) -> tuple[str, str]:
    """The S3 access and secret keys: two lines of stdin (--keys-stdin), or hidden prompts on a terminal."""
    if from_stdin:
        return sys.stdin.readline().strip(), sys.stdin.readline().strip()
    if not sys.stdin.isatty():
        raise SettingsError(["S3 keys: not a terminal: give them on stdin with --keys-stdin (two lines)"])
    return getpass.getpass("S3 access key: ").strip(), getpass.getpass("S3 secret key: ").strip()


def optional_password(user: str, *, from_stdin: bool, prompt: bool = False) -> str | None:
    """A password from --password-stdin or env REGISTRY_PASSWORD (or a prompt on a terminal), else None."""
    if from_stdin or os.environ.get(PASSWORD_ENV) is not None or (prompt and sys.stdin.isatty()):
        return read_password(user, from_stdin=from_stdin, confirm=False)
    return None


def positive_int(flag: str, value) -> int:
    try:
        number = int(value)
        if number < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise SettingsError([f"{flag} {value!r}: must be a whole number of at least 1"]) from None
    return number


def check_user_name(user: str) -> str:
    try:
        return validators.registry_user(user)
    except validators.Invalid as exc:
        raise SettingsError([f"user name {user!r}: must be {exc}"]) from None


# --- task bodies shared by inv (tasks.py) and fab (fabfile/): parse, call, print -----------------

HELP = {
    "check": "read each host's facts and print what would change; change nothing",
    "hosts": "comma-separated hosts or groups (nodes, managers, workers, registry); default: nodes",
    "password_stdin": "read login_user's password from the first line of stdin",
    "json": "print one JSON document on stdout (per host and step: status, message, commands, times; "
            "the recap); the progress lines go to stderr",
}


def setup(c, check: bool, password_stdin: bool, hosts: list[str] | None = None, move_data: bool = False,
          abandon_data: bool = False) -> int:
    from .jobs.setup import setup as job

    if move_data and abandon_data:
        raise SettingsError(["--move-data and --abandon-data: choose one"])
    settings = load_settings()
    chosen = settings.select(hosts) if hosts else None
    password = optional_password(settings.registry.login_user, from_stdin=password_stdin, prompt=True)
    return job(settings, sink(), mode=mode(c, check), password=password, sudo_password=sudo_password(c), hosts=chosen,
               move="move" if move_data else "abandon" if abandon_data else "")


def trust_cert(c, hosts: list[str], check: bool) -> int:
    from .jobs.trust import trust_cert as job

    settings = load_settings()
    return job(settings, settings.select(hosts), sink(), mode=mode(c, check), sudo_password=sudo_password(c))


def credential_helper(c, hosts: list[str], check: bool) -> int:
    from .jobs.credentials import credential_helper as job

    settings = load_settings()
    return job(settings, settings.select(hosts), sink(), mode=mode(c, check), sudo_password=sudo_password(c))


def login(c, hosts: list[str], check: bool, password_stdin: bool, logout: bool = False) -> int:
    from .jobs.login import login as job

    settings = load_settings()
    password = None if logout else read_password(settings.registry.login_user, from_stdin=password_stdin,
                                                 confirm=False)
    return job(settings, settings.select(hosts), sink(), password=password, logout=logout, mode=mode(c, check),
               sudo_password=sudo_password(c))
