"""`nanobanana gallery`: a contact sheet for a directory of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..render.output import Output


def gallery_write(
    directory: Annotated[Path, typer.Argument(help="Directory of generated images.", show_default=False)] = Path("."),
) -> None:
    """Write DIR/index.html: every image with its prompt, parameters and request id, no external assets.

    Examples:

      nanobanana gallery out/

      xdg-open "$(nanobanana gallery out/)"
    """
    from ..runs.gallery import write_gallery

    if not directory.is_dir():
        raise UsageError(f"{str(directory)!r} is not a directory", hint="pass the directory your images were saved in")
    output = Output()
    try:
        target = write_gallery(directory, output.warn)
    except OSError as exc:
        raise UsageError(f"cannot write the gallery in {str(directory)!r}: {exc.strerror or exc}") from None
    output.result_line(str(target))
