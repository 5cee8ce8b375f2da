"""Input validation and lenient parsing of API answers (pure functions, no HTTP)."""

from __future__ import annotations

import pytest

from nanobanana_cli.api.models import (
    ASPECT_RATIOS,
    GenerationInput,
    collect_output_urls,
    describe_error,
    parse_cancel,
    parse_result,
    parse_status,
    validate_request_id,
)
from nanobanana_cli.errors import BadResponseError, InvalidInputError


def test_defaults_follow_the_published_schema():
    assert GenerationInput("a fox").to_payload() == {
        "prompt": "a fox", "aspect_ratio": "16:9", "output_format": "png", "num_images": 1,
    }


def test_prompt_is_stripped_and_length_counted_after_stripping():
    assert GenerationInput("  a fox \n").prompt == "a fox"
    assert len(GenerationInput(" " + "x" * 1000 + " ").prompt) == 1000


@pytest.mark.parametrize("prompt", ["", "   \n\t", "x" * 1001])
def test_invalid_prompts_are_rejected(prompt):
    with pytest.raises(InvalidInputError):
        GenerationInput(prompt)


@pytest.mark.parametrize("aspect", ASPECT_RATIOS)
def test_every_published_aspect_ratio_is_accepted(aspect):
    assert GenerationInput("a", aspect_ratio=aspect).aspect_ratio == aspect


def test_invalid_aspect_ratio_lists_the_valid_ones():
    with pytest.raises(InvalidInputError) as caught:
        GenerationInput("a", aspect_ratio="7:3")
    assert "21:9, 16:9, 3:2, 4:3, 5:4, 1:1, 4:5, 3:4, 2:3, 9:16" in str(caught.value)


@pytest.mark.parametrize(("given", "sent"), [("jpg", "jpeg"), ("JPEG", "jpeg"), ("png", "png"), ("WebP", "webp")])
def test_formats_are_normalised(given, sent):
    assert GenerationInput("a", output_format=given).output_format == sent


@pytest.mark.parametrize("value", ["gif", "tiff", ""])
def test_unknown_formats_are_rejected(value):
    with pytest.raises(InvalidInputError, match="png, jpeg"):
        GenerationInput("a", output_format=value)


@pytest.mark.parametrize("count", [0, 5, -1, True])
def test_image_count_must_be_one_to_four(count):
    with pytest.raises(InvalidInputError, match="1, 2, 3 or 4"):
        GenerationInput("a", num_images=count)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a?b=c", "a/b", "", "x" * 129, "id with space", "%2e%2e"])
def test_request_ids_that_could_change_the_url_are_rejected(bad):
    with pytest.raises(InvalidInputError):
        validate_request_id(bad)


def test_request_id_accepts_uuid_like_ids():
    assert validate_request_id(" 3f2a9c1e-aa_bb ") == "3f2a9c1e-aa_bb"


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        ({"images": ["https://c/1.png", "https://c/2.png"]}, ("https://c/1.png", "https://c/2.png")),
        ({"image": "https://c/1.png"}, ("https://c/1.png",)),
        ({"video": "https://c/v.mp4"}, ("https://c/v.mp4",)),
        ({"videos": ["https://c/a.mp4"], "image": "https://c/a.png"}, ("https://c/a.png", "https://c/a.mp4")),
        ({"images": [{"url": "https://c/1.png"}, "not a url", "ftp://x/y"]}, ("https://c/1.png",)),
        ({"image": "https://c/1.png", "images": ["https://c/1.png"]}, ("https://c/1.png",)),
    ],
)
def test_output_urls_in_every_documented_shape(output, urls):
    assert collect_output_urls(output) == urls


def test_result_scans_only_output_not_the_status_url():
    result = parse_result(
        {"status": "succeeded", "status_url": "https://api/x/status", "output": {"image": "https://c/1.png"}, "extra": 1},
        "x",
    )
    assert result.output_urls == ("https://c/1.png",)
    assert result.succeeded and result.request_id == "x"


def test_unfinished_result_has_no_outputs_and_keeps_the_live_state():
    result = parse_result({"request_id": "r", "status": "IN_PROGRESS"}, "r")
    assert result.status == "in_progress" and not result.is_finished and result.output_urls == ()


def test_succeeded_without_urls_is_a_bad_answer():
    with pytest.raises(BadResponseError):
        parse_result({"status": "succeeded", "output": {}}, "r")


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ("out of memory", "out of memory"),
        ({"type": "nsfw", "message": "blocked"}, "nsfw: blocked"),
        ({"code": 500, "message": "boom"}, "500: boom"),
        ([{"message": "a"}, {"message": "b"}], "a; b"),
        (None, "no reason given"),
    ],
)
def test_job_errors_in_every_shape(error, text):
    assert describe_error(error) == text
    assert parse_result({"status": "failed", "error": error}, "r").error == text


def test_status_tolerates_spelling_and_unknown_values():
    assert parse_status({"status": "Canceled"}, "r").status == "cancelled"
    weird = parse_status({"status": "warming_up", "queue_position": "x"}, "r")
    assert weird.status == "warming_up" and weird.queue_position is None


def test_cancel_outcome_decides_not_the_status():
    assert parse_cancel({"status": "completed", "outcome": "cancelled"}, "r").cancelled
    assert not parse_cancel({"status": "completed", "outcome": "not_cancellable"}, "r").cancelled
    with pytest.raises(BadResponseError):
        parse_cancel({"status": "completed"}, "r")


def test_completed_in_a_result_is_decided_by_its_content():
    done = parse_result({"status": "completed", "output": {"image": "https://c/1.png"}}, "r")
    assert done.succeeded and done.output_urls == ("https://c/1.png",)
    failed = parse_result({"status": "COMPLETED", "error": "nsfw"}, "r")
    assert failed.status == "failed" and failed.error == "nsfw" and failed.is_finished
    assert not parse_result({"status": "completed"}, "r").is_finished  # nothing to go on: keep polling
