"""`history` tells jobs apart by model: a MODEL column (the family alias, else the id, escaped), an
edit's input count, and no `?×` for a job whose images are known."""

from __future__ import annotations

import json

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import History

from .test_sandbox_family import RED, picture
from .test_sanitise import HOSTILE, assert_clean


def table(cli) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The header's column names, and each row's cells by request id (cut where the header's columns start)."""
    run = cli("history")
    assert run.exit_code == 0, run.stderr
    header, *rows = run.stdout.splitlines()
    names = ["SUBMITTED (UTC)", "ID", "STATUS", "MODEL", "IMAGES", "API", "PROMPT"]
    starts = [header.index(name) for name in names]
    assert starts == sorted(starts)
    found = {}
    for row in rows:
        cells = [row[start:end].strip() for start, end in zip(starts, [*starts[1:], None])]
        found[cells[1]] = dict(zip(names, cells))
    return names, found


def test_two_models_of_one_prompt_are_told_apart_by_the_model_column(cli, sandbox, tmp_path):
    run = cli("generate", "a lighthouse", "--model", "nano-banana,nano-banana-2", "-q", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    _, rows = table(cli)
    by_model = {job.model_id: rows[job.request_id] for job in sandbox.jobs()}
    assert by_model["google/nano-banana/text-to-image"]["MODEL"] == "nano-banana"
    assert by_model["google/nano-banana-2/text-to-image"]["MODEL"] == "nano-banana-2"
    assert by_model["google/nano-banana/text-to-image"]["IMAGES"] == "1× 16:9 png"
    assert by_model["google/nano-banana-2/text-to-image"]["IMAGES"] == "1×"  # it sent no num_images: the image it saved
    assert {row["PROMPT"] for row in rows.values()} == {"a lighthouse"}


def test_an_edit_shows_its_input_count_and_no_question_mark(cli, sandbox, tmp_path):
    inputs = []
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(picture(RED))
        inputs += ["-i", str(tmp_path / name)]
    run = cli("edit", "p", *inputs, "--model", "nano-banana-2", "--resolution", "2K", "-q", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    _, rows = table(cli)
    assert rows[job.request_id]["MODEL"] == "nano-banana-2"
    assert rows[job.request_id]["IMAGES"] == "1× 2K edit of 3"
    assert "?" not in cli("history").stdout


def test_a_model_outside_the_family_is_shown_by_its_id_escaped_and_the_json_keeps_its_shape(cli, tmp_path):
    with History() as history:
        history.record_submission("job-1", GenerationInput("a fox", model=f"acme/model{HOSTILE}"), "https://api.example")
        history.record_submission("job-2", GenerationInput("a fox", model="google/nano-banana/pro/edit"), "https://api.example")
    run = cli("history")
    assert run.exit_code == 0, run.stderr
    assert_clean(run.stdout)
    assert len(run.stdout.splitlines()) == 3  # the header, one row each: no line forged
    _, rows = table(cli)
    assert rows["job-1"]["MODEL"].startswith("acme/model\\x1b]0;pwned")
    assert rows["job-2"]["MODEL"] == "nano-banana-pro"
    assert "?" not in rows["job-2"]["IMAGES"]
    listed = json.loads(cli("history", "--json").stdout)  # validated against docs/schema/history-row.json by `cli`
    assert {entry["model"] for entry in listed} == {f"acme/model{HOSTILE}", "google/nano-banana/pro/edit"}


def test_history_model_lists_one_models_jobs_by_alias_or_id(cli, tmp_path):
    with History() as history:
        for request_id, model in (("job-a", "google/nano-banana/text-to-image"), ("job-b", "google/nano-banana-2/text-to-image"),
                                  ("job-c", "google/nano-banana-2/edit"), ("job-d", "google/nano-banana/pro/text-to-image")):
            history.record_submission(request_id, GenerationInput("a fox", model=model), "https://api.example")
            history.update(request_id, status="failed" if request_id == "job-d" else "succeeded")

    def listed(*args: str) -> list[str]:
        run = cli("history", "--json", *args)
        assert run.exit_code == 0, run.stderr
        return sorted(entry["request_id"] for entry in json.loads(run.stdout))

    assert listed("--model", "nano-banana-2") == ["job-b", "job-c"]  # the alias: its text-to-image and edit jobs
    assert listed("--model", "nano-banana") == ["job-a"]
    assert listed("--model", "google/nano-banana-2/edit") == ["job-c"]
    assert listed("--model", "nano-banana-pro", "--status", "failed") == ["job-d"]
    assert listed("--model", "nano-banana-pro", "--status", "succeeded") == []
    run = cli("history", "--model", "dall-e")
    assert run.exit_code == 2 and "unknown model 'dall-e'" in run.stderr


def test_the_model_filter_searches_an_index(tmp_path):
    from .test_history_indexes import OLD_ROWS, _old_database, _plans

    database = tmp_path / "history.sqlite3"
    _old_database(database, [row for row in OLD_ROWS if isinstance(row[4], list)])
    history = History(database, warn=lambda message: None)
    plans = _plans(history, [lambda: history.entries(limit=20, models=["m", "google/nano-banana/edit"])])
    history.close()
    listing = [plan for sql, plan in plans.items() if "model IN" in sql]
    assert listing and any("jobs_by_model_time" in step and step.startswith("SEARCH") for step in listing[0]), plans
