"""The Typer app, and `main()`: the one place where errors become a message and an exit code.

The app is built on first use, so that `nanobanana --version` (which scripts call to probe the
tool) answers without importing Typer or any command. Typer runs with `standalone_mode=False`, so
its own usage errors come back here too and are reported in the same one-line `error: …` format.
"""

# No `from __future__ import annotations` here: Typer reads the root callback's annotations, which
# name `typer`, imported inside build_app; they must be evaluated where they are written.
import os
import signal
import sys
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Optional

from . import __version__, debugging
from .errors import EXIT_CODE_HELP, ExitCode, InterruptedWaitError, NanobananaError
from .render.output import StdoutClosed

if TYPE_CHECKING:
    import typer

EXIT_CODES_EPILOG = "Exit codes: " + " · ".join(f"{int(code)} {text}" for code, text in EXIT_CODE_HELP.items())
VERSION_LINE = f"nanobanana {__version__}"


@lru_cache(maxsize=1)
def build_app() -> "typer.Typer":
    import typer

    from .commands import auth, batch, doctor, gallery, generate, help, history, jobs, sandbox, settings

    app = typer.Typer(
        name="nanobanana",
        help="Generate images with Google's nano-banana model on RunComfy, from your terminal.\n\n"
        'Try it offline first: nanobanana generate "a glass greenhouse at dusk" --sandbox',
        epilog=EXIT_CODES_EPILOG,
        no_args_is_help=True,
        # Rich tracebacks with locals could print the token; main() owns error display.
        pretty_exceptions_enable=False,
        # Plain help and usage errors: no Rich import on --help, no boxes in CI logs, one-line errors.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def show_version(value: bool) -> None:
        if value:
            typer.echo(VERSION_LINE)
            raise typer.Exit()

    @app.callback()
    def root(
        version: Annotated[
            Optional[bool],
            typer.Option("--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."),
        ] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and an HTTP log on stderr (or NANOBANANA_DEBUG=1).")] = False,
    ) -> None:
        if debug:
            debugging.enable()

    app.command("generate", epilog=EXIT_CODES_EPILOG)(generate.generate)
    app.command("status")(jobs.job_status)
    app.command("result")(jobs.job_result)
    app.command("cancel")(jobs.job_cancel)
    app.command("watch", epilog=EXIT_CODES_EPILOG)(jobs.job_watch)
    app.command("batch", epilog=EXIT_CODES_EPILOG)(batch.batch_run)
    app.add_typer(history.history_app, name="history")
    app.command("gallery")(gallery.gallery_write)
    app.command("doctor")(doctor.doctor_run)
    app.command("sandbox")(sandbox.sandbox_serve)
    app.add_typer(auth.auth_app, name="auth")
    app.add_typer(settings.config_app, name="config")
    app.command("help")(help.help_topic)
    return app


def _run_app(args: list[str]) -> int:
    """Run the app; Typer's own usage errors become `UsageError`s, reported like every other error."""
    import typer

    from .errors import UsageError

    try:
        code = build_app()(args=args, prog_name="nanobanana", standalone_mode=False)
    except typer.Abort:
        raise NanobananaError("aborted: the input ended") from None  # Ctrl-D at a prompt
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        message = exc.format_message()
        if context is not None and message == context.get_help():  # a group called without a command
            sys.stderr.write(message + "\n")
            return int(ExitCode.USAGE)
        hint = f"see `{context.command_path} --help`" if context is not None else "see `nanobanana --help`"
        if exc.exit_code != ExitCode.USAGE:
            _report(" ".join(message.split()), None)
            return exc.exit_code
        raise UsageError(_lowercase_first(" ".join(message.split())).rstrip("."), hint=hint) from None
    # Typer turns a Ctrl-C inside a command into exit code 130, silently: say it, as for any interrupt.
    if code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    return code if isinstance(code, int) else 0


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _discard_stdout() -> None:
    """The reader has gone: send what is still buffered nowhere, so closing stdout at exit cannot fail loudly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):
        pass  # not a real file (tests capture it); nothing can fail at exit then


def _report(message: str, hint: str | None) -> None:
    sys.stderr.write(f"error: {message}" + (f"; {hint}" if hint else "") + "\n")
    sys.stderr.flush()


def _second_interrupt_exits_at_once() -> None:
    """After one Ctrl-C we are only tidying up; a second one should not wait for that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Signals:
    """SIGTERM (CI cancellation, `timeout`, `docker stop`) is handled like Ctrl-C, then exits 143."""

    terminated = False

    @classmethod
    def install(cls) -> None:
        cls.terminated = False
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (an embedding application's worker)
        signal.signal(signal.SIGTERM, cls._on_sigterm)
        # Writing past `ulimit -f` must fail with EFBIG (reported, with the fix), not kill us silently.
        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    @classmethod
    def _on_sigterm(cls, signum: int, frame: object) -> None:
        cls.terminated = True
        raise KeyboardInterrupt

    @classmethod
    def interrupt_code(cls) -> int:
        return int(ExitCode.TERMINATED if cls.terminated else ExitCode.INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error ends here as one line on stderr and a documented exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["--version"], ["-V"]):
        sys.stdout.write(VERSION_LINE + "\n")
        return 0
    _Signals.install()
    try:
        return _run_app(args)
    except StdoutClosed:
        # `nanobanana history | head -1`: the reader took what it wanted. Exit 0, like a complete
        # run, so `set -o pipefail` scripts do not fail on whether the pipe filled up first.
        _discard_stdout()
        return int(ExitCode.OK)
    except NanobananaError as exc:
        if debugging.enabled():
            import traceback

            traceback.print_exc()
        if str(exc):
            _report(str(exc), exc.hint)
        if isinstance(exc, InterruptedWaitError):
            _second_interrupt_exits_at_once()
            return _Signals.interrupt_code()
        return int(exc.exit_code)
    except KeyboardInterrupt:
        _second_interrupt_exits_at_once()
        _report("terminated" if _Signals.terminated else "interrupted", None)
        return _Signals.interrupt_code()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # the last line of defence: no traceback unless asked for
        if debugging.enabled():
            raise
        _report(f"unexpected {type(exc).__name__}: {exc}", "rerun with --debug for details, and report it if it persists")
        return int(ExitCode.ERROR)
