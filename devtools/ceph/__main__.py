"""python -m devtools.ceph up [--name X] | down [--name X] [--purge] | status [--name X] [--json]"""
from __future__ import annotations

import argparse
import json
import sys

from . import LabError, credentials_file, down, status, up
from devtools.lab import settings as S


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.ceph",
        description="A real Ceph RADOS Gateway (S3) in one container on the lab network (dev tooling).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    name_help = "the Ceph of the named lab X (on its network), not the default lab's"
    p_up = sub.add_parser("up", help="build the image if needed, start Ceph, wait until S3 answers")
    p_up.add_argument("--name", default="", help=name_help)
    p_down = sub.add_parser("down", help="remove the container, its data volume and the credentials file")
    p_down.add_argument("--name", default="", help=name_help)
    p_down.add_argument("--purge", action="store_true", help="also remove the Ceph images")
    p_status = sub.add_parser("status", help="show what exists and runs (exit 3 if not up)")
    p_status.add_argument("--name", default="", help=name_help)
    p_status.add_argument("--json", action="store_true", help="print the status dict as JSON")
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        if args.cmd == "up":
            info = up(out=out, name=args.name)
            print(f"endpoint:    {info.endpoint}")
            print(f"region:      {info.region}")
            print(f"access key:  {info.access_key}")
            print(f"credentials: {credentials_file(S.lab(args.name))} (0600; holds the secret key)")
        elif args.cmd == "down":
            down(purge=args.purge, out=out, name=args.name)
        else:
            if args.json:
                info = status(out=lambda _l: None, name=args.name)
                print(json.dumps(info, indent=2))
            else:
                info = status(out=out, name=args.name)
            return 0 if info.get("up") else 3
    except LabError as exc:
        print(f"ceph: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ceph: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
