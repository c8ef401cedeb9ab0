"""``hxz-info FILE [--parent-dir DIR]...``: print an archive's summary as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from nbdsuite.cli import entry_point
from nbdsuite.version import VERSION

from . import HxzError, open_archive


@entry_point
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hxz-info", description="Describe a Hexz .hxz archive.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    ap.add_argument("file")
    ap.add_argument("--parent-dir", action="append", default=[],
                    help="extra directory to search for parent archives (repeatable)")
    ap.add_argument("--members", action="store_true", help="also list directory members")
    args = ap.parse_args(argv)
    try:
        with open_archive(args.file, parent_dirs=args.parent_dir) as arc:
            info = arc.info()
            if args.members:
                info["member_list"] = [m.__dict__ for m in arc.members()]
    except HxzError as e:
        print(f"hxz-info: {e}", file=sys.stderr)
        return 1
    json.dump(info, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
