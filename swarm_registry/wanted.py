"""What setup wants, computed once on the control machine before anything remote runs.

Settings + state_dir (certificates, htpasswd) -> `Wanted`: the bytes and names every step
compares facts with. Bad local state is bad input (exit 2), raised here.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass

from . import certs, commands, htpasswd, render
from .settings import Settings, SettingsError
from .state import StateDir


@dataclass(frozen=True)
class Wanted:
    settings: Settings
    bundle: certs.CertBundle
    htpasswd: bytes               # only the users listed in settings `users`
    unlisted_users: tuple[str, ...]  # in state_dir/htpasswd, not in `users`: not deployed
    names: render.SecretNames
    stack_doc: dict
    stack: bytes
    helper_binary: bytes | None
    password: str | None
    local_image_id: str           # the image on this machine ("" when absent)
    move: str = ""                # registry.node moved: "move" its data, "abandon" it, or "" (refuse)
    previous_anchor: bytes | None = None  # the previous CA, trusted too while rotate-ca runs (rotation.py)
    registry_config: bytes | None = None  # storage s3: the registry's config file (secret), else None
    s3_keys: object | None = None         # storage s3: s3creds.S3Keys (sent to a node only on stdin)

    @property
    def spec_hash(self) -> str:
        return self.stack_doc["services"]["registry"]["deploy"]["labels"][render.SPEC_LABEL]


def deployed_htpasswd(settings: Settings) -> tuple[bytes, tuple[str, ...]]:
    """htpasswd for the users in settings `users` (the allow-list), and the entries left out.
    A listed user without a password, or a malformed file, is bad input."""
    state = StateDir(settings.state_dir)
    path = str(state.file("htpasswd"))
    try:
        entries = htpasswd.parse(state.read("htpasswd"))
    except (htpasswd.HtpasswdError, UnicodeDecodeError) as exc:
        raise SettingsError([f"state file {path!r}: {exc}; fix or remove the line, or set it again with "
                             "`inv users.add NAME`"]) from None
    missing = [u for u in settings.users if u not in entries]
    if missing:
        raise SettingsError([f"settings users: {', '.join(missing)} listed but without a password in {path}: "
                             f"run `inv users.add {missing[0]}`, or remove the name from users"])
    kept = {u: entries[u] for u in settings.users}
    return htpasswd.render(kept), tuple(u for u in entries if u not in settings.users)


HTTP_SECRET = "http-secret"


def http_secret(settings: Settings, *, write: bool) -> str:
    """The HTTP secret every replica shares (uploads started on one finish on another), made once and kept in
    state_dir; in check/dry mode a missing one is a stand-in, not written."""
    import secrets as random

    state = StateDir(settings.state_dir)
    have = state.read(HTTP_SECRET)
    if have and have.strip():
        return have.decode().strip()
    made = random.token_hex(32)
    if write:
        state.write(HTTP_SECRET, made.encode() + b"\n")
    return made


def storage_config(settings: Settings, *, write: bool):
    """(the registry's config file, the S3 keys) for storage s3; (None, None) for filesystem. Missing keys
    are bad input: the line says where they come from."""
    if settings.storage.driver != "s3":
        return None, None
    from . import s3creds

    keys = s3creds.load(settings.state_dir)
    if keys is None:
        raise SettingsError([f"storage.driver is s3 but no S3 keys: run `inv storage.credentials` (reads both from "
                             f"stdin, keeps them 0600 in state_dir), or set {s3creds.ENV_ACCESS} and "
                             f"{s3creds.ENV_SECRET}"])
    config = render.registry_config(settings, keys.access_key, keys.secret_key, http_secret(settings, write=write))
    return config, keys


def local_image_id(image: str) -> str:
    try:
        r = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def wanted(settings: Settings, *, write_certs: bool, password: str | None, move: str = "") -> Wanted:
    from . import rotation
    from .release import helper_binary

    bundle = certs.ensure(settings, write=write_certs)
    data, unlisted = deployed_htpasswd(settings)
    config, keys = storage_config(settings, write=write_certs)
    names = render.secret_names(settings, bundle.server_cert, bundle.server_key, config)
    doc = render.stack(settings, names, commands.sha256(data))
    return Wanted(settings=settings, bundle=bundle, htpasswd=data, unlisted_users=unlisted, names=names,
                  stack_doc=doc, stack=render.dump(doc), helper_binary=helper_binary(settings), password=password,
                  local_image_id=local_image_id(settings.registry.image), move=move,
                  previous_anchor=rotation.previous_anchor(settings), registry_config=config, s3_keys=keys)
