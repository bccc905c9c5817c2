"""Day-to-day jobs: status, teardown, renew-cert.

Each reads facts with one command per host and changes only what it must; registry data is
deleted only by teardown with --purge-data (confirmed, or --yes).
"""
from __future__ import annotations

import sys
from typing import Callable

from .. import certs, commands, facts as facts_mod, htpasswd, pki
from ..results import CHANGED, FAILED, OK
from ..settings import Settings, SettingsError
from ..state import StateDir
from ..steps import teardown as op
from .runner import mode_of
from .setup import setup

Out = Callable[[str], None]


def teardown(settings: Settings, out: Out, *, purge_data: bool = False, yes: bool = False, check: bool = False,
             dry: bool = False, confirm: Callable[[str], str] = input, sudo_password: str | None = None) -> int:
    """Remove the stack (waiting for its task), its secrets and the label; data only with purge_data."""
    r = settings.registry
    mgr, reg = settings.manager.name, r.node
    if purge_data and not (yes or check or dry):
        if not sys.stdin.isatty():
            raise SettingsError([f"--purge-data deletes {r.data_dir} and {r.config_dir} on {reg}: "
                                 "confirm with --yes when not on a terminal"])
        answer = confirm(f"Delete the registry's images and config on {reg} ({r.data_dir}, {r.config_dir})? "
                         f"Type the stack name ({r.stack}) to confirm: ")
        if answer.strip() != r.stack:
            raise SettingsError(["--purge-data: not confirmed; nothing was changed"])
    if dry:
        out(f"{mgr}: {commands.as_run(op.teardown_command(settings, False), settings.ssh.sudo).display()}")
        if purge_data:
            out(f"{reg}: {commands.as_run(op.purge_command(settings), settings.ssh.sudo).display()}")
        return 0
    from ..remote.executor import Executor

    hosts = list(dict.fromkeys([mgr, reg]))
    with Executor(settings, hosts, check=check, out=out, sudo_password=sudo_password) as ex:
        def remove(session):
            res = session.run(op.teardown_command(settings, check))
            return op.parse_teardown(res.rc, res.stdout, res.stderr, check)

        ex.step("teardown", remove, [mgr])
        if not ex.run.has_failed(mgr):
            if purge_data:
                def purge(session):
                    if check:
                        return CHANGED, f"would delete {r.data_dir} and {r.config_dir}"
                    res = session.run(op.purge_command(settings))
                    return (CHANGED, f"deleted {r.data_dir} and {r.config_dir}") if res.ok else (FAILED, res.error())

                ex.step("purge data", purge, [reg])
            else:
                ex.record(reg, "data", OK, f"kept {r.data_dir} and {r.config_dir} (--purge-data deletes them)")
    out(ex.run.recap())
    return ex.run.exit_code()


def renew_cert(settings: Settings, out: Out, *, check: bool = False, dry: bool = False,
               password: str | None = None, sudo_password: str | None = None) -> int:
    """Issue a new server certificate (the CA is kept) and roll it out with setup."""
    if not (check or dry):
        bundle = certs.ensure(settings, force_renew=True)
        info = pki.inspect(bundle.server_cert)
        out(f"certs: new server certificate {info.sha256[:16]}..., expires {info.not_after:%Y-%m-%d}")
    else:
        out("certs: would issue a new server certificate (the CA is kept)")
    return setup(settings, out, mode=mode_of(check, dry), password=password, sudo_password=sudo_password)


def status(settings: Settings, out: Out, *, password: str | None = None, sudo_password: str | None = None) -> int:
    """Per host: reachable, swarm role, trusts the current cert, logged in; then the registry itself."""
    from ..remote.executor import Executor

    anchor_sha = None
    try:
        anchor_sha = commands.sha256(certs.load_existing(settings).trust_anchor)
    except SettingsError as exc:
        out(f"warning: {exc.problems[0]}")
    mgr = settings.manager.name
    hosts = list(settings.hosts)
    found: dict[str, facts_mod.Facts] = {}
    endpoint = settings.registry.endpoint
    with Executor(settings, hosts, out=out, sudo_password=sudo_password) as ex:
        def look(session):
            names = ("docker", "trust", "login") + (facts_mod.MANAGER_FACTS if session.host.name == mgr else ())
            f = facts_mod.parse(session.run(facts_mod.command(settings, names)).stdout)
            found[session.host.name] = f
            if not f.docker_up:
                return FAILED, "docker does not answer"
            sha = f.trust.split(":", 1)[0]
            trust = ("trusts the current cert" if anchor_sha and sha == anchor_sha else
                     "does NOT trust the current cert" if sha else "trusts no cert for the registry")
            role = "manager" if f.control else ("worker" if f.swarm_state == "active" else
                                                f"not in a swarm ({f.swarm_state})")
            login = f"logged in as {f.login_user}" if f.login_user else "not logged in"
            return OK, f"{role}; {trust}; {login} ({endpoint})"

        ex.step("status", look)
    lines = registry_lines(settings, found.get(mgr), password)
    for line in lines:
        out(line)
    out(ex.run.recap(stats=False))
    return ex.run.exit_code()


def registry_lines(settings: Settings, mgr_status, password: str | None) -> list[str]:
    r = settings.registry
    lines = [f"registry {r.endpoint} (service {r.service})"]
    node = settings.registry_host.node_name
    if mgr_status is None:
        return lines + ["  service: unknown (manager not reachable)"]
    running = [t for t in mgr_status.tasks if t.running]
    if running:
        t = running[0]
        on = mgr_status.hostname(t.node_id)
        where = "on the labelled node" if on == node else f"on {on}, NOT on {node}"
        lines.append(f"  service: running {where}, task {t.id[:12]} ({t.state})")
    else:
        lines.append("  service: not running" + (f" (last error: {mgr_status.tasks[0].error})" if mgr_status.tasks
                                                 and mgr_status.tasks[0].error else ""))
    state = StateDir(settings.state_dir)
    cert = state.read(f"{r.host}.crt")
    if cert:
        info = pki.inspect(cert)
        days = info.days_left(pki.utcnow())
        warn = f"  WARNING: under renew_before_days={settings.cert.renew_before_days}: run inv renew-cert" \
            if days < settings.cert.renew_before_days else ""
        lines.append(f"  certificate: {info.subject}, SANs {', '.join(info.sans)}, {days} days to expiry{warn}")
    try:
        users = len(htpasswd.parse(state.read("htpasswd")))
    except htpasswd.HtpasswdError:
        users = "?"
    lines.append(f"  users: {users}")
    anchor = certs.anchor_path(settings)
    if password is None:
        lines.append("  repositories: not counted (no password: env REGISTRY_PASSWORD)")
    elif running and anchor.exists():
        from ..registry_http import RegistryClient, RegistryError

        try:
            client = RegistryClient(settings, password)
            lines.append(f"  repositories: {len(client.catalog())}")
        except RegistryError as exc:
            lines.append(f"  repositories: not counted ({exc})")
    return lines



