"""The gallery's layout as a browser draws it (issue 22): headless Chromium renders a generated page,
takes a screenshot, and reports where each card landed.

The test's copy of the page gets one more module script, which runs after the page's own (module
scripts run in order, once the page is parsed), switches the grouping, measures the cards and writes
what it found into the DOM; `--dump-dom` prints that DOM once the page has loaded. Nothing waits
for a clock: the browser's own load event is the only signal.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .conftest import WAIT_LIMIT

WIDTH, HEIGHT = 1280, 900
CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
# What the page looks like to a reader, per view: each card's box and visible text, each section's text.
MEASURE = """
const by = document.getElementById('by');
const show = value => { if (by) { by.value = value; by.dispatchEvent(new Event('change')); } };
const visible = selector => [...document.querySelectorAll(selector)].filter(node => node.offsetParent !== null);
const box = node => { const r = node.getBoundingClientRect(); return {x: r.left, y: r.top, right: r.right}; };
function view() {
  return {
    cards: visible('main figure').map(card => {
      const section = card.closest('section');
      return {...box(card), text: card.innerText, alone: !section || section.querySelectorAll('figure').length === 1,
              loaded: card.querySelector('img').naturalWidth > 0};
    }),
    sections: visible('main section').map(section => ({title: section.querySelector('h2').textContent,
                                                       text: section.innerText,
                                                       cards: section.querySelectorAll('figure').length})),
  };
}
const opened = by ? by.value : '';
const models = by && [...by.options].some(option => option.value === 'model');
show('');
const jobs = view();
if (models) show('model');
const byModel = models ? view() : null;
show(opened);
window.addEventListener('load', () => {
  const result = document.createElement('pre');
  result.id = 'layout';
  result.textContent = JSON.stringify({opened, jobs, byModel, loaded: view().cards.filter(card => card.loaded).length,
                                       viewport: document.documentElement.clientWidth,
                                       scrollWidth: document.documentElement.scrollWidth});
  document.body.appendChild(result);
});
"""


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={user_data}", f"--window-size={WIDTH},{HEIGHT}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT_LIMIT)


def measured(page: Path, tmp_path: Path) -> dict[str, Any]:
    """The page's layout as the browser reports it, from a copy beside it with the measuring script added
    (and allowed by the page's Content-Security-Policy, which lets no other script run)."""
    text = page.read_text()
    allowed = "'sha256-" + base64.b64encode(hashlib.sha256(MEASURE.encode()).digest()).decode() + "'"
    text = text.replace("script-src ", f"script-src {allowed} ", 1)
    copy = page.with_name("measured.html")
    copy.write_text(text.replace("</body>", f'<script type="module">{MEASURE}</script></body>'))
    run = chromium("--dump-dom", copy.as_uri(), user_data=tmp_path / "profile-measure")
    found = re.search(r'<pre id="layout">(.*?)</pre>', run.stdout, re.S)
    assert found, f"no layout reported: {run.stderr[-2000:]}"
    return json.loads(html.unescape(found[1]))


@pytest.fixture
def browser() -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (CI installs Debian's package in .ci/run; apt-get install chromium)")


def saved(run) -> list[Path]:
    assert run.exit_code == 0, run.stderr
    return [Path(line) for line in run.stdout.split()]


def test_the_gallery_as_a_browser_lays_it_out(browser, cli, sandbox, tmp_path):
    out = tmp_path / "g"
    saved(cli("generate", "a {red,blue,green,gold,grey} fox", "-o", out, "-q"))  # five jobs of one image each
    saved(cli("generate", "three foxes in a row", "-n", "3", "-o", out, "-q"))
    saved(cli("generate", "a fox by the other model", "--model", "nano-banana-2", "-o", out, "-q"))
    run = cli("gallery", out)
    assert run.exit_code == 0, run.stderr
    page = Path(run.stdout.strip())

    shot = tmp_path / "gallery.png"
    drawn = chromium(f"--screenshot={shot}", page.as_uri(), user_data=tmp_path / "profile-shot")
    assert drawn.returncode == 0 and shot.exists(), drawn.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)

    layout = measured(page, tmp_path)
    jobs = layout["jobs"]
    assert layout["opened"] == "model"  # images of two models: the page opens grouped by model
    assert len(jobs["cards"]) == 9 and layout["loaded"] >= 1  # the policy lets the page's own images load
    rows: dict[int, set[int]] = {}
    for card in jobs["cards"]:
        if card["alone"]:
            rows.setdefault(round(card["y"]), set()).add(round(card["x"]))
    assert max(len(xs) for xs in rows.values()) >= 3, f"single-image jobs do not share rows: {rows}"
    assert all(card["right"] <= layout["viewport"] for card in jobs["cards"]), jobs["cards"]
    assert layout["scrollWidth"] <= layout["viewport"]

    # each fact once: the job of three images says its prompt, cost and parameters in its header only
    (section,) = [section for section in jobs["sections"] if section["cards"] == 3]
    for fact in ("three foxes in a row", "job $", "16:9 · png"):
        assert section["text"].count(fact) == 1, (fact, section["text"])
    for card in jobs["cards"]:
        if card["alone"]:
            prompt = card["text"].splitlines()[0]
            assert card["text"].count(prompt) == 1 and card["text"].count("job $") <= 1, card["text"]

    groups = layout["byModel"]
    assert groups is not None, "no grouping by model"
    assert sorted(section["title"] for section in groups["sections"]) == ["model = nano-banana (8)", "model = nano-banana-2 (1)"]
    assert all(card["right"] <= layout["viewport"] for card in groups["cards"])
