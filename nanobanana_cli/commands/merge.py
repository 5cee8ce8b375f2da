"""`nanobanana merge`: the output directories of sharded batch runs, brought into one."""

from pathlib import Path
from typing import Annotated

import typer

from ..sanitise import shown
from .options import OutputDirOpt, QuietOpt, command_settings, make_output


def merge_run(
    sources: Annotated[list[Path], typer.Argument(
        metavar="DIR...", help="Output directories of batch runs (one per shard, say).", show_default=False,
        exists=True, file_okay=False,
    )],
    output_dir: OutputDirOpt = None,
    gallery: Annotated[bool, typer.Option(
        "--gallery", help="Write an index.html contact sheet of the merged directory.",
    )] = False,
    quiet: QuietOpt = False,
) -> None:
    """Combine the output directories of batch runs (shards) into one: images, provenance and manifests.

    Every image is copied in (checked against the sha256 its manifest recorded, never over a
    different file), with its provenance sidecar if it has one, and every line is recorded in the
    directory's manifest. Then `nanobanana batch FILE -o DIR` finds the finished lines done and
    submits only what no shard finished. The merged image paths go to stdout.

    Examples:

      nanobanana merge shard-1/ shard-2/ shard-3/ -o all/ --gallery

      nanobanana merge artifacts/*/ -o all/ && nanobanana batch prompts.txt -o all/
    """
    from ..engine.lifecycle import prepare_output_dir
    from ..engine.sharding import merge_runs

    output = make_output(False, quiet)
    destination = prepare_output_dir(command_settings(output_dir=output_dir)["output_dir"])
    report = merge_runs(list(dict.fromkeys(sources)), destination)
    for problem in report.problems:
        output.warn(problem)
    for path in report.files:
        output.result_line(shown(path))  # one path a line: a shard's file name cannot add a line
    unfinished = len(report.lines) - len(report.done)
    output.note(
        f"merge: {len(report.lines)} line(s) from {len(sources)} director(ies) into {destination}: "
        f"{len(report.done)} with their images ({len(report.files)} file(s))"
        + (f", {unfinished} not finished (failed, uncertain or still running)" if unfinished else "")
    )
    if gallery:
        from ..runs.gallery import write_gallery

        output.note(f"gallery: {write_gallery(destination, output.warn)}")
