"""The Typer app, and `main()`: the one place where errors become a message and an exit code.

The app is built on first use, so that `nanobanana --version` (which scripts call to probe the
tool) answers without importing Typer or any command. Typer runs with `standalone_mode=False`, so
its own usage errors come back here too and are reported in the same one-line `error: …` format.
"""

# No `from __future__ import annotations` here: Typer reads the root callback's annotations, which
# name `typer`, imported inside build_app; they must be evaluated where they are written.
import gc
import os
import signal
import sys
import threading
from functools import cache, lru_cache
from importlib import import_module
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Optional

from . import __version__, debugging, invocation
from .errors import EXIT_CODE_HELP, ExitCode, InterruptedWaitError, NanobananaError, StdoutClosed

if TYPE_CHECKING:
    import typer

EXIT_CODES_EPILOG = "Exit codes: " + " · ".join(f"{int(code)} {text}" for code, text in EXIT_CODE_HELP.items())
VERSION_LINE = f"nanobanana {__version__}"
GC_YOUNG_THRESHOLD = 50_000  # see run()


class CommandEntry(NamedTuple):  # not a dataclass: `dataclasses` would be imported for --help alone
    """One command of the root app. Adding a command is adding one entry to `COMMANDS`."""

    name: str
    # "module:attribute" in nanobanana_cli.commands: a function (a command) or a Typer (a command group)
    target: str
    # The root --help line, shown without importing the module; tests check it is the command's own first sentence.
    summary: str
    exit_codes_epilog: bool = False

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(import_module(f".commands.{module}", __package__), attribute)

    def register(self, app: "typer.Typer") -> None:
        import typer

        target = self.load()
        # the summary as short help: a command list shows it whole (wrapped), never cut with "..."
        if isinstance(target, typer.Typer):
            for command in target.registered_commands:  # and in the group's own listing, each subcommand's whole
                if command.short_help is None:
                    command.short_help = _summary(command.help or getattr(command.callback, "__doc__", None) or "")
            app.add_typer(target, name=self.name, short_help=self.summary)
        else:
            # the summary as short help: listings show it whole, where Click would cut the help with "..."
            app.command(self.name, short_help=self.summary,
                        epilog=EXIT_CODES_EPILOG if self.exit_codes_epilog else None)(target)


def _summary(docstring: str) -> str:
    """A docstring's first paragraph on one line: a command's summary in its group's listing."""
    return " ".join(docstring.strip().split("\n\n", 1)[0].split())


COMMANDS = (
    CommandEntry("generate", "generate:generate", "Generate images from a text prompt, wait for them and save them.", True),
    CommandEntry("status", "jobs:job_status", "Show a job's state: in_queue (with its position), in_progress, or, once "
                 "completed, succeeded or failed."),
    CommandEntry("edit", "edit:edit", "Edit images with a prompt: the model's edit endpoint, from local files or https URLs.", True),
    CommandEntry("result", "jobs:job_result", "Print a finished job's image URLs, or save the images with --download."),
    CommandEntry("cancel", "jobs:job_cancel", "Cancel a queued job."),
    CommandEntry("watch", "jobs:job_watch", "Wait for jobs with live progress, saving each job's images as soon as it "
                 "finishes.", True),
    CommandEntry("batch", "batch:batch_run", "Generate images for every prompt in FILE, N jobs at a time, resumably.", True),
    CommandEntry("gallery", "gallery:gallery_write", "Write DIR/index.html: every image with its prompt, parameters and "
                 "request id, no external assets."),
    CommandEntry("merge", "merge:merge_run", "Combine the output directories of batch runs (shards) into one: images, "
                 "provenance and manifests."),
    CommandEntry("doctor", "doctor:doctor_run", "Check config paths, the token and its source, API reachability and token "
                 "acceptance."),
    CommandEntry("sandbox", "sandbox:sandbox_serve", "Serve a faithful local RunComfy Model API (paths, auth, job "
                 "lifecycle, errors, real images)."),
    CommandEntry("mcp", "mcp:mcp_serve", "Serve nanobanana's tools to AI agents over the Model Context Protocol (stdio), "
                 "with the CLI's guarantees."),
    CommandEntry("inspect", "provenance:inspect_files", "Show how each image was made: its embedded (or sidecar) "
                 "provenance, the history record when this machine made it, whether the picture is intact, and whether "
                 "it carries a C2PA manifest."),
    CommandEntry("regen", "provenance:regen", "Submit again from an image's provenance; any generate option overrides "
                 "what the file says.", True),
    CommandEntry("explain", "explain:job_explain", "A job's timeline from the history: submitted, queue wait, run time, "
                 "downloads (time, bytes, sha256 and provenance of each file), cost, and every recorded event."),
    CommandEntry("model", "models:model_show", "A model's fields (types, values, limits and defaults), its price per "
                 "image, and where its schema comes from: the live catalog, the cache (a day at most), or the bundled "
                 "snapshot."),
    CommandEntry("models", "models:models_list", "List the nano-banana family: each alias, its text-to-image and edit "
                 "model ids, the price per image, and where each schema comes from (the live catalog, the cache with its "
                 "age, or the bundled snapshot when the catalog cannot be asked)."),
    CommandEntry("help", "help:help_topic", "Explain a topic (environment, exit codes, JSON output, file names, models, editing), or show "
                 "a command's help."),
    CommandEntry("history", "history:history_app", "List recorded jobs, newest first; `history rm` and `history clear` "
                 "forget some."),
    CommandEntry("auth", "auth:auth_app", "Log in once, see which token is active and where it comes from, log out."),
    CommandEntry("config", "settings:config_app", "Defaults you set once."),
)


@cache
def build_app(*, lazy: bool = False) -> "typer.Typer":
    """The root app. `lazy` (what `main` runs) imports a command's module only when that command runs,
    so every command starts as fast as a one-command app; the eager app registers them all, for tools
    that read `registered_commands` (scripts/reference.py)."""
    import typer

    lazy_group: dict[str, Any] = {"cls": _lazy_group()} if lazy else {}
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
        # Typer's own --install-completion writes Typer's generic scripts; ours are below.
        add_completion=False,
        **lazy_group,
    )

    def show_version(value: bool) -> None:
        if value:
            typer.echo(VERSION_LINE)
            raise typer.Exit()

    def shell_name(value: Optional[str]) -> Optional[str]:
        from . import completion

        if value is not None and value not in completion.SHELLS:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(completion.SHELLS)}")
        return value

    def install_completion(value: Optional[str]) -> None:
        if value is not None and shell_name(value):
            from . import completion

            for path in completion.install(value):
                sys.stderr.write(f"{value} completion: wrote {path}\n")
            sys.stderr.write("it takes effect in new shells\n")
            raise typer.Exit()

    def show_completion(value: Optional[str]) -> None:
        if value is not None and shell_name(value):
            from . import completion

            sys.stdout.write(completion.SCRIPTS[value])
            raise typer.Exit()

    def complete_shell(incomplete: str) -> list[str]:
        from . import completion

        return [shell for shell in completion.SHELLS if shell.startswith(incomplete)]

    @app.callback()
    def root(
        version: Annotated[
            Optional[bool],
            typer.Option("--version", "-V", callback=show_version, is_eager=True, help="Print the version and exit."),
        ] = None,
        install: Annotated[
            Optional[str],
            typer.Option("--install-completion", metavar="SHELL", callback=install_completion, is_eager=True,
                         autocompletion=complete_shell, help="Install tab completion for SHELL (bash, zsh or fish)."),
        ] = None,
        show: Annotated[
            Optional[str],
            typer.Option("--show-completion", metavar="SHELL", callback=show_completion, is_eager=True,
                         autocompletion=complete_shell, help="Print the completion script for SHELL (bash, zsh or fish)."),
        ] = None,
        debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and an HTTP log on stderr (or NANOBANANA_DEBUG=1).")] = False,
    ) -> None:
        if debug:
            debugging.enable()

    if not lazy:
        for entry in COMMANDS:
            entry.register(app)
    return app


def command_from(entry: CommandEntry) -> Any:
    """The entry's Click command, built by Typer exactly as registering it on the root app would."""
    import typer

    holder = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    entry.register(holder)
    built = typer.main.get_command(holder)
    # one group registered: the holder is a group around it; one function: the command itself
    command = getattr(built, "commands", {}).get(entry.name, built)
    if os.environ.get("_NANOBANANA_COMPLETE"):  # a shell asks for completions: see completion.py
        from .completion import with_short_descriptions

        with_short_descriptions(command)
    return command


@lru_cache(maxsize=1)
def _lazy_group() -> type:
    """A TyperGroup whose commands start as stubs carrying their table summary, built for real on first use."""
    from typer.core import TyperCommand, TyperGroup

    class LazyGroup(TyperGroup):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.entries = {entry.name: entry for entry in COMMANDS}
            # stubs, so that listing and "did you mean" suggestions know every command without loading any
            self.commands.update({name: TyperCommand(name, help=entry.summary, short_help=entry.summary)  # whole, not cut with "..."
                                  for name, entry in self.entries.items()})
            self.unloaded = set(self.entries)
            self.listing = False

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            if cmd_name in self.unloaded and not self.listing:
                self.commands[cmd_name] = command_from(self.entries[cmd_name])
                self.unloaded.discard(cmd_name)
            return self.commands.get(cmd_name)

        def format_commands(self, ctx: Any, formatter: Any) -> None:
            self.listing = True  # the root --help shows summaries: no command module is imported for it
            try:
                super().format_commands(ctx, formatter)
            finally:
                self.listing = False

    return LazyGroup


def _run_app(args: list[str]) -> int:
    """Run the app; Typer's own usage errors become `UsageError`s, reported like every other error."""
    import typer

    from .errors import UsageError
    from .model_help import fields_after_help

    try:
        code = build_app(lazy=True)(args=args, prog_name="nanobanana", standalone_mode=False)
        for fields in fields_after_help(args):  # `generate --model X --help`: then X's fields, as `model X`
            sys.stdout.write("\n")
            code = build_app(lazy=True)(args=fields, prog_name="nanobanana", standalone_mode=False)
    except typer.Abort:
        raise NanobananaError("aborted: the input ended") from None  # Ctrl-D at a prompt
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        message = exc.format_message()
        if context is not None and message == context.get_help():  # a group called without a command
            sys.stderr.write(message + "\n")
            return int(ExitCode.USAGE)
        hint = _misplaced(exc, args, context) or (
            f"see `{context.command_path} --help`" if context is not None else "see `nanobanana --help`"
        )
        if exc.exit_code != ExitCode.USAGE:
            _report(" ".join(message.split()), None)
            return exc.exit_code
        raise UsageError(_lowercase_first(" ".join(message.split())).rstrip("."), hint=hint) from None
    # Typer turns a Ctrl-C inside a command into exit code 130, silently: say it, as for any interrupt.
    if code == ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    return code if isinstance(code, int) else 0


def _misplaced(exc: Exception, args: list[str], context: Any) -> str | None:
    """The fix for an unknown option that is only in the wrong place: a root option after the
    command, or a prompt starting with '-' that was read as options (only that argument is echoed:
    argv may hold --token)."""
    option = getattr(exc, "option_name", None)  # set on Click's "no such option" error
    if not option or context is None or context.parent is None:
        return None
    command = context.command_path.removeprefix("nanobanana ")
    if option in invocation.ROOT_OPTIONS:
        return f"{option} goes before the command: nanobanana {option} {command} …"
    for arg in args:
        if arg.startswith(option) and arg != option and not arg.startswith("--"):
            import shlex

            return f"a prompt that starts with '-' goes after `--`: nanobanana {command} -- {shlex.quote(arg)}"
    return None


def _lowercase_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _discard_stdout() -> None:
    """The reader has gone: send what is still buffered nowhere, so closing stdout at exit cannot fail loudly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):
        pass  # not a real file (tests capture it); nothing can fail at exit then


def _forget_documenting() -> None:
    """A new command starts (several run in one process: tests, an embedding program). Output's state
    lives in render.output, which `--help` and `--version` never import (json and all): not loaded,
    it holds nothing to forget."""
    output = sys.modules.get(f"{__package__}.render.output")
    if output is not None:
        output.forget_documenting()


def _error_document(error: NanobananaError) -> None:
    """With --json, a job command that failed before printing a document prints the error as one."""
    from .render.output import error_document

    try:
        error_document(error)
    except StdoutClosed:
        _discard_stdout()


def _report(message: str, hint: str | None) -> None:
    from .render.output import EVENT_KEEPS
    from .sanitise import escape

    # A message may quote a server, a file or argv: shown escaped, on one line, like every event.
    sys.stderr.write(escape(f"error: {message}" + (f"; {hint}" if hint else ""), keep=EVENT_KEEPS) + "\n")
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


def run() -> None:
    """The `nanobanana` console script: `main()`, then exit."""
    # Start-up creates ~30,000 long-lived objects (modules, classes, functions) and no garbage to
    # speak of, yet at the default threshold (700) the collector runs ~60 times over them before a
    # job is even submitted: ~10 ms of a 150 ms start. 50,000 allocations between young
    # collections keeps start-up free of them; cyclic garbage is still collected, in larger sweeps,
    # so a long batch or the sandbox server stays bounded. (mypy's tune_gc does the same.)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    code = main()
    # Python's shutdown tears down every module and joins idle worker threads: ~8 ms with Typer,
    # requests and this package loaded, to free memory the OS reclaims anyway. Nothing here needs
    # it: files, the history and the partial downloads are closed and cleaned up explicitly before
    # main() returns, and nothing registers an atexit handler. So the output is flushed and the
    # process ends at once.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _discard_stdout()  # the reader left (`| head`): what main() returned stands
    except (OSError, ValueError):
        # a full disk or a closed stream: Python's own shutdown reports it (exit 120), as it always did;
        # frozen objects spare it the garbage collector's sweep over every module
        gc.freeze()
        sys.exit(code)
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error ends here as one line on stderr and a documented exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    invocation.remember(args)
    try:
        if args in (["--version"], ["-V"]):
            try:
                sys.stdout.write(VERSION_LINE + "\n")
                sys.stdout.flush()  # a full disk is reported here, as one line, not at exit
            except BrokenPipeError:
                raise StdoutClosed() from None
            except OSError:
                # what is still buffered cannot be written either: dropped, so that the exit's own flush
                # does not fail on it a second time (Python then reports it again and exits 120)
                _discard_stdout()
                raise
            return 0
        _Signals.install()
        _forget_documenting()
        if os.environ.get("_NANOBANANA_COMPLETE"):
            from .completion import prepare

            prepare()
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
        _error_document(exc)
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
