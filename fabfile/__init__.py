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


@task(help={"check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def trust_cert(c, hosts, check=False):
    """Make the -H hosts' docker trust the registry (certs.d/HOST:PORT/ca.crt), then verify TLS from each."""
    return cli.trust_cert(c, hosts, check)


@task(help={"check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def install_credential_helper(c, hosts, check=False):
    """Install pass + docker-credential-pass, a GPG key and `pass init` on the -H hosts; credsStore in config.json."""
    return cli.credential_helper(c, hosts, check)


@task(help={"check": "report what would change, change nothing",
            "password_stdin": "read login_user's password from stdin"})
@cli.handles_errors
@once_for_all_hosts
def login(c, hosts, check=False, password_stdin=False):
    """`docker login` on the -H hosts as registry.login_user (password: prompt, env REGISTRY_PASSWORD or stdin)."""
    return cli.login(c, hosts, check, password_stdin)


@task(help={"check": cli.HELP["check"]})
@cli.handles_errors
@once_for_all_hosts
def logout(c, hosts, check=False):
    """`docker logout` from the registry on the -H hosts."""
    return cli.login(c, hosts, check, False, logout=True)
