"""Local lab cluster: N Docker-in-Docker "hosts" with sshd, forming a real swarm.

Public API::

    path = lab.up(nodes=3, out=print)   # -> Path of config/lab.yaml; idempotent
    lab.down(purge=False, out=print)    # removes exactly what up() made
    lab.status(out=print) -> dict
    lab.LabError
"""
from .errors import LabError
from .cluster import down, status, up

__all__ = ["LabError", "up", "down", "status"]
