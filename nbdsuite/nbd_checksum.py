"""``nbd-checksum URI``: the checksum of an NBD export, as ``GET /checksum`` computes it.

Reads the export with libnbd; block status (``base:allocation``) tells which ranges read
as zeros, and those are never read.  Prints the same JSON as http-disk-server and
ovirt-imageio, so a copy can be checked end to end against its source.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from . import blkhash
from .cli import entry_point
from .version import VERSION

# Block status is asked for in pieces of this size, so one reply stays small.
STATUS_SPAN = 1 << 30


def _extents(h, size: int) -> Iterator[tuple[int, int, bool]]:
    import nbd

    if not h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION):
        yield 0, size, False
        return
    pos = 0
    while pos < size:
        got: list[tuple[int, int, bool]] = []

        def collect(metacontext, offset, entries, err, got=got):
            if metacontext != nbd.CONTEXT_BASE_ALLOCATION:
                return 0
            at = offset
            for i in range(0, len(entries), 2):
                got.append((at, entries[i], bool(entries[i + 1] & nbd.STATE_ZERO)))
                at += entries[i]
            return 0

        h.block_status(min(STATUS_SPAN, size - pos), pos, collect)
        for start, length, zero in got:
            length = min(length, size - start)
            if start != pos or length <= 0:
                break
            yield start, length, zero
            pos += length


def checksum_uri(uri: str, algorithm: str = blkhash.DEFAULT_ALGORITHM,
                 block_size: int = blkhash.DEFAULT_BLOCK_SIZE) -> dict:
    """Connect to ``uri`` (any libnbd URI), compute and return the checksum."""
    import nbd

    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    try:
        size = h.get_size()

        def readinto(view: memoryview, offset: int) -> None:
            view[:] = h.pread(len(view), offset)

        return blkhash.checksum(size, _extents(h, size), readinto, algorithm, block_size)
    finally:
        h.shutdown()


@entry_point
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="nbd-checksum", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    ap.add_argument("uri", help="an NBD URI, e.g. nbd+unix:///?socket=/run/disk.sock")
    ap.add_argument("--algorithm", default=blkhash.DEFAULT_ALGORITHM)
    ap.add_argument("--block-size", type=int, default=blkhash.DEFAULT_BLOCK_SIZE)
    args = ap.parse_args(argv)
    try:
        blkhash.check_request(args.algorithm, args.block_size)
    except ValueError as e:
        ap.error(str(e))
    import nbd

    try:
        result = checksum_uri(args.uri, args.algorithm, args.block_size)
    except nbd.Error as e:
        print(f"nbd-checksum: {args.uri}: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
