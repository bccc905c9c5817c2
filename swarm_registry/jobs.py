"""The jobs behind the CLI tasks: settings in, a Run and an exit status out.

Both `tasks.py` (inv) and `fabfile/` (fab) call these; they only parse arguments and
print. Remote jobs import the execution layer lazily, so `--dry` and local tasks never
load fabric or open a connection.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from . import certs, commands, htpasswd, pki, render
from .operations import trust_cert as trust_op
from .settings import Settings, SettingsError
from .state import StateDir

Out = Callable[[str], None]


def describe_cert(cert_pem: bytes, now: dt.datetime | None = None) -> list[str]:
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
    """The stack file for the current certificates (they are made when missing)."""
    bundle = certs.ensure(settings, write=True)
    names = render.secret_names(settings, bundle.server_cert, bundle.server_key)
    return render.render_stack(settings, names)


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


# --- remote: trust-cert ----------------------------------------------------------------------


def trust_cert(settings: Settings, hosts: list[str], out: Out, *, check: bool = False, dry: bool = False,
               sudo_password: str | None = None) -> int:
    """Install the trust anchor as certs.d/HOST:PORT/ca.crt on `hosts`; return the exit status."""
    anchor, made = certs.trust_anchor(settings, write=not (check or dry))
    if made:
        out(f"certs: {'would make' if check or dry else 'made'} {', '.join(made)} in {settings.state_dir}")
    endpoint = settings.registry.endpoint
    if dry:
        cmd = commands.as_run(trust_op.command(endpoint, anchor, check), settings.ssh.sudo)
        for host in hosts:
            out(f"{host}: {cmd.display()}")
        return 0
    from .remote.executor import Executor

    with Executor(settings, hosts, check=check, out=out, sudo_password=sudo_password) as ex:
        def step(session):
            res = session.run(trust_op.command(endpoint, anchor, check))
            return trust_op.parse(res.rc, res.stdout, res.stderr, endpoint)

        ex.step("trust-cert", step)
    out(ex.run.recap())
    return ex.run.exit_code()


# --- remote: login / logout -----------------------------------------------------------------


def login(settings: Settings, hosts: list[str], out: Out, *, password: str | None, logout: bool = False,
          check: bool = False, dry: bool = False, sudo_password: str | None = None) -> int:
    """docker login (password on stdin) or logout on `hosts`; already logged in with it: ok."""
    from .operations import login as login_op

    r = settings.registry
    if dry:
        action = "logout" if logout else "login"
        for host in hosts:
            out(f"{host}: {commands.as_run(login_op.command(r.endpoint, r.login_user, 'facts'), settings.ssh.sudo).display()}")
            out(f"{host}: {commands.as_run(login_op.command(r.endpoint, r.login_user, action, password), settings.ssh.sudo).display()}")
        return 0
    from .remote.executor import Executor

    with Executor(settings, hosts, check=check, out=out, sudo_password=sudo_password) as ex:
        if logout:
            ex.step("logout", lambda s: login_op.logout_step(s, r.endpoint, r.login_user, check))
        else:
            ex.step("login", lambda s: login_op.login_step(s, r.endpoint, r.login_user, password, check))
    out(ex.run.recap())
    return ex.run.exit_code()


# --- remote: credential helper --------------------------------------------------------------


def helper_binary(settings: Settings) -> bytes | None:
    """With credential_helper.source: release, the verified binary (downloaded once, cached); else None."""
    if settings.credential_helper.source != "release":
        return None
    from .release import fetch_binary

    return fetch_binary(settings)


def credential_helper(settings: Settings, hosts: list[str], out: Out, *, check: bool = False, dry: bool = False,
                      sudo_password: str | None = None) -> int:
    """Install pass + docker-credential-pass, a GPG key, `pass init`, credsStore in config.json."""
    from .operations import credentials as cred_op

    binary = helper_binary(settings)
    if dry:
        cmd = commands.as_run(cred_op.command(settings, check=check, binary=binary), settings.ssh.sudo)
        for host in hosts:
            out(f"{host}: {cmd.display()}")
        return 0
    from .remote.executor import Executor

    with Executor(settings, hosts, check=check, out=out, sudo_password=sudo_password) as ex:
        ex.step("credential-helper", lambda s: cred_op.run_step(s, settings, check=check, binary=binary))
    out(ex.run.recap())
    return ex.run.exit_code()
