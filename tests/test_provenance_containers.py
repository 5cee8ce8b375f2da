"""Image containers walked by the lengths they declare, and a paid image never lost to its metadata.

Each crafted file of issue 21 (items 2, 3 and 12) has its own case here: a WebP with bytes after
its RIFF payload, a simple WebP followed by a stray chunk, WebP chunks too short for their
headers, an XMP packet for a prompt with control characters. Embedding either writes a file
every reader accepts with the same pixels, or raises the one `NotEmbeddable`; through the CLI the
image is then saved as delivered with a sidecar, a warning and the reason in the job document.
"""

from __future__ import annotations

import io
import json
import os
import struct
import xml.dom.minidom
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nanobanana_cli.engine import provenance

from .image_samples import SEEDS, WEBPINFO, decoded, png_chunk, riff, saved, webp_chunk, webp_chunks, webpinfo_accepts

PROVENANCE = {"prompt": "a lighthouse at dusk", "request_id": "abc-123", "index": 1, "count": 1}
XMP_NS = "{https://github.com/nanobanana-cli/provenance/1.0/}"
RDF_NS = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def embedded_copy(data: bytes, made: dict = PROVENANCE) -> bytes:
    target = io.BytesIO()
    provenance.embed(io.BytesIO(data), target, made)
    return target.getvalue()


def assert_valid_webp_like(original: bytes, written: bytes) -> None:
    """Pillow decodes the same pixels; webpinfo (where installed) accepts it; its RIFF size covers it exactly."""
    assert decoded(written) == decoded(original) is not None
    assert 8 + struct.unpack("<I", written[4:8])[0] == len(written)
    if WEBPINFO is not None:
        assert webpinfo_accepts(written)


# -- item 2: the RIFF size and the simple format ----------------------------------------------------


@pytest.mark.parametrize("trailer", [b"\0", b"junk!", b"\0" * 64], ids=["one byte", "odd junk", "64 bytes"])
@pytest.mark.parametrize("seed", ["lossy", "lossless", "lossy with alpha", "animated"])
def test_a_webp_with_bytes_after_its_riff_payload_takes_provenance_and_stays_valid(seed, trailer, tmp_path):
    original = SEEDS["webp"][seed]() + trailer
    path = tmp_path / "image.webp"
    path.write_bytes(original)
    assert provenance.record(path, PROVENANCE) == "embedded"
    written = path.read_bytes()
    assert_valid_webp_like(original, written)  # its RIFF size covers it exactly: the trailer is dropped
    found, where = provenance.read(path)
    assert where == "embedded" and found["prompt"] == PROVENANCE["prompt"]
    assert provenance.image_data_sha256(written) == provenance.image_data_sha256(original) == found["image_data_sha256"]


@pytest.mark.parametrize("stray", [b"ANIM", b"EXIF", b"ICCP", b"ALPH"])
@pytest.mark.parametrize("seed", ["lossy", "lossless"])
def test_a_simple_webp_followed_by_a_stray_chunk_is_left_whole_with_a_sidecar(seed, stray, tmp_path):
    simple = SEEDS["webp"][seed]()
    original = riff(simple[12:], webp_chunk(stray, b""))
    path = tmp_path / "image.webp"
    path.write_bytes(original)
    with pytest.raises(provenance.NotEmbeddable, match="simple WebP with chunks besides its image"):
        embedded_copy(original)
    assert provenance.record(path, PROVENANCE) == "sidecar"
    assert path.read_bytes() == original and decoded(original) is not None
    assert provenance.read(path)[1] == "sidecar"


def test_an_extended_webp_keeps_every_chunk_and_gains_only_the_xmp_flag_and_chunk():
    original = SEEDS["webp"]["with exif and icc"]()
    written = embedded_copy(original)
    assert webp_chunks(written)[:-1] == [
        (kind, payload if kind != b"VP8X" else bytes([payload[0] | 0x04]) + payload[1:]) for kind, payload in webp_chunks(original)
    ]
    assert webp_chunks(written)[-1][0] == b"XMP "
    assert_valid_webp_like(original, written)


# -- item 3: malformed WebP is the one clean error ---------------------------------------------------


def vp8(width: int = 8, height: int = 6, *, size: int = 10, key_frame: bool = True) -> bytes:
    header = bytes([0x10 if key_frame else 0x11, 0, 0]) + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return webp_chunk(b"VP8 ", (header + b"\0" * 16)[:size])


def vp8l(size: int = 5, version: int = 0) -> bytes:
    bits = 7 | (5 << 14) | (version << 29)
    return webp_chunk(b"VP8L", (b"\x2f" + struct.pack("<I", bits) + b"\0" * 8)[:size])


LOSSY = SEEDS["webp"]["lossy"]()
MALFORMED_WEBP = {
    "VP8 chunk of 9 bytes": riff(vp8(size=9)),
    "VP8 chunk of 5 bytes": riff(vp8(size=5)),
    "VP8L chunk of 4 bytes": riff(vp8l(size=4)),
    "VP8L chunk of 2 bytes": riff(vp8l(size=2)),
    "VP8L of an unknown version": riff(vp8l(size=12, version=1)),
    "VP8 of zero width": riff(vp8(width=0)),
    "VP8 of zero height": riff(vp8(height=0)),
    "VP8 that is not a key frame": riff(vp8(key_frame=False)),
    "empty VP8X alone": riff(webp_chunk(b"VP8X", b"")),
    "empty VP8X then ALPH and VP8": riff(webp_chunk(b"VP8X", b""), webp_chunk(b"ALPH", b"\0\0"), LOSSY[12:]),
    "VP8X of 9 bytes then VP8": riff(webp_chunk(b"VP8X", b"\x10" + b"\0" * 8), LOSSY[12:]),
    "VP8X with no image": riff(webp_chunk(b"VP8X", b"\0" * 10), webp_chunk(b"EXIF", b"II*\0")),
    "ALPH first": riff(webp_chunk(b"ALPH", b"\0\0"), LOSSY[12:]),
    "RIFF size beyond the file": LOSSY[:4] + struct.pack("<I", len(LOSSY)) + LOSSY[8:],
    "odd RIFF size": LOSSY[:4] + struct.pack("<I", len(LOSSY) - 9) + LOSSY[8:],
    "RIFF size that cuts a chunk": LOSSY[:4] + struct.pack("<I", len(LOSSY) - 10) + LOSSY[8:],
    "RIFF size of 2^32 - 1": LOSSY[:4] + b"\xff\xff\xff\xff" + LOSSY[8:],
    "chunk length beyond the RIFF payload": riff(b"VP8 " + struct.pack("<I", 2**31) + LOSSY[20:]),
    "a chunk header cut short": riff(LOSSY[12:], b"EXIF"),
    "nothing after WEBP": riff(),
}


@pytest.mark.parametrize("name", MALFORMED_WEBP)
def test_a_malformed_webp_raises_the_one_clean_error_and_keeps_its_bytes(name, tmp_path):
    data = MALFORMED_WEBP[name]
    with pytest.raises(provenance.NotEmbeddable):
        embedded_copy(data)
    # reading never raises either
    assert provenance.embedded(data) is None and not provenance.has_c2pa(data)
    provenance.image_data_sha256(data)
    path = tmp_path / "image.webp"
    path.write_bytes(data)
    assert provenance.record(path, PROVENANCE) == "sidecar"
    assert path.read_bytes() == data and provenance.read(path)[1] == "sidecar"


# -- PNG and JPEG by their declared lengths ----------------------------------------------------------


PNG = saved("PNG")
JPEG = saved("JPEG")
MALFORMED_OTHERS = {
    "PNG chunk longer than the file": PNG[:33] + struct.pack(">I", 10_000) + b"tEXt" + b"a" * 20 + PNG[33:],
    "PNG chunk length over 2^31 - 1": PNG[:33] + struct.pack(">I", 2**31) + b"tEXt" + PNG[41:],
    "PNG chunk of a binary type": PNG[:33] + png_chunk(b"t\0Xt", b"x") + PNG[33:],
    "PNG without IHDR first": PNG[:8] + png_chunk(b"tEXt", b"a\0b") + PNG[8:],
    "PNG with a short IHDR": PNG[:8] + png_chunk(b"IHDR", PNG[16:28]) + PNG[33:],
    "JPEG segment length of 0": JPEG[:2] + b"\xff\xfe\x00\x00" + JPEG[2:],
    "JPEG segment length of 1": JPEG[:2] + b"\xff\xfe\x00\x01" + JPEG[2:],
    "JPEG segment beyond the file": JPEG[:2] + b"\xff\xe1\xff\xff" + b"a" * 20,
    "JPEG restart marker before the scan": JPEG[:2] + b"\xff\xd0" + JPEG[2:],
    "JPEG end of image before the scan": JPEG[:2] + b"\xff\xd9" + JPEG[2:],
}


@pytest.mark.parametrize("name", MALFORMED_OTHERS)
def test_a_png_or_jpeg_whose_lengths_do_not_add_up_raises_the_one_clean_error(name):
    with pytest.raises(provenance.NotEmbeddable):
        embedded_copy(MALFORMED_OTHERS[name])


def test_fill_bytes_before_a_jpeg_marker_are_walked_over():
    original = JPEG[:2] + b"\xff\xff\xff" + JPEG[2:]
    written = embedded_copy(original)
    assert decoded(written) == decoded(original) is not None
    assert provenance.embedded(written) == PROVENANCE


# -- item 12: well-formed XMP for any prompt -----------------------------------------------------------


def xmp_packet(data: bytes) -> bytes:
    start = data.index(b"<?xpacket begin=")
    end = data.index(b'<?xpacket end="w"?>') + len(b'<?xpacket end="w"?>')
    return data[start:end]


def assert_well_formed(packet: bytes, made: dict) -> None:
    root = ElementTree.fromstring(packet)
    xml.dom.minidom.parseString(packet)
    assert json.loads(root.find(f".//{XMP_NS}provenance").text) == made
    description = root.find(f".//{RDF_NS}li").text or ""
    assert len(description) == len(made["prompt"])  # one character shown for each, a CR kept as a reference


PROMPTS = {
    "C0 controls": "a fox\x01\x07\x08\x0b\x0c\x1b[2J\x1b]0;pwned\x07 done",
    "NUL": "a\x00b",
    "CR and LF": "line one\r\nline two\rthree",
    "noncharacters": "a\ufffe\uffffb",
    "an undecodable byte (surrogate escape)": "caf\udce9",
    "markup": "<x:xmpmeta> ]]> &amp; \"'",
    "DEL, C1 and bidi": "a\x7f\x85\x9b\u202e\u2066b",
}


@pytest.mark.parametrize("kind", ["jpeg", "webp"])
@pytest.mark.parametrize("name", PROMPTS)
def test_the_xmp_packet_is_well_formed_xml_for_any_prompt(kind, name):
    made = {**PROVENANCE, "prompt": PROMPTS[name]}
    written = embedded_copy(SEEDS[kind]["baseline" if kind == "jpeg" else "lossless"](), made)
    assert_well_formed(xmp_packet(written), made)
    assert provenance.embedded(written) == made


@pytest.mark.parametrize("name", PROMPTS)
def test_a_png_carries_any_prompt_exactly(name):
    made = {**PROVENANCE, "prompt": PROMPTS[name]}
    assert provenance.embedded(embedded_copy(PNG, made)) == made


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(exclude_categories=()), max_size=60))
def test_any_code_points_make_well_formed_xmp_that_reads_back(prompt):
    made = {**PROVENANCE, "prompt": prompt, "vars": {prompt: prompt}}
    written = embedded_copy(JPEG, made)
    assert_well_formed(xmp_packet(written), made)
    assert provenance.embedded(written) == made


# -- sidecars never written through a link -------------------------------------------------------------


@pytest.mark.parametrize("existing", [True, False], ids=["link to a file", "dangling link"])
def test_a_sidecar_replaces_a_planted_link_and_never_writes_through_it(existing, tmp_path):
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    if existing:
        outside.write_text("do not touch")
    path = tmp_path / "img" / "image.jpg"
    path.parent.mkdir()
    path.write_bytes(JPEG)
    provenance.sidecar_path(path).symlink_to(outside)
    assert provenance.record(path, PROVENANCE, mode="sidecar") == "sidecar"
    sidecar = provenance.sidecar_path(path)
    assert not sidecar.is_symlink() and json.loads(sidecar.read_text())["prompt"] == PROVENANCE["prompt"]
    assert (outside.read_text() == "do not touch") if existing else not outside.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["image.jpg", "image.jpg.json"]  # no temporary left


def test_generate_never_writes_a_sidecar_through_a_planted_link(cli, sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "authorized_keys"
    outside.write_text("ssh-ed25519 AAAA... mine\n")
    (out / "shot.png.json").symlink_to(outside)
    run = cli("generate", "a red fox", "--name", "shot", "--metadata", "sidecar", "-o", out, "--json")
    assert run.exit_code == 0, run.stderr
    assert outside.read_text() == "ssh-ed25519 AAAA... mine\n"
    sidecar = out / "shot.png.json"
    assert not sidecar.is_symlink() and json.loads(sidecar.read_text())["prompt"] == "a red fox"
    assert json.loads(run.stdout)["outputs"][0]["provenance"] == "sidecar"


# -- through the CLI: a paid image is never lost to metadata ------------------------------------------


@pytest.fixture
def delivering(start_sandbox):
    """`delivering(data)`: a sandbox whose image host serves `data` as every output file, the CLI pointed at it."""

    def deliver(data: bytes) -> bytes:
        start_sandbox(image_bytes=data)
        return data

    return deliver


@pytest.mark.parametrize("name", ["empty VP8X then ALPH and VP8", "VP8L chunk of 2 bytes", "VP8 of zero width"])
def test_generate_saves_a_malformed_webp_as_delivered_with_a_sidecar_and_the_reason(name, cli, delivering, tmp_path):
    delivering(MALFORMED_WEBP[name])
    run = cli("generate", "a paid picture", "-f", "webp", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    output = json.loads(run.stdout)["outputs"][0]
    path = Path(output["path"])
    assert path.read_bytes() == MALFORMED_WEBP[name] and output["sha256"] == output["delivered_sha256"]
    assert output["provenance"] == "sidecar" and output["provenance_reason"]
    assert "warning:" in run.stderr and "cannot embed provenance" in run.stderr and path.name in run.stderr
    sidecar = json.loads(provenance.sidecar_path(path).read_text())
    assert sidecar["prompt"] == "a paid picture" and sidecar["request_id"] == json.loads(run.stdout)["request_id"]
    report = json.loads(cli("inspect", path, "--json").stdout)
    assert report["provenance"]["prompt"] == "a paid picture"


def test_a_batch_goes_on_past_images_that_cannot_take_provenance(cli, delivering, tmp_path):
    delivered = delivering(MALFORMED_WEBP["empty VP8X then ALPH and VP8"])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a first paid picture\na second paid picture\n")
    run = cli("batch", prompts, "-f", "webp", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(documents) == 2
    for document in documents:
        (output,) = document["outputs"]
        assert Path(output["path"]).read_bytes() == delivered
        assert output["provenance"] == "sidecar" and provenance.sidecar_path(Path(output["path"])).is_file()


def test_generate_embeds_into_a_webp_with_trailing_bytes_and_inspect_finds_it(cli, delivering, tmp_path):
    delivered = delivering(SEEDS["webp"]["lossless"]() + b"\0")
    run = cli("generate", "a trailing byte", "-f", "webp", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    output = json.loads(run.stdout)["outputs"][0]
    assert output["provenance"] == "embedded" and output["provenance_reason"] is None
    assert_valid_webp_like(delivered, Path(output["path"]).read_bytes())
    report = json.loads(cli("inspect", output["path"], "--json").stdout)
    assert report["provenance"]["prompt"] == "a trailing byte" and report["intact"] is True
    assert not os.path.exists(provenance.sidecar_path(Path(output["path"])))
