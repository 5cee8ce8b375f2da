"""Which model a run uses and what it sends: the `--model`, `--resolution`, `--seed`, `--set` and
`-i/--image` a command was given, checked against the schema in effect (engine/catalog.py) before
anything is sent.

    request = ModelRequest(settings["model"], "edit", resolution="2K", images=("cat.png",))
    catalog = catalog_of(session.client)        # or, for a dry run: with schemas(output, settings) as catalog:
        prepared = request.prepare(catalog, settings, generations)   # every job, all checked first

The default model with only its classic options (-a, -f, -n) needs no catalog: `GenerationInput`
checks those against the built-in schema. Anything else asks the catalog (cached; the bundled
snapshot when it cannot be reached) and sends only the fields its schema lists: an option the
user did not set is left to the server's default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from ..api.family import Task, alias_or_id, resolve
from ..api.models import CLASSIC_FIELDS, GenerationInput
from ..api.schema import MODEL_ID
from ..errors import InvalidInputError, UsageError

if TYPE_CHECKING:
    from ..api.client import Client
    from ..engine.catalog import Catalog, ModelEntry
    from ..engine.image_inputs import ImageInput
    from ..engine.matrix import PlannedJob
    from ..render.output import Output
    from ..stores.settings import Settings


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class ModelRequest(NamedTuple):
    """A command's model choice and schema-typed options, as given (not yet checked)."""

    model: str | None = None  # an alias or a full id; None: the default model
    task: Task = "generate"
    resolution: str | None = None
    seed: int | None = None
    sets: tuple[str, ...] = ()  # KEY=VALUE, typed by the schema
    images: tuple[str, ...] = ()  # local files or URLs
    fit: bool = False
    # the images of a regenerated edit, already read back (engine/image_inputs.reload)
    reloaded: tuple[Any, ...] = ()
    # a batch line's own fields, typed by its JSON: checked against the schema like the rest, and they win
    given: tuple[tuple[str, Any], ...] = ()

    @property
    def model_id(self) -> str:
        return resolve(self.model, self.task)

    @property
    def needs_schema(self) -> bool:
        return bool(
            self.model_id != MODEL_ID or self.resolution is not None or self.seed is not None or self.sets
            or self.images or self.reloaded or self.given
        )

    def fields(self, settings: Settings, generation: GenerationInput, entry: ModelEntry) -> dict[str, Any]:
        """The fields to validate: the prompt, the classic options the user set (or a line or the
        matrix did), resolution, seed and every --set, typed by the schema."""
        from ..api.input_schema import coerce

        fields: dict[str, Any] = {"prompt": generation.prompt}
        for key in CLASSIC_FIELDS[1:]:
            value = getattr(generation, key)
            chosen = settings.resolved(key)
            if value is not None and (chosen.source != "default" or value != chosen.value):
                fields[key] = value
        fields.update(dict(generation.extra))  # a batch line's or a regenerated image's own fields; flags win
        if self.resolution is not None:
            fields["resolution"] = coerce("resolution", self.resolution, entry.schema)
        if self.seed is not None:
            fields["seed"] = self.seed
        for pair in self.sets:
            key, _, text = pair.partition("=")
            fields[key.strip()] = coerce(key.strip(), text, entry.schema)
        fields.update(self.given)
        return fields

    def read_images(self, entry: ModelEntry) -> list[ImageInput]:
        """Every input image checked (kind, size, count, the request's total) before anything is sent."""
        from ..engine.image_inputs import image_limit, read_image_inputs

        if self.images and entry.schema.field("image_urls") is None:
            raise UsageError(
                f"{entry.model_id} takes no input images ({entry.schema.where()})",
                hint="edit with `nanobanana edit PROMPT -i IMAGE`, or choose a model that takes images",
            )
        read = read_image_inputs(list(self.images), max_image_bytes=image_limit(entry.schema), fit=self.fit)
        return [*self.reloaded, *read]

    def prepare(self, catalog: Catalog | None, settings: Settings, generations: Sequence[GenerationInput]) -> list[GenerationInput]:
        """Each job as it will be sent, every one checked before the first is."""
        if catalog is None or not self.needs_schema:
            return list(generations)
        from ..engine.image_inputs import request_body

        entry = catalog.entry(self.model_id)
        inputs = self.read_images(entry)
        prepared = []
        for generation in generations:
            fields = self.fields(settings, generation, entry)
            body = request_body(fields, inputs, entry.schema)
            local = any(item.is_file for item in inputs)
            prepared.append(GenerationInput.from_body(body.payload, self.model_id, wire=body if local else None))
        return prepared


def models_to_compare(names: Sequence[str], task: Task) -> list[tuple[str, str]]:
    """(alias or id, model id) for each model a run compares, each id once; an unknown name is refused now."""
    from ..engine.naming import model_label

    chosen: dict[str, str] = {}
    for name in names:
        model_id = resolve(name, task)
        chosen.setdefault(model_id, model_label(model_id))
    return [(label, model_id) for model_id, label in chosen.items()]


def prepare_jobs(catalog: Catalog, settings: Settings, request: ModelRequest, planned: Sequence[PlannedJob]) -> list[PlannedJob]:
    """A run's jobs as they will be sent, each checked against its own model's schema: all of them
    before the first is sent. `request` carries the run's --resolution, --seed, --set and -i."""
    prepared = list(planned)
    for model_id in dict.fromkeys(job.generation.model for job in planned):
        indexes = [index for index, job in enumerate(planned) if job.generation.model == model_id]
        sent = request._replace(model=model_id).prepare(catalog, settings, [planned[index].generation for index in indexes])
        for index, generation in zip(indexes, sent):
            prepared[index] = planned[index]._replace(generation=generation)
    return prepared


def prepared_run(
    output: Output, settings: Settings, request: ModelRequest, planned: Sequence[PlannedJob], *, sandbox: bool = False
) -> tuple[list[PlannedJob], RunCost | None]:
    """A run's jobs checked against each one's model's schema, and what they cost model by model.
    A run on the default model's classic options needs neither: (the jobs, None). With --sandbox
    the cache and the bundled snapshot answer (the sandbox serves that snapshot)."""
    if not any(request._replace(model=job.generation.model).needs_schema for job in planned):
        return list(planned), None
    from contextlib import nullcontext

    opened = nullcontext(offline_catalog(settings)) if sandbox else schemas(output, settings)
    with opened as catalog:
        prepared = prepare_jobs(catalog, settings, request, planned)
        return prepared, RunCost.of(catalog, [job.generation for job in prepared])


class RunCost(NamedTuple):  # not a dataclass: see ModelRequest
    """What a run will cost, model by model: (model id, images, its price per image or None when unknown)."""

    parts: tuple[tuple[str, int, float | None], ...]

    @classmethod
    def of(cls, catalog: Catalog, generations: Sequence[GenerationInput]) -> RunCost:
        return cls(tuple(
            (model_id, count, catalog.entry(model_id).price_per_image) for model_id, count in images_by_model(generations).items()
        ))

    def over(self, generations: Sequence[GenerationInput]) -> RunCost:
        """This run's prices, model by model, over only `generations` (the jobs still to submit, say)."""
        prices = {model_id: price for model_id, _, price in self.parts}
        return RunCost(tuple((model_id, count, prices.get(model_id)) for model_id, count in images_by_model(generations).items()))

    @property
    def images(self) -> int:
        return sum(count for _, count, _ in self.parts)

    @property
    def unknown(self) -> list[str]:
        return [alias_or_id(model_id) for model_id, _, price in self.parts if price is None]

    @property
    def total(self) -> float:
        """The sum over the models whose price is known."""
        return round(sum(count * price for _, count, price in self.parts if price is not None), 4)

    def text(self) -> str:
        """`estimated cost $0.1890 for 3 image(s): 1 × $0.0390 on nano-banana, 2 × $0.0750 on nano-banana-pro`;
        a model without a known price is named, never guessed."""
        known = [(model_id, count, price) for model_id, count, price in self.parts if price is not None]
        unknown = [(model_id, count) for model_id, count, price in self.parts if price is None]
        each = ", ".join(f"{count} × ${price:.4f} on {alias_or_id(model_id)}" for model_id, count, price in known)
        said = []
        if known:
            images = sum(count for _, count, _ in known)
            said.append(f"estimated cost ${self.total:.4f} for {images} image(s)" + (f": {each}" if len(self.parts) > 1 else
                                                                                     f" at ${known[0][2]:.4f} each"))
        if unknown:
            said.append("price unknown (the catalog does not say) for " + ", ".join(
                f"{count} image(s) on {alias_or_id(model_id)}" for model_id, count in unknown))
        return "; ".join(said)

    def said(self, max_cost: float | None) -> str:
        """`text()`, with the cap it is within (once `check` let it through)."""
        return self.text() + (f", within --max-cost ${max_cost:.4f}" if max_cost is not None else "")

    def announce(self, output: Output, max_cost: float | None) -> None:
        """Refuse the run above --max-cost, else say what it will cost."""
        if max_cost is not None:
            self.check(max_cost)
        output.note(self.said(max_cost))

    def check(self, max_cost: float) -> None:
        """Refuse a run above --max-cost, or one whose cost cannot be known while --max-cost is set."""
        if self.unknown:
            raise UsageError(
                f"--max-cost is set but the price of {', '.join(self.unknown)} is unknown (the catalog does not say); "
                "nothing was submitted",
                hint=f"check `nanobanana model {self.unknown[0]}`, leave that model out, or drop --max-cost",
            )
        if self.total > max_cost:
            raise UsageError(
                f"{self.text()}: over --max-cost ${max_cost:.4f}; nothing was submitted",
                hint="raise --max-cost, or ask for fewer images or models",
            )


def images_by_model(generations: Sequence[GenerationInput]) -> dict[str, int]:
    """How many images the jobs make on each model, in the order the models first come."""
    images: dict[str, int] = {}
    for generation in generations:
        images[generation.model] = images.get(generation.model, 0) + generation.num_images
    return images


# The fields a command fills from its prompt argument, its own flags or its images: `--set` is for
# any other field, so it refuses these (a --set num_images would change what is billed behind -n).
# Completion leaves them out of the fields it offers.
FLAG_FIELDS: dict[str, str] = {
    "prompt": "the PROMPT argument",
    "aspect_ratio": "-a/--aspect",
    "output_format": "-f/--format",
    "num_images": "-n/--num-images",
    "resolution": "--resolution",
    "seed": "--seed",
    "image_urls": "-i/--image",
}


def parse_sets(pairs: Sequence[str] | None) -> tuple[str, ...]:
    """`--set KEY=VALUE`, checked for its shape now (its value is typed by the schema later), and
    never for a field that has its own flag."""
    for pair in pairs or ():
        key, equals, _ = pair.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, not {pair[:60]!r}", hint="e.g. --set safety_tolerance=5")
        if key.strip() in FLAG_FIELDS:
            raise UsageError(f"--set {key.strip()}: use {FLAG_FIELDS[key.strip()]}",
                             hint="--set is for the model's other fields (`nanobanana model MODEL` lists them)")
    return tuple(pairs or ())


def catalog_of(client: Client) -> Catalog:
    """The catalog beside the command's client."""
    from ..engine.catalog import Catalog
    from ..stores.catalog import CatalogCache

    return Catalog(CatalogCache(), client.base_url, client)


def offline_catalog(settings: Settings) -> Catalog:
    """The settings' API's catalog without a client: the cache (any age) and the bundled snapshot answer, no request."""
    from ..engine.catalog import Catalog
    from ..stores.catalog import CatalogCache

    return Catalog(CatalogCache(), settings.base_url)


@contextmanager
def schemas(output: Output, settings: Settings) -> Iterator[Catalog]:
    """A catalog of its own, for a run that opens no client (a dry run): without a token the cache
    and the bundled snapshot answer, so a dry run needs no account."""
    from ..engine.catalog import open_catalog

    with open_catalog(settings, notices=output) as catalog:
        yield catalog


def refused(catalog: Catalog | None, generation: GenerationInput, error: InvalidInputError) -> InvalidInputError:
    """The API refused a submit the schema in effect allowed: one usage error, the cache marked stale."""
    if catalog is None or generation.classic:
        return error
    return catalog.refused(generation.model, error)


def mark_refusals(output: Output, catalog: Catalog, refused: Sequence[tuple[GenerationInput, BaseException | None]]) -> None:
    """After a run: each model whose jobs the API refused (422 / 400001) although the schema in effect
    allowed them has its cached schema marked stale, so the next run asks the catalog again."""
    models = dict.fromkeys(
        generation.model for generation, error in refused if isinstance(error, InvalidInputError) and not generation.classic
    )
    for model_id in models:
        catalog.mark_stale(model_id)
        output.note(f"the API refused what the cached schema of {model_id} allowed: it was marked stale, the next run asks "
                    f"the catalog again (`nanobanana model {model_id} --refresh` shows the schema the API has now)")


# What a saved image's provenance says besides the request's own fields (engine/lifecycle._provenance).
PROVENANCE_KEYS = (
    "index", "count", "model", "request_id", "api_host", "submitted_at", "finished_at", "tool", "image_data_sha256",
)


def regenerated(
    made: Mapping[str, Any], settings: Settings, prompt_append: str, *, resolution: str | None = None, seed: int | None = None,
    sets: tuple[str, ...] = (), images: tuple[str, ...] = (), fit: bool = False,
) -> tuple[GenerationInput, ModelRequest]:
    """The request a saved image records, made again with the settings' overrides (and its model's
    task: an edit's provenance regenerates an edit). Recorded input images are sent again: a URL
    as recorded, a local file from its recorded path if its sha256 still matches; otherwise the
    user is asked for it with -i (which replaces every recorded image)."""
    from ..api.family import task_of

    recorded = {key: value for key, value in made.items() if key not in PROVENANCE_KEYS}
    model_id = resolve(settings["model"])
    task: Task = "edit" if images or recorded.get("image_urls") else task_of(model_id)
    extra = {key: value for key, value in recorded.items() if key not in (*CLASSIC_FIELDS, "image_urls")}
    request = ModelRequest(settings["model"], task, resolution, seed, sets, images, fit)
    if not images and isinstance(recorded.get("image_urls"), list):
        request = ModelRequest(settings["model"], task, resolution, seed, sets, (), fit, reloaded=_reload_all(recorded["image_urls"], fit))
    generation = GenerationInput(
        str(made["prompt"]) + prompt_append, **settings.generation_defaults(), model=request.model_id,
        extra=tuple(extra.items()) if request.needs_schema else (),
    )
    return generation, request


def _reload_all(records: list[Any], fit: bool) -> tuple[Any, ...]:
    from ..engine.image_inputs import recorded_inputs, reload

    found = []
    for record in recorded_inputs(records):
        item = reload(record, fit=fit)
        if item is None:
            name = record.get("path") or record.get("file")
            raise UsageError(
                f"the input image {str(name)[:200]!r} of this edit is gone or changed since (its sha256 no longer matches)",
                hint="pass the input images again with -i IMAGE (every one, in order)",
            )
        found.append(item)
    return tuple(found)


def plain_request(prompt: str, settings: Settings, request: ModelRequest) -> GenerationInput:
    """One job's input from the settings' classic options, before it is checked against the schema."""
    return GenerationInput(prompt, **settings.generation_defaults(), model=request.model_id)
