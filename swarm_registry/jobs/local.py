"""Local jobs: certificates, users (state_dir/htpasswd), the rendered stack, the resolved settings.

Nothing here connects anywhere.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from .. import certs, htpasswd
from ..settings import Settings, SettingsError
from ..state import StateDir

Out = Callable[[str], None]


def describe_cert(cert_pem: bytes, now: dt.datetime | None = None) -> list[str]:
    from .. import pki  # here, not at the top: tasks.py imports this module on every `inv` start-up

    info = pki.inspect(cert_pem)
    now = now or pki.utcnow()
    return [f"  subject:  {info.subject}", f"  issuer:   {info.issuer}",
            f"  SANs:     {', '.join(info.sans) or '(none)'}", f"  key:      {info.key_type}",
            f"  sha256:   {info.sha256}",
            f"  expires:  {info.not_after:%Y-%m-%d %H:%M} UTC ({info.days_left(now)} days)"]


def make_certs(settings: Settings, out: Out, *, check: bool = False, renew: bool = False) -> int:
    bundle = certs.ensure(settings, write=not check, force_renew=renew)
    verb = "would write" if check else "wrote"
    if bundle.changed:
        out(f"certs: {verb} {', '.join(bundle.changed)} in {settings.state_dir} ({'; '.join(bundle.reasons)})")
    else:
        out(f"certs: ok, reusing the files in {settings.state_dir}")
    out(f"server certificate ({settings.cert.mode}):")
    for line in describe_cert(bundle.server_cert):
        out(line)
    if bundle.ca_cert:
        out("CA certificate:")
        for line in describe_cert(bundle.ca_cert):
            out(line)
    return 0


# --- users ------------------------------------------------------------------------------------


def _htpasswd(settings: Settings) -> tuple[StateDir, dict[str, str]]:
    state = StateDir(settings.state_dir)
    state.check()
    try:
        return state, htpasswd.parse(state.read("htpasswd"))
    except (htpasswd.HtpasswdError, UnicodeDecodeError) as exc:
        raise SettingsError([f"state file {str(state.file('htpasswd'))!r}: {exc}"]) from None


def user_set(settings: Settings, user: str, password: str, out: Out) -> bool:
    state, entries = _htpasswd(settings)
    try:
        entries, changed = htpasswd.set_password(entries, user, password)
    except htpasswd.HtpasswdError as exc:
        raise SettingsError([f"user {user!r}: must be {exc}"]) from None
    if changed:
        state.write("htpasswd", htpasswd.render(entries))
    out(f"users: {user}: {'password set' if changed else 'ok, unchanged'} in {state.file('htpasswd')}")
    if user not in settings.users:
        out(f"note: {user} is not in the settings' `users` list; add it there to keep the inventory complete")
    return changed


def user_remove(settings: Settings, user: str, out: Out) -> bool:
    state, entries = _htpasswd(settings)
    entries, changed = htpasswd.remove(entries, user)
    if changed:
        state.write("htpasswd", htpasswd.render(entries))
    out(f"users: {user}: {'removed' if changed else 'ok, not present'} in {state.file('htpasswd')}")
    return changed


def user_list(settings: Settings, out: Out) -> list[str]:
    _, entries = _htpasswd(settings)
    for user in settings.users:
        out(f"{user:<24} {'has a password' if user in entries else 'NO PASSWORD (inv users.add ' + user + ')'}")
    for user in entries:
        if user not in settings.users:
            out(f"{user:<24} has a password (not in settings `users`)")
    return list(entries)


# --- rendering ----------------------------------------------------------------------------------


def render_stack(settings: Settings) -> bytes:
    """The stack file setup deploys, for the current certificates (made when missing) and users."""
    from ..wanted import wanted

    return wanted(settings, write_certs=True, password=None).stack


def resolved_settings(settings: Settings) -> dict:
    """The settings after defaults, as plain data for printing (no secrets are held in settings)."""
    import dataclasses

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "name"}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return str(value) if not isinstance(value, (int, str, bool, type(None))) else value

    data = plain(settings)
    data.pop("source", None)
    data["groups"] = settings.groups
    return data
