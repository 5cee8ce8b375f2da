"""The one module of the MCP server that uses the CLI's internals.

Everything a tool asks of nanobanana goes through `Backend`: a submit through the same durable
journal as `nanobanana generate` (`open_client` journals it in the history before the POST,
`Jobs.submit` records the job as soon as its id is known), waiting, downloading, the history, the
catalog and file inspection. Tools and the server see plain values in return: job documents
(docs/schema/job.json), paths and text. When the CLI's command and use-case layers change, this
module is the one that follows them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..api.family import ALIASES, Task
from ..api.models import GenerationInput, JobStatus, normalise_status, printable
from ..api.schema import TEXT_TO_IMAGE, InputField
from ..engine.lifecycle import DownloadPlan, Jobs, prepare_output_dir
from ..engine.naming import NameTemplate
from ..engine.outcome import JobOutcome
from ..errors import (
    InvalidInputError,
    NanobananaError,
    NotFinishedError,
    NotFoundError,
    SubmitUncertainError,
    UsageError,
)
from ..states import RECORDED_STATES, JobState
from ..stores.history import History, HistoryEntry
from ..stores.settings import Settings
from .policy import Budget, ReadableFiles

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.retry import RetryNotice

MEGABYTE = 1024 * 1024
SANDBOX_QUEUE_SECONDS = 1.0
SANDBOX_RUN_SECONDS = 2.0


@dataclass(frozen=True)
class Options:
    """What `nanobanana mcp` was started with; None is the setting in effect, as for every command."""

    output_dir: Path | None = None
    allow_read: tuple[Path, ...] = ()  # besides the output directory; none given: the current directory
    max_cost: float | None = None
    max_images: int | None = None
    metadata: str | None = None
    timeout: float | None = None
    base_url: str | None = None
    retries: int | None = None
    sandbox: bool = False


@dataclass
class JobAnswer:
    """A job as a tool returns it: its document, why the call failed for it, and the files saved."""

    document: dict[str, Any]
    error: NanobananaError | None = None
    saved: list[Path] = field(default_factory=list)

    @property
    def finished_later(self) -> bool:
        """Not a failure: the job is still queued or running, and can be fetched later."""
        return isinstance(self.error, NotFinishedError)


@dataclass(frozen=True)
class GenerateRequest:
    """A checked `generate_image` call: the model's input, the file-name template, whether to wait.

    Every submit of the server is one of these, so a tool that edits images adds its inputs here
    (local paths already passed through `ReadableFiles.check`), and shares the journal, the budget
    and the output directory with generate_image by construction.
    """

    prompt: str
    options: dict[str, Any]  # aspect_ratio, output_format, num_images: the model's own field names
    name: NameTemplate | None = None
    wait: bool = True
    model: str | None = None  # a family alias; None: the model the settings choose
    resolution: str | None = None
    seed: int | None = None
    images: tuple[str, ...] = ()  # https URLs, and local files already allowed (resolved paths)

    @property
    def task(self) -> Task:
        return "edit" if self.images else "generate"


class Call:
    """One tool call, as the backend sees it: where its progress goes, and a stop the client may pull.

    A client that cancels the call stops only the waiting: the job is never cancelled with it
    (as with Ctrl-C in the CLI), and the log names it and how to fetch it later.
    """

    def __init__(self, tool: str, progress: Callable[[str, str], None], log: Callable[[str], None]) -> None:
        self.tool = tool
        self.stop = threading.Event()
        self._progress = progress
        self._log = log
        self._lock = threading.Lock()
        self.request_id: str | None = None
        self.cancelled = False

    def progress(self, key: str, message: str) -> None:
        """`message` replaces the last one; a new `key` (a new state, another file) is news worth sending at once."""
        self._progress(key, message)

    def follows(self, request_id: str, *, submitted: bool = False) -> None:
        with self._lock:
            self.request_id = request_id
            cancelled = self.cancelled
        if submitted:
            self.progress("submitted", f"submitted job {request_id}")
        if cancelled:
            self._left_running()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            known = self.request_id
        self.stop.set()
        if known is not None:
            self._left_running()
        elif self.tool in ("generate_image", "edit_image"):
            self._log(f"{self.tool}: the call was cancelled while it was submitting; the job, if one is created, "
                      "is named here once its id arrives")

    def _left_running(self) -> None:
        request_id = self.request_id
        self._log(
            f"{self.tool}: the call was cancelled (by the client, or the server is closing); job {request_id} "
            "was not cancelled and keeps running. "
            f'Fetch it later with job_result {{"request_id": "{request_id}", "wait": true}} '
            f"(or: nanobanana result {request_id} --download)"
        )


class _Progress:
    """The engine's progress reports (the `Reporter` protocol), as a call's progress messages."""

    def __init__(self, call: Call) -> None:
        self.call = call

    def job_update(self, status: JobStatus, elapsed: float) -> None:
        where = f" (position {status.queue_position})" if status.queue_position is not None else ""
        self.call.progress(f"status {status.status}{where}", f"job {status.request_id}: {status.status}{where}, {elapsed:.0f}s")

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        of = f" of {total // 1024} KB" if total else ""
        self.call.progress(f"download {url}", f"downloading {url.rsplit('/', 1)[-1][:40]}: {received // 1024} KB{of}")

    def warn(self, text: str) -> None:
        self.call.progress("warning", f"warning: {text}")


class _Notices:
    """What happens around the client (retries, warnings): the call's progress and the server's log."""

    def __init__(self, call: Call, log: Callable[[str], None]) -> None:
        self.call = call
        self.log = log

    def retry_notice(self, notice: RetryNotice) -> None:
        self.call.progress(
            f"retry {notice.what}",
            f"{notice.what}: {notice.reason}; attempt {notice.attempt} of {notice.attempts} in {notice.delay:.1f}s",
        )

    def warn(self, text: str) -> None:
        self.log(f"warning: {text}")

    def sandbox_notice(self, base_url: str) -> None:
        self.log(f"sandbox API at {base_url}")


class Backend:
    """nanobanana for the MCP tools: settings resolved once at start, a client and history per call."""

    def __init__(self, options: Options, *, stderr: TextIO | None = None) -> None:
        self._stderr = stderr or sys.stderr
        self._secrets: set[str] = set()
        self._stack = ExitStack()
        self._sandbox_token: str | None = None
        flags: dict[str, Any] = {
            "output_dir": options.output_dir, "metadata": options.metadata, "timeout": options.timeout,
            "base_url": options.base_url, "retries": options.retries,
        }
        if options.sandbox and options.base_url:
            raise UsageError("--sandbox serves its own local API; drop --base-url", hint="pick one of the two")
        try:
            if options.sandbox:
                flags["base_url"] = self._start_sandbox()
            self.settings = Settings(flags)
            # Every setting is checked now: a bad value stops the server at start, not a tool call later.
            self.output_dir = prepare_output_dir(self.settings["output_dir"]).resolve()
            self.plan = DownloadPlan(self.output_dir, self.settings["max_download_mb"] * MEGABYTE, None, self.settings["metadata"])
            self.timeout: float | None = self.settings["timeout"]
            for key in ("retries", "base_url"):  # read by each call's client: a bad value is refused now
                self.settings[key]
            self.readable = ReadableFiles.of([self.output_dir, *(options.allow_read or (Path.cwd(),))])
        except BaseException:
            self._stack.close()
            raise
        self.budget = Budget(options.max_cost, options.max_images)
        self.base_url = self.settings.base_url
        # The API to name in hints when it came from a flag: a plain `nanobanana result` would not find the job.
        self._resume_base_url = self.base_url if self.settings.resolved("base_url").source == "flag" else None
        try:
            self._secrets.add(self._token())
        except NanobananaError:
            pass  # no token yet: each call says so, with the fix

    def _start_sandbox(self) -> str:
        from ..sandbox import Sandbox

        sandbox = self._stack.enter_context(Sandbox(queue_seconds=SANDBOX_QUEUE_SECONDS, run_seconds=SANDBOX_RUN_SECONDS))
        self._sandbox_token = sandbox.token
        return sandbox.base_url

    def close(self) -> None:
        self._stack.close()

    # -- the log, and keeping the token out of everything ----------------------------------------

    def mask(self, text: str) -> str:
        for secret in tuple(self._secrets):  # a snapshot: another call's thread may add its token meanwhile
            text = text.replace(secret, "***")
        return text

    def mask_document(self, document: Any) -> Any:
        """A JSON value with every string masked (a server may echo the token back in any field)."""
        if isinstance(document, str):
            return self.mask(document)
        if isinstance(document, dict):
            return {self.mask(str(key)): self.mask_document(value) for key, value in document.items()}
        if isinstance(document, list):
            return [self.mask_document(item) for item in document]
        return document

    def log(self, message: str) -> None:
        """One line on the server's stderr, which MCP clients keep as the server's log."""
        self._stderr.write(f"nanobanana mcp: {printable(self.mask(message), limit=2000)}\n")
        self._stderr.flush()

    # -- what the tools' schemas are made from ----------------------------------------------------

    @staticmethod
    def generation_fields() -> tuple[InputField, ...]:
        return TEXT_TO_IMAGE.fields

    def generation_defaults(self) -> dict[str, Any]:
        return self.settings.generation_defaults()

    @staticmethod
    def model_aliases() -> tuple[str, ...]:
        return ALIASES

    @staticmethod
    def history_states() -> tuple[str, ...]:
        return RECORDED_STATES

    @staticmethod
    def name_template(text: str) -> NameTemplate:
        """The `name` argument, checked by the rules of --name: a file name inside the output directory, nothing else."""
        if ":" in text:  # a drive on Windows ("C:x") would leave the directory
            raise UsageError(f"invalid name {text!r}: no ':' in a file name")
        try:
            return NameTemplate.parse(text)
        except UsageError as exc:  # the rules are --name's, and so is its wording: here it is an argument
            raise UsageError(str(exc).replace("--name", "name"), hint=(exc.hint or "").replace("--name", "name")) from None

    # -- a client and the job lifecycle, per call --------------------------------------------------

    def _token(self) -> str:
        return self._sandbox_token or self.settings.token().token

    @contextmanager
    def _client(self, call: Call) -> Iterator[Client]:
        from ..engine.connect import open_client

        token = self._token()
        self._secrets.add(token)
        with open_client(self.settings, notices=_Notices(call, self.log), token=token) as client:
            yield client

    @contextmanager
    def _jobs(self, call: Call, *, downloads: DownloadPlan | None = None) -> Iterator[tuple[Jobs, History]]:
        with History(warn=self.log) as history, self._client(call) as client:
            jobs = Jobs(
                client, history, reporter=_Progress(call), downloads=downloads, timeout=self.timeout,
                resume_base_url=self._resume_base_url,
            )
            jobs.stop = call.stop  # the client's cancel stops the wait, never the job
            yield jobs, history

    # -- the tools' work ------------------------------------------------------------------------

    def generate(self, request: GenerateRequest, call: Call) -> JobAnswer:
        """Submit once through the journal (within the budget), then wait and save, unless told not to wait."""
        from ..engine.pricing import price_per_image
        from ..runs.models import ModelRequest, catalog_of, refused
        from ..stores.catalog import CatalogCache

        model = ModelRequest(
            request.model or self.settings["model"], request.task, request.resolution, request.seed, (), request.images,
        )
        generation = GenerationInput(request.prompt, **request.options, model=model.model_id)
        with self._jobs(call, downloads=self.plan._replace(name=request.name)) as (jobs, _):
            catalog = entry = None
            if model.needs_schema:
                # The same check and request body as `nanobanana edit`/`generate --model`: every field
                # and image is checked against the model's schema before anything is sent.
                catalog = catalog_of(jobs.client)
                entry = catalog.entry(model.model_id)
                (generation,) = model.prepare(catalog, self.settings, [generation])

            def price() -> float | None:
                return entry.price_per_image if entry is not None else price_per_image(jobs.client, CatalogCache())

            reservation = self.budget.reserve(generation.num_images, price)
            try:
                submission = jobs.submit(generation)
            except InvalidInputError as exc:
                reservation.not_sent()
                raise refused(catalog, generation, exc) from None
            except SubmitUncertainError as exc:
                # It may exist and be billed: it stays in the budget, and is never sent again.
                return self._answer(JobOutcome("", JobState.UNCERTAIN, generation, error=exc))
            except NanobananaError:
                reservation.not_sent()  # refused, or it never left this machine: nothing was billed
                raise
            request_id = submission.request_id
            call.follows(request_id, submitted=True)
            if not request.wait:
                return self._answer(jobs.describe(request_id, JobState.IN_QUEUE, generation))
            return self._answer(jobs.outcome_of(request_id, generation, just_submitted=True))

    def status(self, request_id: str | None, call: Call) -> JobAnswer:
        with self._jobs(call) as (jobs, history):
            request_id = self._job_id(request_id, history)
            return self._answer(jobs.status(request_id))

    def result(self, request_id: str | None, wait: bool, call: Call) -> JobAnswer:
        """The job's images, saved in the output directory: those already there, or downloaded now."""
        with History(warn=self.log) as history:
            request_id = self._job_id(request_id, history)
            saved = self._already_saved(history.get(request_id))
        if saved is not None:
            return saved
        call.follows(request_id)
        # Always into this server's output directory, under the names the job recorded at its submit.
        with self._jobs(call, downloads=self.plan) as (jobs, _):
            if wait:
                return self._answer(jobs.outcome_of(request_id, jobs.generation_of(request_id)))
            return self._answer(jobs.fetch(request_id))

    def cancel(self, request_id: str | None, call: Call) -> JobAnswer:
        with self._jobs(call) as (jobs, history):
            request_id = self._job_id(request_id, history)
            answer = jobs.cancel(request_id)
            refused = None if answer.cancelled else NanobananaError(
                f"job {request_id} cannot be cancelled ({answer.outcome}): it is already running or finished",
                hint="only queued jobs can be cancelled; a running job completes and is billed",
            )
            outcome = jobs.describe(request_id, JobState.CANCELLED if answer.cancelled else answer.status or "unknown", error=refused)
        return JobAnswer({**outcome.to_dict(), "outcome": answer.outcome}, refused)

    def history(self, status: str | None, search: str | None, limit: int) -> list[dict[str, Any]]:
        wanted = normalise_status(status) if status is not None else None
        with History(warn=self.log) as history:
            return [entry.to_dict() for entry in history.entries(limit=limit, status=wanted, search=search)]

    def inspect(self, path: Path) -> dict[str, Any]:
        """`nanobanana inspect` of one file already allowed; a NAME.json beside it must be allowed too."""
        from ..engine.inspection import inspect_file
        from ..engine.provenance import sidecar_path

        sidecar = sidecar_path(path)
        if sidecar.exists() and not self.readable.allows(sidecar):
            raise UsageError(f"path: {sidecar.name} beside the image leads outside the directories this server may read")
        with History(warn=self.log) as history:
            return inspect_file(path, history)

    def model(self, refresh: bool, call: Call) -> dict[str, Any]:
        from ..engine.pricing import model_info
        from ..stores.catalog import CatalogCache

        with self._client(call) as client:
            info, source = model_info(client, CatalogCache(), refresh=refresh)
        return {**info.to_dict(), "source": source, "base_url": self.base_url, "budget": self.budget.to_dict()}

    # -- helpers --------------------------------------------------------------------------------

    def _answer(self, outcome: JobOutcome) -> JobAnswer:
        return JobAnswer(outcome.to_dict(), outcome.error, [Path(item.path) for item in outcome.saved or []])

    def _job_id(self, request_id: str | None, history: History) -> str:
        """The id given (checked), or the newest job sent to this API; a job recorded under another API is refused."""
        from ..api.models import validate_request_id

        if request_id is None:
            entry = history.last(self.base_url)
            if entry is None:
                raise UsageError(f"no request_id given and no job in the history for {self.base_url}",
                                 hint="pass a request_id (list_jobs shows them)")
            return entry.request_id
        request_id = validate_request_id(request_id)
        entry = history.get(request_id)
        if entry is not None and entry.base_url.rstrip("/") != self.base_url.rstrip("/"):
            raise NotFoundError(
                f"job {request_id} belongs to {entry.base_url} (recorded in the history), not to {self.base_url}",
                hint="this server talks to one API; ask the user to start one with --base-url for that API",
            )
        return request_id

    def _already_saved(self, entry: HistoryEntry | None) -> JobAnswer | None:
        """A succeeded job whose every image the history records in the output directory, intact: no download."""
        from ..engine.downloads import SavedFile, file_sha256

        if entry is None or entry.status != JobState.SUCCEEDED or not entry.output_urls:
            return None
        found: dict[str, SavedFile] = {}
        for item in entry.files:  # written by an earlier run, maybe another version: checked, not trusted
            try:
                saved = SavedFile(
                    url=str(item["url"]), path=str(item["path"]), bytes=int(item["bytes"]), sha256=str(item["sha256"]),
                    delivered_sha256=item.get("delivered_sha256"), provenance=item.get("provenance"),
                )
                path = Path(saved.path)
                intact = path.resolve().is_relative_to(self.output_dir) and path.is_file() and file_sha256(path) == saved.sha256
            except (KeyError, TypeError, ValueError, OSError):
                continue
            if intact and saved.url in entry.output_urls:
                found.setdefault(saved.url, saved)
        if any(url not in found for url in entry.output_urls):
            return None
        outcome = JobOutcome(
            entry.request_id, entry.status, entry.generation, output_urls=list(entry.output_urls),
            saved=[found[url] for url in entry.output_urls], submitted_at=entry.submitted_at,
            finished_at=entry.finished_at, cost=entry.cost,
        )
        return self._answer(outcome)
