"""`gallery a/ b/`: an input image that edits in both directories share is read (and hashed) once
for the page, as for one directory, not once per directory."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from nanobanana_cli.engine import gallery


def test_an_input_shared_by_two_directories_is_read_once(cli, sandbox, tmp_path, monkeypatch):
    cat = tmp_path / "photos" / "cat.png"
    cat.parent.mkdir()
    Image.new("RGB", (8, 8), "orange").save(cat)
    for folder in ("a", "b"):
        run = cli("edit", "the cat at night", "-i", cat, "-o", tmp_path / folder, "-q")
        assert run.exit_code == 0, run.stderr
    reads: list[Path] = []
    real = gallery._still_there
    monkeypatch.setattr(gallery, "_still_there", lambda path, size, sha256: reads.append(path) or real(path, size, sha256))
    run = cli("gallery", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "page.html")
    assert run.exit_code == 0, run.stderr
    page = (tmp_path / "page.html").read_text()
    assert re.findall(r'<img src="(photos/cat\.png)"', page) == ["photos/cat.png"] * 2  # a thumbnail in each directory
    assert reads == [cat]
