"""inv tasks: stand up and run a private Docker registry on a Docker Swarm.

Settings: config/cluster.yaml, or the file named by env SWARM_REGISTRY_CONFIG.
`inv --list` shows the tasks, each tagged with its place: [1]..[7] the recipe in order ([5a]..[5c]:
steps of setup that also run alone), [day 2] for running the registry, [storage] for scaling out
over S3, [lab] for the local lab;
`inv --help TASK` explains each flag. Tasks that report take --json (see README).
"""
from invoke import Collection, task

from swarm_registry import cli
from swarm_registry.jobs import local as jobs


@task(help={"show": "print the resolved settings (defaults applied) as YAML"})
@cli.handles_errors
def check(c, show=True):
    """[1] Validate the settings file and print the resolved settings (no secrets are kept there)."""
    import yaml

    settings = cli.load_settings()
    cli.out(f"settings ok: {settings.source} ({len(settings.hosts)} hosts)")
    if show:
        cli.out(yaml.safe_dump(jobs.resolved_settings(settings), sort_keys=False).rstrip())


@task(help={"check": "report what would be made or renewed, write nothing",
            "renew": "issue a new server certificate even if the current one is still good"})
@cli.handles_errors
def certs(c, check=False, renew=False):
    """[2] Make or reuse the CA and the registry's TLS certificate in state_dir; print subject, SANs, expiry."""
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
    """[3] Add a registry user, or set its password, in state_dir/htpasswd (bcrypt).

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
    """[day 2] Change an existing registry user's password (same sources as users.add)."""
    settings = cli.load_settings()
    cli.check_user_name(name)
    if name not in jobs.user_list(settings, lambda line: None):
        raise jobs.SettingsError([f"user {name!r} has no password yet: use `inv users.add {name}`"])
    changed = jobs.user_set(settings, name, cli.read_password(name, from_stdin=password_stdin), cli.out)
    return _apply(c, settings, changed) if apply else 0


@task(help={"name": "registry user to remove", "apply": APPLY_HELP})
@cli.handles_errors
def remove(c, name, apply=False):
    """[day 2] Remove a registry user from state_dir/htpasswd."""
    settings = cli.load_settings()
    cli.check_user_name(name)
    changed = jobs.user_remove(settings, name, cli.out)
    return _apply(c, settings, changed) if apply else 0


@task(name="list")
@cli.handles_errors
def list_(c):
    """[day 2] List the settings' users and whether each has a password in htpasswd."""
    jobs.user_list(cli.load_settings(), cli.out)


@task
@cli.handles_errors
def render(c):
    """[4] Print the stack (compose) file that setup deploys, for the current certificates."""
    cli.out(jobs.render_stack(cli.load_settings()).decode().rstrip())


@task(help={"json": cli.HELP["json"],
            "check": "read each node's state and report what would change; change nothing",
            "hosts": "comma-separated hosts or groups (nodes, managers, workers, registry); default: nodes"})
@cli.handles_errors
def trust_cert(c, check=False, hosts="nodes", json=False):
    """[5a] Make every node's docker trust the registry: certs.d/HOST:PORT/ca.crt, then verify TLS from the node.

    Mode ca installs the CA; mode self-signed the server certificate. Unchanged content
    is left alone (ok). The TLS check runs through the node's sshd (its resolver and routes), TLS
    on this machine; curl on the node where sshd refuses forwarding. `inv --dry trust-cert` reads
    the facts and prints every command the run would send.
    """
    cli.report(c, "trust-cert", json, check)
    return cli.trust_cert(c, [hosts], check)


@task(help={"json": cli.HELP["json"],
            "check": cli.HELP["check"],
            "password_stdin": "read login_user's password from stdin (for docker login and the 200 check)",
            "hosts": "only these hosts or groups, node steps only (trust, credential store, login): "
                     "a node that joined later",
            "move_data": "registry.node changed: copy the old node's registry data to the new one (digests checked)",
            "abandon_data": "registry.node changed: leave the old node's registry data where it is"})
@cli.handles_errors
def setup(c, check=False, password_stdin=False, hosts=None, move_data=False, abandon_data=False, json=False):
    """[5] Deploy the registry on the swarm, every recipe step, idempotently; a re-run reports no change.

    Preflight (every host reachable with a verified key, docker answering, managers managing,
    registry.node in the swarm, the image available) runs before any change. Then: directories,
    htpasswd (0600), swarm secrets named by content hash (via stdin), the node label, the image
    (streamed from this machine when the node lacks it), the stack file and `docker stack deploy`,
    waiting until /v2/ answers over TLS verified against our CA, and trust-cert on every node.
    Then the credential helper and `docker login` on every node. login_user's password (for
    the login and the authenticated check) comes from env REGISTRY_PASSWORD, --password-stdin,
    or a hidden prompt on a terminal; without one, those two steps are skipped.
    """
    cli.report(c, "setup", json, check)
    return cli.setup(c, check, password_stdin, [hosts] if hosts else None, move_data, abandon_data)


@task(help={"password_stdin": "read login_user's password from stdin (to count repositories)",
            "json": cli.HELP["json"]})
@cli.handles_errors
def status(c, password_stdin=False, json=False):
    """[day 2] Show each node (reachable, swarm role, trusts the current cert, logged in) and the registry.

    A table on a terminal, plain lines otherwise, one JSON document with --json. For the
    registry: service state and node, task, image and version, certificate subject and days to
    expiry, number of users, storage and, with a password, of repositories. Exit status 1 when
    something needs attention (each named on an 'attention:' line): a node unreachable, not
    trusting the current cert or not logged in, the service not running, the certificate under
    renew_before_days. For a cron job or a monitoring probe.
    """
    import sys

    from swarm_registry.jobs import maintain

    rep = cli.report(c, "status", json)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return maintain.status(settings, rep, password=password, sudo_password=cli.sudo_password(c),
                           table=sys.stdout.isatty() and not json)


@task(help={"json": cli.HELP["json"],
            "purge_data": "also delete registry.data_dir and registry.config_dir (all pushed images!)",
            "yes": "do not ask for confirmation of --purge-data",
            "check": "report what would be removed, remove nothing"})
@cli.handles_errors
def teardown(c, purge_data=False, yes=False, check=False, json=False):
    """[day 2] Remove the registry stack (waiting until its task is gone), the secrets it made and the node label.

    Registry data and auth stay unless --purge-data, which asks you to type the stack name
    (or takes --yes). Running it again is harmless. `inv setup` brings the registry back
    with the data that was kept.
    """
    from swarm_registry.jobs import maintain

    cli.report(c, "teardown", json, check)
    return maintain.teardown(cli.load_settings(), cli.sink(), purge_data=purge_data, yes=yes, check=check,
                             dry=cli.is_dry(c), sudo_password=cli.sudo_password(c))


@task(help={"json": cli.HELP["json"],
            "check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin (for the 200-with-credentials check)"})
@cli.handles_errors
def renew_cert(c, check=False, password_stdin=False, json=False):
    """[day 2] Issue a new server certificate (the CA is kept) and roll it out: new secrets, the service updated.

    In mode ca the nodes' trust is unchanged; in mode self-signed every node is re-trusted.
    Pushed images stay pullable, and no new login is needed.
    """
    from swarm_registry.jobs import maintain

    cli.report(c, "renew-cert", json, check)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return maintain.renew_cert(settings, cli.sink(), check=check, dry=cli.is_dry(c), password=password,
                               sudo_password=cli.sudo_password(c))


@task(help={"json": cli.HELP["json"],
            "check": "report what would change, change nothing",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def credential_helper(c, check=False, hosts="nodes", json=False):
    """[5b] Install the credential store on every node: pass + docker-credential-pass, a GPG key, pass init.

    credential_helper.source distro uses the distribution's packages; release uploads the
    pinned release binary, checked against credential_helper.sha256 on this machine first.
    The GPG key has no passphrase by default (see README); config.json gets
    "credsStore": "pass" with every other key kept. A second run changes nothing.
    """
    cli.report(c, "credential-helper", json, check)
    return cli.credential_helper(c, [hosts], check)


@task(help={"json": cli.HELP["json"],
            "check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def login(c, check=False, password_stdin=False, hosts="nodes", json=False):
    """[5c] `docker login` to the registry on every node as registry.login_user, the password on stdin.

    The password comes from a hidden prompt, env REGISTRY_PASSWORD or --password-stdin. The
    credential ends up in pass (docker-credential-pass), never in config.json: checked after
    login on each node. Already logged in with the same credentials: ok.
    """
    cli.report(c, "login", json, check)
    return cli.login(c, [hosts], check, password_stdin)


@task(help={"json": cli.HELP["json"],
            "check": "report what would change, change nothing",
            "hosts": "comma-separated hosts or groups; default: nodes"})
@cli.handles_errors
def logout(c, check=False, hosts="nodes", json=False):
    """[day 2] `docker logout` from the registry on every node (the credential is removed from pass)."""
    cli.report(c, "logout", json, check)
    return cli.login(c, [hosts], check, False, logout=True)


@task(help={"json": cli.HELP["json"],
            "image": "push this image (pulled on the node if missing) instead of building one from scratch",
            "keep": "keep the pushed tag in the registry",
            "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
def smoke_test(c, image=None, keep=False, password_stdin=False, json=False):
    """[6] Prove the registry works from every node: build, push, pull everywhere, then check the API.

    Needs every node logged in (inv setup or inv login). Each step prints its result and
    time; a failure names the step, the node and the error, and exits non-zero.
    """
    from swarm_registry.jobs import smoke
    from swarm_registry.validators import Invalid, image_ref

    cli.report(c, "smoke-test", json)
    settings = cli.load_settings()
    if image is not None:
        try:
            image_ref(image)
        except Invalid as exc:
            raise jobs.SettingsError([f"--image {image!r}: must be {exc}"]) from None
    password = cli.read_password(settings.registry.login_user, from_stdin=password_stdin, confirm=False)
    return smoke.smoke_test(settings, cli.sink(), password=password, image=image, keep=keep,
                            sudo_password=cli.sudo_password(c))


@task(help={"json": cli.HELP["json"],
            "tags": "also list each repository's tags", "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
def catalog(c, tags=False, password_stdin=False, json=False):
    """[7] List the registry's repositories (and tags) through its API, TLS-verified against our CA, paginated."""
    from swarm_registry.jobs import smoke
    from swarm_registry.registry_http import RegistryError

    rep = cli.report(c, "catalog", json)
    settings = cli.load_settings()
    password = cli.read_password(settings.registry.login_user, from_stdin=password_stdin, confirm=False)
    try:
        return smoke.catalog(settings, rep, password=password, tags=tags)
    except RegistryError as exc:
        cli.err(f"error: {exc}")
        rep.add(errors=[str(exc)])
        return 1


# --- day-2 operations (README "Day-2 operations") --------------------------------------------------


@task(help={"check": cli.HELP["check"], "json": cli.HELP["json"],
            "dry_run": "only report what would be deleted (blobs, bytes): no read-only mode, nothing deleted",
            "delete_untagged": "also delete manifests no tag points at (kept by default)",
            "password_stdin": "read login_user's password from stdin (for the 200-with-credentials check)"})
@cli.handles_errors
def gc(c, dry_run=False, delete_untagged=False, check=False, password_stdin=False, json=False):
    """[day 2] Garbage-collect the registry's storage: blobs no manifest uses are deleted from data_dir.

    The registry is read-only meanwhile (pushes refused with HTTP 405, pulls served), then read-write
    again, also after a failed collection. Interrupted while read-only, it stays read-only until the
    next gc or setup puts it back. Reports the blobs and bytes reclaimed.
    """
    from swarm_registry.jobs.gc import gc as job

    cli.report(c, "gc", json, check)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return job(settings, cli.sink(), dry_run=dry_run, delete_untagged=delete_untagged, mode=cli.mode(c, check),
               password=password, sudo_password=cli.sudo_password(c))


@task(help={"image": "REPO:TAG (or REPO@sha256:DIGEST) to delete", "yes": "do not ask for confirmation",
            "check": "report what would be deleted (every tag pointing at the same manifest), delete nothing",
            "password_stdin": "read login_user's password from stdin", "json": cli.HELP["json"]})
@cli.handles_errors
def rm(c, image, yes=False, check=False, password_stdin=False, json=False):
    """[day 2] Delete an image's manifest through the registry's API (every tag pointing at it goes too).

    Refused (exit 2) when registry.delete_enabled is false. Its layers stay on disk until inv gc.
    """
    from swarm_registry.jobs import images

    cli.report(c, "images.rm", json, check)
    settings = cli.load_settings()
    images.op.parse_ref(image, settings.registry.endpoint)
    images.op.refuse_without_delete(settings)
    password = cli.read_password(settings.registry.login_user, from_stdin=password_stdin, confirm=False)
    return images.rm(settings, cli.sink(), image=image, password=password, yes=yes, mode=cli.mode(c, check))


@task(iterable=["recipient"], help={"to": "the archive file to write (0600; refused if it exists)",
            "recipient": "encrypt with age for this recipient: an age1... key, an SSH public key or a file of them "
                         "(repeatable)",
            "check": cli.HELP["check"], "json": cli.HELP["json"],
            "password_stdin": "read login_user's password from stdin (for the 200-with-credentials check)"})
@cli.handles_errors
def backup(c, to, recipient=None, check=False, password_stdin=False, json=False):
    """[day 2] Back up the registry (its data, streamed from the node) and state_dir (CA, keys, htpasswd) in one archive.

    The registry is read-only during the copy (consistent; pulls served), then read-write again. The
    archive holds a sha256 manifest of every file; with --recipient it is age-encrypted (`age -d -i KEY`
    decrypts it). Progress (bytes, rate, elapsed) on a terminal.
    """
    from swarm_registry.jobs.backup import backup as job

    cli.report(c, "backup", json, check)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return job(settings, cli.sink(), to=to, recipient=list(recipient or []), mode=cli.mode(c, check),
               password=password, sudo_password=cli.sudo_password(c))


@task(help={"from_": "the archive written by inv backup",
            "identity": "age identity file (AGE-SECRET-KEY-1...) or unencrypted SSH private key, for an encrypted one",
            "force": "replace non-empty data_dir / differing state files (both kept aside, never deleted)",
            "check": cli.HELP["check"], "json": cli.HELP["json"]})
@cli.handles_errors
def restore(c, from_, identity=None, force=False, check=False, json=False):
    """[day 2] Restore a backup: the archive is verified whole first (sha256 of every member, age's MAC), then the data
    goes to the registry node (staged, checked, renamed) and the state files to state_dir. Then run inv setup.

    Refused, before any change, for a truncated, tampered or wrongly-keyed archive, while a registry service
    exists (inv teardown first, data kept), or over non-empty data without --force.
    """
    from swarm_registry.jobs.backup import restore as job

    cli.report(c, "restore", json, check)
    return job(cli.load_settings(), cli.sink(), source=from_, identity=identity, force=force,
               mode=cli.mode(c, check), sudo_password=cli.sudo_password(c))


@task(help={"check": cli.HELP["check"], "json": cli.HELP["json"],
            "password_stdin": "read login_user's password from stdin (for the 200-with-credentials check)"})
@cli.handles_errors
def rotate_ca(c, check=False, password_stdin=False, json=False):
    """[day 2] Replace the CA: every node trusts both CAs, the new server certificate is rolled out, then the old CA is dropped.

    The previous CA stays in state_dir (ca.previous.crt/.key). A node unreachable meanwhile is brought up to
    date by the next inv setup; an interrupted rotation is resumed by running rotate-ca again.
    """
    from swarm_registry.jobs.rotate import rotate_ca as job

    cli.report(c, "rotate-ca", json, check)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return job(settings, cli.sink(), mode=cli.mode(c, check), password=password, sudo_password=cli.sudo_password(c))


# --- storage (README "Scaling out: replicas over S3") ----------------------------------------------


@task(help={"keys_stdin": "read the access key and the secret key from stdin (two lines)"})
@cli.handles_errors
def credentials(c, keys_stdin=False):
    """[storage] Keep the S3 access and secret keys in state_dir (0600), for storage.driver s3.

    Read from stdin (--keys-stdin: two lines) or hidden prompts; never from an argument. Env
    SWARM_REGISTRY_S3_ACCESS_KEY / SWARM_REGISTRY_S3_SECRET_KEY, when set, take precedence at setup.
    """
    from swarm_registry.jobs import storage

    settings = cli.load_settings()
    access, secret = cli.read_s3_keys(from_stdin=keys_stdin)
    return storage.credentials(settings, access, secret, cli.out)


@task(help={"check": cli.HELP["check"], "json": cli.HELP["json"],
            "password_stdin": "read login_user's password from stdin (for setup's 200-with-credentials check)"})
@cli.handles_errors
def migrate(c, check=False, password_stdin=False, json=False):
    """[storage] Move a filesystem registry's data into the S3 bucket, then switch the registry to s3.

    Set storage.driver: s3 (and storage.s3) first; the data is read from registry.node's data_dir. The
    registry is read-only during the copy (pulls served); the copy is resumable (run it again) and every
    object's sha256 is checked by S3. Then setup deploys the s3 registry. The data on disk is kept.
    """
    from swarm_registry.jobs import storage

    cli.report(c, "storage.migrate", json, check)
    settings = cli.load_settings()
    password = cli.optional_password(settings.registry.login_user, from_stdin=password_stdin)
    return storage.migrate_data(settings, cli.sink(), mode=cli.mode(c, check), password=password,
                                sudo_password=cli.sudo_password(c))


@task(help={"nodes": "number of lab nodes; on a running lab, nodes are added or removed",
            "name": "a separate lab beside the default one (config/lab-NAME.yaml)",
            "managers": "how many nodes are swarm managers (node1..nodeM)",
            "registry_node": "the node that runs the registry (K of nodeK)",
            "user": "SSH user on the nodes (root, or e.g. deploy)",
            "sudo": "none, nopasswd or password (for a non-root user)",
            "bastion": "reach the nodes only through a bastion container",
            "storage": "filesystem (default) or s3: the lab's own Ceph RADOS Gateway stores the images and "
                       "the registry runs as replicas",
            "registry_nodes": "with --storage s3: the registry runs on node1..nodeN (default all nodes, at most 3)",
            "ipv6": "a dual-stack lab network; SSH, the swarm and the registry name use the nodes' IPv6 addresses"})
@cli.handles_errors
def up(c, nodes=None, name="", managers=1, registry_node=1, user="root", sudo="none", bastion=False,
       storage="filesystem", registry_nodes=None, ipv6=False):
    """[lab] Start a local lab: N containers with their own sshd and dockerd, forming a swarm; writes its settings file."""
    from devtools import lab

    try:
        count = cli.positive_int("--nodes", nodes) if nodes is not None else None
        replicas = cli.positive_int("--registry-nodes", registry_nodes) if registry_nodes is not None else None
        path = lab.up(nodes=count, out=cli.out, name=name,
                      managers=int(managers), registry_node=int(registry_node), user=user, sudo=sudo,
                      bastion=bastion, storage=storage, registry_nodes=replicas, ipv6=ipv6)
    except lab.LabError as exc:
        cli.err(f"error: {exc}")
        return 2
    cli.out(f"lab ready: SWARM_REGISTRY_CONFIG={path} inv ...")


@task(help={"purge": "also remove the cached node and registry images", "name": "the named lab to remove"})
@cli.handles_errors
def down(c, purge=False, name=""):
    """[lab] Remove a local lab: containers, network, volumes, hosts line, keys and its settings file."""
    from devtools import lab

    try:
        lab.down(purge=purge, out=cli.out, name=name)
    except lab.LabError as exc:
        cli.err(f"error: {exc}")
        return 1


ns = Collection(setup, status, teardown, renew_cert, credential_helper, login, logout, smoke_test, catalog, certs, render, trust_cert)
ns.add_collection(Collection("config", check))
ns.add_collection(Collection("users", add, passwd, remove, list_))
ns.add_collection(Collection("lab", up, down))
ns.add_task(gc)
ns.add_task(backup)
ns.add_task(restore)
ns.add_task(rotate_ca)
ns.add_collection(Collection("images", rm))
ns.add_collection(Collection("storage", credentials, migrate))
