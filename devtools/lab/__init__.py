"""Local lab cluster: N Docker-in-Docker "hosts" with sshd, forming a real swarm.

Public API::

    path = lab.up(nodes=3, out=print)   # -> Path of config/lab.yaml; idempotent
    lab.down(purge=False, out=print)    # removes exactly what up() made
    lab.status(out=print) -> dict
    lab.LabError

Named labs run beside the default one, in the shapes users have::

    path = lab.up(nodes=4, name="shapes", managers=3, registry_node=4,
                  user="deploy", sudo="password", bastion=True)   # -> config/lab-shapes.yaml
    lab.down(name="shapes")
    lab.status(name="shapes")
    lab.up(name="v6", ipv6=True)   # a dual-stack network; SSH, swarm and registry name over IPv6

``up`` on a running lab with another ``nodes`` grows it (new workers) or shrinks it (nodes
leave the swarm and are removed). Names, subnets and files: see devtools/lab/settings.py.
"""
from .errors import LabError
from .cluster import down, lab_names, status, up

__all__ = ["LabError", "up", "down", "status", "lab_names"]
