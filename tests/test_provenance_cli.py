"""Provenance, inspect, regen, explain, model, history stats and --max-cost, end to end against the sandbox."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from PIL import Image

from .conftest import HELD, SENTINEL_TOKEN, beside, step_jobs


def pixels(path: str | Path) -> bytes:
    with Image.open(path) as image:
        image.load()
        return image.tobytes()


def test_generate_then_inspect_shows_prompt_and_id_and_the_pixels_are_untouched(cli, sandbox, tmp_path):
    made = json.loads(cli("generate", "a red fox", "-n", "2", "-f", "webp", "--json", "-o", tmp_path / "a").stdout)
    plain = json.loads(cli("result", made["request_id"], "--download", "--metadata", "none", "--json", "-o", tmp_path / "b").stdout)
    for embedded, bare in zip(made["outputs"], plain["outputs"]):
        assert embedded["provenance"] == "embedded" and bare["provenance"] == "none"
        assert pixels(embedded["path"]) == pixels(bare["path"])  # same picture, decoded
        assert embedded["delivered_sha256"] == bare["sha256"] != embedded["sha256"]
    report = json.loads(cli("inspect", made["outputs"][0]["path"], "--json").stdout)
    assert report["provenance"]["prompt"] == "a red fox" and report["provenance"]["request_id"] == made["request_id"]
    assert report["provenance"]["index"] == 1 and report["provenance"]["count"] == 2
    assert report["intact"] is True and report["c2pa"] is False and report["history"]["request_id"] == made["request_id"]
    assert SENTINEL_TOKEN not in Path(made["outputs"][0]["path"]).read_bytes().decode("latin-1")


def test_inspect_of_a_copy_without_history_still_shows_where_it_came_from(cli, sandbox, tmp_path, monkeypatch):
    path = cli("generate", "a blue whale", "-q", "-o", tmp_path).stdout.split()[0]
    copy = tmp_path / "elsewhere" / "copy.png"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "another-machine"))
    run = cli("inspect", copy)
    assert run.exit_code == 0
    assert "prompt:     a blue whale" in run.stdout and "intact:     yes" in run.stdout


def test_inspect_notices_a_changed_picture(cli, sandbox, tmp_path):
    path = Path(cli("generate", "a fox", "-q", "-o", tmp_path).stdout.split()[0])
    report = json.loads(cli("inspect", path, "--json").stdout)
    with Image.open(path) as image:
        image.load()
        edited = image.copy()
    edited.putpixel((0, 0), (1, 2, 3))
    buffer = io.BytesIO()
    edited.save(buffer, "PNG", pnginfo=None)
    # keep our provenance chunk, change only the pixels: re-embed the old provenance by hand
    from nanobanana_cli.engine.provenance import embed

    with path.open("wb") as target:
        embed(io.BytesIO(buffer.getvalue()), target, report["provenance"])
    run = cli("inspect", path, "--json")
    assert run.exit_code == 1 and json.loads(run.stdout)["intact"] is False


def test_sidecar_mode_and_config_default(cli, sandbox, tmp_path):
    assert cli("config", "set", "metadata", "sidecar").exit_code == 0
    path = Path(cli("generate", "a fox", "-q", "-o", tmp_path).stdout.split()[0])
    sidecar = path.with_name(path.name + ".json")
    assert json.loads(sidecar.read_text())["prompt"] == "a fox"
    assert json.loads(cli("inspect", path, "--json").stdout)["provenance_source"] == "sidecar"


def test_regen_dry_run_keeps_the_prompt_and_takes_the_override(cli, sandbox, tmp_path):
    path = cli("generate", "a glass greenhouse", "-a", "9:16", "-f", "jpeg", "-q", "-o", tmp_path).stdout.split()[0]
    run = cli("regen", path, "--aspect", "1:1", "--prompt-append", ", at night", "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)["body"]
    assert body == {"prompt": "a glass greenhouse, at night", "aspect_ratio": "1:1", "output_format": "jpeg", "num_images": 1}
    assert len(sandbox.jobs()) == 1  # the dry run sent nothing


def test_regen_submits_and_refuses_files_without_provenance(cli, sandbox, tmp_path):
    path = cli("generate", "a fox", "-q", "-o", tmp_path).stdout.split()[0]
    again = cli("regen", path, "-n", "2", "-q", "-o", tmp_path / "again")
    assert again.exit_code == 0 and len(again.stdout.split()) == 2 and len(sandbox.jobs()) == 2
    bare = tmp_path / "bare.png"
    Image.new("RGB", (4, 4)).save(bare)
    run = cli("regen", bare)
    assert run.exit_code == 2 and "carries no nanobanana provenance" in run.stderr


def test_explain_shows_the_timeline_files_and_cost(cli, start_sandbox, tmp_path):
    start_sandbox(queue_seconds=0.2, run_seconds=0.2)
    made = json.loads(cli("generate", "a fox", "-n", "2", "--json", "-o", tmp_path).stdout)
    doc = json.loads(cli("explain", made["request_id"], "--json").stdout)
    assert doc["request_id"] == made["request_id"] and doc["status"] == "succeeded"
    assert doc["total_seconds"] is not None and doc["total_seconds"] >= 0.3
    assert [item["sha256"] for item in doc["files"]] == [item["sha256"] for item in made["outputs"]]
    assert any(event["event"] == "downloaded" for event in doc["timeline"])
    human = cli("explain")
    assert human.exit_code == 0 and made["request_id"] in human.stdout and "queue wait" in human.stdout
    assert cli("explain", "not-recorded-here").exit_code == 4


def test_model_shows_price_and_schema_and_caches_it(cli, sandbox):
    first = json.loads(cli("model", "--json").stdout)
    assert first["base_price_usd"] > 0 and first["source"] == "api"
    assert first["input_schema"]["properties"]["aspect_ratio"]["default"] == "16:9"
    catalog_requests = [r for r in sandbox.stats.requests if r.path.startswith("/v1/models/")]
    assert json.loads(cli("model", "--json").stdout)["source"] == "cache"
    assert [r for r in sandbox.stats.requests if r.path.startswith("/v1/models/")] == catalog_requests
    assert "price:" in cli("model").stdout


def test_max_cost_refuses_before_submitting_and_allows_within(cli, sandbox, tmp_path):
    price = json.loads(cli("model", "--json").stdout)["base_price_usd"]
    refused = cli("generate", "a fox", "-n", "4", "--max-cost", str(price * 3), "-o", tmp_path)
    assert refused.exit_code == 2 and "exceeds --max-cost" in refused.stderr and sandbox.stats.submits == 0
    allowed = cli("generate", "a fox", "-n", "4", "--max-cost", str(price * 4 + 0.001), "-q", "-o", tmp_path)
    assert allowed.exit_code == 0 and sandbox.stats.submits == 1


def test_history_stats_counts_jobs_images_rates_and_waits(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    with beside(step_jobs(sandbox, 2), sandbox):  # each job seen queued, then running: its run time is known
        cli("generate", "a fox", "-n", "2", "-q", "-o", tmp_path)
        cli("generate", "a fox sandbox:fail", "-q", "-o", tmp_path)
    stats = json.loads(cli("history", "stats", "--json", "--all").stdout)
    assert stats["jobs"] == 2 and stats["images"] == 2
    assert stats["by_status"] == {"failed": 1, "succeeded": 1} and stats["failure_rate"] == 0.5
    assert stats["run_seconds"]["count"] >= 1
    assert json.loads(cli("history", "stats", "--since", "2999-01-01", "--json", "--all").stdout)["jobs"] == 0
    assert "images:      2" in cli("history", "stats", "--all").stdout


def test_batch_announces_its_estimated_cost_and_respects_max_cost(cli, sandbox, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red fox\na blue whale\n")
    price = json.loads(cli("model", "--json").stdout)["base_price_usd"]
    run = cli("batch", prompts, "-n", "2", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert f"estimated cost ${4 * price:.4f} for 4 image(s)" in run.stderr
    refused = cli("batch", prompts, "-n", "2", "--max-cost", str(3 * price), "-o", tmp_path / "other")
    assert refused.exit_code == 2 and "exceeds --max-cost" in refused.stderr and sandbox.stats.submits == 2


def test_the_cost_the_api_reports_reaches_the_document_history_and_stats(cli, sandbox, tmp_path):
    made = json.loads(cli("generate", "a fox", "-n", "2", "--json", "-o", tmp_path).stdout)
    price = json.loads(cli("model", "--json").stdout)["base_price_usd"]
    assert made["cost"] == round(2 * price, 4)
    assert json.loads(cli("explain", made["request_id"], "--json").stdout)["cost"] == made["cost"]
    assert json.loads(cli("history", "stats", "--json", "--all").stdout)["spend_usd"] == made["cost"]
    assert any("include_cost=true" in r.path for r in sandbox.stats.requests if "/result" in r.path)


def test_regen_of_one_image_of_a_four_image_job_makes_one_image(cli, sandbox, tmp_path):
    paths = cli("generate", "four foxes", "-n", "4", "-q", "-o", tmp_path).stdout.split()
    run = cli("regen", paths[2], "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["body"]["num_images"] == 1
    more = cli("regen", paths[2], "-n", "3", "--dry-run", "--json")
    assert json.loads(more.stdout)["body"]["num_images"] == 3


def test_regen_of_an_image_saved_without_provenance_uses_the_history(cli, sandbox, tmp_path):
    (path,) = cli("generate", "a bare fox", "-a", "3:2", "--metadata", "none", "-q", "-o", tmp_path).stdout.split()
    run = cli("regen", path, "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)["body"]
    assert body["prompt"] == "a bare fox" and body["aspect_ratio"] == "3:2"
    stranger = tmp_path / "stranger.png"
    stranger.write_bytes(Path(path).read_bytes() + b"\0")  # a file no job saved
    refused = cli("regen", stranger, "--dry-run")
    assert refused.exit_code == 2 and "no job in this machine's history saved it" in refused.stderr
