"""fab tasks: the same jobs as `inv`, aimed with -H.

`-H` takes inventory host names and group names (nodes, managers, workers, registry):
`fab -H nodes trust-cert`, `fab -H node2,node3 trust-cert`. Hosts are looked up in the
settings (config/cluster.yaml or env SWARM_REGISTRY_CONFIG), never connected to by name.
All named hosts run in one parallel run with one recap, not one after the other.
"""
import sys
from pathlib import Path

from fabric import task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project root holds swarm_registry/

from swarm_registry import cli

from .hosts import once_for_all_hosts


@task(help={"json": cli.HELP["json"], "check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def trust_cert(c, hosts, check=False, json=False):
    """Make the -H hosts' docker trust the registry (certs.d/HOST:PORT/ca.crt), then verify TLS from each
    (through its sshd; curl there where sshd refuses forwarding)."""
    cli.report(c, "trust-cert", json, check)
    return cli.trust_cert(c, hosts, check)


@task(help={"json": cli.HELP["json"], "check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def install_credential_helper(c, hosts, check=False, json=False):
    """Install pass + docker-credential-pass, a GPG key and `pass init` on the -H hosts; credsStore in config.json."""
    cli.report(c, "install-credential-helper", json, check)
    return cli.credential_helper(c, hosts, check)


@task(help={"json": cli.HELP["json"], "check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
@once_for_all_hosts
def login(c, hosts, check=False, password_stdin=False, json=False):
    """`docker login` on the -H hosts as registry.login_user (password: prompt, env REGISTRY_PASSWORD or stdin)."""
    cli.report(c, "login", json, check)
    return cli.login(c, hosts, check, password_stdin)


@task(help={"json": cli.HELP["json"], "check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def logout(c, hosts, check=False, json=False):
    """`docker logout` from the registry on the -H hosts."""
    cli.report(c, "logout", json, check)
    return cli.login(c, hosts, check, False, logout=True)


@task(help={"json": cli.HELP["json"], "check": cli.HELP["check"], "password_stdin": cli.HELP["password_stdin"]})
@cli.handles_errors
@once_for_all_hosts
def setup_node(c, hosts, check=False, password_stdin=False, json=False):
    """Bring the -H hosts (nodes that joined the swarm later) in: trust, credential store, login; on them only."""
    cli.report(c, "setup-node", json, check)
    return cli.setup(c, check, password_stdin, hosts)
