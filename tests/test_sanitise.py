"""Text from outside never reaches the terminal raw: one sanitiser at the output boundary.

Image provenance, sidecars, manifests, the catalog, the history (prompts included) and server
answers can hold ESC sequences, C1 controls, bidi overrides and newlines. Human output and
`--template` show them escaped (a value stays in its own line or table cell), `--json` stays
exact JSON, and Rich never reads a prompt's brackets as markup.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nanobanana_cli.api.schema import MODEL_ID
from nanobanana_cli.render.output import DocumentTemplate, Mode, Output
from nanobanana_cli.sandbox import MODELS
from nanobanana_cli.sandbox.models import SandboxModel
from nanobanana_cli.sanitise import escape, shown

# What a crafted file or a hostile server slips in: retitle the window (OSC 0), clear the screen,
# an OSC 8 hyperlink, a C1 CSI, a right-to-left override, and a forged line.
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\\x9b31m\u202eevil\u2066"
    "\n  intact:     yes\r"
)
# ESC and every C0 control but \t and \n, DEL, C1, and the bidi controls the sanitiser escapes
UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# ...and what else no terminal should be handed raw: \t, \n, line separators, lone surrogates
ANY_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def assert_clean(*streams: str) -> None:
    """Nothing a terminal acts on, but the newlines that end lines."""
    for stream in streams:
        for line in stream.split("\n"):
            assert not UNSAFE.search(line), repr(line)


# -- the sanitiser ------------------------------------------------------------------------------------


def test_every_unsafe_kind_is_shown_escaped_and_ordinary_text_is_left_alone():
    assert escape("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape("\x9b\x85\x7f") == "\\x9b\\x85\\x7f"
    assert escape("x\u202ey") == "x\\u202ey"
    assert escape("line\nnext\tcell\r") == "line\\nnext\\tcell\\r"
    assert escape("line\nnext\t", keep="\n\t") == "line\nnext\t"
    assert all(escape(char).startswith("\\u") for char in BIDI)
    assert escape("\udcff") == "\\udcff"  # an undecodable byte of argv: writable, not a UnicodeEncodeError
    ordinary = "Café — 東京 🦊 مرحبا [red]x[/red] C:\\path\\file 👩‍💻"
    assert escape(ordinary) == ordinary
    assert shown(None) == "None" and shown(["a\nb"]) == "['a\\nb']"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=())))
def test_no_escape_c1_or_bidi_character_survives_the_sanitiser(text):
    """Over arbitrary code points (surrogates included)."""
    for keep in ("", "\t", "\n\t"):
        escaped = escape(text, keep=keep)
        assert not any(ANY_UNSAFE.match(char) and char not in keep for char in escaped)
    if not ANY_UNSAFE.search(text):
        assert escape(text) == text  # nothing else is touched


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=())))
def test_no_escape_c1_or_bidi_character_reaches_human_output_or_a_template(text):
    """Whatever Output is handed, in whatever channel: results, events, errors, template fields."""
    stdout, stderr = io.StringIO(), io.StringIO()
    output = Output(Mode.HUMAN, stdout=stdout, stderr=stderr)
    output.result_line(text)
    output.emit({"prompt": text}, [f"prompt: {text}"])
    output.info(text)
    output.note(text)
    output.warn(text)
    output.error(text, hint=text)
    assert_clean(stdout.getvalue(), stderr.getvalue())
    assert stderr.getvalue().count("\n") == 4  # every event is one line, however many newlines it quoted
    templated = io.StringIO()
    Output(template=DocumentTemplate("{prompt}|{vars}", ["prompt", "vars"]), stdout=templated).emit(
        [{"prompt": text, "vars": {"k": text}}], []
    )
    assert_clean(templated.getvalue())
    assert templated.getvalue().count("\n") == 1  # one document, one line


def test_json_output_stays_exact_json_and_escapes_controls_and_bidi():
    stdout = io.StringIO()
    Output(Mode.JSON, stdout=stdout).emit({"prompt": HOSTILE}, [])
    assert json.loads(stdout.getvalue()) == {"prompt": HOSTILE}
    assert_clean(stdout.getvalue())


def test_the_batch_table_never_reads_a_prompt_as_markup_or_escapes():
    from rich.console import Console

    from nanobanana_cli.render.progress import BatchProgress

    class Line:
        number, job = 1, 0
        label = "[b]x[/] [link=https://e.x]y[/link]\x1b]0;t\x07"

    progress = BatchProgress(Output(Mode.HUMAN, stdout=io.StringIO(), stderr=io.StringIO()), total=1)
    progress.line_started(Line(), "submitting", "abc12345")
    drawn = io.StringIO()
    Console(file=drawn, width=200, color_system=None).print(progress._table(20))
    assert "[b]x[/] [link=https://e.x]y[/link]\\x1b]0;t\\x07" in drawn.getvalue()


# -- through real commands --------------------------------------------------------------------------


def crafted_png(path: Path, provenance: dict) -> Path:
    """An image someone sends: valid PNG, provenance written by hand, a hash that does not match."""
    from nanobanana_cli.engine.provenance import embed

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    with path.open("wb") as target:
        embed(io.BytesIO(buffer.getvalue()), target, provenance)
    return path


def test_inspect_of_a_crafted_png_shows_its_provenance_escaped_and_the_truth_about_intact(cli, tmp_path):
    image = crafted_png(tmp_path / "gift.png", {
        "prompt": f"a fox{HOSTILE}", "request_id": f"id{HOSTILE}", "api_host": HOSTILE, "model": HOSTILE,
        "tool": HOSTILE, "submitted_at": HOSTILE, "num_images": HOSTILE, "aspect_ratio": "[red]1:1[/red]",
        "image_data_sha256": "0" * 64,  # not this picture's
    })
    run = cli("inspect", image)
    assert run.exit_code == 1
    assert "\x1b" not in run.stdout + run.stderr
    assert_clean(run.stdout, run.stderr)
    intact = [line for line in run.stdout.splitlines() if line.lstrip().startswith("intact:")]
    assert intact == ["  intact:     NO: the picture changed since it was saved"]  # the one intact line agrees with the exit code
    assert "  prompt:     a fox\\x1b]0;pwned\\x07" in run.stdout and "\\u202eevil" in run.stdout  # shown, harmless
    assert "[red]1:1[/red]" in run.stdout
    report = json.loads(cli("inspect", image, "--json").stdout)
    assert report["provenance"]["prompt"] == f"a fox{HOSTILE}" and report["intact"] is False  # exact in JSON


def test_a_prompt_with_a_newline_and_escapes_stays_in_its_row_in_history_explain_and_status(cli, sandbox, tmp_path):
    prompt = f"a fox{HOSTILE}[link=https://evil.example]x[/link]"
    made = cli("generate", prompt, "-q", "--metadata", "none", "-o", tmp_path)
    assert made.exit_code == 0, made.stderr
    history = cli("history")
    assert history.exit_code == 0 and len(history.stdout.splitlines()) == 2, history.stdout  # the header, one row
    assert_clean(history.stdout, history.stderr)
    explained = cli("explain")
    assert explained.exit_code == 0
    assert_clean(explained.stdout, explained.stderr)
    assert "intact" not in "".join(line.split("(", 1)[0] for line in explained.stdout.splitlines())
    assert explained.stdout.splitlines()[0].startswith("job ") and "a fox\\x1b]0;pwned" in explained.stdout.splitlines()[0]
    status = cli("status")
    assert status.exit_code == 0
    assert_clean(status.stdout, status.stderr)
    assert [line for line in status.stderr.splitlines() if line.startswith("latest job:")] == status.stderr.splitlines()[:1]
    assert len(status.stderr.splitlines()) == 1
    templated = cli("history", "--json")
    assert json.loads(templated.stdout)[0]["input"]["prompt"] == prompt


def test_a_template_field_with_a_newline_stays_on_its_documents_line(cli, sandbox, tmp_path):
    run = cli("generate", f"two\nlines{HOSTILE}", "--metadata", "none", "-o", tmp_path, "--template", "{input[prompt]}|{status}")
    assert run.exit_code == 0 and len(run.stdout.splitlines()) == 1, run.stdout
    assert_clean(run.stdout, run.stderr)
    assert run.stdout.startswith("two\\nlines\\x1b]0;pwned") and run.stdout.endswith("|succeeded\n")


def test_the_catalogs_input_schema_is_shown_escaped(cli, start_sandbox):
    catalog = {
        "model_id": MODEL_ID, "display_name": f"Nano{HOSTILE}", "base_price_usd": 0.04, "price_unit": f"image{HOSTILE}",
        "input_schema": {"required": ["prompt"], "properties": {
            "prompt": {"type": "string", "description": HOSTILE},
            f"style{HOSTILE}": {"type": "string", "enum": [f"ink{HOSTILE}"], "default": f"ink{HOSTILE}"},
            "num_images": {"type": "integer", "enum": [1, f"2{HOSTILE}"], "default": HOSTILE},
        }},
    }
    start_sandbox(models={**MODELS, MODEL_ID: SandboxModel.from_entry(catalog, "a hostile catalog")})
    run = cli("model")
    assert run.exit_code == 0, run.stderr
    assert_clean(run.stdout, run.stderr)
    assert "from the API" in run.stdout or "live" in run.stdout, run.stdout  # this catalog's schema, not the snapshot
    # name, price, schema source, two inputs (a field whose name is not a name is not shown): no forged line
    assert len(run.stdout.splitlines()) == 5, run.stdout
    assert "Nano\\x1b]0;pwned" in run.stdout


@pytest.mark.parametrize("line", [f"7{HOSTILE}", 7])
def test_a_shard_manifests_text_is_shown_escaped_in_merge_warnings(cli, tmp_path, line):
    # A `line` that is no line number is skipped whole (stores/safe_json); a hostile file name is shown escaped.
    shard = tmp_path / "shard-1"
    shard.mkdir()
    record = {
        "key": "k1", "line": line, "status": "succeeded", "request_id": "abc",
        "outputs": [{"url": "https://cdn.example/a.png", "path": str(shard / f"gone{HOSTILE}.png"), "sha256": "0" * 64,
                     "bytes": 10, "delivered_sha256": None, "provenance": None}],
    }
    (shard / "nanobanana-batch.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = cli("merge", shard, "-o", tmp_path / "all")
    warnings = [text for text in run.stderr.splitlines() if text.startswith("warning:")]
    assert len(warnings) == 1, run.stderr
    assert_clean(run.stdout, run.stderr)


def test_an_error_quoting_a_file_name_is_shown_escaped(cli, tmp_path):
    run = cli("inspect", tmp_path / f"missing{HOSTILE}.png")
    assert run.exit_code == 2
    assert_clean(run.stderr)
    assert len(run.stderr.splitlines()) == 1


@pytest.mark.parametrize("args", [("history", "--search", HOSTILE), ("explain", f"x{HOSTILE}")])
def test_argv_echoed_in_errors_is_escaped(cli, args):
    run = cli(*args)
    assert_clean(run.stdout, run.stderr)


def test_a_merged_files_name_with_a_newline_stays_on_its_line(cli, tmp_path):
    import hashlib

    shard = tmp_path / "shard-1"
    shard.mkdir()
    image = shard / "a\nfox\x1b[2J.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    record = {
        "key": "k1", "line": 1, "status": "succeeded", "request_id": "abc",
        "outputs": [{"url": "https://cdn.example/a.png", "path": str(image), "sha256": hashlib.sha256(image.read_bytes()).hexdigest(),
                     "bytes": image.stat().st_size, "delivered_sha256": None, "provenance": None}],
    }
    (shard / "nanobanana-batch.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    run = cli("merge", shard, "-o", tmp_path / "all")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [f"{tmp_path / 'all'}/a\\nfox\\x1b[2J.png"]
    assert (tmp_path / "all" / image.name).exists()  # the file keeps its real name


def test_a_config_value_with_a_newline_stays_in_its_row(cli):
    assert cli("config", "set", "on_done", "echo {path}\nmatrix_confirm_above  99  (default)").exit_code == 0
    run = cli("config", "list")
    assert run.exit_code == 0
    assert len(run.stdout.splitlines()) == len(json.loads(cli("config", "list", "--json").stdout))
