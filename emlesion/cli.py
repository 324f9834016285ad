"""The ``emlesion`` command line.

One entry point with sub-commands. Each sub-command lives in its own module
``emlesion._cli.<name>`` exposing ``add_parser(subparsers)`` and ``run(args) -> int``,
and is imported lazily so that ``emlesion --help`` stays fast. The CLI only composes
public functions of the library.

Exit codes: 0 success, 1 an emlesion error (its message is printed, no traceback; an
unexpected exception, i.e. a bug, is printed in one line too, with the traceback under
``-v``), 2 bad command-line usage (argparse, and every option value checked at parse time, before
anything is loaded).

Verbosity is one convention for every sub-command: ``-q/--quiet`` (no progress, no warning
lines; errors only) and ``-v/--verbose`` (repeatable: ``-v`` info, ``-vv`` debug log), given
before or after the sub-command (``emlesion -q measure ...`` = ``emlesion measure -q ...``).
Text printed from headers and file names goes through
:func:`emlesion._cli._common.safe_text` (control characters escaped).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from emlesion._cli._common import UsageError, safe_text
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
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="no progress and no warning lines on stderr (errors only)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules: dict[str, object] = {}
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"emlesion._cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"emlesion._cli.{name}":
                continue  # sub-command not available in this build
            raise
        _add_verbosity(mod.add_parser(sub))
        modules[name] = mod
    return parser, modules


def _add_verbosity(p: argparse.ArgumentParser) -> None:
    """``-v``/``-q`` after the sub-command too (SUPPRESS: absent unless given, so that the
    values given before the sub-command are not reset)."""
    p.add_argument("-v", "--verbose", action="count", dest="verbose_sub",
                   default=argparse.SUPPRESS, help="more log output (-v info, -vv debug)")
    p.add_argument("-q", "--quiet", action="store_true", dest="quiet",
                   default=argparse.SUPPRESS,
                   help="no progress and no warning lines on stderr (errors only)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser, modules = _build_parser()
    args = parser.parse_args(argv)
    args.verbose = int(args.verbose) + int(getattr(args, "verbose_sub", 0))
    args.quiet = bool(getattr(args, "quiet", False))
    level = logging.ERROR if args.quiet else logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _run(modules[args.command], args)
    except UsageError as exc:
        print(f"emlesion {args.command}: error: {safe_text(exc)}", file=sys.stderr)
        return 2
    except EmlesionError as exc:
        print(f"emlesion {args.command}: error: {safe_text(exc)}", file=sys.stderr)
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
    except OSError as exc:
        # A file-system failure outside the emlesion checks (a path vanished, a permission
        # changed while running): the message, not a traceback.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"emlesion {args.command}: error: {safe_text(exc.strerror or exc)}"
              f"{safe_text(where)}. Fix: check the path and its permissions", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: say so in one line; the traceback with -v
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(f"emlesion {args.command}: internal error: {type(exc).__name__}: "
              f"{safe_text(exc)}. Fix: please report it with the command line and the "
              "output of the same command with -v (the traceback)", file=sys.stderr)
        return 1


def _run(module: object, args: argparse.Namespace) -> int:
    try:
        return int(module.run(args))  # type: ignore[attr-defined]
    finally:
        _end_progress()


def _end_progress() -> None:
    """Clear a running progress line before anything else is printed (no import when no
    progress was ever created)."""
    output = sys.modules.get("emlesion.report.output")
    if output is not None:
        output.StderrProgress.close_all()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
