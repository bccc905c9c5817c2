"""Day-to-day jobs: status, teardown, renew-cert.

Each reads facts with one command per host and changes only what it must; registry data is
deleted only by teardown with --purge-data (confirmed, or --yes).
"""
from __future__ import annotations

import sys
from typing import Callable

from .. import certs, commands, facts as facts_mod, htpasswd, pki
from ..results import CHANGED, FAILED, OK, Report
from ..settings import Settings, SettingsError
from ..state import StateDir
from ..steps import bucket as bucket_step, migrate, teardown as op
from .runner import manager_problem, mode_of, read_facts
from .setup import first_manager, setup

Out = Callable[[str], None]


def teardown(settings: Settings, out: Out, *, purge_data: bool = False, yes: bool = False, check: bool = False,
             dry: bool = False, confirm: Callable[[str], str] = input, sudo_password: str | None = None) -> int:
    """Remove the stack (waiting for its task), its secrets and the label; data only with purge_data."""
    r = settings.registry
    mgr, reg, regs = settings.manager.name, r.node, list(r.nodes)
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
        out(f"{reg}: {commands.as_run(op.wait_gone_command(settings), settings.ssh.sudo).display()}")
        if purge_data:
            out(f"{reg}: {commands.as_run(op.purge_command(settings), settings.ssh.sudo).display()}")
        return 0
    from ..remote.executor import Executor

    hosts = list(dict.fromkeys([mgr, *regs]))
    with Executor(settings, hosts, check=check, out=out, sudo_password=sudo_password) as ex:
        def remove(session):
            res = session.run(op.teardown_command(settings, check))
            return op.parse_teardown(res.rc, res.stdout, res.stderr, check)

        ex.step("teardown", remove, [mgr])
        if not check and not ex.run.has_failed(mgr):
            def gone(session):  # the manager cannot see a task's container on another node: ask that node
                res = session.run(op.wait_gone_command(settings))
                return (OK, "no registry container left on the registry node") if res.ok else (FAILED, res.error())

            ex.step("task gone", gone, regs)
        if not ex.run.has_failed(mgr) and not any(ex.run.has_failed(n) for n in regs):
            if purge_data:
                def purge(session):
                    if check:
                        return CHANGED, f"would delete {r.data_dir} and {r.config_dir}"
                    res = session.run(op.purge_command(settings))
                    return (CHANGED, f"deleted {r.data_dir} and {r.config_dir}") if res.ok else (FAILED, res.error())

                ex.step("purge data", purge, regs)
            else:
                for n in regs:
                    ex.record(n, "data", OK, f"kept {r.data_dir} and {r.config_dir} (--purge-data deletes them)")
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


def status(settings: Settings, out: Out, *, password: str | None = None, sudo_password: str | None = None,
           table: bool = False) -> int:
    """Per node: role, reachable, trusts the current cert, logged in, runs the registry's task; then the
    registry: service, image and version, certificate expiry, users, storage. `table`: one table (for a
    terminal) instead of the result lines. Exit 1 when something needs attention (see `attention`)."""
    from ..remote.executor import Executor

    anchor_sha, cert_problem = None, None
    try:
        anchor, missing = certs.trust_anchor(settings, write=False)  # what the nodes must trust, due or not
        if missing:
            cert_problem = f"no {', '.join(missing)} in {settings.state_dir}: run inv certs (or inv setup)"
        else:
            anchor_sha = commands.sha256(anchor)
    except SettingsError as exc:
        cert_problem = exc.problems[0]
    if cert_problem:
        out(f"warning: {cert_problem}")
    # the swarm as the first manager, in inventory order, that answers sees it (as setup picks one): every
    # listed manager reads it, so a manager that is down leaves the registry known
    managers = settings.managers
    hosts = list(settings.hosts)
    found: dict[str, facts_mod.Facts] = {}
    endpoint = settings.registry.endpoint
    keys_stdin, keys_problem = _s3_keys(settings)
    with Executor(settings, hosts, out=out, sudo_password=sudo_password, progress=not table) as ex:
        def look(session):
            name = session.host.name
            names = ("docker", "trust", "login") + (facts_mod.MANAGER_FACTS if name in managers else ()) + (
                ("registry_version",) if name == settings.registry.node else ())
            stdin = None
            if keys_stdin and bucket_step.fact_names(settings, name):
                names, stdin = names + bucket_step.fact_names(settings, name), keys_stdin
            f = facts_mod.parse(read_facts(session, settings, names, stdin, hold=False,
                                           note=ex.waiting(name, "status")).stdout)
            found[session.host.name] = f
            if not f.docker_up:
                return FAILED, "docker does not answer"
            if f.manager_error and f.control:  # (not a manager, or not in a swarm: the line below says so)
                return FAILED, manager_problem(f)
            sha = f.trust.split(":", 1)[0]
            trust = ("trusts no cert for the registry" if not sha else "trusts the current cert" if sha == anchor_sha
                     else "does NOT trust the current cert" if anchor_sha else "trusts a cert (none in state_dir)")
            login = f"logged in as {f.login_user}" if f.login_user else "not logged in"
            return OK, f"{_role(f)}; {trust}; {login} ({endpoint})"

        ex.step("status", look)
        mgr = first_manager(settings, found, [h for h in hosts if not ex.run.has_failed(h)]) or managers[0]
        # the registry's API while the connections are open (ssh.forward_registry goes over them)
        registry = registry_status(settings, found.get(mgr), password)
        running_version(registry, found.get(settings.registry.node), found.get(mgr))
        registry["replicas"] = replicas(settings, registry)
    registry["storage_health"] = storage_health(settings, found.get(settings.registry.node), keys_problem)
    nodes = [node_status(settings, h, found.get(h), ex.run.failed_hosts().get(h), anchor_sha, registry)
             for h in hosts]
    problems = attention(settings, nodes, registry, cert_problem)
    if isinstance(out, Report):
        out.add(status={"nodes": nodes, "registry": registry}, attention=problems)
    if table:
        for line in status_table(nodes, registry):
            out(line)
    else:
        for line in registry_lines(registry):
            out(line)
    for problem in problems:
        out(f"attention: {problem}")
    if not table:
        out(ex.run.recap(stats=False))
    return 1 if problems or ex.run.exit_code() else 0


def _s3_keys(settings: Settings) -> tuple[bytes | None, str | None]:
    """The S3 keys as the bucket fact's stdin, or why there are none (storage s3 only)."""
    if settings.storage.driver != "s3":
        return None, None
    from .. import s3creds

    try:
        keys = s3creds.load(settings.state_dir)
    except SettingsError as exc:
        return None, exc.problems[0]
    if keys is None:
        return None, "no S3 keys: inv storage.credentials"
    return keys.stdin(), None


def replicas(settings: Settings, reg: dict) -> list[dict]:
    """Each registry node's replica: its task runs there, and what its /v2/ answers without credentials
    (401: serving; 503: its storage health check fails; None: no answer)."""
    from ..registry_http import RegistryError, probe

    out = []
    several = len(settings.registry.nodes) > 1
    for n in settings.registry.nodes:
        node = settings.hosts[n].node_name
        row = {"host": n, "running": (node in reg["running_on"]) if reg["running"] is not None else None,
               "answers": None, "error": None}
        if row["running"] and certs.anchor_path(settings).exists():
            try:
                row["answers"] = probe(settings, "/v2/", address=settings.hosts[n].address if several else None).status
            except RegistryError as exc:
                row["error"] = str(exc)
        out.append(row)
    return out


def storage_health(settings: Settings, reg_f, keys_problem: str | None) -> dict:
    """The storage backend as the first registry node sees it: filesystem (its disk), or the S3 bucket
    (answers to our keys: the bucket fact)."""
    if settings.storage.driver != "s3":
        return {"driver": "filesystem", "ok": True, "detail": f"{settings.registry.data_dir} on {settings.registry.node}"}
    s3 = settings.storage.s3
    if keys_problem:
        return {"driver": "s3", "ok": False, "detail": keys_problem}
    code = reg_f.bucket if reg_f is not None else ""
    if code == "200":
        return {"driver": "s3", "ok": True, "detail": f"bucket {s3.bucket} answers at {s3.endpoint}"}
    from ..steps import bucket as bucket_step

    detail = bucket_step.problem(code, s3, settings.registry.node) if reg_f is not None else "registry node not reached"
    return {"driver": "s3", "ok": False, "detail": detail}


def running_version(registry: dict, reg_f: facts_mod.Facts | None, mgr_f: facts_mod.Facts | None) -> None:
    """The version the registry's running binary reports (over the image tag's), and read-only mode
    (left by an interrupted gc or backup: inv setup puts it back read-write)."""
    from ..steps import readonly

    if reg_f is not None and reg_f.registry_version:
        registry["version"] = reg_f.registry_version
        registry["running_image"] = reg_f.registry_image
    registry["read_only"] = readonly.is_readonly(mgr_f) if mgr_f is not None and mgr_f.service else None


def _role(f: facts_mod.Facts) -> str:
    return "manager" if f.control else ("worker" if f.swarm_state == "active" else
                                        f"not in a swarm ({f.swarm_state or 'unknown'})")


def node_status(settings: Settings, host: str, f: facts_mod.Facts | None, error: str | None,
                anchor_sha: str | None, registry: dict) -> dict:
    """One node as status sees it (None: not known, e.g. the node was not reached)."""
    reachable = f is not None
    up = reachable and f.docker_up
    sha = f.trust.split(":", 1)[0] if up else ""
    return {"host": host, "reachable": reachable, "docker": up if reachable else None,
            "role": _role(f) if up else None,
            "trusts_current_cert": (bool(anchor_sha) and sha == anchor_sha) if up and anchor_sha else None,
            "logged_in": (f.login_user == settings.registry.login_user) if up else None,
            "login_user": (f.login_user or None) if up else None,
            "registry_running": (settings.hosts[host].node_name in registry["running_on"])
            if registry["running"] is not None else None,
            "error": error.split(": ", 1)[1] if error and ": " in error else error}


def registry_status(settings: Settings, mgr_status, password: str | None) -> dict:
    """The registry as the manager's facts and state_dir show it (None: not known)."""
    r = settings.registry
    reg: dict = {"endpoint": r.endpoint, "service": r.service, "node": settings.registry_host.node_name,
                 "running": None, "running_on": [], "task": None, "last_error": None,
                 "image": r.image, "version": None, "storage": "filesystem",
                 "certificate": None, "users": None, "repositories": None}
    # not known when the swarm did not answer its manager (a manager outside any swarm runs no service)
    if mgr_status is not None and not (mgr_status.manager_error and mgr_status.control):
        running = [t for t in mgr_status.tasks if t.running]
        reg["running"] = bool(running)
        reg["running_on"] = [mgr_status.hostname(t.node_id) for t in running]
        reg["task"] = running[0].id[:12] if running else None
        if not running and mgr_status.tasks and mgr_status.tasks[0].error:
            reg["last_error"] = mgr_status.tasks[0].error
        spec = ((mgr_status.service or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        if spec.get("Image"):
            reg["image"] = spec["Image"].split("@", 1)[0]
        env = dict(e.split("=", 1) for e in spec.get("Env") or [] if "=" in e)
        reg["storage"] = env.get("REGISTRY_STORAGE") or ("s3" if migrate.runs_s3(mgr_status) else "filesystem")
    last = reg["image"].rsplit("/", 1)[-1]
    reg["version"] = last.split(":", 1)[1] if ":" in last else None
    state = StateDir(settings.state_dir)
    cert = state.read(f"{r.host}.crt")
    if cert:
        info = pki.inspect(cert)
        reg["certificate"] = {"subject": info.subject, "sans": list(info.sans), "sha256": info.sha256,
                              "not_after": f"{info.not_after:%Y-%m-%d}", "days_left": info.days_left(pki.utcnow()),
                              "renew_before_days": settings.cert.renew_before_days}
    try:
        reg["users"] = len(htpasswd.parse(state.read("htpasswd")))
    except htpasswd.HtpasswdError:
        pass
    if password is None:
        reg["repositories_note"] = "no password: env REGISTRY_PASSWORD or --password-stdin"
    elif not reg["running"] or not certs.anchor_path(settings).exists():
        reg["repositories_note"] = "the registry is not running"
    else:
        from ..registry_http import RegistryClient, RegistryError

        try:
            reg["repositories"] = len(RegistryClient(settings, password).catalog())
        except RegistryError as exc:
            reg["repositories_note"] = str(exc)
    return reg


def attention(settings: Settings, nodes: list[dict], reg: dict, cert_problem: str | None) -> list[str]:
    """What needs a person: a node unreachable, not in the swarm, not trusting the current certificate or
    not logged in; the service not running (or not on its node); the certificate missing or due."""
    out = []
    for n in nodes:
        h = n["host"]
        if not n["reachable"] or not n["docker"]:
            out.append(f"{h}: {n['error'] or 'unreachable'}")
            continue
        if not n["role"] in ("manager", "worker"):
            out.append(f"{h}: {n['role']}")
        if n["trusts_current_cert"] is False:
            out.append(f"{h}: does not trust the current certificate: run inv trust-cert")
        if not n["logged_in"]:
            out.append(f"{h}: not logged in as {settings.registry.login_user}: run inv login")
    if reg["running"] is False:
        out.append("registry: service not running" + (f" (last error: {reg['last_error']})" if reg["last_error"] else ""))
    elif reg["running"] and reg["node"] not in reg["running_on"]:
        out.append(f"registry: running on {', '.join(reg['running_on'])}, not on {reg['node']}")
    for rep in reg.get("replicas") or []:
        if rep["running"] is False and rep["host"] != reg["node"]:
            out.append(f"registry: no replica running on {rep['host']}")
        elif rep["running"] and rep["answers"] != 401:
            why = (f"answers {rep['answers']}" + (" (its storage health check fails)" if rep["answers"] == 503 else "")
                   if rep["answers"] else f"does not answer: {rep['error']}")
            out.append(f"registry: the replica on {rep['host']} {why}")
    health = reg.get("storage_health")
    if health and not health["ok"]:
        out.append(f"storage: {health['detail']}")
    if reg.get("read_only"):
        out.append("registry: read-only (pushes refused): a gc or backup runs, or one was interrupted: inv setup "
                   "puts it back read-write")
    c = reg["certificate"]
    if cert_problem:
        out.append(f"certificate: {cert_problem}")
    elif not c:
        out.append(f"certificate: no server certificate in {settings.state_dir}: run inv certs (or inv setup)")
    elif c["days_left"] < c["renew_before_days"]:
        out.append(f"certificate: {c['days_left']} days to expiry, under renew_before_days={c['renew_before_days']}:"
                   " run inv renew-cert")
    return out


def _health(reg: dict) -> str:
    h = reg.get("storage_health")
    return f" ({'ok' if h['ok'] else 'PROBLEM'}: {h['detail']})" if h and reg["storage"] == "s3" else ""


def _replica(r: dict) -> str:
    if r["running"] is None:
        return "unknown"
    if not r["running"]:
        return "NOT running"
    return f"running, /v2/ answers {r['answers']}" if r["answers"] else f"running, no answer ({r['error']})"


def _yes(value) -> str:
    return "?" if value is None else "yes" if value else "NO"


def status_table(nodes: list[dict], reg: dict) -> list[str]:
    """The terminal form: one row per node, then the registry."""
    rows = [("NODE", "ROLE", "REACHABLE", "TRUSTS CERT", "LOGGED IN", "REGISTRY")]
    for n in nodes:
        login = _yes(n["logged_in"]) + (f" ({n['login_user']})" if n["login_user"] else "")
        replica = "running" if n["registry_running"] else "NOT running" if (
            n["host"] == reg["node"] and reg["running"] is not None) else "-"
        rows.append((n["host"], n["role"] or "?", _yes(n["reachable"] and n["docker"]), _yes(n["trusts_current_cert"]),
                     login, replica))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    c = reg["certificate"]
    version = f" (version {reg['version']})" if reg["version"] else ""
    lines += ["", f"registry     {reg['endpoint']} (service {reg['service']})",
              "service      " + ("unknown (manager not reachable)" if reg["running"] is None else
                                  f"running on {', '.join(reg['running_on'])}, task {reg['task']}" if reg["running"]
                                  else "NOT running" + (f" ({reg['last_error']})" if reg["last_error"] else "")),
              f"image        {reg['image']}{version}",
              "certificate  " + (f"{c['subject']}, expires {c['not_after']} ({c['days_left']} days)" if c else "none"),
              f"users        {'?' if reg['users'] is None else reg['users']}",
              f"storage      {reg['storage']}" + _health(reg)]
    lines += [f"replica      {r['host']}: {_replica(r)}" for r in reg.get("replicas") or [] if len(reg["replicas"]) > 1]
    if reg["repositories"] is not None:
        lines.append(f"repositories {reg['repositories']}")
    return lines


def registry_lines(reg: dict) -> list[str]:
    """The plain form (not a terminal: a log, a pipe): one fact per line."""
    lines = [f"registry {reg['endpoint']} (service {reg['service']})"]
    if reg["running"] is None:
        return lines + ["  service: unknown (manager not reachable)"]
    if reg["running"]:
        on = ", ".join(reg["running_on"])
        where = "on the labelled node" if reg["node"] in reg["running_on"] else f"on {on}, NOT on {reg['node']}"
        lines.append(f"  service: running {where}, task {reg['task']}")
    else:
        lines.append("  service: not running" + (f" (last error: {reg['last_error']})" if reg["last_error"] else ""))
    lines.append(f"  image: {reg['image']}" + (f" (version {reg['version']})" if reg["version"] else ""))
    c = reg["certificate"]
    if c:
        lines.append(f"  certificate: {c['subject']}, SANs {', '.join(c['sans'])}, {c['days_left']} days to expiry")
    lines.append(f"  users: {'?' if reg['users'] is None else reg['users']}")
    lines.append(f"  storage: {reg['storage']}" + _health(reg))
    reps = reg.get("replicas") or []
    if len(reps) > 1:
        lines += [f"  replica {r['host']}: {_replica(r)}" for r in reps]
    if reg["repositories"] is not None:
        lines.append(f"  repositories: {reg['repositories']}")
    else:
        lines.append(f"  repositories: not counted ({reg.get('repositories_note')})")
    return lines



