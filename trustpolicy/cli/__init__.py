"""Command line: parse arguments, call the library, render, return an exit code.

Each command lives in its own module exposing `register(subparsers)`; the parser it adds sets
`func(args) -> int`. Every parser of the tree (commands and their verbs) is a `_Parser`, which gives
it the shared output options (`-v|--verbosity`, `-q`): `args.verbosity` is always set when `func`
runs. Errors the tool raises on purpose (TrustPolicyError) print as one line and exit 2; bad usage
prints the usage of the command it was meant for and exits 2; Ctrl-C prints one line and exits 130;
nothing reaches the user as a traceback (except, at diagnostic verbosity, an internal error's).
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
_running = False  # main() is running: from then on a Ctrl-C is a KeyboardInterrupt that main reports


def _interrupted(signum: int, frame: object) -> None:
    """The `trustpolicy` program's Ctrl-C: inside main() a KeyboardInterrupt (main cleans up and says
    so); before main() runs (imports) or after it returned, nothing is left to clean up."""
    if _running:
        raise KeyboardInterrupt
    sys.stderr.write("trustpolicy: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


def _is_the_program() -> bool:
    """This process is the `trustpolicy` program (the console script or `python -m trustpolicy`),
    not a library user or a test run importing the module."""
    program = sys.argv[0] if sys.argv else ""
    return os.path.basename(program) in ("trustpolicy", "trustpolicy.exe", "trustpolicy-script.py") or \
        program.endswith(os.path.join("trustpolicy", "__main__.py"))


if _is_the_program() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)  # first thing: a Ctrl-C during the imports below is handled

import argparse  # noqa: E402 - after the handler, on purpose
import contextlib  # noqa: E402
from importlib import import_module  # noqa: E402

from trustpolicy import __version__  # noqa: E402
from trustpolicy._internal.verbosity import Verbosity  # noqa: E402
from trustpolicy.errors import TrustPolicyError  # noqa: E402

COMMAND_MODULES = ("inspect", "sign", "verify", "check", "init", "trust", "config", "lint", "serve")

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3

# Commands whose text output is commentary that -q silences (their exit code says it all); the
# others print a document (a listing, a report) that is the same at every verbosity, or handle
# verbosity themselves.
_SILENCED_WHEN_QUIET = ("trust", "lint")

VERBOSITY_HELP = ("how much to print: quiet (errors only), minimal, normal (default), detailed, diagnostic; "
                  "documents (--format json/sarif, XML) are the same at every level")


def _verbosity(text: str) -> Verbosity:
    try:
        return Verbosity.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _Parser(argparse.ArgumentParser):
    """Every parser of the tree: argparse exits with status 2 on bad usage, which is already our code
    for bad input; each parser knows itself (`_parser`) so that an unknown option is reported with the
    usage of the command it followed, and carries the shared output options."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.set_defaults(_parser=self)
        output = self.add_argument_group("output")
        # SUPPRESS: a level given before the command is not overwritten by the command's default
        output.add_argument("-v", "--verbosity", type=_verbosity, metavar="LEVEL", default=argparse.SUPPRESS,
                            help=VERBOSITY_HELP)
        output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=Verbosity.QUIET,
                            default=argparse.SUPPRESS, help="same as --verbosity quiet")


def build_parser(commands: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trustpolicy",
        description="Decide whether NuGet packages and restored package graphs may be trusted.",
        epilog="Exit codes: 0 ok, 1 violations or findings, 2 unusable input or bad usage, 130 interrupted (Ctrl-C).",
    )
    parser.add_argument("--version", action="version", version=f"trustpolicy {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in commands:
        import_module(f"trustpolicy.cli.{name}_cmd").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit code. `argv` None: this process's arguments."""
    global _running
    standalone = argv is None
    argv = sys.argv[1:] if argv is None else argv
    verbosity = Verbosity.NORMAL
    _running = True
    try:
        args = _parse(argv)
        if args is None:
            return EXIT_ERROR
        verbosity = args.verbosity
        _import_lxml()
        with _quiet_output(args):
            return int(args.func(args))
    except TrustPolicyError as error:
        print(f"trustpolicy: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one line, even if Ctrl-C is pressed again
        print("trustpolicy: interrupted", file=sys.stderr)
        if not standalone:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as error:
        if verbosity >= Verbosity.DIAGNOSTIC:
            import traceback

            traceback.print_exc()
        print(f"trustpolicy: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        _running = False


def _parse(argv: list[str]) -> argparse.Namespace | None:
    """The arguments, or None (usage printed) when no command was given. Bad usage exits 2 with the
    usage of the command (or verb) it belongs to."""
    # Import only the command being run (the others' imports cost a warm check ~0.2 s); the full
    # list is built for top-level help and errors.
    command = next((word for word in argv if word in COMMAND_MODULES), None)
    parser = build_parser((command,) if command else COMMAND_MODULES)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        before_command = command is None or argv.index(unknown[0]) < argv.index(command)
        owner = parser if before_command else args._parser
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return None
    if not hasattr(args, "verbosity"):
        args.verbosity = Verbosity.NORMAL
    return args


def _import_lxml() -> None:
    """Import lxml (every command reads XML) with Ctrl-C held back: its module initialisation can
    swallow a KeyboardInterrupt raised inside it, and the command would then run on as if no Ctrl-C
    had been pressed. A Ctrl-C pressed meanwhile is delivered as soon as the import is done."""
    if "lxml.etree" in sys.modules:
        return
    if sys.platform == "win32":  # no signal mask to hold it back with
        import lxml.etree
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        import lxml.etree  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def _quiet_output(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """-q for the commands that do not handle verbosity themselves: their text stdout is commentary."""
    if args.verbosity is not Verbosity.QUIET or args.command not in _SILENCED_WHEN_QUIET \
            or getattr(args, "format", "text") != "text":
        yield
        return
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


if __name__ == "__main__":
    sys.exit(main())
