"""Typed builders for every remote command: argv lists, shell-quoted only at the edge.

A `Command` holds its argv, the bytes it reads on stdin (if any) and whether those bytes
are secret. Secrets travel only on stdin, never in argv, and `display()` redacts them, so
`--dry` output and logs are safe to share. Nothing here talks to a host.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from functools import lru_cache

from .settings import PROJECT_ROOT

SCRIPTS_DIR = PROJECT_ROOT / "files" / "scripts"
CERTS_D = "/etc/docker/certs.d"
SHA_LABEL = "io.swarm-registry.sha256"
MANAGED_LABEL = "io.swarm-registry.stack"


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
        """What may be shown or logged: long scripts abbreviated, secret stdin redacted."""
        shown = list(self.argv)
        if shown[:2] == ["sh", "-c"] and len(shown) > 3:
            shown[2] = f"<files/scripts/{shown[3]}.sh>"
        text = shlex.join(shown)
        if self.stdin is not None:
            text += f"  < [{len(self.stdin)} bytes on stdin{', secret, redacted' if self.secret else ''}]"
        return text


@lru_cache(maxsize=None)
def script(name: str) -> str:
    """A shell script from files/scripts/, run as `sh -c SCRIPT NAME ARGS...`."""
    return (SCRIPTS_DIR / f"{name}.sh").read_text(encoding="utf-8")


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


def converge_file(path: str, data: bytes, mode: int = 0o644, *, check: bool = False, secret: bool = False) -> Command:
    """Make `path` hold `data` with `mode`, written to a temp name and renamed; prints state=ok|changed."""
    return Command(("sh", "-c", script("converge-file"), "converge-file", path, _mode(mode), sha256(data),
                    "check" if check else "apply"), stdin=data, secret=secret)


def certs_dir(endpoint: str) -> str:
    return f"{CERTS_D}/{endpoint}"


def trust_cert(endpoint: str, anchor: bytes, *, check: bool = False) -> Command:
    """Install `anchor` as /etc/docker/certs.d/ENDPOINT/ca.crt (0644, dir 0755) and verify the registry with it."""
    return Command(("sh", "-c", script("trust-cert"), "trust-cert", certs_dir(endpoint), endpoint, sha256(anchor),
                    "check" if check else "apply"), stdin=anchor)


def remove_paths(paths: list[str]) -> Command:
    return Command(("rm", "-rf", "--", *paths))


# --- swarm secrets --------------------------------------------------------------------------


def secret_create(name: str, data: bytes, stack: str) -> Command:
    """`docker secret create NAME -` with the content on stdin, labelled with its sha256 and our stack."""
    return Command(("docker", "secret", "create", "--label", f"{SHA_LABEL}={sha256(data)}",
                    "--label", f"{MANAGED_LABEL}={stack}", name, "-"), stdin=data, secret=True)


def secret_list(stack: str) -> Command:
    """Secrets this tool made for `stack`: lines 'NAME<TAB>CREATED'."""
    return Command(("docker", "secret", "ls", "--filter", f"label={MANAGED_LABEL}={stack}",
                    "--format", "{{.Name}}\t{{.CreatedAt}}"))


def secret_remove(names: list[str]) -> Command:
    return Command(("docker", "secret", "rm", *names))


# --- nodes and services ---------------------------------------------------------------------


def node_label_add(node: str, label: str) -> Command:
    return Command(("docker", "node", "update", "--label-add", f"{label}=true", node))


def node_label_remove(node: str, label: str) -> Command:
    return Command(("docker", "node", "update", "--label-rm", label, node))


def node_labels(node: str) -> Command:
    return Command(("docker", "node", "inspect", "--format", "{{json .Spec.Labels}}", node))


def stack_deploy(compose_file: str, stack: str, resolve_image: str = "always") -> Command:
    return Command(("docker", "stack", "deploy", "--with-registry-auth", "--resolve-image", resolve_image,
                    "--compose-file", compose_file, stack), timeout=300)


def stack_remove(stack: str) -> Command:
    return Command(("docker", "stack", "rm", stack))


def stack_networks(stack: str) -> Command:
    """Names of the networks `docker stack deploy` made for `stack` (one per line)."""
    return Command(("docker", "network", "ls", "--filter", f"label=com.docker.stack.namespace={stack}",
                    "--format", "{{.Name}}"))


def service_tasks(service: str) -> Command:
    """Tasks of a service: 'ID<TAB>NODE<TAB>DESIRED<TAB>CURRENT<TAB>ERROR' lines, newest first."""
    return Command(("docker", "service", "ps", "--no-trunc", "--format",
                    "{{.ID}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}", service))


def service_force_update(service: str) -> Command:
    return Command(("docker", "service", "update", "--force", "--detach", service), timeout=300)


# --- login ----------------------------------------------------------------------------------


def login(endpoint: str, user: str, password: str) -> Command:
    """`docker login --password-stdin`: the password only ever on stdin."""
    return Command(("docker", "login", "--username", user, "--password-stdin", endpoint),
                   stdin=password.encode("utf-8"), secret=True)


def logout(endpoint: str) -> Command:
    return Command(("docker", "logout", endpoint))


# --- privilege --------------------------------------------------------------------------------


def as_run(cmd: Command, sudo: bool, password: str | None = None) -> Command:
    """The command as it is sent to a host: through sudo when the settings or a sudo password ask for it."""
    return with_sudo(cmd, password) if (sudo or password is not None) else cmd


def with_sudo(cmd: Command, password: str | None) -> Command:
    """Run `cmd` through sudo: `-n` without a password; with one, `-S` reads it as stdin's first line."""
    if password is None:
        return Command(("sudo", "-n", "--", *cmd.argv), cmd.stdin, cmd.secret, cmd.timeout)
    stdin = password.encode("utf-8") + b"\n" + (cmd.stdin or b"")
    return Command(("sudo", "-S", "-p", "", "--", *cmd.argv), stdin, True, cmd.timeout)


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
