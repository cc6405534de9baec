"""The ``deepinside`` command: parses arguments and calls the public API."""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TextIO

from .._core.allocator import keep_freed_memory
from ..errors import DeepInsideError
from . import (
    batch_cmd,
    classes_cmd,
    classmodel_cmd,
    demo_cmd,
    evaluate_cmd,
    localize_cmd,
    saliency_cmd,
    serve_cmd,
)
from ._common import Parser

_COMMANDS = (
    saliency_cmd,
    localize_cmd,
    evaluate_cmd,
    classmodel_cmd,
    batch_cmd,
    classes_cmd,
    demo_cmd,
    serve_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deepinside",
        description="See what an image classifier has learned and why it decides what it decides.",
    )
    parser.add_argument("--version", action="version", version=f"deepinside {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deepinside")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments, or exit 2 with one line; an argument the command does not
    know is told with a pointer to that command's help, not the top level's."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status: 0 done, 1 some photos or classes
    failed, 2 bad input, 130 interrupted, 141 the reader of the output went away."""
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be handled
    except BrokenPipeError:
        return _reader_went_away()


def _run(argv: Sequence[str] | None) -> int:
    args = parse_args(argv)
    keep_freed_memory()
    try:
        with warnings.catch_warnings(), _notes_as_lines():
            warnings.showwarning = functools.partial(_warning_line, set())
            return int(args.run(args) or 0)
    except BrokenPipeError:
        raise  # not a problem with --out: the reader went away
    except DeepInsideError as err:
        print(f"deepinside: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the output folder is a file, read-only, or the disk is full
        where = f"{err.filename}: " if err.filename else ""
        print(
            f"deepinside: error: {where}{err.strerror or err} "
            "(check the paths given and that --out can be written)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("deepinside: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _notes_as_lines() -> Iterator[None]:
    """deepinside's notes (log records at INFO, such as the feature layer a
    probe found) printed as ``deepinside: ...`` lines on stderr, each once."""
    log = logging.getLogger("deepinside")
    handler = _NoteLines()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


class _NoteLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.shown: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line not in self.shown:
            self.shown.add(line)
            print(f"deepinside: {line}", file=sys.stderr)


def _warning_line(
    shown: set[str],
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning as one line, as errors are printed (no source file and line),
    each text once per run (``shown``): a batch loop would repeat it for every batch."""
    if str(message) not in shown:
        shown.add(str(message))
        print(f"deepinside: warning: {message}", file=sys.stderr)


#: The exit status of a Unix tool stopped by SIGPIPE (128 + 13), as a shell shows it.
EXIT_CLOSED_PIPE = 141


def _reader_went_away() -> int:
    """Stop quietly when the reader of our output has gone (``| head``), as
    Unix tools do: no message (there is no one to read it) and the status a
    tool stopped by SIGPIPE gets, so ``set -o pipefail`` sees what it sees
    for ``cat``. Output still buffered would fail again at exit: send it to
    /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):  # not a real file (a test's capture, a closed stream)
            pass
    os.close(devnull)
    return EXIT_CLOSED_PIPE
