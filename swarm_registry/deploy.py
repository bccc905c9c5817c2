"""`setup`: every step of the recipe, in order, each changing only what the facts show differs.

preflight (facts from every host, one command each) -> directories -> htpasswd -> secrets
-> label -> image -> compose file -> stack deploy -> convergence (task running, /v2/ over
verified TLS) -> old secrets removed -> trust-cert on every node.
A cluster-wide preflight problem (manager or registry node unusable, registry node not in
the swarm, image nowhere to be had) stops the run before any change; an unreachable worker
fails alone and the others converge.
"""
from __future__ import annotations

import subprocess
import time
from typing import Callable

from . import certs, commands, htpasswd, pki, probe, render
from .operations import setup as facts_op
from .operations import trust_cert as trust_op
from .results import CHANGED, FAILED, OK, SKIPPED
from .settings import Settings, SettingsError
from .state import StateDir

Out = Callable[[str], None]


def local_image_id(image: str) -> str:
    try:
        r = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def load_htpasswd(settings: Settings) -> bytes:
    state = StateDir(settings.state_dir)
    entries = htpasswd.parse(state.read("htpasswd"))
    missing = [u for u in settings.users if u not in entries]
    if settings.registry.login_user in missing:
        raise SettingsError([f"htpasswd in {settings.state_dir} has no password for registry.login_user "
                             f"{settings.registry.login_user!r}: run `inv users.add {settings.registry.login_user}`"])
    return htpasswd.render(entries)


class Setup:
    def __init__(self, settings: Settings, out: Out, *, check: bool, password: str | None,
                 sudo_password: str | None):
        self.s = settings
        self.out = out
        self.check = check
        self.password = password
        self.sudo_password = sudo_password
        self.reg = settings.registry.node
        self.mgr = settings.manager.name
        self.bundle = certs.ensure(settings, write=not check)
        self.htpasswd = load_htpasswd(settings)
        self.names = render.secret_names(settings, self.bundle.server_cert, self.bundle.server_key)
        self.stack = render.render_stack(settings, self.names)
        self.facts: dict[str, facts_op.Facts] = {}
        from .jobs import helper_binary

        self.helper_binary = helper_binary(settings)  # verified before anything remote runs
        self.deploy_needed = False
        self.restart_needed = False
        self.image_source = ""  # the local image ID, when the image is streamed from this machine
        self.spec_differs = False
        self.replaced_tasks: set[str] = set()  # tasks that must be gone before we call it converged

    # -- planning helpers ---------------------------------------------------------------------

    def would(self, what: str) -> tuple[str, str]:
        return CHANGED, f"would {what}"

    def anchor_file(self) -> str:
        return str(certs.anchor_path(self.s))

    # -- steps ----------------------------------------------------------------------------------

    def preflight(self, session):
        name = session.host.name
        res = session.run(facts_op.command(self.s, name == self.mgr, name == self.reg))
        f = facts_op.parse(res.stdout)
        self.facts[name] = f
        if not f.docker_up:
            return FAILED, "docker does not answer on this host"
        if f.swarm_state != "active":
            return FAILED, f"not part of a swarm (state {f.swarm_state or 'inactive'}); join it first"
        if session.host.is_manager and not f.control:
            return FAILED, "listed as manager but is not a swarm manager (docker node promote it)"
        return OK, "docker answers; swarm " + ("manager" if f.control else "worker")

    def cluster_problems(self) -> list[str]:
        run = self.ex.run
        problems = []
        for host, role in ((self.mgr, "manager"), (self.reg, "registry node")):
            if run.has_failed(host):
                problems.append(f"the {role} {host} is not usable (see above)")
        if problems:
            return problems
        m, r = self.facts[self.mgr], self.facts[self.reg]
        node = self.s.registry_host.node_name
        if node not in m.nodes:
            problems.append(f"registry.node {self.reg} (swarm node name {node!r}) is not a node of the swarm "
                            f"managed by {self.mgr} (nodes: {', '.join(sorted(m.nodes)) or 'none'})")
        if not r.image_id or self.s.registry.preload_image:
            local = local_image_id(self.s.registry.image)
            if local and local != r.image_id:
                self.image_source = local
            elif not r.image_id and self.s.registry.resolve_image == "never":
                problems.append(f"image {self.s.registry.image} is neither on {self.reg} nor on this machine, and "
                                "registry.resolve_image is never: load it on the node, or set resolve_image: always")
        return problems

    def directories(self, session):
        f = self.facts[self.reg]
        todo = []
        if f.data_dir_mode == "":
            todo.append(commands.make_dirs([self.s.registry.data_dir], 0o755))
        if f.auth_dir_mode != "700":
            todo.append(commands.make_dirs([self.s.registry.config_dir], 0o755))
            todo.append(commands.make_dirs([self.s.registry.auth_dir], 0o700))
        if not todo:
            return OK, "data and auth directories in place"
        if self.check:
            return self.would("create data/auth directories")
        for cmd in todo:
            session.run(cmd).expect_ok("create directories")
        return CHANGED, f"created/fixed {self.s.registry.data_dir}, {self.s.registry.auth_dir} (0700)"

    def upload_htpasswd(self, session):
        want = f"{commands.sha256(self.htpasswd)}:600"
        if self.facts[self.reg].htpasswd == want:
            return OK, "htpasswd up to date"
        self.restart_needed = True
        if self.check:
            return self.would("upload htpasswd")
        path = f"{self.s.registry.auth_dir}/htpasswd"
        session.run(commands.converge_file(path, self.htpasswd, 0o600, secret=True)).expect_ok("upload htpasswd")
        return CHANGED, f"uploaded {path} (0600)"

    def secrets(self, session):
        have = {name for name, _ in self.facts[self.mgr].secrets}
        missing = [(n, d) for n, d in ((self.names.cert, self.bundle.server_cert),
                                       (self.names.key, self.bundle.server_key)) if n not in have]
        if not missing:
            return OK, f"secrets {self.names.cert}, {self.names.key} exist"
        if self.check:
            return self.would(f"create secrets {', '.join(n for n, _ in missing)}")
        for name, data in missing:
            session.run(commands.secret_create(name, data, self.s.registry.stack)).expect_ok(f"create secret {name}")
        return CHANGED, f"created {', '.join(n for n, _ in missing)} (content on stdin)"

    def label(self, session):
        key = self.s.registry.label
        if self.facts[self.mgr].labels.get(key) == "true":
            return OK, f"node label {key}=true present"
        if self.check:
            return self.would(f"label node {self.s.registry_host.node_name} {key}=true")
        session.run(commands.node_label_add(self.s.registry_host.node_name, key)).expect_ok("label the node")
        return CHANGED, f"labelled {self.s.registry_host.node_name} {key}=true"

    def image(self, session):
        if not self.image_source:
            have = self.facts[self.reg].image_id
            return OK, f"image {self.s.registry.image} " + ("present" if have else "will be pulled by the node")
        if self.check:
            return self.would(f"stream {self.s.registry.image} from this machine")
        save = subprocess.Popen(["docker", "save", self.s.registry.image], stdout=subprocess.PIPE)
        try:
            res = session.run(commands.Command(("docker", "load", "-q"), timeout=600), source=save.stdout)
        finally:
            save.stdout.close()
            save.wait()
        if save.returncode != 0:
            return FAILED, f"docker save {self.s.registry.image} failed on this machine (exit {save.returncode})"
        res.expect_ok("docker load")
        return CHANGED, f"streamed {self.s.registry.image} ({self.image_source[:19]}) to the node"

    def compose_file(self, session):
        want = f"{commands.sha256(self.stack)}:644"
        m = self.facts[self.mgr]
        spec_differs = (not m.service_exists or m.service_secrets != {self.names.cert, self.names.key}
                        or m.service_image != self.s.registry.image)
        self.spec_differs = spec_differs
        self.deploy_needed = spec_differs or self.facts[self.reg].compose != want
        if self.facts[self.reg].compose == want:
            return OK, "compose file up to date"
        if self.check:
            return self.would(f"write {facts_op.compose_path(self.s)}")
        session.run(commands.converge_file(facts_op.compose_path(self.s), self.stack, 0o644)).expect_ok("write the compose file")
        return CHANGED, f"wrote {facts_op.compose_path(self.s)}"

    def deploy(self, session):
        running = any(t.running for t in self.facts[self.mgr].tasks)
        if not self.deploy_needed and not (self.restart_needed and self.facts[self.mgr].service_exists):
            return OK, "stack deployed, spec unchanged" + ("" if running else " (task not running yet)")
        if self.check:
            return self.would("deploy the stack" if self.deploy_needed else "restart the registry (new htpasswd)")
        old = {t.id for t in self.facts[self.mgr].tasks if t.running}
        if self.restart_needed or self.spec_differs:
            self.replaced_tasks = old  # a new task must take over before we call it converged
        if self.deploy_needed and not self.facts[self.mgr].service_exists:
            self._wait_for_old_networks(session)
        if self.deploy_needed:
            cmd = commands.Command(("docker", "stack", "deploy", "--with-registry-auth", "--resolve-image",
                                    self.s.registry.resolve_image, "--compose-file", "-", self.s.registry.stack),
                                   stdin=self.stack, timeout=300)
            session.run(cmd).expect_ok("docker stack deploy")
            if not self.restart_needed or not self.facts[self.mgr].service_exists:
                return CHANGED, f"deployed stack {self.s.registry.stack}"
        session.run(commands.service_force_update(self.s.registry.service)).expect_ok("restart the registry")
        return CHANGED, f"deployed and restarted {self.s.registry.service} (it reads htpasswd only at start)"

    def _wait_for_old_networks(self, session, timeout: float = 30.0) -> None:
        """After `docker stack rm` (which returns early) the stack's network is still being removed;
        deploying into it then fails with 'network ... not found'. Wait until it is gone (bounded);
        a network still there after `timeout` is a stale one that deploy reuses."""
        deadline = time.monotonic() + timeout
        while session.run(commands.stack_networks(self.s.registry.stack)).stdout.strip():
            if time.monotonic() > deadline or self.ex.cancelled.is_set():
                return
            time.sleep(0.5)

    def converge(self, session):
        """Poll until one task runs on the registry node and /v2/ answers over verified TLS with our cert."""
        if self.check:
            return OK, "not waited for (check mode)"
        node = self.s.registry_host.node_name
        reg = self.s.registry
        address = probe.connect_address(reg.host, self.s.registry_host.address)
        timeout = self.s.registry.converge_timeout
        deadline = time.monotonic() + timeout
        start, last_seen, last_error = time.monotonic(), "", ""
        facts = self.facts[self.mgr] if not (self.deploy_needed or self.restart_needed) else None
        ours = pki.inspect(self.bundle.server_cert).sha256  # the certificate the new task must serve
        while True:
            if facts is None:
                tasks = facts_op.parse_tasks(session.run(commands.service_tasks(reg.service)).stdout)
            else:
                tasks = facts.tasks
            facts = None
            running = [t for t in tasks if t.running and t.node == node and t.id not in self.replaced_tasks]
            errors = [t.error for t in tasks if t.error]
            last_error = errors[0] if errors else last_error
            seen = running[0].state if running else (tasks[0].state if tasks else "no task yet")
            if seen.split(" ")[0] != last_seen:
                last_seen = seen.split(" ")[0]
                self.ex.say(f"{self.mgr:<14} {'converge':<22} ...          task: {seen}")
            if running:
                try:
                    anon = probe.get(reg.host, reg.port, "/v2/", self.anchor_file(), address=address)
                    if anon.cert_sha256 == ours and anon.status == 401:
                        return self._auth_check(address, anon, time.monotonic() - start)
                    last_error = f"/v2/ answered {anon.status} with " + (
                        "our certificate" if anon.cert_sha256 == ours else "an older certificate")
                except probe.ProbeError as exc:
                    last_error = str(exc)
            if self.ex.cancelled.is_set():
                return FAILED, "interrupted while waiting for the registry"
            if time.monotonic() > deadline:
                return FAILED, (f"registry not converged after {timeout}s on {node}: "
                                f"last task state {seen}; last error: {last_error or 'none'}")
            time.sleep(1.0)

    def _auth_check(self, address, anon, waited):
        reg = self.s.registry
        msg = f"task running on {self.s.registry_host.node_name}; /v2/ 401 without credentials over verified TLS"
        if self.password is None:
            return OK, msg + "; 200 with credentials not checked (no password given: env REGISTRY_PASSWORD)"
        authed = probe.get(reg.host, reg.port, "/v2/", self.anchor_file(), address=address,
                           auth=(reg.login_user, self.password))
        if authed.status != 200:
            return FAILED, f"/v2/ with {reg.login_user}'s credentials answered {authed.status}, not 200"
        return OK, msg + f", 200 with {reg.login_user}'s (waited {waited:.1f}s)"

    def cleanup_secrets(self, session):
        in_use = {self.names.cert, self.names.key}
        known = list(self.facts[self.mgr].secrets)
        stale = facts_op.old_secrets(known, in_use, self.s.registry.secrets_keep)
        if not stale:
            return OK, f"no old secret versions beyond the {self.s.registry.secrets_keep} kept"
        if self.check:
            return self.would(f"remove old secrets {', '.join(stale)}")
        res = session.run(commands.secret_remove(stale))
        if not res.ok:
            return OK, f"old secrets still in use, kept for now: {res.error()}"
        return CHANGED, f"removed old secrets {', '.join(stale)}"

    def trust(self, session):
        endpoint = self.s.registry.endpoint
        if facts_op.trust_converged(self.facts[session.host.name], self.bundle.trust_anchor):
            return OK, "already trusted (ca.crt sha256 and modes match; TLS verified from this machine above)"
        res = session.run(trust_op.command(endpoint, self.bundle.trust_anchor, self.check))
        return trust_op.parse(res.rc, res.stdout, res.stderr, endpoint)

    def credential_helper(self, session):
        from .operations import credentials as cred_op

        want = commands.sha256(self.helper_binary) if self.helper_binary else None
        if facts_op.store_converged(self.facts[session.host.name], want):
            return OK, "pass, docker-credential-pass, GPG key and store in place; list answers; credsStore pass"
        return cred_op.run_step(session, self.s, check=self.check, binary=self.helper_binary)

    def login(self, session):
        from .operations import login as login_op

        r = self.s.registry
        f = self.facts[session.host.name]
        if (f.stored_user == r.login_user and login_op.same_secret(f.stored_secret, self.password)
                and not login_op.plain_auth(f.docker_config, r.endpoint)):
            return OK, f"already logged in to {r.endpoint} as {r.login_user}"
        return login_op.login_step(session, r.endpoint, r.login_user, self.password, self.check)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        from .remote.executor import Executor

        hosts = list(self.s.hosts)
        with Executor(self.s, hosts, check=self.check, out=self.out, sudo_password=self.sudo_password) as ex:
            self.ex = ex
            ex.step("preflight", self.preflight)
            problems = self.cluster_problems()
            if problems:
                for p in problems:
                    ex.record(self.mgr if "manager" in p else self.reg, "preflight (cluster)", FAILED, p)
                self.out("setup stopped before any change: fix the preflight problems above")
                self.out(ex.run.recap())
                return ex.run.exit_code()
            for name, fn, host in (("directories", self.directories, self.reg),
                                   ("htpasswd", self.upload_htpasswd, self.reg),
                                   ("secrets", self.secrets, self.mgr),
                                   ("label", self.label, self.mgr),
                                   ("image", self.image, self.reg),
                                   ("compose file", self.compose_file, self.reg),
                                   ("deploy", self.deploy, self.mgr),
                                   ("converge", self.converge, self.mgr),
                                   ("old secrets", self.cleanup_secrets, self.mgr)):
                if ex.run.has_failed(self.reg) or ex.run.has_failed(self.mgr):
                    break
                ex.step(name, fn, [host])
            ex.step("trust-cert", self.trust)
            ex.step("credential-helper", self.credential_helper)
            if self.password is None:
                for host in hosts:
                    if not ex.run.has_failed(host):
                        ex.record(host, "login", SKIPPED, "no password given (env REGISTRY_PASSWORD, "
                                  "--password-stdin or a terminal prompt)")
            else:
                ex.step("login", self.login)
        self.out(ex.run.recap())
        return ex.run.exit_code()


def setup(settings: Settings, out: Out, *, check: bool = False, dry: bool = False, password: str | None = None,
          sudo_password: str | None = None) -> int:
    if dry:
        return dry_run(settings, out)
    return Setup(settings, out, check=check, password=password, sudo_password=sudo_password).run()


def dry_run(settings: Settings, out: Out) -> int:
    """Every command setup may run, per host, secrets redacted; nothing is made or connected to."""
    bundle = certs.ensure(settings, write=False)
    names = render.secret_names(settings, bundle.server_cert, bundle.server_key)
    stack = render.render_stack(settings, names)
    r, reg, mgr = settings.registry, settings.registry.node, settings.manager.name
    plan = [(h, facts_op.command(settings, h == mgr, h == reg)) for h in settings.hosts]
    plan += [(reg, commands.make_dirs([r.data_dir], 0o755)), (reg, commands.make_dirs([r.auth_dir], 0o700)),
             (reg, commands.converge_file(f"{r.auth_dir}/htpasswd", load_htpasswd(settings), 0o600, secret=True)),
             (mgr, commands.secret_create(names.cert, bundle.server_cert, r.stack)),
             (mgr, commands.secret_create(names.key, bundle.server_key, r.stack)),
             (mgr, commands.node_label_add(settings.registry_host.node_name, r.label)),
             (reg, commands.converge_file(facts_op.compose_path(settings), stack, 0o644)),
             (mgr, commands.Command(("docker", "stack", "deploy", "--with-registry-auth", "--resolve-image",
                                     r.resolve_image, "--compose-file", "-", r.stack), stdin=stack)),
             (mgr, commands.service_tasks(r.service))]
    plan += [(h, trust_op.command(r.endpoint, bundle.trust_anchor, False)) for h in settings.hosts]
    from .jobs import helper_binary
    from .operations import credentials as cred_op
    from .operations import login as login_op

    binary = helper_binary(settings)
    plan += [(h, cred_op.command(settings, check=False, binary=binary)) for h in settings.hosts]
    plan += [(h, login_op.command(r.endpoint, r.login_user, "login", "<password>")) for h in settings.hosts]
    for host, cmd in plan:
        out(f"{host}: {commands.as_run(cmd, settings.ssh.sudo).display()}")
    return 0
