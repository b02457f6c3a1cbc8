"""``python -m conformance run NAME... --target real|emulator`` (from ``tests/``): print
transcripts, for developing scenarios. Recordings are written by pytest (docs/conformance.md)."""

from __future__ import annotations

import argparse
import os
import sys

from . import runner, scenarios, targets


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance")
    p.add_argument("names", nargs="*")
    p.add_argument("--target", choices=("real", "emulator"), default="emulator")
    p.add_argument("--realconfd", default=os.environ.get("REALCONFD_DIR"))
    p.add_argument("--base-ip", default="127.77.0.1")
    p.add_argument("--keep", action="store_true", help="keep the node directories")
    args = p.parse_args(argv)
    reg = scenarios.load()
    names = args.names or sorted(reg)
    for name in names:
        workdir = targets.make_workdir()
        if args.target == "real":
            target = targets.RealConfD(workdir, args.realconfd)
        else:
            target = targets.Emulator(workdir)
        print("=== %s (%s)" % (name, target.name), flush=True)
        try:
            lines = runner.run(reg[name], target, args.base_ip)
        finally:
            targets.remove_workdir(workdir, args.keep)
        for line in lines:
            print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
