"""Reading saved images back, to check real bytes rather than what the CLI claims."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

from PIL import Image

PIL_NAMES = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


def image_info(path: str | Path) -> tuple[str, Fraction]:
    """(format, width:height as a fraction) read from the file itself."""
    with Image.open(path) as image:
        return PIL_NAMES[image.format], Fraction(image.width, image.height)


def ratio(aspect: str) -> Fraction:
    width, height = aspect.split(":")
    return Fraction(int(width), int(height))


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
