"""Options shared by several commands, defined once, and the small steps every command shares.

Commands parse their arguments, build a `Settings` snapshot, call the library and hand what it
returns to the `Output`; errors propagate to `main()`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..api.schema import TEXT_TO_IMAGE as SCHEMA
from ..completion import bundled_schema, complete_set
from ..errors import AlreadyReported, NanobananaError, NotFoundError, UsageError
from ..render.output import Mode, Output
from ..runs.context import base_url_flag
from ..stores.tokens import TOKEN_ENV_VARS

if TYPE_CHECKING:
    from ..stores.history import History
    from ..stores.settings import Settings


class InEffect(str):
    """A `show_default` that names, when help is shown, the value in effect and where it comes from.

    Typer formats a string `show_default` into the help at that moment, so `generate --help` after
    `config set aspect_ratio 9:16` says `9:16, from config file`; a normal run never reads it.
    """

    key: str
    unset: str

    def __new__(cls, key: str, unset: str = "none") -> InEffect:
        shown = super().__new__(cls, key)
        shown.key = key
        shown.unset = unset
        return shown

    def __format__(self, spec: str) -> str:
        return str(self)

    def __str__(self) -> str:
        from ..stores.settings import Settings

        try:
            resolved = Settings().resolved(self.key)
        except NanobananaError:
            return f"{self._value(None)}; the config file is unreadable, see `nanobanana doctor`"
        source = {"default": "built-in", "config file": "from config file"}.get(resolved.source, f"from ${resolved.source}")
        return f"{self._value(resolved.value)}, {source}"

    def _value(self, value: Any) -> str:
        if value is None:
            return self.unset
        return "current directory" if self.key == "output_dir" and value == "." else str(value)


class TokenInEffect(str):
    """The `--token` default as help shows it: where the token would come from right now (never the token)."""

    def __format__(self, spec: str) -> str:
        return str(self)

    def __str__(self) -> str:
        from ..stores.tokens import token_sources

        try:
            found = token_sources(None)
        except NanobananaError:
            return "the stored token is unreadable"
        if not found:
            return "none set"
        return "the stored token" if found[0].source == "stored" else f"from ${found[0].source}"


TOKEN_ORDER = ", ".join(["--token", *(f"${name}" for name in TOKEN_ENV_VARS), "the token stored by `nanobanana auth login`"])
TokenOpt = Annotated[
    Optional[str],
    typer.Option("--token", show_default=TokenInEffect("token"), help=f"API token. Looked up in this order: {TOKEN_ORDER}."),
]
BaseUrlOpt = Annotated[
    Optional[str],
    typer.Option(
        "--base-url", show_default=InEffect("base_url"),
        help="API root. Order: this flag, $NANOBANANA_BASE_URL, config, https://model-api.runcomfy.net.",
    ),
]
RetriesOpt = Annotated[
    Optional[int],
    typer.Option(
        "--retries", min=0, max=20, show_default=InEffect("retries"),
        help="Retries for transient failures (429, 5xx, timeouts); a submit is repeated only when surely not received.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (see `nanobanana help json`).")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only paths (or ids) on stdout, nothing on stderr but errors.")]
TemplateOpt = Annotated[
    Optional[str],
    typer.Option(
        "--template", metavar="FORMAT", show_default=False,
        help="Print each job as this format over its JSON fields, e.g. '{request_id} {status}' or '{input[prompt]}'.",
    ),
]
OutputDirOpt = Annotated[
    Optional[Path],
    typer.Option("-o", "--output-dir", help="Where to save images.", file_okay=False, show_default=InEffect("output_dir")),
]
TimeoutOpt = Annotated[
    Optional[float],
    typer.Option(
        "--timeout", min=0, help="Stop waiting after this many seconds (exit 6; the job keeps running).",
        show_default=InEffect("timeout", unset="no limit"),
    ),
]

def schema_values(field: str) -> Callable[[typer.Context, str], list[str]]:
    """Completion for a schema field: the values of the model on the command line (its --model and,
    for `edit`, its edit endpoint), from the cached or bundled schema: completion never waits on the network."""

    def complete(ctx: typer.Context, incomplete: str) -> list[str]:
        from ..api.input_schema import field_values

        schema = bundled_schema(ctx)
        if schema is None:
            return []
        return [value for value in field_values(field, schema) if value.startswith(incomplete)]

    return complete


def complete_model(incomplete: str) -> list[str]:
    from ..api.family import ALIASES, family_ids

    return [name for name in (*ALIASES, *family_ids()) if name.startswith(incomplete)]


ImageFormat = Enum(  # type: ignore[misc]
    "ImageFormat", {name: name for name in (*SCHEMA["output_format"].choices, *SCHEMA["output_format"].aliases)}, type=str
)

AspectOpt = Annotated[
    Optional[str],
    typer.Option(
        "-a", "--aspect", metavar="W:H", show_default=InEffect("aspect_ratio"), autocompletion=schema_values("aspect_ratio"),
        help="Aspect ratio W:H, as the model takes it (nano-banana-2 also takes auto; `nanobanana model MODEL` lists them).",
    ),
]
ModelOpt = Annotated[
    Optional[str],
    typer.Option(
        "-m", "--model", metavar="MODEL", show_default=InEffect("model", unset="nano-banana"), autocompletion=complete_model,
        help="nano-banana, nano-banana-2, nano-banana-pro, nano-banana-2-lite, or a full model id "
        "(`nanobanana models` lists them). generate and edit take several, comma-separated, to compare them.",
    ),
]
ResolutionOpt = Annotated[
    Optional[str],
    typer.Option(
        "--resolution", metavar="SIZE", show_default=False, autocompletion=schema_values("resolution"),
        help="Output resolution, for models that take one (e.g. 1K, 2K, 4K).",
    ),
]
SeedOpt = Annotated[
    Optional[int],
    typer.Option("--seed", min=0, show_default=False, help="Random seed, for models that take one."),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set", metavar="KEY=VALUE", show_default=False, autocompletion=complete_set,
        help="Any other field of the model's schema, typed by it (repeatable): --set safety_tolerance=5; "
        "an array as JSON, --set 'tags=[\"a\",\"b\"]', or a comma list, --set tags=a,b; an object as JSON. "
        "The prompt and the fields with a flag of their own (-a, -f, -n, --resolution, --seed, -i) are refused.",
    ),
]
FitOpt = Annotated[
    bool,
    typer.Option("--fit", help="Shrink and re-encode input images over the per-image limit, or together over the request limit (needs Pillow)."),
]
FormatOpt = Annotated[
    Optional[ImageFormat],
    typer.Option(
        "-f", "--format", help="Image format (jpg means jpeg).", case_sensitive=False,
        show_default=InEffect("output_format"),
    ),
]
NumImagesOpt = Annotated[
    Optional[int],
    typer.Option(
        "-n", "--num-images", help=f"How many images: {SCHEMA['num_images'].choices_spoken}.",
        show_default=InEffect("num_images"),
    ),
]
Metadata = Enum("Metadata", {mode: mode for mode in ("embed", "sidecar", "none")}, type=str)  # type: ignore[misc]
MetadataOpt = Annotated[
    Optional[Metadata],
    typer.Option(
        "--metadata", case_sensitive=False, show_default=InEffect("metadata"),
        help="Provenance of each saved image: embed it in the file, write a sidecar beside it (the image's name plus "
        ".json: fox-1.png.json), or none. Files with a C2PA manifest always get the sidecar.",
    ),
]
MaxCostOpt = Annotated[
    Optional[float],
    typer.Option(
        "--max-cost", min=0, metavar="USD", show_default=False,
        help="Refuse to submit when the estimated cost (catalog price × images) would exceed this.",
    ),
]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Run against a local sandbox API: no account, no credits.")]
LastOpt = Annotated[bool, typer.Option("--last", help="Act on the most recent job in the history (the default with no id).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate and print the request that would be sent; send nothing.")]
CurlOpt = Annotated[bool, typer.Option("--curl", help="With --dry-run, print an equivalent curl command instead.")]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open the saved images with the system viewer when done.")]

NameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--name", metavar="TEMPLATE", show_default="{slug}-{id}-{i}",
        help="File names (extension added): {slug} {id} {i} {n} {aspect} {format} {date} {time}; "
        "see `nanobanana help file-names`.",
    ),
]


GenerateNameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--name", metavar="TEMPLATE", show_default="{slug}-{id}-{i}",
        help="File names (extension added): {slug} {id} {i} {n} {aspect} {format} {date} {time}, and with a prompt "
        "matrix {vars} or {var.NAME} ({var.1} for the first {a,b} group); see `nanobanana help file-names`.",
    ),
]
ManyImagesOpt = Annotated[
    Optional[int],
    typer.Option(
        "-n", "--num-images", show_default=InEffect("num_images"),
        help="How many images (per prompt of a matrix). Above 4 they are made by several jobs of at most 4, "
        "run at once and numbered 1 to N.",
    ),
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Submit, print the request id, and stop.")]
ConcurrencyOpt = Annotated[int, typer.Option("-j", "--concurrency", min=1, max=32, help="Jobs in flight at once.")]
PreviewOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--preview/--no-preview", show_default=InEffect("preview"),
        help="Show a thumbnail of each saved image on stderr, when it is a terminal (kitty, iTerm2, sixel or "
        "half-blocks).",
    ),
]
OnDoneOpt = Annotated[
    Optional[str],
    typer.Option(
        "--on-done", metavar="COMMAND", show_default=InEffect("on_done"),
        help="Run COMMAND for each saved image, without a shell: {path} {id} {prompt} {i} {n} {aspect} {format} "
        "each become one argument. A failing command is a warning. '' turns a configured one off.",
    ),
]
HookTokenOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--hook-env-token/--no-hook-env-token", show_default=InEffect("hook_token"),
        help="Let --on-done commands inherit the API token's variables (RUNCOMFY_API_TOKEN, YOUR_API_TOKEN, "
        "RUNCOMFY_TOKEN); by default they are removed from a hook's environment.",
    ),
]
NotifyOpt = Annotated[
    Optional[bool],
    typer.Option(
        "--notify/--no-notify", show_default=InEffect("notify"),
        # The first sentence says what it does: shell completion shows only that.
        help="Ring the bell and notify the desktop when a long wait ends. Long is more than notify_after "
        "seconds (config, 10); the desktop notification uses notify-send or osascript, where installed.",
    ),
]


def make_output(json_: bool, quiet: bool, template: str | None = None) -> Output:
    """The command's output mode; a --template is checked against the job document's fields before any work."""
    if sum((json_, quiet, template is not None)) > 1:
        raise UsageError("--json, --quiet and --template cannot be used together", hint="pick one")
    if template is None:
        return Output(Mode.JSON if json_ else Mode.QUIET if quiet else Mode.HUMAN)
    from ..engine.outcome import EXTRA_JOB_FIELDS, JOB_FIELDS
    from ..render.output import DocumentTemplate

    return Output(template=DocumentTemplate(template, (*JOB_FIELDS, *EXTRA_JOB_FIELDS)))


def command_settings(token: str | None = None, **flags: Any) -> Settings:
    """The command's settings snapshot; enum flags (aspect, format) are reduced to their values."""
    from ..stores.settings import Settings

    values = {key: value.value if isinstance(value, Enum) else value for key, value in flags.items()}
    return Settings(values, token_flag=token)


MIN_ID_PREFIX = 8  # the short ids printed everywhere (`4f7eb419: saved 1 image(s)`) are 8 characters
AMBIGUOUS_SHOWN = 5
UNCERTAIN_SUBMIT = "its submit was sent but never answered, so its outcome is unknown: it may exist and be billed"
DASHBOARD_HINT = "only your RunComfy dashboard can tell; `nanobanana history rm KEY` forgets it"


def resolve_request_id(history: History, text: str) -> str:
    """A request id, a `local:` key, or a unique prefix (MIN_ID_PREFIX characters at least) of one the
    history records, as git takes commits. An id the history does not know is returned as it is: the
    job may come from another machine."""
    from ..api.models import validate_request_id
    from ..stores.history import LOCAL_KEY_PREFIX

    candidate = text.strip()
    local = candidate.startswith(LOCAL_KEY_PREFIX)
    # a local key is ours, never sent anywhere; its part after the prefix has an id's shape
    validate_request_id(candidate.removeprefix(LOCAL_KEY_PREFIX) if local else candidate)
    if history.get(candidate) is not None or (len(candidate) < MIN_ID_PREFIX and not local):
        return candidate
    found = history.ids_starting_with(candidate, AMBIGUOUS_SHOWN + 1)
    if len(found) > 1:
        listed = ", ".join(found[:AMBIGUOUS_SHOWN]) + (", …" if len(found) > AMBIGUOUS_SHOWN else "")
        raise UsageError(f"request id prefix {candidate} is ambiguous: it matches {listed}", hint="give more of the id")
    if found:
        return found[0]
    if local:
        raise NotFoundError(
            f"{candidate} is not in this machine's history (an answer may have replaced it with the job's request id)",
            hint="list recorded jobs with `nanobanana history`",
        )
    return candidate


def job_ids_or_last(
    output: Output, request_ids: list[str] | None, last: bool, settings: Settings, history: History
) -> list[str]:
    """The ids given, validated and resolved (prefixes, see `resolve_request_id`); or, with none (or
    --last), the newest job sent to this API, named on stderr.

    An empty id is an error, never "the latest": `nanobanana cancel "$ID"` after a failed
    `ID=$(…)` must not cancel someone's real job.
    """
    from ..stores.history import LOCAL_KEY_PREFIX

    if request_ids and last:
        raise UsageError("pass request ids or --last, not both")
    if request_ids:
        if any(not request_id.strip() for request_id in request_ids):
            raise UsageError(
                "empty request id: did the command that set it fail?",
                hint="pass a request id, or --last for the most recent job",
            )
        ids = list(dict.fromkeys(resolve_request_id(history, request_id) for request_id in request_ids))
        for request_id in ids:
            if request_id.startswith(LOCAL_KEY_PREFIX):  # no request id to send: the server never gave one
                raise NotFoundError(f"{request_id}: {UNCERTAIN_SUBMIT}", hint=DASHBOARD_HINT)
        return ids
    entry = history.last(settings.base_url)
    if entry is None:
        raise UsageError(f"no request id given and no job in the history for {settings.base_url}", hint="pass a request id")
    prompt = str(entry.input.get("prompt", ""))
    output.note(f"latest job: {entry.request_id} ({prompt[:40] + '…' if len(prompt) > 40 else prompt})")
    return [entry.request_id]


def check_recorded_api(ids: list[str], settings: Settings, history: History) -> None:
    """A job the history records under another API is unknown to this one: say which API it belongs to.

    Nothing is sent: following the recorded address instead would hand the active token to whatever
    listens there now (a stopped sandbox's port, say). An explicit --base-url is taken as meant.
    """
    if base_url_flag(settings) is not None:
        return
    for request_id in ids:
        entry = history.get(request_id)
        if entry is not None and entry.base_url.rstrip("/") != settings.base_url.rstrip("/"):
            raise NotFoundError(
                f"job {request_id} belongs to {entry.base_url} (recorded in the history), not to {settings.base_url}",
                hint=f"add --base-url {entry.base_url} and that API's token, if it is still running",
            )


def fail_with_first(errors: list[NanobananaError], *, already_shown: bool) -> None:
    """End the command with the first error's exit code (and message, unless it was shown per item)."""
    if not errors:
        return
    if already_shown:
        raise AlreadyReported(errors[0].exit_code)
    raise errors[0]


def open_in_viewer(output: Output, paths: list[str]) -> None:
    """Hand the saved images to the desktop's viewer; say so instead when there is no desktop."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        output.note("--open: no display found (DISPLAY/WAYLAND_DISPLAY unset); not opening the images")
        return
    for path in paths:
        if typer.launch(path) != 0:
            output.warn(f"--open: the system viewer could not open {path}")


