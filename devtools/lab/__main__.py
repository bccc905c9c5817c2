"""python -m devtools.lab up [--nodes N] | down [--purge] | status"""
from __future__ import annotations

import argparse
import json
import sys

from . import LabError, down, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.lab",
                                     description="Local lab cluster: N Docker-in-Docker hosts forming a swarm.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="build images if needed, start the nodes, form the swarm")
    p_up.add_argument("--nodes", type=int, default=None,
                      help="number of nodes (default: size of the existing lab, else 3)")
    p_down = sub.add_parser("down", help="remove everything lab up made")
    p_down.add_argument("--purge", action="store_true", help="also remove the lab images")
    p_status = sub.add_parser("status", help="show what exists and runs")
    p_status.add_argument("--json", action="store_true", help="print the status dict as JSON")
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        if args.cmd == "up":
            up(nodes=args.nodes, out=out)
        elif args.cmd == "down":
            down(purge=args.purge, out=out)
        else:
            if args.json:
                print(json.dumps(status(out=lambda _l: None), indent=2))
            else:
                info = status(out=out)
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
