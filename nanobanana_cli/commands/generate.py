"""`nanobanana generate`: submit, wait with progress, download, print the paths."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
from ..render.output import Output
from .options import (
    AspectOpt,
    BaseUrlOpt,
    CurlOpt,
    DryRunOpt,
    FormatOpt,
    JsonOpt,
    NumImagesOpt,
    OpenOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TimeoutOpt,
    TokenOpt,
    api_client,
    download_plan,
    generation_defaults,
    make_output,
    open_history,
    open_in_viewer,
    print_dry_run,
    setting,
)

if TYPE_CHECKING:
    from ..engine.lifecycle import JobOutcome


def read_prompt(prompt: str | None) -> str:
    """The prompt argument, or stdin when it is `-` or omitted with input piped in."""
    if prompt is not None and prompt != "-":
        return prompt
    if prompt is None and sys.stdin.isatty():
        raise UsageError("no prompt given", hint='pass one: nanobanana generate "a red fox in the snow", or pipe it in')
    return sys.stdin.read()


def render_outcome(output: Output, outcome: JobOutcome, *, compact: bool = False) -> None:
    """Print one finished job: paths (or URLs) one per line, or its JSON document."""
    if output.mode.value == "json":
        output.result_json(outcome.to_dict(), compact=compact)
        return
    if outcome.saved is not None:
        for item in outcome.saved:
            output.result_line(item.path)
        total = sum(item.bytes for item in outcome.saved)
        output.info(f"{outcome.request_id[:8]}: saved {len(outcome.saved)} image(s), {total / 1e6:.1f} MB, in {outcome.elapsed_seconds:.1f}s")
    else:
        for url in outcome.output_urls:
            output.result_line(url)


def generate(
    prompt: Annotated[Optional[str], typer.Argument(help="What to draw; '-' (or nothing, with a pipe) reads stdin.", show_default=False)] = None,
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Submit, print the request id, and stop.")] = False,
    no_download: Annotated[bool, typer.Option("--no-download", help="Wait, then print the image URLs instead of saving.")] = False,
    timeout: TimeoutOpt = None,
    sandbox: SandboxOpt = False,
    dry_run: DryRunOpt = False,
    curl: CurlOpt = False,
    open_: OpenOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate images from a text prompt, wait for them and save them.

    Progress goes to stderr; the saved paths go to stdout, one per line.

    Examples:

      nanobanana generate "a glass greenhouse at dusk" --aspect 9:16 -n 4

      echo "a red fox" | nanobanana generate -f jpg -o out/ --json

      ID=$(nanobanana generate "a red fox" --no-wait -q)

      nanobanana generate "a red fox" --dry-run --curl
    """
    from ..engine.lifecycle import run_job
    from ..api.models import GenerationInput
    from ..engine.polling import resumable, submitting

    output = make_output(json_, quiet)
    if sandbox and no_wait:
        raise UsageError(
            "--no-wait cannot be used with --sandbox: the sandbox stops when this command ends",
            hint="run `nanobanana sandbox` in another terminal and use its exported settings",
        )
    generation = GenerationInput(read_prompt(prompt), **generation_defaults(aspect, image_format, num_images))
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run", hint='nanobanana generate "…" --dry-run --curl')
    if dry_run:
        if sandbox:
            raise UsageError("--dry-run shows the request for the real API; drop --sandbox")
        print_dry_run(output, [(None, generation)], base_url, curl)
        return
    downloads = None if no_wait or no_download else download_plan(output_dir)
    timeout = setting("timeout", timeout)
    with open_history(output) as history, api_client(token, base_url, output, sandbox=sandbox, retries=retries) as client:
        with submitting():
            submission = client.submit(generation)
        # From here on the job exists: a Ctrl-C anywhere must still name it (Typer would exit silently).
        with resumable(submission.request_id):
            history.record_submission(submission.request_id, generation, client.base_url)
            if no_wait:
                if output.mode.value == "json":
                    output.result_json({**submission.to_dict(), "status": "in_queue", "input": generation.to_payload()})
                else:
                    output.result_line(submission.request_id)
                    output.info(f"follow it with: nanobanana watch {submission.request_id}")
                return
            output.note(f"submitted {submission.request_id} ({generation.num_images}× {generation.aspect_ratio} {generation.output_format})")
            with output.progress() as progress:
                outcome = run_job(
                    client, submission.request_id, generation=generation, downloads=downloads,
                    reporter=progress, timeout=timeout, history=history,
                    expected_seconds=history.typical_duration(client.base_url),
                )
            render_outcome(output, outcome)
    if open_ and outcome.saved:
        open_in_viewer(output, [item.path for item in outcome.saved])
