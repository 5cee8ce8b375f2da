"""`nanobanana gallery`: a contact sheet for one or more directories of images."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..render.output import Output


def gallery_write(
    directories: Annotated[Optional[list[Path]], typer.Argument(
        metavar="[DIR...]", help="Directories of generated images (default: the current one).", show_default=False,
    )] = None,
    output_file: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write the page here (FILE.html, or a directory for DIR/index.html) instead of the first DIR's index.html.",
        show_default=False,
    )] = None,
) -> None:
    """Write DIR/index.html: every image with its prompt, parameters and request id, no external assets.

    One page for several directories, a section each, in the first DIR (or -o FILE); links are
    relative, so keep the folders where they are. Images are in file-name order (numbers as numbers:
    fox-2 before fox-10), a job's images together. A DIR without images is an error (exit 2) and no
    page is written.

    Examples:

      nanobanana gallery out/

      nanobanana gallery run-1/ run-2/ -o compare.html

      xdg-open "$(nanobanana gallery out/)"
    """
    from ..runs.gallery import write_galleries

    given = directories or [Path(".")]
    for directory in given:
        if not directory.is_dir():
            raise UsageError(f"{str(directory)!r} is not a directory", hint="pass the directory your images were saved in")
    output = Output()
    try:
        target = write_galleries(given, output_file, output.warn)
    except OSError as exc:
        where = output_file if output_file is not None else given[0]
        raise UsageError(f"cannot write the gallery in {str(where)!r}: {exc.strerror or exc}") from None
    output.result_line(str(target))
