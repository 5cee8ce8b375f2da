"""`gallery DIR`: an edit from a URL shows that URL beside its outputs, as a text link never loaded,
whether the history or the image's provenance records it (both keep a URL as a bare string)."""

from __future__ import annotations

import html
import re
from pathlib import Path


def _inputs_of(page_run, name: str) -> str:
    assert page_run.exit_code == 0, page_run.stderr
    page = Path(page_run.stdout.strip()).read_text()
    (card,) = re.findall(rf'<figure><a href="{re.escape(name)}".*?</figure>', page, re.S)
    (inputs,) = re.findall(r'<div class="in">.*?</div>', card)
    assert "<img" not in inputs and 'src="http' not in page  # a link to follow, never an image the page loads
    return inputs


def test_an_edit_from_a_url_shows_it_as_a_text_link(cli, sandbox, tmp_path, monkeypatch):
    made = cli("generate", "a cat", "-o", tmp_path / "first", "--json")  # the sandbox fetches only its own images
    assert made.exit_code == 0, made.stderr
    url = re.findall(r'"(http://127\.0\.0\.1:\d+/[^"]+)"', made.stdout)[0]
    out = tmp_path / "g"
    run = cli("edit", "the cat at night", "-i", url, "-o", out, "-q")
    assert run.exit_code == 0, run.stderr
    (edited,) = (Path(line) for line in run.stdout.split())
    shown = html.escape(url)
    link = f'<div class="in"><span>edit of</span><a class="u" href="{shown}" rel="noopener noreferrer" target="_blank">{shown}</a></div>'
    assert _inputs_of(cli("gallery", out), edited.name) == link
    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "elsewhere"))  # no history: the provenance alone
    assert _inputs_of(cli("gallery", out), edited.name) == link
