"""credential-helper: the recipe's "Setting a credential store" for the docker user of each node.

When the store fact shows anything missing, files/scripts/credential-helper.sh installs `pass`
and `docker-credential-pass`, makes a GPG key with an encryption subkey when there is none, runs
`pass init` when the store is not initialised for a usable key, and checks that
`docker-credential-pass list` answers within 10 s. `"credsStore": "pass"` is merged into
`~/.docker/config.json` (read by the store fact) here, in pure Python, keeping every other key,
and written with converge-file only when it changes. A converged host costs no command.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from .. import commands
from ..errors import Output
from ..facts import RELEASE_BIN, Facts
from ..results import CHANGED, FAILED, OK
from ..settings import Settings
from . import Action, StepPlan, change, failed, ok

STEP = "credential-helper"

KEY_NAME = "docker credentials (swarm-registry)"
CREDS_STORE = "pass"
LIST_TIMEOUT = 10  # seconds `docker-credential-pass list` gets (also in the script)
PRESET_TOOL = "/usr/lib/gnupg/gpg-preset-passphrase"

_EXIT_REASONS = {2: "wrong user", 20: "packages", 21: "packages", 22: "apt-get update", 23: "packages",
                 30: "helper binary", 31: "helper binary", 32: "helper binary", 33: "helper binary",
                 34: "helper binary", 35: "helper binary", 40: "GPG key", 41: "GPG key", 50: "pass init"}


class DockerConfigError(ValueError):
    """config.json exists but is not a JSON object: it is reported, never overwritten."""


@dataclass
class CredFacts:
    """What the script found and did, and the verdict for the host (before config.json is merged)."""
    status: str
    message: str
    config: bytes | None = None  # ~/.docker/config.json as read (None: absent or empty)
    home: str = ""
    key: str = ""       # fingerprint of the key the store uses
    keygrip: str = ""   # of its encryption subkey (for a preset passphrase)
    changes: list[str] = field(default_factory=list)  # what was done
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def config_path(self) -> str:
        return config_path(self.home)


# --- the command ------------------------------------------------------------------------------


def command(settings: Settings, *, binary: bytes | None, user: str | None = None) -> commands.Command:
    """The set-up script. `binary`: the docker-credential-pass executable (source: release only),
    sent on stdin. `user`: the docker user when the command runs as root for someone else (sudo)."""
    helper = settings.credential_helper
    if helper.source == "release":
        if not binary:
            raise ValueError("credential_helper.source is release: pass the binary from release.fetch_binary()")
        want, stdin = commands.sha256(binary), binary
    else:
        want, stdin = "-", None
    return commands.script("credential-helper", {"source": helper.source, "user": user or "",
                                                 "bin": RELEASE_BIN, "want": want, "name_real": KEY_NAME},
                           stdin=stdin, timeout=900)  # apt-get update + install can be slow



# --- the command ------------------------------------------------------------------------------


def config_path(home: str) -> str:
    """The docker user's config.json, from the home directory the script printed (or a user name)."""
    if not home.startswith("/"):  # a user name
        home = "/root" if home == "root" else f"/home/{home}"
    return f"{home.rstrip('/') or ''}/.docker/config.json"


# --- parsing ----------------------------------------------------------------------------------


def _facts(stdout: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[a-z_]+", key):
            out[key] = value.strip()
    return out


def _last_line(*texts: str) -> str:
    for text in texts:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return ""


def parse(rc: int, stdout: str, stderr: str) -> CredFacts:
    """CredFacts from the script's exit status and output: ok, changed or failed."""
    f = _facts(stdout)
    home = f.get("home", "")
    if rc != 0 or "list" not in f:
        stage = _EXIT_REASONS.get(rc, "")
        detail = _last_line(stderr) or f"exit status {rc}"
        where = f" ({stage})" if stage else ""
        return CredFacts(FAILED, f"credential helper set-up failed{where}: {detail}", home=home, facts=f)
    try:
        raw = base64.b64decode(f.get("config", ""), validate=True)
    except (binascii.Error, ValueError):
        return CredFacts(FAILED, "could not read ~/.docker/config.json from the node (bad base64)", home=home, facts=f)
    config = raw if raw.strip() else None

    changes: list[str] = []
    word, value = _split(f.get("packages", "ok"))
    if word == "installed":
        after = " (after apt-get update)" if f.get("apt_update") == "1" else ""
        changes.append(f"installed {value}{after}")
    helper = f.get("helper", "ok")
    if helper == "installed":
        changes.append(f"installed {RELEASE_BIN}")
    word, key = _split(f.get("key", ""))
    if word == "created":
        changes.append(f"created GPG key {key}")
    store = f.get("store", "")
    if store == "initialised":
        changes.append(f"pass init {key}")

    status = CHANGED if changes else OK
    done = "; ".join(changes) if changes else f"pass, docker-credential-pass, GPG key {key[-16:]} and store ok"
    listed = f["list"]
    if listed == "0":
        message = f"{done}; docker-credential-pass list answers"
    else:
        reason = (f"timed out after {LIST_TIMEOUT}s (a passphrase prompt?)" if listed == "124"
                  else f"exit {listed}: {f.get('list_error') or 'no output'}")
        return CredFacts(FAILED, f"{done}; but docker-credential-pass list failed: {reason}", config=config,
                         home=home, key=key, keygrip=f.get("keygrip", ""), changes=changes, facts=f)
    return CredFacts(status, message, config=config, home=home, key=key, keygrip=f.get("keygrip", ""),
                     changes=changes, facts=f)


def _split(value: str) -> tuple[str, str]:
    word, _, rest = value.partition(" ")
    return word, rest.strip()


# --- config.json --------------------------------------------------------------------------------


def merge_docker_config(existing: bytes | None) -> tuple[bytes, bool]:
    """config.json with `"credsStore": "pass"`, every other key kept as it was; (bytes, changed).

    Absent or empty (None or whitespace) becomes a new file. Not a JSON object: DockerConfigError.
    """
    if existing is None or not existing.strip():
        return _dump({"credsStore": CREDS_STORE}), True
    try:
        data = json.loads(existing.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DockerConfigError(f"config.json is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DockerConfigError(f"config.json is not valid JSON ({exc.msg} at line {exc.lineno} column "
                                f"{exc.colno})") from None
    if not isinstance(data, dict):
        raise DockerConfigError(f"config.json must hold a JSON object, found {type(data).__name__}")
    if data.get("credsStore") == CREDS_STORE:
        return existing, False
    data["credsStore"] = CREDS_STORE  # replaces another store in place, or is added last
    return _dump(data), True


def _dump(data: dict) -> bytes:
    return (json.dumps(data, indent="\t", ensure_ascii=False) + "\n").encode("utf-8")  # docker's own layout


# --- the step -----------------------------------------------------------------------------------


def converged(f: Facts, helper_sha: str | None) -> bool:
    """pass + helper installed (the pinned binary for source: release), store initialised and answering."""
    pinned = helper_sha is None or (f.helper_sha == helper_sha and f.helper_path == RELEASE_BIN)
    return f.pass_installed and bool(f.helper_path) and pinned and f.gpg_id and f.list_rc == 0


def _script_verdict(out: Output) -> tuple[str, str]:
    facts = parse(out.rc, out.stdout, out.stderr)
    return facts.status if facts.status == FAILED else CHANGED, facts.message


def _write_verdict(path: str):
    def verdict(out: Output) -> tuple[str, str]:
        if out.rc != 0 or "state=" not in out.stdout:
            return FAILED, f"writing {path} failed: {_last_line(out.stderr, out.stdout) or f'exit status {out.rc}'}"
        return CHANGED, f"credsStore={CREDS_STORE} set in {path}"
    return verdict


def docker_account(settings: Settings, host) -> str:
    """Who runs docker on the node, and so owns the credential store and the login: root with ssh.sudo
    (every command runs through sudo), else the SSH user."""
    return "root" if settings.ssh.sudo else host.user


def plan(settings: Settings, host, f: Facts, binary: bytes | None) -> StepPlan:
    """The store on `host` (a settings.Host): the script when anything is missing, then config.json."""
    want = commands.sha256(binary) if binary else None
    user = docker_account(settings, host)
    actions, done = [], []
    if not converged(f, want):
        actions.append(Action(command(settings, binary=binary, user=user), _script_verdict))
        done.append("install pass + docker-credential-pass, GPG key, pass init")
    path = config_path(user)
    try:
        new, changed = merge_docker_config(f.docker_config)
    except DockerConfigError as exc:
        return failed(STEP, host.name, f"{path} was left alone: {exc}")
    if changed:
        write = commands.converge_file(path, new, 0o600)
        actions.append(Action(write, _write_verdict(path)))
        done.append(f"set credsStore={CREDS_STORE} in {path}")
    if not actions:
        return ok(STEP, host.name, "pass, docker-credential-pass, GPG key and store in place; list answers; "
                                   "credsStore pass")
    return change(STEP, host.name, "; ".join(done), *actions)


# --- a preset passphrase (for keys that have one) -------------------------------------------------

_ENABLE_PRESET = """set -u
conf="$HOME/.gnupg/gpg-agent.conf"
install -d -m 0700 "$HOME/.gnupg" || exit 1
if grep -qx 'allow-preset-passphrase' "$conf" 2>/dev/null; then echo state=ok; exit 0; fi
[ "$1" = check ] && { echo state=would-change; exit 0; }
echo allow-preset-passphrase >>"$conf" && chmod 0600 "$conf" || exit 2
gpgconf --kill gpg-agent && gpg-connect-agent /bye >/dev/null 2>&1 || exit 3
echo state=changed
"""


def preset_passphrase_commands(keygrip: str, passphrase: str, *, check: bool = False) -> list[commands.Command]:
    """Commands that let gpg-agent decrypt without a prompt for a key that has a passphrase:
    `allow-preset-passphrase` in ~/.gnupg/gpg-agent.conf (agent restarted when added), then
    `gpg-preset-passphrase --preset KEYGRIP` with the passphrase on stdin (secret). The preset
    lives as long as the agent; run them again after a reboot. KEYGRIP: the encryption subkey's
    (CredFacts.keygrip)."""
    if not re.fullmatch(r"[0-9A-Fa-f]{40}", keygrip):
        raise ValueError(f"keygrip {keygrip!r}: must be 40 hex digits (gpg --with-keygrip)")
    if not passphrase or "\n" in passphrase or "\r" in passphrase:
        raise ValueError("passphrase: must be one non-empty line")
    enable = commands.Command(("sh", "-c", _ENABLE_PRESET, "gpg-agent-preset", "check" if check else "apply"))
    if check:
        return [enable]
    preset = commands.Command((PRESET_TOOL, "--preset", keygrip.upper()), stdin=passphrase.encode("utf-8"),
                              secret=True)
    return [enable, preset]
