"""inv tasks: stand up and run a private Docker registry on a Docker Swarm.

Settings: config/cluster.yaml, or the file named by env SWARM_REGISTRY_CONFIG.
`inv --list` shows the tasks; `inv --help TASK` explains each flag.
"""
from invoke import Collection, task

from swarm_registry import cli
from swarm_registry.jobs import local as jobs


@task(help={"show": "print the resolved settings (defaults applied) as YAML"})
@cli.handles_errors
def check(c, show=True):
    """Validate the settings file and print the resolved settings (no secrets are kept there)."""
    import yaml

    settings = cli.load_settings()
    cli.out(f"settings ok: {settings.source} ({len(settings.hosts)} hosts)")
    if show:
        cli.out(yaml.safe_dump(jobs.resolved_settings(settings), sort_keys=False).rstrip())


@task(help={"check": "report what would be made or renewed, write nothing",
            "renew": "issue a new server certificate even if the current one is still good"})
@cli.handles_errors
def certs(c, check=False, renew=False):
    """Make or reuse the CA and the registry's TLS certificate in state_dir; print subject, SANs, expiry."""
    return jobs.make_certs(cli.load_settings(), cli.out, check=check, renew=renew)


APPLY_HELP = "then run setup: upload htpasswd and restart the registry (it reads htpasswd only at start)"


def _apply(c, settings, changed: bool) -> int:
    from swarm_registry.jobs.setup import setup

    cli.out("users: applying to the running registry with setup" if changed else "users: nothing changed; "
            "checking the registry with setup")
    return setup(settings, cli.out, mode=cli.mode(c), sudo_password=cli.sudo_password(c))


@task(help={"name": "registry user name (letters, digits, _ . @ -)",
            "password_stdin": "read the password from the first line of stdin", "apply": APPLY_HELP})
@cli.handles_errors
def add(c, name, password_stdin=False, apply=False):
    """Add a registry user, or set its password, in state_dir/htpasswd (bcrypt).

    The password comes from a hidden prompt, env REGISTRY_PASSWORD, or --password-stdin;
    never from an argument. Setting the same password again changes nothing.
    """
    settings = cli.load_settings()
    cli.check_user_name(name)
    changed = jobs.user_set(settings, name, cli.read_password(name, from_stdin=password_stdin), cli.out)
    return _apply(c, settings, changed) if apply else 0


@task(help={"name": "registry user whose password changes",
            "password_stdin": "read the password from the first line of stdin", "apply": APPLY_HELP})
@cli.handles_errors
def passwd(c, name, password_stdin=False, apply=False):
    """Change an existing registry user's password (same sources as users.add)."""
    settings = cli.load_settings()
    cli.check_user_name(name)
    if name not in jobs.user_list(settings, lambda line: None):
        raise jobs.SettingsError([f"user {name!r} has no password yet: use `inv users.add {name}`"])
    changed = jobs.user_set(settings, name, cli.read_password(name, from_stdin=password_stdin), cli.out)
    return _apply(c, settings, changed) if apply else 0


@task(help={"name": "registry user to remove", "apply": APPLY_HELP})
@cli.handles_errors
def remove(c, name, apply=False):
    """Remove a registry user from state_dir/htpasswd."""
    settings = cli.load_settings()
    cli.check_user_name(name)
    changed = jobs.user_remove(settings, name, cli.out)
    return _apply(c, settings, changed) if apply else 0


@task(name="list")
@cli.handles_errors
def list_(c):
    """List the settings' users and whether each has a password in htpasswd."""
    jobs.user_list(cli.load_settings(), cli.out)


@task
@cli.handles_errors
def render(c):
    """Print the stack (compose) file that setup deploys, for the current certificates."""
    cli.out(jobs.render_stack(cli.load_settings()).decode().rstrip())


@task(help={"check": "read each node's state and report what would change; change nothing",
            "hosts": "comma-separated hosts or groups (nodes, managers, workers, registry); default: nodes"})
@cli.handles_errors
def trust_cert(c, check=False, hosts="nodes"):
    """Make every node's docker trust the registry: certs.d/HOST:PORT/ca.crt, then verify TLS from the node.

    Mode ca installs the CA; mode self-signed the server certificate. Unchanged content
    is left alone (ok). `inv --dry trust-cert` prints the commands and connects to nothing.
    """
    return cli.trust_cert(c, [hosts], check)


@task(help={"check": "preflight and facts only: print what would change, change nothing",
            "password_stdin": "read login_user's password from stdin (for docker login and the 200 check)"})
@cli.handles_errors
def setup(c, check=False, password_stdin=False):
    """Deploy the registry on the swarm, every recipe step, idempotently; a re-run reports no change.

    Preflight (every host reachable with a verified key, docker answering, managers managing,
    registry.node in the swarm, the image available) runs before any change. Then: directories,
    htpasswd (0600), swarm secrets named by content hash (via stdin), the node label, the image
    (streamed from this machine when the node lacks it), the stack file and `docker stack deploy`,
    waiting until /v2/ answers over TLS verified against our CA, and trust-cert on every node.
    Then the credential helper and `docker login` on every node. login_user's password (for
    the login and the authenticated check) comes from env REGISTRY_PASSWORD, --password-stdin,
    or a hidden prompt on a terminal; without one, those two steps are skipped.
    """
    from swarm_registry.jobs.setup import setup as job

    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin, prompt=True)
    return job(settings, cli.out, mode=cli.mode(c, check), password=password, sudo_password=cli.sudo_password(c))


@task(help={"password_stdin": "read login_user's password from stdin (to count repositories)"})
@cli.handles_errors
def status(c, password_stdin=False):
    """Show each node (reachable, swarm role, trusts the current cert, logged in) and the registry.

    For the registry: service state and node, task, certificate subject and days to expiry
    (a warning under renew_before_days), number of users and, with a password, of repositories.
    """
    from swarm_registry.jobs import maintain

    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return maintain.status(settings, cli.out, password=password, sudo_password=cli.sudo_password(c))


@task(help={"purge_data": "also delete registry.data_dir and registry.config_dir (all pushed images!)",
            "yes": "do not ask for confirmation of --purge-data",
            "check": "report what would be removed, remove nothing"})
@cli.handles_errors
def teardown(c, purge_data=False, yes=False, check=False):
    """Remove the registry stack (waiting until its task is gone), the secrets it made and the node label.

    Registry data and auth stay unless --purge-data, which asks you to type the stack name
    (or takes --yes). Running it again is harmless. `inv setup` brings the registry back
    with the data that was kept.
    """
    from swarm_registry.jobs import maintain

    return maintain.teardown(cli.load_settings(), cli.out, purge_data=purge_data, yes=yes, check=check,
                             dry=cli.is_dry(c), sudo_password=cli.sudo_password(c))


@task(help={"check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin (for the 200-with-credentials check)"})
@cli.handles_errors
def renew_cert(c, check=False, password_stdin=False):
    """Issue a new server certificate (the CA is kept) and roll it out: new secrets, the service updated.

    In mode ca the nodes' trust is unchanged; in mode self-signed every node is re-trusted.
    Pushed images stay pullable, and no new login is needed.
    """
    from swarm_registry.jobs import maintain

    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return maintain.renew_cert(settings, cli.out, check=check, dry=cli.is_dry(c), password=password,
                               sudo_password=cli.sudo_password(c))


@task(help={"check": "report what would change, change nothing",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def credential_helper(c, check=False, hosts="nodes"):
    """Install the credential store on every node: pass + docker-credential-pass, a GPG key, pass init.

    credential_helper.source distro uses the distribution's packages; release uploads the
    pinned release binary, checked against credential_helper.sha256 on this machine first.
    The GPG key has no passphrase by default (see README); config.json gets
    "credsStore": "pass" with every other key kept. A second run changes nothing.
    """
    return cli.credential_helper(c, [hosts], check)


@task(help={"check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def login(c, check=False, password_stdin=False, hosts="nodes"):
    """`docker login` to the registry on every node as registry.login_user, the password on stdin.

    The password comes from a hidden prompt, env REGISTRY_PASSWORD or --password-stdin. The
    credential ends up in pass (docker-credential-pass), never in config.json: checked after
    login on each node. Already logged in with the same credentials: ok.
    """
    return cli.login(c, [hosts], check, password_stdin)


@task(help={"check": "report what would change, change nothing",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def logout(c, check=False, hosts="nodes"):
    """`docker logout` from the registry on every node (the credential is removed from pass)."""
    return cli.login(c, [hosts], check, False, logout=True)


@task(help={"image": "push this image (pulled on the node if missing) instead of building one from scratch",
            "keep": "keep the pushed tag in the registry",
            "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
def smoke_test(c, image=None, keep=False, password_stdin=False):
    """Prove the registry works from every node: build, push, pull everywhere, then check the API.

    Needs every node logged in (inv setup or inv login). Each step prints its result and
    time; a failure names the step, the node and the error, and exits non-zero.
    """
    from swarm_registry.jobs import smoke
    from swarm_registry.validators import Invalid, image_ref

    settings = cli.load_settings()
    if image is not None:
        try:
            image_ref(image)
        except Invalid as exc:
            raise jobs.SettingsError([f"--image {image!r}: must be {exc}"]) from None
    password = cli.read_password(settings.registry.login_user, from_stdin=password_stdin, confirm=False)
    return smoke.smoke_test(settings, cli.out, password=password, image=image, keep=keep,
                            sudo_password=cli.sudo_password(c))


@task(help={"tags": "also list each repository's tags", "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
def catalog(c, tags=False, password_stdin=False):
    """List the registry's repositories (and tags) through its API, TLS-verified against our CA, paginated."""
    from swarm_registry.jobs import smoke
    from swarm_registry.registry_http import RegistryError

    settings = cli.load_settings()
    password = cli.read_password(settings.registry.login_user, from_stdin=password_stdin, confirm=False)
    try:
        return smoke.catalog(settings, cli.out, password=password, tags=tags)
    except RegistryError as exc:
        cli.err(f"error: {exc}")
        return 1


@task(help={"nodes": "number of lab nodes (node1 is the manager and registry node)"})
@cli.handles_errors
def up(c, nodes=3):
    """Start the local lab: N containers with their own sshd and dockerd, forming a swarm; writes config/lab.yaml."""
    from devtools import lab

    try:
        path = lab.up(nodes=int(nodes), out=cli.out)
    except lab.LabError as exc:
        cli.err(f"error: {exc}")
        return 1
    cli.out(f"lab ready: SWARM_REGISTRY_CONFIG={path} inv ...")


@task(help={"purge": "also remove the cached node and registry images"})
@cli.handles_errors
def down(c, purge=False):
    """Remove the local lab: containers, network, volumes, hosts line, keys and config/lab.yaml."""
    from devtools import lab

    try:
        lab.down(purge=purge, out=cli.out)
    except lab.LabError as exc:
        cli.err(f"error: {exc}")
        return 1


ns = Collection(setup, status, teardown, renew_cert, credential_helper, login, logout, smoke_test, catalog, certs, render, trust_cert)
ns.add_collection(Collection("config", check))
ns.add_collection(Collection("users", add, passwd, remove, list_))
ns.add_collection(Collection("lab", up, down))
