"""Files from elsewhere (a shard's artifact, a shared folder, a received image) are read with
limits and written without following links: planted symbolic links, deeply nested JSON and
fields of the wrong type cost a warning, never another file's contents or the whole command."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from nanobanana_cli.engine.provenance import PNG_PREFIX, XMP_HEADER
from nanobanana_cli.stores import safe_json
from nanobanana_cli.stores.safe_files import create_new, create_temporary, open_for_append, write_atomically

DEEP = 100_000  # far past the depth at which json.loads raises RecursionError
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really a key\n"


def png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def with_chunk(image: bytes, kind: bytes, payload: bytes) -> bytes:
    """`image` (a PNG) with one more chunk after its header."""
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return image[:33] + chunk + image[33:]


def png_with_provenance(text: str | bytes) -> bytes:
    return with_chunk(png(), b"iTXt", PNG_PREFIX + (text.encode() if isinstance(text, str) else text))


def jpeg_with_xmp(packet: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    payload = XMP_HEADER + packet.encode()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def deep_json() -> str:
    return "[" * DEEP + "]" * DEEP


def outside_file(tmp_path: Path, text: str = "precious\n") -> Path:
    target = tmp_path / "outside" / "precious.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def batch_into(cli, tmp_path: Path, directory: Path, *extra: str) -> list[Path]:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("fox a\nfox b\n")
    run = cli("batch", prompts, "-o", directory, "-q", *extra)
    assert run.exit_code == 0, run.stderr
    return [Path(line) for line in run.stdout.split()]


# -- the helpers themselves --------------------------------------------------------------------------


def test_the_write_helpers_never_write_through_a_link(tmp_path):
    target = outside_file(tmp_path)
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "page.html").symlink_to(target)
    write_atomically(directory / "page.html", b"new page")
    assert target.read_text() == "precious\n" and not (directory / "page.html").is_symlink()
    assert (directory / "page.html").read_bytes() == b"new page"
    (directory / "log.jsonl").symlink_to(target)
    with pytest.raises(OSError), open_for_append(directory / "log.jsonl") as handle:
        handle.write(b"appended")
    (directory / "dangling.json").symlink_to(tmp_path / "outside" / "created-through-a-link")
    assert create_new(directory / "dangling.json", b"{}") is False
    assert not (tmp_path / "outside" / "created-through-a-link").exists() and target.read_text() == "precious\n"
    fd, temporary = create_temporary(directory / "x.png")
    os.close(fd)
    assert temporary.parent == directory and temporary.name.startswith(".x.png.") and temporary.name.endswith(".part")


@pytest.mark.parametrize("text", [deep_json(), "{" * 70 + "}" * 70, '{"a": ' * 65 + "1" + "}" * 65])
def test_the_json_reader_refuses_deep_nesting_before_parsing(text):
    with pytest.raises(ValueError, match="nested deeper"):
        safe_json.loads(text)


def test_the_json_reader_counts_no_bracket_inside_a_string_and_bounds_the_size():
    assert safe_json.loads(json.dumps({"prompt": "[" * 1000 + '\\"{' * 100})) == {"prompt": "[" * 1000 + '\\"{' * 100}
    assert safe_json.depth('["a\\\\", [1, "]"]]') == 2 and safe_json.depth('{"a": "[[[') == 1  # an unterminated string
    assert safe_json.depth('"\\"[[' * 1000 + "\\") == 0  # an escaped quote ends no string
    with pytest.raises(ValueError, match="over 10 bytes"):
        safe_json.loads('"' + "x" * 20 + '"', max_bytes=10)
    with pytest.raises(ValueError, match="not a JSON object"):
        safe_json.loads_object("[1]")


# -- item 4: no write follows a link ----------------------------------------------------------------


def test_the_gallery_never_writes_through_a_planted_temporary_link(cli, tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir()
    (directory / "a.png").write_bytes(png())
    target = outside_file(tmp_path)
    (directory / ".index.html.tmp").symlink_to(target)
    (directory / "index.html").symlink_to(outside_file(tmp_path / "other"))
    run = cli("gallery", directory)
    assert run.exit_code == 0, run.stderr
    assert target.read_text() == "precious\n" and (tmp_path / "other" / "outside" / "precious.txt").read_text() == "precious\n"
    page = directory / "index.html"
    assert not page.is_symlink() and "a.png" in page.read_text()


def test_merge_never_writes_through_a_planted_part_file(cli, sandbox, tmp_path):
    saved = batch_into(cli, tmp_path, tmp_path / "shard")
    destination = tmp_path / "all"
    destination.mkdir()
    target = outside_file(tmp_path)
    for path in saved:
        (destination / f".{path.name}.merge.part").symlink_to(target)
    run = cli("merge", tmp_path / "shard", "-o", destination)
    assert run.exit_code == 0, run.stderr
    assert target.read_text() == "precious\n" and len(run.stdout.split()) == 2
    assert all((destination / path.name).read_bytes() == path.read_bytes() for path in saved)


def test_merge_copies_no_sidecar_that_is_a_link_or_not_a_provenance_record(cli, sandbox, tmp_path):
    saved = batch_into(cli, tmp_path, tmp_path / "shard", "--metadata", "none")
    key = outside_file(tmp_path, SECRET)
    Path(f"{saved[0]}.json").symlink_to(key)
    Path(f"{saved[1]}.json").write_text(SECRET)  # a plain file, but no JSON object
    run = cli("merge", tmp_path / "shard", "-o", tmp_path / "all")
    assert run.exit_code == 0, run.stderr
    assert len(run.stdout.split()) == 2  # the images themselves are merged
    assert not any(SECRET.splitlines()[0] in path.read_text(errors="replace") for path in (tmp_path / "all").iterdir())
    assert not any(path.name.endswith(".png.json") for path in (tmp_path / "all").iterdir())
    assert f"{saved[0].name}.json: not copied: not a regular file" in run.stderr
    assert f"{saved[1].name}.json: not copied: not a provenance record" in run.stderr


def test_merge_still_copies_a_good_sidecar(cli, sandbox, tmp_path):
    saved = batch_into(cli, tmp_path, tmp_path / "shard", "--metadata", "sidecar")
    run = cli("merge", tmp_path / "shard", "-o", tmp_path / "all")
    assert run.exit_code == 0 and "warning" not in run.stderr, run.stderr
    for path in saved:
        assert (tmp_path / "all" / f"{path.name}.json").read_bytes() == Path(f"{path}.json").read_bytes()


def test_merge_copies_no_image_that_is_a_link(cli, sandbox, tmp_path):
    saved = batch_into(cli, tmp_path, tmp_path / "shard")
    real = tmp_path / "elsewhere.png"
    saved[0].rename(real)
    saved[0].symlink_to(real)  # same bytes, same hash: still not the file the job saved there
    run = cli("merge", tmp_path / "shard", "-o", tmp_path / "all")
    assert run.exit_code == 0 and "missing or changed" in run.stderr and len(run.stdout.split()) == 1
    assert not (tmp_path / "all" / saved[0].name).exists()


def test_a_batch_manifest_planted_as_a_link_is_refused_before_anything_is_sent(cli, sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = outside_file(tmp_path)
    (out / "nanobanana-batch.jsonl").symlink_to(target)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox\n")
    run = cli("batch", prompts, "-o", out)
    assert run.exit_code == 2 and "not a regular file" in run.stderr, run.stderr
    assert target.read_text() == "precious\n" and sandbox.stats.submits == 0


# -- item 5: one bad file is one warning, the rest goes on -----------------------------------------


@pytest.mark.parametrize("make", [
    lambda: png_with_provenance(deep_json()),
    lambda: jpeg_with_xmp(f"<nb:provenance>{'[' * 30000}</nb:provenance>"),
], ids=["png", "jpeg"])
def test_inspect_reports_every_other_file_when_one_holds_deeply_nested_provenance(cli, sandbox, tmp_path, make):
    (good,) = cli("generate", "a good fox", "-o", tmp_path, "-q").stdout.split()
    bad = tmp_path / "bad.img"
    bad.write_bytes(make())
    run = cli("inspect", good, bad)
    assert run.exit_code == 0, run.stderr
    assert "prompt:     a good fox" in run.stdout and str(bad) in run.stdout and "none found" in run.stdout


def test_a_deeply_nested_sidecar_is_no_provenance(cli, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(png())
    Path(f"{image}.json").write_text(deep_json())
    run = cli("inspect", image)
    assert run.exit_code == 0 and "none found" in run.stdout, run.stderr
    regen = cli("regen", image, "--dry-run")
    assert regen.exit_code == 2 and "carries no nanobanana provenance" in regen.stderr


def test_regen_of_deeply_nested_provenance_is_a_usage_error(cli, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(png_with_provenance(deep_json()))
    run = cli("regen", bad, "--dry-run")
    assert run.exit_code == 2 and "carries no nanobanana provenance" in run.stderr


def test_the_gallery_renders_the_rest_of_a_directory_with_crafted_files(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    good = [Path(p) for p in cli("generate", "a good fox", "-n", "2", "-o", out, "-q").stdout.split()]
    (out / "deep.png").write_bytes(png_with_provenance(deep_json()))
    odd = {"prompt": ["not", "text"], "request_id": 12345, "submitted_at": 1700000000, "index": "1",
           "finished_at": {"a": 1}, "aspect_ratio": 16, "output_format": None}
    (out / "odd.png").write_bytes(png_with_provenance(json.dumps(odd)))
    (out / "other.png").write_bytes(png_with_provenance(json.dumps({"submitted_at": "2026-01-01T00:00:00Z"})))
    (out / "sidecar.png").write_bytes(png())
    (out / "sidecar.png.json").write_text(json.dumps({"submitted_at": 5, "request_id": ["x"]}))
    run = cli("gallery", out)
    assert run.exit_code == 0, run.stderr
    page = Path(run.stdout.strip()).read_text()
    assert page.count("<figure>") == 6
    assert all(f'<a href="{name}"' in page for name in ("deep.png", "odd.png", "other.png", "sidecar.png", *(p.name for p in good)))
    assert "a good fox" in page


def manifest_of(directory: Path) -> Path:
    return directory / "nanobanana-batch.jsonl"


def test_merge_and_the_gallery_survive_manifest_records_of_the_wrong_shape(cli, sandbox, tmp_path):
    saved = batch_into(cli, tmp_path, tmp_path / "shard")
    manifest = manifest_of(tmp_path / "shard")
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    done = [record for record in records if record.get("status") == "succeeded"]
    done[0]["line"] = "one"  # mixed types for `line`: sorting them crashed
    done[1]["vars"] = ["a", "list"]
    with manifest.open("a") as handle:
        for record in done:
            handle.write(json.dumps(record) + "\n")
        handle.write(deep_json() + "\n")
        handle.write(json.dumps({"key": "x-1", "line": 3, "request_id": 7}) + "\n")
    problems = ['"line" is not a line number', '"vars" is not an object of strings', "not JSON (nested deeper than 64 levels)",
                'invalid "request_id"']
    gallery = cli("gallery", tmp_path / "shard")
    assert gallery.exit_code == 0 and Path(gallery.stdout.strip()).read_text().count("<figure>") == 2, gallery.stderr
    assert all(f"{manifest}:" in gallery.stderr and f"{problem}; skipped" in gallery.stderr for problem in problems), gallery.stderr
    merged = cli("merge", tmp_path / "shard", "-o", tmp_path / "all")
    # A mangled record may have held a billed job's id: its line is not taken as done, and is
    # never sent again: the next run re-attaches to the job its earlier records name.
    assert merged.exit_code == 0 and "3 not finished" in merged.stderr, merged.stderr
    assert all(f"{problem}; skipped" in merged.stderr for problem in problems)
    rerun = cli("batch", tmp_path / "prompts.txt", "-o", tmp_path / "all", "--json")
    assert rerun.exit_code == 0 and sandbox.stats.submits == len(saved), rerun.stderr


def test_batch_goes_on_past_a_deeply_nested_manifest_record(cli, sandbox, tmp_path):
    batch_into(cli, tmp_path, tmp_path / "out")
    with manifest_of(tmp_path / "out").open("a") as handle:
        handle.write(deep_json() + "\n")
    prompts = tmp_path / "prompts.txt"
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    assert "nanobanana-batch.jsonl:" in run.stderr and "skipped" in run.stderr
    assert all(json.loads(line)["skipped"] for line in run.stdout.splitlines()) and sandbox.stats.submits == 2


def test_a_deeply_nested_batch_line_is_a_line_problem(cli, sandbox, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a fox", "name": ' + deep_json() + "}\n")
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "nested deeper" in run.stderr and sandbox.stats.submits == 0, run.stderr


# -- item 5: the catalog -------------------------------------------------------------------------------


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": ["prompt", "aspect_ratio"]},
    {"type": "object", "properties": {"prompt": "a string, not a property"}},
    {"type": "object", "properties": {"aspect_ratio": {"type": "string", "enum": 16}}},
    {"type": "object", "properties": {"prompt": {"type": "string", "default": nested(200)}}},
    {"type": "object", "properties": {"num_images": {"type": "integer", "default": float("nan")}}},
], ids=["properties-list", "property-text", "enum-number", "deep-default", "nan-default"])
def test_an_oddly_shaped_catalog_schema_is_dropped_before_it_is_shown_or_cached(cli, sandbox, monkeypatch, schema):
    from nanobanana_cli.sandbox.models import SandboxModel

    monkeypatch.setattr(SandboxModel, "input_schema", lambda self: schema)
    for _ in range(2):  # neither shown nor cached: the second run asks the catalog again
        run = cli("model", "--json")
        assert run.exit_code == 0, run.stderr
        shown = json.loads(run.stdout)
        assert shown["source"] == "bundled" and "not usable" in shown["source_note"], shown
        assert "not from the live catalog" in run.stderr
    cache = Path(os.environ["NANOBANANA_DATA_DIR"]) / "catalog.json"
    assert not cache.exists() or json.loads(cache.read_text()) == {}


def test_a_tampered_catalog_cache_is_checked_again_when_read(cli, sandbox):
    assert cli("model").exit_code == 0
    cache = Path(os.environ["NANOBANANA_DATA_DIR"]) / "catalog.json"
    data = json.loads(cache.read_text())
    for entry in data.values():
        entry["info"].update(base_price_usd="free", display_name=7, input_schema={"properties": [1]})
    cache.write_text(json.dumps(data))
    run = cli("model", "--json")
    assert run.exit_code == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["source"] == "api", "a tampered entry is a miss: the live catalog is asked again"
    assert isinstance(shown["display_name"], str) and shown["input_schema"]["properties"]["prompt"]
