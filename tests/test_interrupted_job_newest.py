"""The job a waited generate resumes is the newest interrupted one of the same request into the
same directory, whichever unfinished state each is in: found by one history query, newest first."""

from __future__ import annotations

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.engine.lifecycle import DownloadPlan
from nanobanana_cli.runs.generate import DETACHED, _interrupted_job
from nanobanana_cli.states import JobState
from nanobanana_cli.stores.history import History

API = "http://api.test"


def test_the_newest_interrupted_job_is_resumed_even_when_an_older_one_is_still_queued(tmp_path):
    generation = GenerationInput("a fox")
    plan = DownloadPlan(tmp_path, 10**6, None, "embed")
    intent = plan.intent(plan.namer(generation)).to_record()
    other = GenerationInput("a fox", model="google/nano-banana-2/text-to-image")
    with History(tmp_path / "history.db") as history:
        for request_id, model_input, status in (
            ("older", generation, JobState.IN_QUEUE), ("newer", generation, JobState.IN_PROGRESS),
            ("another-model", other, JobState.IN_QUEUE),
        ):
            history.record_submission(request_id, model_input, API, intent)
            history.update(request_id, status=status, event=(DETACHED, {"reason": "interrupted"}))
        assert _interrupted_job(history, API, generation, tmp_path) == "newer"
        assert _interrupted_job(history, API, other, tmp_path) == "another-model"
        assert _interrupted_job(history, "http://elsewhere.test", generation, tmp_path) is None
        history.update("newer", status=JobState.SUCCEEDED)
        assert _interrupted_job(history, API, generation, tmp_path) == "older"
