"""python -m devtools.ceph up | down [--purge] | status [--json]"""
from __future__ import annotations

import argparse
import json
import sys

from . import CREDENTIALS_FILE, LabError, down, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.ceph",
        description="A real Ceph RADOS Gateway (S3) in one container on the lab network (dev tooling).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build the image if needed, start Ceph, wait until S3 answers")
    p_down = sub.add_parser("down", help="remove the container, its data volume and the credentials file")
    p_down.add_argument("--purge", action="store_true", help="also remove the Ceph images")
    p_status = sub.add_parser("status", help="show what exists and runs (exit 3 if not up)")
    p_status.add_argument("--json", action="store_true", help="print the status dict as JSON")
    args = parser.parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        if args.cmd == "up":
            info = up(out=out)
            print(f"endpoint:    {info.endpoint}")
            print(f"region:      {info.region}")
            print(f"access key:  {info.access_key}")
            print(f"credentials: {CREDENTIALS_FILE} (0600; holds the secret key)")
        elif args.cmd == "down":
            down(purge=args.purge, out=out)
        else:
            if args.json:
                info = status(out=lambda _l: None)
                print(json.dumps(info, indent=2))
            else:
                info = status(out=out)
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
