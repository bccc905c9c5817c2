"""`Command`: one remote command as argv, its stdin and whether that stdin is secret; its builders.

Secrets travel only on stdin, never in argv, and `display()` redacts them, so `--dry` output and
logs are safe to share. Scripts from files/scripts/ run as `sh -c TEXT NAME VALUE...`: TEXT is a
header that names the values, then lib.sh, every fact snippet (files/scripts/facts/*.sh: shell
functions), then the script itself. Nothing here talks to a host; nothing here is unused.
"""
from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from functools import lru_cache

from .settings import PROJECT_ROOT

SCRIPTS_DIR = PROJECT_ROOT / "files" / "scripts"
CERTS_D = "/etc/docker/certs.d"
SHA_LABEL = "io.swarm-registry.sha256"
MANAGED_LABEL = "io.swarm-registry.stack"
_VAR = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    stdin: bytes | None = None
    secret: bool = False  # stdin carries a password or a private key
    timeout: float = 120.0

    def shell(self) -> str:
        """The one place argv becomes a shell string: every element quoted."""
        return shlex.join(self.argv)

    def display(self) -> str:
        """What may be shown or logged: a script by its file name and named values, secrets redacted."""
        shown = list(self.argv)
        at = next((i for i in range(len(shown) - 3) if shown[i:i + 2] == ["sh", "-c"]
                   and _header_names(shown[i + 2])), None)
        if at is not None:  # one of our scripts, maybe behind sudo/runuser
            names = _header_names(shown[at + 2])
            values = shown[at + 4:]
            text = shlex.join(shown[:at]) + (" " if at else "") + f"<files/scripts/{shown[at + 3]}.sh> " + " ".join(
                f"{n}={shlex.quote(v)}" for n, v in zip(names, values))
        else:
            text = shlex.join(shown)
        if self.stdin is not None:
            text += f"  < [{len(self.stdin)} bytes on stdin{', secret, redacted' if self.secret else ''}]"
        return text.rstrip()


def _header_names(text: str) -> list[str]:
    first = text.split("\n", 1)[0]
    return re.findall(r'([a-z_][a-z0-9_]*)="\$\{\d+\}"', first)


@lru_cache(maxsize=None)
def _library() -> str:
    parts = [(SCRIPTS_DIR / "lib.sh").read_text(encoding="utf-8")]
    parts += [p.read_text(encoding="utf-8") for p in sorted((SCRIPTS_DIR / "facts").glob("*.sh"))]
    return "\n".join(parts)


@lru_cache(maxsize=None)
def _body(name: str) -> str:
    return (SCRIPTS_DIR / f"{name}.sh").read_text(encoding="utf-8")


def script(name: str, values: dict[str, str], *, stdin: bytes | None = None, secret: bool = False,
           timeout: float = 120.0) -> Command:
    """files/scripts/NAME.sh with the shell variables `values` (names: lower-case identifiers)."""
    for key in values:
        if not _VAR.fullmatch(key):
            raise ValueError(f"script variable {key!r}")
    header = " ".join(f'{key}="${{{i}}}"' for i, key in enumerate(values, 1))
    text = f"{header}\n{_library()}\n{_body(name)}"
    return Command(("sh", "-c", text, name, *(str(v) for v in values.values())), stdin, secret, timeout)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mode(mode: int) -> str:
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"file mode {mode!r} out of range")
    return format(mode, "o")


# --- files ----------------------------------------------------------------------------------


def make_dirs(paths: list[str], mode: int = 0o755) -> Command:
    """`install -d -m MODE PATH...`: create directories (and parents), set the mode of the last component."""
    return Command(("install", "-d", "-m", _mode(mode), "--", *paths))


def converge_file(path: str, data: bytes, mode: int = 0o644, *, secret: bool = False) -> Command:
    """Make `path` hold `data` with `mode` (temp name, verified, renamed); prints state=ok|changed."""
    return script("converge-file", {"path": path, "mode": _mode(mode), "sha": sha256(data)}, stdin=data,
                  secret=secret)


def certs_dir(endpoint: str) -> str:
    return f"{CERTS_D}/{endpoint}"


def remove_paths(paths: list[str]) -> Command:
    return Command(("rm", "-rf", "--", *paths))


# --- swarm ----------------------------------------------------------------------------------


def secret_create(name: str, data: bytes, stack: str) -> Command:
    """`docker secret create NAME -` with the content on stdin, labelled with its sha256 and our stack."""
    return Command(("docker", "secret", "create", "--label", f"{SHA_LABEL}={sha256(data)}",
                    "--label", f"{MANAGED_LABEL}={stack}", name, "-"), stdin=data, secret=True)


def secret_remove(names: list[str]) -> Command:
    return Command(("docker", "secret", "rm", *names))


def node_label_add(node: str, label: str) -> Command:
    return Command(("docker", "node", "update", "--label-add", f"{label}=true", node))


def node_label_remove(node: str, label: str) -> Command:
    return Command(("docker", "node", "update", "--label-rm", label, node))


def stack_deploy(stack: str, service: str, stack_file: bytes, resolve_image: str) -> Command:
    """files/scripts/deploy.sh: `docker stack deploy -c -` with the stack file on stdin."""
    return script("deploy", {"stack": stack, "service": service, "resolve_image": resolve_image},
                  stdin=stack_file, timeout=300)


# --- privilege --------------------------------------------------------------------------------


SUDO_PROMPT = "[swarm-registry: sudo password]"  # the prompt the execution layer answers, and only it
SUDO_READY = "swarm-registry: sudo ok"          # printed on stderr once sudo runs the command


def as_run(cmd: Command, sudo: bool, password: str | None = None) -> Command:
    """The command as it is sent to a host: through sudo when the settings ask for it.

    Without a sudo password: `sudo -n` (NOPASSWD; fails at once when sudo would ask). With one:
    `sudo -S -p PROMPT`, and the command is started by a wrapper that first prints SUDO_READY on
    stderr; the execution layer types the password only when PROMPT appears, and sends the command's
    stdin only after SUDO_READY. The password is never part of the command or of its stdin."""
    if not sudo:
        return cmd
    if password is None:
        return Command(("sudo", "-n", "--", *cmd.argv), cmd.stdin, cmd.secret, cmd.timeout)
    return Command(("sudo", "-S", "-p", SUDO_PROMPT, "--", "sh", "-c", f'echo "{SUDO_READY}" >&2; exec "$@"',
                    "sudo-ready", *cmd.argv), cmd.stdin, cmd.secret, cmd.timeout)


# `held MARK CMD...`: CMD (stdin /dev/null), then MARK and CMD's exit status on stdout, MARK on stderr; once CMD
# succeeded, one more command from stdin: its length in bytes on a line, the shell string, then that command's
# own stdin (EOF instead: exit 0). head(1) reads no byte past the length, so the rest of stdin stays the
# command's. An empty or cut command ends with 126 rather than `exec` of nothing (which would be status 0).
# A CMD that is one of our scripts (`sh -c TEXT NAME ARG...`) runs in a subshell of this shell, its
# positional parameters ARG...: a fork without the exec of a second sh (~0.6 ms of a node's CPU per run).
# `ps` on the node still shows it, in this shell's command line; the next command is exec'd, as itself.
_HOLD = ('m=$1; shift; if [ $# -ge 4 ] && [ "$1" = sh ] && [ "$2" = -c ]; then (unset m; eval "shift 4; $3") '
         '</dev/null; else "$@" </dev/null; fi; rc=$?; printf \'\\n%s %s\\n\' "$m" "$rc"; printf \'%s\\n\' "$m" >&2; '
         '[ "$rc" = 0 ] || exit "$rc"; IFS= read -r n || exit 0; s=$(head -c "$n") && [ -n "$s" ] || exit 126; '
         'eval "exec $s"')


def holding(cmd: Command, mark: str) -> Command:
    """`cmd` (a command that reads no stdin, e.g. the facts) sent so that its shell then waits for one more
    command on the same channel (see _HOLD): the execution layer sends a host's first command of the plan
    through it, one session and login shell fewer per changed host. `mark` ends the first output."""
    if cmd.stdin is not None:
        raise ValueError("a held command reads no stdin")
    return Command(("sh", "-c", _HOLD, "held", mark, *cmd.argv), None, False, cmd.timeout)


def held_next(cmd: Command) -> bytes:
    """What a held shell (`holding`) reads to run `cmd`: the length of its shell string in bytes on a line,
    then that string; `cmd.stdin` follows it, then EOF."""
    text = cmd.shell().encode("utf-8")
    return b"%d\n" % len(text) + text


# --- images (smoke test) --------------------------------------------------------------------


def image_build(tag: str, context_tar: bytes) -> Command:
    """`docker build -q -t TAG -` with the build context as a tar on stdin; prints the image ID."""
    return Command(("docker", "build", "-q", "-t", tag, "-"), stdin=context_tar, timeout=300)


def image_tag(source: str, target: str) -> Command:
    return Command(("docker", "tag", source, target))


def image_pull_if_missing(ref: str) -> Command:
    return Command(("sh", "-c", 'docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null',
                    "pull-if-missing", ref), timeout=600)


def image_push(ref: str) -> Command:
    """Push, then print the repo digest docker recorded (`HOST:PORT/REPO@sha256:...`)."""
    return Command(("sh", "-c", 'docker push "$1" >/dev/null && docker image inspect --format '
                    "'{{range .RepoDigests}}{{println .}}{{end}}' \"$1\"", "push", ref), timeout=600)


def image_pull(ref: str) -> Command:
    """Pull, then print the image ID."""
    return Command(("sh", "-c", 'docker pull -q "$1" >/dev/null && docker image inspect --format "{{.Id}}" "$1"',
                    "pull", ref), timeout=600)


def image_remove(refs: list[str]) -> Command:
    return Command(("docker", "rmi", "--force", *refs))
