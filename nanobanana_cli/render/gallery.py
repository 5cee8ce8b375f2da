"""The gallery page (index.html) for one or more directories of generated images: a search box, a
lightbox, and a choice of grouping (by job, by model, by a prompt matrix's variable).

Layout: one responsive grid per directory. A job of one image is one card in it, so single-image
jobs share rows; a job of several images is a section across the grid with its facts in a header
and its images below. Each fact is shown once: a card inside its job's section shows only its own
file name (its job's facts are in the header); a card on its own, or regrouped by model or
variable, shows its job's facts too. An edit shows its inputs beside its outputs: thumbnails of
local inputs still on disk as recorded, else their name, size and sha256; URL inputs as text links.

Vanilla JavaScript and CSS inline, and a Content-Security-Policy that allows nothing else: no
external asset, no network at all, whatever a crafted record manages to put in the page. Every
text is HTML-escaped (it comes from provenance, sidecars, manifests and the history: untrusted).
What it shows is gathered by engine/gallery.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..engine.gallery import Facts, InputImage, Job

GALLERY_NAME = "index.html"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{position:sticky;top:0;z-index:1;background:#111e;padding:16px 24px 10px;border-bottom:1px solid #222}
h1{font-size:18px;font-weight:600;margin:0 0 8px}
.bar{display:flex;gap:16px;align-items:center;flex-wrap:wrap;color:#aaa}
.bar input,.bar select{font:inherit;background:#1c1c1c;color:#eee;border:1px solid #333;border-radius:6px;padding:5px 8px}
.bar input{width:min(420px,70vw)}
main{padding:16px 24px}
.folder{margin:0 0 28px}
h2{font-size:15px;font-weight:600;margin:0 0 2px;word-break:break-word}
h2.dir{font-size:16px;margin:0 0 12px;color:#fff}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
.grid>section,.group{grid-column:1/-1;border-top:1px solid #2a2a2a;padding-top:10px}
section>p{color:#aaa;margin:0 0 10px;word-break:break-all}
figure{margin:0;background:#1c1c1c;border-radius:8px;overflow:hidden;min-width:0}
figure img{width:100%;height:220px;object-fit:contain;background:#000;display:block;cursor:zoom-in}
figcaption{padding:8px 10px;color:#aaa;word-break:break-word;font-size:12px}
figcaption .p{color:#ddd;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
figcaption .m{display:block}
.f{display:block;color:#888}
.j .jf{display:none}
.in{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:4px 0;color:#aaa;font-size:12px}
.in img{width:44px;height:44px;object-fit:cover;border-radius:4px;background:#000;display:block;cursor:pointer}
.in .x{background:#262626;border-radius:4px;padding:1px 5px}
.in a.u{color:#9bd;word-break:break-all}
[hidden]{display:none!important}
#lb{position:fixed;inset:0;z-index:2;background:#000e;display:flex;flex-direction:column;align-items:center;
justify-content:center}
#lb img{max-width:94vw;max-height:82vh;object-fit:contain}
#lb p{color:#ccc;max-width:90vw;text-align:center;margin:10px}
#lb button{position:absolute;background:none;border:0;color:#ccc;font-size:34px;cursor:pointer;padding:12px}
#lb-x{top:8px;right:12px}#lb-prev{left:8px;top:45%}#lb-next{right:8px;top:45%}
"""
# A module script runs once the page is parsed, like `defer`, and in strict mode. The job view is the
# page as written; another grouping is made of copies of the cards, so the job view never changes.
SCRIPT = """
const q = document.getElementById('q'), by = document.getElementById('by'), count = document.getElementById('count');
const main = document.querySelector('main'), byJob = document.getElementById('jobs');
const groups = document.getElementById('groups'), originals = [...byJob.querySelectorAll('figure')];
const data = card => card.querySelector('a.im').dataset;
function regroup() {
  groups.replaceChildren();
  const choice = by ? by.value : '';
  byJob.hidden = choice !== '';
  groups.hidden = choice === '';
  if (choice !== '') {
    const label = by.selectedOptions[0].textContent, members = new Map();
    originals.forEach(card => {
      const vars = JSON.parse(data(card).vars || '{}'), name = choice.slice(2);
      const value = (choice === 'model' ? data(card).model : Object.hasOwn(vars, name) && vars[name]) || '(none)';
      if (!members.has(value)) members.set(value, []);
      members.get(value).push(card.cloneNode(true));
    });
    members.forEach((cards, value) => {
      const section = document.createElement('section'), title = document.createElement('h2');
      const grid = document.createElement('div');
      section.className = 'group';
      title.textContent = label + ' = ' + value + ' (' + cards.length + ')';
      grid.className = 'grid';
      grid.append(...cards);
      section.append(title, grid);
      groups.appendChild(section);
    });
  }
  filter();
}
function filter() {
  const terms = q.value.toLowerCase().split(/\\s+/).filter(Boolean), view = byJob.hidden ? groups : byJob;
  let shown = 0;
  view.querySelectorAll('figure').forEach(card => {
    card.hidden = !terms.every(term => data(card).search.includes(term));
    shown += card.hidden ? 0 : 1;
  });
  view.querySelectorAll('section, .folder').forEach(part => { part.hidden = !part.querySelector('figure:not([hidden])'); });
  count.textContent = shown + ' of ' + originals.length + ' images';
}
const box = document.getElementById('lb'), big = document.getElementById('lb-img');
const caption = document.getElementById('lb-cap');
let current = null;
function open(card) {
  current = card;
  big.src = card.querySelector('a.im').getAttribute('href');
  caption.textContent = data(card).caption;
  box.hidden = false;
}
function step(offset) {
  const visible = [...main.querySelectorAll('figure')].filter(card => card.offsetParent !== null);
  const at = visible.indexOf(current);
  if (visible.length) open(visible[(at + offset + visible.length) % visible.length]);
}
main.addEventListener('click', event => {
  const link = event.target.closest('a.im');
  if (link && event.target.tagName === 'IMG') { event.preventDefault(); open(link.closest('figure')); }
});
box.addEventListener('click', event => { if (event.target === box || event.target.id === 'lb-x') box.hidden = true; });
document.getElementById('lb-prev').addEventListener('click', () => step(-1));
document.getElementById('lb-next').addEventListener('click', () => step(1));
document.addEventListener('keydown', event => {
  if (box.hidden) return;
  if (event.key === 'Escape') box.hidden = true;
  if (event.key === 'ArrowLeft') step(-1);
  if (event.key === 'ArrowRight') step(1);
});
q.addEventListener('input', filter);
if (by) by.addEventListener('change', regroup);
regroup();
"""
LIGHTBOX = (
    '<div id="lb" hidden><button id="lb-x" aria-label="close">×</button><button id="lb-prev" aria-label="previous">‹'
    '</button><img id="lb-img" alt=""><button id="lb-next" aria-label="next">›</button><p id="lb-cap"></p></div>'
)
ANONYMOUS = re.compile(r"^\d+$")  # `{a,b}` alternatives are recorded by position: 1, 2, …
LABEL_LENGTH = 40


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


# Nothing but the page's own style, its own script and images beside it: no remote image, font,
# frame or script can load, whatever text a crafted record smuggled past the escaping.
POLICY = (
    f"default-src 'none'; img-src 'self' file:; style-src {_digest(STYLE)}; script-src {_digest(SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class Folder:
    """One directory of the page: how it is named there, and its jobs."""

    label: str
    jobs: list[Job]


def _cost(cost: float | None) -> str | None:
    return None if cost is None else f"job ${cost:.4f}"  # what the whole job cost: the API reports no more


def _href(page_dir: Path, path: Path) -> str:
    """A relative link from the page to `path`, percent-encoded: no scheme, host or markup can come of a name."""
    try:
        relative = os.path.relpath(path, page_dir)  # made absolute by relpath itself
    except ValueError:  # another drive (Windows): no relative path exists
        return path.absolute().as_uri()
    return quote(relative.replace(os.sep, "/"))


def _size(size: int | None) -> str | None:
    if size is None:
        return None
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"


def _input(page_dir: Path, image: InputImage) -> str:
    """A thumbnail of a local input still as recorded; else its name, size and sha256; a URL as a text link, never loaded."""
    name = html.escape(image.name)
    if image.url is not None:
        if urlsplit(image.url).scheme.lower() in ("http", "https"):
            url = html.escape(image.url)
            return f'<a class="u" href="{url}" rel="noopener noreferrer" target="_blank">{url}</a>'
        return f'<span class="x">{name}</span>'
    if image.local is not None:
        href = _href(page_dir, image.local)
        title = html.escape(" · ".join(part for part in (image.name, _size(image.size)) if part))
        return f'<a href="{href}" title="{title}"><img src="{href}" alt="{name}" loading="lazy"></a>'
    known = [part for part in (_size(image.size), image.sha256 and f"sha256 {image.sha256[:12]}…") if part]
    title = f' title="sha256 {image.sha256}"' if image.sha256 else ""
    return f'<span class="x"{title}>{" · ".join([name, *known])}</span>'


def _inputs(page_dir: Path, facts: Facts) -> str:
    if not facts.inputs:
        return ""
    return '<div class="in"><span>edit of</span>' + "".join(_input(page_dir, image) for image in facts.inputs) + "</div>"


def _details(facts: Facts, count: int | None = None) -> list[str]:
    """What is known of a job, beside its prompt: model, parameters, request id, image count, cost, timings.

    A card gives the id's first 8 characters (what `status` and `explain` take), a job's header the whole id."""
    images = f"{count} images" if count and count > 1 else None
    request_id = facts.request_id if count or facts.request_id is None else f"id {facts.request_id[:8]}"
    parts = (facts.model, facts.parameters, request_id, images, _cost(facts.cost), facts.timings)
    return [part for part in parts if part]


def _card(page_dir: Path, job: Job, path: Path, facts: Facts) -> str:
    """One image: a link to the file (the lightbox opens it), its job's facts (hidden inside its job's
    section, which shows them once), and its file name; searchable by all of it."""
    href = _href(page_dir, path)
    prompt = facts.prompt or job.facts.prompt or ""
    values = facts.values or job.facts.values or {}
    model = facts.model or job.facts.model or ""
    details = _details(facts)
    inputs = [image.name for image in facts.inputs or ()]
    searchable = " ".join([prompt, path.name, model, facts.request_id or "", *values.values(), *details, *inputs])
    caption = " — ".join(part for part in (prompt, " · ".join(details), path.name) if part)
    data = (f'data-search="{html.escape(searchable.lower())}" data-vars="{html.escape(json.dumps(values))}" '
            f'data-model="{html.escape(model)}" data-caption="{html.escape(caption)}"')
    known = f'<span class="p">{html.escape(prompt)}</span>' if prompt else ""
    known += f'<span class="m">{html.escape(" · ".join(details))}</span>' if details else ""
    return (
        f'<figure><a href="{href}" class="im" {data}><img src="{href}" alt="{html.escape(prompt or path.name)}" '
        f'loading="lazy"></a><figcaption><div class="jf">{known}{_inputs(page_dir, facts)}</div>'
        f'<span class="f">{html.escape(path.name)}</span></figcaption></figure>'
    )


def _job(page_dir: Path, job: Job) -> str:
    """A job of one image is its card; a job of several, a section: its facts once, then its images."""
    cards = "\n".join(_card(page_dir, job, path, facts) for path, facts in job.images)
    if len(job.images) == 1:
        return cards
    facts = job.facts
    title = html.escape(facts.prompt) if facts.prompt else html.escape(job.images[0][0].name)
    details = html.escape(" · ".join(_details(facts, len(job.images))))
    return f'<section><h2>{title}</h2><p>{details}</p>{_inputs(page_dir, facts)}<div class="grid j">\n{cards}\n</div></section>'


def _folder(page_dir: Path, folder: Folder, named: bool) -> str:
    count = sum(len(job.images) for job in folder.jobs)
    heading = f'<h2 class="dir">{html.escape(folder.label)} ({count} images)</h2>' if named else ""
    jobs = "\n".join(_job(page_dir, job) for job in folder.jobs)
    return f'<div class="folder">{heading}<div class="grid">\n{jobs}\n</div></div>'


def variable_labels(jobs: list[Job]) -> dict[str, str]:
    """Each matrix variable's name in "group by": `--var style=…` by its name, the `{a,b}` alternatives
    (recorded as 1, 2, … by position) by their values in the prompt's order, `{red,blue}`."""
    seen: dict[str, dict[str, int]] = {}
    for job in jobs:
        for _, facts in job.images:
            for name, value in (facts.values or {}).items():
                first = seen.setdefault(name, {})
                first[value] = min(first.get(value, sys.maxsize), facts.line or sys.maxsize)
    labels = {}
    for name, values in seen.items():
        if not ANONYMOUS.match(name):
            labels[name] = name
            continue
        label = "{" + ",".join(sorted(values, key=lambda value: values[value])) + "}"  # stable: file order among equals
        labels[name] = label if len(label) <= LABEL_LENGTH else label[:LABEL_LENGTH - 2] + "…}"
    return labels


def _toolbar(jobs: list[Job]) -> str:
    """The search box, and a choice of grouping: by model when the images come from several, by each
    variable of a prompt matrix. Several models open grouped by model: comparing them is why they were made."""
    models = {facts.model or "" for job in jobs for _, facts in job.images}
    options = []
    if len(models) > 1:
        options.append('<option value="model" selected>model</option>')
    options += [f'<option value="v:{html.escape(name)}">{html.escape(label)}</option>' for name, label in variable_labels(jobs).items()]
    grouping = ""
    if options:
        grouping = f'<label>group by <select id="by"><option value="">job</option>{"".join(options)}</select></label>'
    search = '<input id="q" type="search" placeholder="search prompts, ids, values…" aria-label="search" autofocus>'
    return f'<div class="bar">{search}{grouping}<span id="count"></span></div>'


def render_gallery(page: Path, folders: list[Folder]) -> str:
    """The page at `page`, linking to every image relative to it; each directory named when there are several."""
    page_dir = page.parent
    jobs = [job for folder in folders for job in folder.jobs]
    title = html.escape(f"nanobanana — {', '.join(folder.label for folder in folders)}")
    count = sum(len(job.images) for job in jobs)
    body = "\n".join(_folder(page_dir, folder, len(folders) > 1) for folder in folders)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><header><h1>{title} ({count} images, {len(jobs)} jobs)</h1>"
        f"{_toolbar(jobs)}</header>\n<main>\n<div id=\"jobs\">\n{body}\n</div>\n<div id=\"groups\" hidden></div>"
        f'\n</main>\n{LIGHTBOX}\n<script type="module">{SCRIPT}</script></body></html>\n'
    )
