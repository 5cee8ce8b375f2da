"""The gallery page (index.html) for a directory of generated images: a search box and a lightbox,
a section per job, each card with its prompt, parameters, cost and timings. Vanilla JavaScript and
CSS inline: no external asset, no network at all. What it shows is gathered by engine/gallery.py.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import quote

from ..engine.gallery import Facts, Job

GALLERY_NAME = "index.html"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{position:sticky;top:0;z-index:1;background:#111e;padding:16px 24px 10px;border-bottom:1px solid #222}
h1{font-size:18px;font-weight:600;margin:0 0 8px}
.bar{display:flex;gap:16px;align-items:center;flex-wrap:wrap;color:#aaa}
.bar input,.bar select{font:inherit;background:#1c1c1c;color:#eee;border:1px solid #333;border-radius:6px;padding:5px 8px}
.bar input{width:min(420px,70vw)}
main{padding:16px 24px}
section{margin:0 0 28px}
h2{font-size:15px;font-weight:600;margin:0 0 2px}
section>p{color:#aaa;margin:0 0 10px;word-break:break-all}
div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
figure{margin:0;background:#1c1c1c;border-radius:8px;overflow:hidden}
figure img{width:100%;height:220px;object-fit:contain;background:#000;display:block;cursor:zoom-in}
figcaption{padding:8px 10px;color:#aaa;word-break:break-word;font-size:12px}
figcaption .p{color:#ddd;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.v{display:inline-block;background:#2a2a40;color:#ccd;border-radius:4px;padding:0 5px;margin:2px 4px 0 0}
[hidden]{display:none!important}
#lb{position:fixed;inset:0;z-index:2;background:#000e;display:flex;flex-direction:column;align-items:center;
justify-content:center}
#lb img{max-width:94vw;max-height:82vh;object-fit:contain}
#lb p{color:#ccc;max-width:90vw;text-align:center;margin:10px}
#lb button{position:absolute;background:none;border:0;color:#ccc;font-size:34px;cursor:pointer;padding:12px}
#lb-x{top:8px;right:12px}#lb-prev{left:8px;top:45%}#lb-next{right:8px;top:45%}
"""
# No external asset and no URL: the page works from a copied folder, offline, in a CI artifact.
# A module script runs once the page is parsed, like `defer`, and in strict mode.
SCRIPT = """
const q = document.getElementById('q'), by = document.getElementById('by'), count = document.getElementById('count');
const main = document.querySelector('main'), jobs = [...main.querySelectorAll('section')];
const cards = [...main.querySelectorAll('figure')];
cards.forEach(card => { card.home = card.parentNode; card.data = card.querySelector('a').dataset; });
let made = [];
function regroup() {
  made.forEach(section => section.remove());
  made = [];
  const name = by ? by.value : '';
  jobs.forEach(section => { section.hidden = name !== ''; });
  if (name === '') { cards.forEach(card => card.home.appendChild(card)); return filter(); }
  const groups = new Map();
  cards.forEach(card => {
    const value = JSON.parse(card.data.vars || '{}')[name] ?? '(none)';
    if (!groups.has(value)) groups.set(value, []);
    groups.get(value).push(card);
  });
  groups.forEach((members, value) => {
    const section = document.createElement('section'), title = document.createElement('h2');
    const grid = document.createElement('div');
    title.textContent = name + ' = ' + value;
    grid.className = 'grid';
    members.forEach(card => grid.appendChild(card));
    section.append(title, grid);
    main.appendChild(section);
    made.push(section);
  });
  filter();
}
function filter() {
  const terms = q.value.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  cards.forEach(card => {
    card.hidden = !terms.every(term => card.data.search.includes(term));
    shown += card.hidden ? 0 : 1;
  });
  [...jobs, ...made].forEach(section => {
    if (by && (by.value === '') !== jobs.includes(section)) return;
    section.hidden = !section.querySelector('figure:not([hidden])');
  });
  count.textContent = shown + ' of ' + cards.length + ' images';
}
const box = document.getElementById('lb'), big = document.getElementById('lb-img');
const caption = document.getElementById('lb-cap');
let current = null;
function open(card) {
  current = card;
  big.src = card.querySelector('a').getAttribute('href');
  caption.textContent = card.data.caption;
  box.hidden = false;
}
function step(offset) {
  const visible = [...main.querySelectorAll('figure:not([hidden])')].filter(card => !card.closest('section').hidden);
  const at = visible.indexOf(current);
  if (visible.length) open(visible[(at + offset + visible.length) % visible.length]);
}
main.addEventListener('click', event => {
  const card = event.target.closest('figure');
  if (card && event.target.tagName === 'IMG') { event.preventDefault(); open(card); }
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
filter();
"""


def _cost(cost: float | None) -> str | None:
    return None if cost is None else f"job ${cost:.4f}"  # what the whole job cost: the API reports no more


def _card(job: Job, path: Path, facts: Facts) -> str:
    """One image: a link to the file (the lightbox opens it), and what is known about it, searchable."""
    href = quote(path.name)
    prompt = facts.prompt or job.facts.prompt or ""
    values = facts.values or {}
    details = [facts.parameters, _cost(facts.cost), facts.timings]
    searchable = " ".join([prompt, path.name, facts.request_id or "", *values.values(), *(part for part in details if part)])
    chips = "".join(f'<span class="v">{html.escape(name)}={html.escape(value)}</span>' for name, value in values.items())
    shown = " · ".join(part for part in details if part)
    caption = " — ".join(part for part in (prompt, shown, path.name) if part)
    data = f'data-search="{html.escape(searchable.lower())}" data-vars="{html.escape(json.dumps(values))}"'
    return (
        f'<figure><a href="{href}" {data} data-caption="{html.escape(caption)}"><img src="{href}" alt="{html.escape(prompt or path.name)}" '
        f'loading="lazy"></a><figcaption><span class="p">{html.escape(prompt)}</span>{html.escape(shown)}'
        f"<br>{html.escape(path.name)}{'<br>' + chips if chips else ''}</figcaption></figure>"
    )


def _section(job: Job) -> str:
    facts = job.facts
    title = html.escape(facts.prompt) if facts.prompt else html.escape(job.images[0][1].name)
    parts = (facts.parameters, facts.request_id, f"{len(job.images)} image(s)", _cost(facts.cost), facts.timings)
    details = " · ".join(html.escape(part) for part in parts if part)
    cards = "\n".join(_card(job, path, image_facts) for _, path, image_facts in job.images)
    return f"<section><h2>{title}</h2><p>{details}</p><div class=\"grid\">\n{cards}\n</div></section>"


def _toolbar(jobs: list[Job]) -> str:
    """The search box, and a choice of grouping when the images come from a prompt matrix."""
    names = list(dict.fromkeys(name for job in jobs for _, _, facts in job.images for name in facts.values or {}))
    grouping = ""
    if names:
        options = "".join(f'<option value="{html.escape(name)}">{html.escape(name)}</option>' for name in names)
        grouping = f'<label>group by <select id="by"><option value="">job</option>{options}</select></label>'
    search = '<input id="q" type="search" placeholder="search prompts, ids, values…" aria-label="search" autofocus>'
    return f'<div class="bar">{search}{grouping}<span id="count"></span></div>'


def render_gallery(directory: Path, jobs: list[Job]) -> str:
    title = html.escape(f"nanobanana — {directory.name or directory}")
    count = sum(len(job.images) for job in jobs)
    lightbox = (
        '<div id="lb" hidden><button id="lb-x" aria-label="close">×</button><button id="lb-prev" aria-label="previous">‹'
        '</button><img id="lb-img" alt=""><button id="lb-next" aria-label="next">›</button><p id="lb-cap"></p></div>'
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><header><h1>{title} ({count} images, {len(jobs)} jobs)</h1>"
        f"{_toolbar(jobs)}</header>\n<main>\n"
        + "\n".join(_section(job) for job in jobs)
        + f'\n</main>\n{lightbox}\n<script type="module">{SCRIPT}</script></body></html>\n'
    )
