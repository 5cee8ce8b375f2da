"""The family registry, the bundled snapshot, and the schema in effect (api/family.py, api/input_schema.py):
pure units, plus property tests that no catalog schema, however malformed, crashes the reader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nanobanana_cli
from nanobanana_cli.api import family
from nanobanana_cli.api.input_schema import SchemaSource, coerce, field_values, format_age, parse, validate
from nanobanana_cli.api.models import parse_amount, parse_model_info, parse_result
from nanobanana_cli.api.schema import TEXT_TO_IMAGE
from nanobanana_cli.errors import InvalidInputError, UsageError

LIVE = SchemaSource("api")
SHARED_MODELS = Path("/work/shared/runcomfy-models.md")


# -- the registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "generate", "edit"),
    [
        ("nano-banana", "google/nano-banana/text-to-image", "google/nano-banana/edit"),
        ("nano-banana-2", "google/nano-banana-2/text-to-image", "google/nano-banana-2/edit"),
        ("nano-banana-pro", "google/nano-banana/pro/text-to-image", "google/nano-banana/pro/edit"),
        ("nano-banana-2-lite", "google/nano-banana-2-lite/text-to-image", "google/nano-banana-2-lite/edit"),
    ],
)
def test_each_alias_picks_its_endpoint_by_task(alias, generate, edit):
    assert family.resolve(alias) == generate
    assert family.resolve(alias, "edit") == edit
    assert family.resolve(f" {alias.upper()} ", "edit") == edit
    assert family.member_of(edit).alias == alias and family.task_of(edit) == "edit" and family.task_of(generate) == "generate"


def test_no_name_is_the_default_model_of_today():
    assert family.resolve(None) == "google/nano-banana/text-to-image" == TEXT_TO_IMAGE.model_id
    assert family.resolve("", "edit") == "google/nano-banana/edit"


def test_a_full_family_id_is_taken_as_given_even_one_the_table_does_not_know():
    assert family.resolve("google/nano-banana-2/edit") == "google/nano-banana-2/edit"
    assert family.resolve("google/nano-banana/pro/text-to-image", "edit") == "google/nano-banana/pro/text-to-image"
    assert family.resolve("google/nano-banana-2.1/text-to-image") == "google/nano-banana-2.1/text-to-image"


@pytest.mark.parametrize(
    "name",
    ["dall-e", "google/imagen-4/text-to-image", "google/nano-banana/../../v1/requests", "google/nano-banana//edit",
     "google/nano-banana/edit?x=1", "google/nano-banana/%2e%2e", "google/nano-banana", "nano-banana-3",
     "google/nano-banana/" + "a" * 300],
)
def test_anything_else_is_refused_with_the_aliases(name):
    with pytest.raises(UsageError) as caught:
        family.resolve(name)
    assert "nano-banana, nano-banana-2, nano-banana-pro, nano-banana-2-lite" in str(caught.value)
    assert caught.value.hint == "`nanobanana models` lists the family"


# -- the bundled snapshot --------------------------------------------------------------------------


def test_the_snapshot_has_every_family_id_as_a_catalog_entry_with_its_provenance():
    entries = family.bundled_entries()
    assert [entry["model_id"] for entry in entries] == list(family.family_ids())
    for entry in entries:
        assert entry["price_unit"] == "output" and entry["snapshot_notes"]
        assert set(entry) >= {"model_id", "display_name", "base_price_usd", "price_unit", "input_schema", "categories"}
        schema = parse(entry["input_schema"], entry["model_id"], SchemaSource("bundled"))
        assert schema.ignored == () and schema.field("prompt").required
        edit = family.task_of(entry["model_id"]) == "edit"
        assert entry["input_schema"]["required"] == (["prompt", "image_urls"] if edit else ["prompt"])
        if edit:
            images = schema.field("image_urls")
            assert images.types == ("array",) and images.items.types == ("string",) and images.min_items == 1
    document = json.loads((Path(nanobanana_cli.__file__).parent / "api" / family.SNAPSHOT_FILE).read_text())
    assert document["source"] == "bundled snapshot" and "inferred" in document["about"]


def test_the_snapshot_invents_no_price():
    prices = {entry["model_id"]: entry["base_price_usd"] for entry in family.bundled_entries()}
    assert prices.pop("google/nano-banana/text-to-image") == 0.039  # what the tool has always used
    assert set(prices.values()) == {None}


def test_the_snapshot_keeps_the_documented_values():
    lite = parse(family.bundled_entry("google/nano-banana-2-lite/edit")["input_schema"], "lite", LIVE)
    assert lite.field("aspect_ratio").values()[0] == "auto" and {"4:1", "1:8"} <= set(lite.field("aspect_ratio").values())
    assert (lite.field("image_urls").min_items, lite.field("image_urls").max_items) == (1, 10)
    assert lite.names == ("prompt", "image_urls", "aspect_ratio")
    two = parse(family.bundled_entry("google/nano-banana-2/text-to-image")["input_schema"], "two", LIVE)
    assert field_values("resolution", two) == ("0.5K", "1K", "2K", "4K") and two.field("resolution").default == "1K"
    pro = parse(family.bundled_entry("google/nano-banana/pro/edit")["input_schema"], "pro", LIVE)
    assert field_values("resolution", pro) == ("1K", "2K", "4K") and pro.field("image_urls").max_items == 14


def test_the_first_model_in_the_snapshot_is_the_schema_of_api_schema_py():
    schema = parse(family.bundled_entry(TEXT_TO_IMAGE.model_id)["input_schema"], TEXT_TO_IMAGE.model_id, LIVE)
    assert schema.names == tuple(item.name for item in TEXT_TO_IMAGE.fields)
    for item in TEXT_TO_IMAGE.fields:
        read = schema.field(item.name)
        assert (read.enum or ()) == item.choices and read.max_length == item.max_length and read.required == item.required
        assert (read.default if read.has_default else None) == item.default


def test_the_snapshot_ids_are_the_ones_in_runcomfy_models_md():
    if not SHARED_MODELS.exists():
        pytest.skip("../shared/runcomfy-models.md is not on this machine")
    text = SHARED_MODELS.read_text()
    for model_id in family.family_ids():
        assert f"`{model_id}`" in text


# -- reading a schema ------------------------------------------------------------------------------

PYDANTIC_STYLE = {
    "type": "object",
    "required": ["prompt", "ghost"],
    "$defs": {"Ratio": {"type": "string", "enum": ["1:1", "16:9"]}},
    "properties": {
        "prompt": {"type": "string", "maxLength": 20, "description": "What\x1b[2J to draw"},
        "aspect_ratio": {"allOf": [{"$ref": "#/$defs/Ratio"}], "default": "1:1"},
        "seed": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
        "strength": {"type": "number", "minimum": 0, "maximum": 1},
        "mode": {"type": ["string", "integer"]},
        "bad name!": {"type": "string"},
        "weird": {"type": "tensor"},
        "colours": {"enum": [{"r": 1}]},
        "loop": {"$ref": "#/properties/loop"},
    },
}


def test_a_pydantic_style_schema_is_read_and_what_cannot_be_read_is_listed():
    schema = parse(PYDANTIC_STYLE, "m", LIVE)
    assert schema.names == ("prompt", "aspect_ratio", "seed", "strength", "mode", "weird", "colours", "loop")
    assert schema.field("aspect_ratio").values() == ("1:1", "16:9") and schema.field("aspect_ratio").default == "1:1"
    assert schema.field("seed").types == ("integer", "null") and schema.field("seed").minimum == 0
    assert schema.field("mode").type_name == "string or integer"
    assert "\x1b" not in schema.field("prompt").description
    assert schema.field("weird").types == () and schema.field("colours").enum is None
    assert any("bad name" in text for text in schema.ignored)
    assert any(text.startswith("weird: type") for text in schema.ignored)
    assert "ghost: required but not described" in schema.ignored


@pytest.mark.parametrize("raw", [None, [], "schema", {"properties": []}, {"type": "object"}])
def test_a_schema_with_no_readable_properties_has_no_fields(raw):
    schema = parse(raw, "m", LIVE)
    assert schema.fields == () and schema.ignored


def test_a_huge_schema_is_bounded():
    raw = {"properties": {f"f{i}": {"type": "string", "enum": [str(n) for n in range(5000)]} for i in range(500)}}
    schema = parse(raw, "m", LIVE)
    assert len(schema.fields) == 200 and schema.fields[0].enum is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["type", "enum", "properties", "required", "items", "minimum", "maximum", "maxLength", "minItems", "maxItems",
         "default", "$ref", "anyOf", "allOf", "oneOf", "prompt", "x", "description"]), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(raw=JSON_VALUES, body=JSON_VALUES)
def test_no_schema_crashes_the_reader_or_the_checks(raw, body):
    schema = parse(raw, "m", LIVE)
    schema.problems(body)
    schema.rows()
    for item in schema.fields:
        item.values()
        item.problem(body)
        try:
            coerce(item.name, "1", schema)
        except InvalidInputError:
            pass
    if isinstance(body, dict):
        try:
            validate(body, schema)
        except InvalidInputError:
            pass


# -- validating and typing values -------------------------------------------------------------------

EDIT = parse(family.bundled_entry("google/nano-banana-2/edit")["input_schema"], "google/nano-banana-2/edit", SchemaSource("cache", 2 * 3600))


def test_validate_sends_only_what_was_set_in_schema_order():
    payload = validate({"seed": 7, "resolution": "2K", "prompt": "a fox", "image_urls": ["https://x/a.png"], "num_images": None}, EDIT)
    assert list(payload) == ["prompt", "image_urls", "resolution", "seed"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"prompt": "a fox"}, "image_urls: required"),
        ({"prompt": " ", "image_urls": ["u"]}, "prompt: must not be empty"),
        ({"prompt": "x", "image_urls": []}, "image_urls: 0 items; at least 1 are needed"),
        ({"prompt": "x", "image_urls": ["u"] * 15}, "image_urls: 15 items; at most 14 are accepted"),
        ({"prompt": "x", "image_urls": ["u", 3]}, "image_urls: item 2: must be a string, not 3"),
        ({"prompt": "x", "image_urls": ["u"], "num_images": 2.0}, "num_images: must be an integer from 1 to 4, not 2.0"),
        ({"prompt": "x", "image_urls": ["u"], "num_images": True}, "num_images: must be an integer from 1 to 4, not true"),
        ({"prompt": "x", "image_urls": ["u"], "num_images": 5}, "num_images: 5 is out of range: it must be from 1 to 4"),
        ({"prompt": "x", "image_urls": ["u"], "seed": -1}, "seed: -1 is out of range: it must be at least 0"),
        ({"prompt": "x", "image_urls": ["u"], "resolution": "3K"}, "resolution: '3K' is not one of 0.5K, 1K, 2K, 4K"),
        ({"prompt": "x", "image_urls": ["u"], "enable_web_search": "yes"}, "enable_web_search: must be a boolean, not 'yes'"),
        ({"prompt": "x", "image_urls": ["u"], "style": "noir"}, "'style' is not a field of this model (its fields: prompt, image_urls,"),
    ],
)
def test_each_problem_names_the_field_the_valid_values_and_the_source(fields, expected):
    with pytest.raises(InvalidInputError) as caught:
        validate(fields, EDIT)
    message = str(caught.value)
    assert expected in message
    assert message.endswith("(schema of google/nano-banana-2/edit from the catalog, cached 2 h ago)")
    assert caught.value.hint == "`nanobanana model google/nano-banana-2/edit --refresh` lists its fields and values"


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidInputError) as caught:
        validate({"prompt": "x", "resolution": "9K", "seed": 1.5}, EDIT)
    assert "image_urls: required" in str(caught.value) and "resolution:" in str(caught.value) and "seed:" in str(caught.value)


def test_max_length_and_enum_types_are_strict():
    first = parse(family.bundled_entry("google/nano-banana/text-to-image")["input_schema"], "nb", SchemaSource("bundled"))
    with pytest.raises(InvalidInputError, match=r"prompt: 1001 characters long; at most 1000 are accepted \(schema of nb from the bundled snapshot"):
        validate({"prompt": "x" * 1001}, first)
    with pytest.raises(InvalidInputError, match="num_images: true is not one of 1, 2, 3, 4"):
        validate({"prompt": "x", "num_images": True}, first)
    assert validate({"prompt": "x", "num_images": 2}, first) == {"prompt": "x", "num_images": 2}


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("resolution", "2K", "2K"), ("resolution", "2k", "2K"), ("safety_tolerance", "5", 5), ("seed", "+42", 42),
        ("enable_web_search", "true", True), ("limit_generations", "False", False), ("image_urls", "https://a, https://b", ["https://a", "https://b"]),
        ("prompt", "a, b", "a, b"), ("num_images", "3", 3),
    ],
)
def test_coerce_types_a_set_value_by_the_schema(name, text, value):
    assert coerce(name, text, EDIT) == value and type(coerce(name, text, EDIT)) is type(value)


def test_coerce_reads_numbers_and_refuses_what_does_not_fit():
    schema = parse({"properties": {"strength": {"type": "number", "maximum": 1}}}, "m", LIVE)
    assert coerce("strength", "0.25", schema) == 0.25 and coerce("strength", "1", schema) == 1
    for text in ("nan", "inf", "2", "abc"):
        with pytest.raises(InvalidInputError, match="strength"):
            coerce("strength", text, schema)
    for name, text in (("seed", "1.5"), ("safety_tolerance", "9"), ("enable_web_search", "yes"), ("resolution", "8K"), ("nope", "1")):
        with pytest.raises(InvalidInputError, match=name):
            coerce(name, text, EDIT)


def test_field_values_for_completion():
    assert field_values("aspect_ratio", EDIT)[:2] == ("auto", "21:9")
    assert field_values("safety_tolerance", EDIT) == ("1", "2", "3", "4", "5", "6")
    assert field_values("enable_web_search", EDIT) == ("true", "false")
    assert field_values("seed", EDIT) == () and field_values("prompt", EDIT) == () and field_values("nope", EDIT) == ()
    row = next(row for row in EDIT.rows() if row["name"] == "image_urls")
    assert row == {"name": "image_urls", "type": "array of string", "required": True, "values": [], "default": None,
                   "limits": "1–14 items", "description": row["description"]}


def test_sources_describe_themselves():
    assert SchemaSource("api").describe() == "the live catalog"
    assert SchemaSource("cache", 130).describe() == "the catalog, cached 2 min ago"
    assert "bundled snapshot" in SchemaSource("bundled").describe()
    assert [format_age(s) for s in (5, 3600 * 5, 86400 * 3, None)] == ["5 s", "5 h", "3 d", "an unknown time"]


# -- prices and costs as the API may send them ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount"),
    [(0.1, 0.1), ("0.1", 0.1), ("0.0780", 0.078), (" 2 ", 2.0), (0, 0.0), ("-0.1", None), (-1, None), (True, None),
     ("abc", None), ("1e3", None), (math.nan, None), (math.inf, None), (None, None), ([], None), ("", None)],
)
def test_amounts_are_read_as_the_number_they_say_or_unknown(value, amount):
    assert parse_amount(value) == amount
    assert parse_model_info({"base_price_usd": value}, "m").base_price_usd == amount
    result = parse_result({"status": "succeeded", "output": {"images": ["https://c/1.png"]}, "cost": value}, "r")
    if isinstance(value, float) and not math.isfinite(value):  # kept, so the JSON emitter writes null and warns
        assert result.cost is not None and not math.isfinite(result.cost)
    else:
        assert result.cost == amount
