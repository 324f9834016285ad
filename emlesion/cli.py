"""The ``emlesion`` command line.

One entry point with sub-commands. Each sub-command lives in its own module
``emlesion._cli.<name>`` exposing ``add_parser(subparsers)`` and ``run(args) -> int``,
and is imported lazily so that ``emlesion --help`` stays fast. The CLI only composes
public functions of the library.

Exit codes: 0 success, 1 an emlesion error (its message is printed, no traceback),
2 bad command-line usage (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from emlesion._version import __version__
from emlesion.errors import EmlesionError

__all__ = ["main"]

#: Sub-commands in the order ``emlesion --help`` lists them.
COMMANDS: tuple[str, ...] = ("info", "suv", "measure", "response", "sample", "batch")


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="emlesion",
        description="PET/CT DICOM to lesion measurements and treatment-response calls.",
    )
    parser.add_argument("--version", action="version", version=f"emlesion {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"emlesion._cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"emlesion._cli.{name}":
                continue  # sub-command not available in this build
            raise
        mod.add_parser(sub)
        modules[name] = mod
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser, modules = _build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return int(modules[args.command].run(args))  # type: ignore[attr-defined]
    except EmlesionError as exc:
        print(f"emlesion {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a command that stopped reading (``| head``): not an error.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
