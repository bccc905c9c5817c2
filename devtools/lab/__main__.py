"""python -m devtools.lab up [--name X] [--nodes N] [--managers M] [--registry-node K]
                          [--user U --sudo none|nopasswd|password] [--bastion]
                          [--storage filesystem|s3 [--registry-nodes N]] [--ipv6]
                       | down [--name X] [--purge] | status [--name X] [--json] | list"""
from __future__ import annotations

import argparse
import json
import sys

from . import LabError, down, lab_names, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.lab",
                                     description="Local lab cluster: N Docker-in-Docker hosts forming a swarm.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    name_help = "a separate lab beside the default one (config/lab-NAME.yaml, .lab/NAME/)"
    p_up = sub.add_parser("up", help="build images if needed, start the nodes, form the swarm")
    p_up.add_argument("--name", default="", help=name_help)
    p_up.add_argument("--nodes", type=int, default=None,
                      help="number of nodes (default: size of the existing lab, else 3); "
                           "another size grows or shrinks a running lab")
    p_up.add_argument("--managers", type=int, default=1, help="nodes 1..M are swarm managers (default 1)")
    p_up.add_argument("--registry-node", type=int, default=1, help="the registry runs on node K (default 1)")
    p_up.add_argument("--user", default="root", help="SSH user of the settings (default root)")
    p_up.add_argument("--sudo", default="none", choices=["none", "nopasswd", "password"],
                      help="sudo rule of a non-root --user (password: kept in .lab/NAME/sudo-password)")
    p_up.add_argument("--bastion", action="store_true",
                      help="add a bastion container; the nodes' sshd only lets in connections from it")
    p_up.add_argument("--storage", default="filesystem", choices=["filesystem", "s3"],
                      help="s3: the lab's own Ceph RADOS Gateway (at .5 of its subnet) stores the images, "
                           "the registry runs as replicas on node1..nodeN (default filesystem)")
    p_up.add_argument("--registry-nodes", type=int, default=None,
                      help="with --storage s3: the registry runs on node1..nodeN (default all nodes, at most 3)")
    p_up.add_argument("--ipv6", action="store_true",
                      help="a dual-stack network; SSH, the swarm and the registry name use the nodes' IPv6 "
                           "addresses (filesystem storage only)")
    p_down = sub.add_parser("down", help="remove everything lab up made")
    p_down.add_argument("--name", default="", help=name_help)
    p_down.add_argument("--purge", action="store_true", help="also remove the lab images")
    p_status = sub.add_parser("status", help="show what exists and runs")
    p_status.add_argument("--name", default="", help=name_help)
    p_status.add_argument("--json", action="store_true", help="print the status dict as JSON")
    sub.add_parser("list", help="names of the named labs on this machine")
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        if args.cmd == "up":
            up(nodes=args.nodes, out=out, name=args.name, managers=args.managers,
               registry_node=args.registry_node, user=args.user, sudo=args.sudo, bastion=args.bastion,
               storage=args.storage, registry_nodes=args.registry_nodes, ipv6=args.ipv6)
        elif args.cmd == "down":
            down(purge=args.purge, out=out, name=args.name)
        elif args.cmd == "list":
            for name in lab_names():
                print(name)
        else:
            if args.json:
                print(json.dumps(status(out=lambda _l: None, name=args.name), indent=2))
            else:
                info = status(out=out, name=args.name)
                return 0 if info.get("up") else 3
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
