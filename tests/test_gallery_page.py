"""`gallery DIR…`: several directories, file-name order, an empty folder refused, matrix variables
named by what they are, grouping by model, and an edit's inputs beside its outputs (issues 22, 23)."""

from __future__ import annotations

import hashlib
import html
import os
import re
from pathlib import Path

from PIL import Image

from nanobanana_cli.engine import provenance


def saved(run) -> list[Path]:
    assert run.exit_code == 0, run.stderr
    return [Path(line) for line in run.stdout.split()]


def page_of(run) -> str:
    assert run.exit_code == 0, run.stderr
    return Path(run.stdout.strip()).read_text()


def image_links(page: str) -> list[str]:
    """The images of the job view, in page order (each card's main image)."""
    return re.findall(r'<figure><a href="([^"]+)"', page)


def card(page: str, href: str) -> str:
    (found,) = re.findall(rf'<figure><a href="{re.escape(href)}".*?</figure>', page, re.S)
    return found


def picture(path: Path, colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def test_several_directories_make_one_page_in_the_first_with_a_section_each(cli, sandbox, tmp_path):
    one, two = tmp_path / "run-1", tmp_path / "run-2"
    first = saved(cli("generate", "a fox", "-o", one, "-q"))
    second = saved(cli("generate", "a cat", "-n", "2", "-o", two, "-q"))
    run = cli("gallery", one, two)
    page = page_of(run)
    assert Path(run.stdout.strip()) == (one / "index.html").resolve() and not (two / "index.html").exists()
    assert image_links(page) == [first[0].name, *(f"../run-2/{path.name}" for path in second)]
    assert f'<h2 class="dir">{one} (1 images)</h2>' in page and f'<h2 class="dir">{two} (2 images)</h2>' in page
    assert page.index(str(one)) < page.index(first[0].name) < page.index(f'<h2 class="dir">{two}') < page.index(second[0].name)

    elsewhere = tmp_path / "pages" / "compare.html"
    elsewhere.parent.mkdir()
    moved = cli("gallery", one, two, one, "-o", elsewhere)  # a directory named twice is shown once
    assert Path(moved.stdout.strip()) == elsewhere.resolve()
    assert image_links(page_of(moved)) == [f"../run-1/{first[0].name}", *(f"../run-2/{path.name}" for path in second)]
    assert cli("gallery", one, "-o", tmp_path / "pages").stdout.strip() == str((tmp_path / "pages" / "index.html").resolve())


def test_the_page_never_replaces_an_image_named_by_o(cli, sandbox, tmp_path):
    (image,) = saved(cli("generate", "a fox", "-o", tmp_path / "g", "-q"))
    before = image.read_bytes()
    run = cli("gallery", tmp_path / "g", "-o", image)
    assert run.exit_code == 2 and "must end in .html" in run.stderr and image.read_bytes() == before


def test_an_empty_folder_is_an_error_and_no_page_is_written(cli, sandbox, tmp_path):
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    saved(cli("generate", "a fox", "-o", full, "-q"))
    for args in ([empty], [full, empty]):
        run = cli("gallery", *args)
        assert run.exit_code == 2 and run.stdout == "", run.stderr
        (line,) = run.stderr.splitlines()
        assert line.startswith(f"error: no PNG, JPEG or WebP images in '{empty}'") and "generate -o DIR" in line, line
        assert not (empty / "index.html").exists() and not (full / "index.html").exists()


def test_images_follow_their_file_names_not_the_order_jobs_finished(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    later = saved(cli("generate", "b fox", "-o", out, "-q"))  # submitted first, named later
    earlier = saved(cli("generate", "a fox", "-n", "2", "-o", out, "-q"))
    ten = saved(cli("generate", "c fox", "-n", "10", "--name", "fox-{i}", "-o", out, "-q"))  # three jobs: 4 + 4 + 2
    page = page_of(cli("gallery", out))
    assert image_links(page) == [path.name for path in [*earlier, *later, *ten]]  # fox-2 … fox-9 before fox-10
    assert [name for name in image_links(page) if name.startswith("fox-")] == [f"fox-{i}.png" for i in range(1, 11)]


def test_matrix_alternatives_are_named_by_their_values_and_variables_by_name(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    saved(cli("generate", "a {red,blue} fox in {fog,snow}, {style}", "--var", "style=ink,oil", "-o", out, "-q"))
    page = page_of(cli("gallery", out))
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', page)
    assert options == [("", "job"), ("v:1", "{red,blue}"), ("v:2", "{fog,snow}"), ("v:style", "style")]
    assert page.count("<figure>") == 8 and page.count("<section>") == 0


def test_images_of_several_models_open_grouped_by_model(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    one = saved(cli("generate", "a fox", "--model", "nano-banana", "-o", out, "-q"))
    two = saved(cli("generate", "a fox", "--model", "nano-banana-2", "-o", out, "-q"))
    page = page_of(cli("gallery", out))
    assert '<option value="model" selected>model</option>' in page
    assert 'data-model="nano-banana"' in card(page, one[0].name) and 'data-model="nano-banana-2"' in card(page, two[0].name)
    alone = tmp_path / "alone"
    saved(cli("generate", "a fox", "-o", alone, "-q"))
    assert 'value="model"' not in page_of(cli("gallery", alone))  # one model: nothing to group by


def test_an_edit_shows_its_inputs_beside_its_outputs(cli, sandbox, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "g"
    cat, room = picture(photos / "cat.png", "orange"), picture(photos / "room.png", "blue")
    (edited,) = saved(cli("edit", "the cat in the room", "-i", cat, "-i", room, "-o", out, "-q"))
    shown = card(page_of(cli("gallery", out)), edited.name)
    (inputs,) = re.findall(r'<div class="in">.*?</div>', shown)
    assert re.findall(r'<img src="([^"]+)"', inputs) == ["../photos/cat.png", "../photos/room.png"]  # thumbnails, relative

    picture(cat, "green")  # no longer the image the edit was made from
    room.unlink()
    shown = card(page_of(cli("gallery", out)), edited.name)
    (inputs,) = re.findall(r'<div class="in">.*?</div>', shown)
    assert "<img" not in inputs
    for record in provenance.read(edited)[0]["image_urls"]:
        assert f'{record["file"]} · {record["bytes"]} B · sha256 {record["sha256"][:12]}…' in inputs
        assert f'title="sha256 {record["sha256"]}"' in inputs


def test_crafted_inputs_are_escaped_never_loaded_and_never_read_through_links(cli, tmp_path):
    out, secret = tmp_path / "g", picture(tmp_path / "private" / "secret.png")
    data = secret.read_bytes()
    (out / "link.png").parent.mkdir()
    (out / "link.png").symlink_to(secret)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    digest = hashlib.sha256(data).hexdigest()
    records = [
        {"url": "https://example.com/cat.png"},
        {"url": "javascript:alert(1)"},
        {"file": '"><script>alert(1)</script>.png', "path": str(tmp_path / "nowhere.png"), "bytes": 5, "sha256": "0" * 64},
        {"file": "link.png", "path": str(out / "link.png"), "bytes": len(data), "sha256": digest},  # a link: not followed
        {"file": "fifo.png", "path": str(fifo), "bytes": 10, "sha256": "0" * 64},  # a pipe: not opened to wait on
        {"file": "bigger.png", "path": str(secret), "bytes": len(data) - 1, "sha256": digest},  # not as recorded
        ["not a record"], {"bytes": 3},  # neither a URL nor a record: not shown
    ]
    made = picture(out / "made.png")
    provenance.record(made, {"prompt": "<b>bold</b> fox", "model": "<i>x</i>", "image_urls": records})
    page = page_of(cli("gallery", out))
    shown = card(page, "made.png")
    (inputs,) = re.findall(r'<div class="in">.*?</div>', shown)
    assert '<a class="u" href="https://example.com/cat.png" rel="noopener noreferrer" target="_blank">' in inputs
    assert 'src="https:' not in page and "javascript:alert(1)</span>" in inputs and 'href="javascript' not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;.png" in inputs and "<script>alert" not in page
    assert "<img" not in inputs and html.escape("<b>bold</b> fox") in shown and "&lt;i&gt;x&lt;/i&gt;" in shown
    assert inputs.count('class="x"') == 5 and "not a record" not in inputs
