"""The history's indexes: lookups by file hash, path, id and id prefix cost the same whatever the
history holds, and a database written by the version before them is migrated in place."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import MIGRATIONS, History

API = "https://api.runcomfy.net"
OTHER_API = "http://127.0.0.1:9"
# the schema as version 5 (today's release before the indexes) wrote it
OLD_MIGRATIONS = {version: statements for version, statements in MIGRATIONS.items() if version <= 5}


def _file(path: str, sha256: str, delivered: str | None = None) -> dict[str, Any]:
    return {"path": path, "bytes": 10, "sha256": sha256, "delivered_sha256": delivered or sha256, "provenance": "embedded"}


# request id, submitted at, base URL, status, paths, files: every shape a row written by another program may hold
OLD_ROWS: list[tuple[str, str, str, str, Any, Any]] = [
    ("aaaa1111-0000-4000-8000-000000000001", "2026-01-01T10:00:00.000Z", API, "succeeded",
     ["/out/a/fox-aaaa1111-1.png", "/out/a/fox-aaaa1111-2.png"],
     [_file("/out/a/fox-aaaa1111-1.png", "a" * 64, "d" * 64), _file("/out/a/fox-aaaa1111-2.png", "b" * 64)]),
    ("aaaa2222-0000-4000-8000-000000000002", "2026-01-02T10:00:00.000Z", API, "succeeded",
     ["/out/b/cat-aaaa2222-1.png"], [_file("/out/b/cat-aaaa2222-1.png", "c" * 64)]),
    # a later job saved a copy of the same bytes: the newest job is the one found
    ("bbbb3333-0000-4000-8000-000000000003", "2026-01-03T10:00:00.000Z", OTHER_API, "succeeded",
     ["/out/c/cat-bbbb3333-1.png"], [_file("/out/c/cat-bbbb3333-1.png", "c" * 64)]),
    ("bbbb4444-0000-4000-8000-000000000004", "2026-01-04T10:00:00.000Z", API, "failed", [], []),
    ("cccc5555-0000-4000-8000-000000000005", "2026-01-05T10:00:00.000Z", API, "succeeded",
     "not json", "{not json either"),
    ("cccc6666-0000-4000-8000-000000000006", "2026-01-06T10:00:00.000Z", API, "succeeded",
     {"path": "/out/d/x.png"}, [1, "e" * 64, None, {"sha256": 5}, {"sha256": "f" * 64, "path": "/out/d/y.png"}]),
    ("local:0123456789ab", "2026-01-07T10:00:00.000Z", API, "uncertain", [], []),
]


def _old_database(path: Path, rows: list[tuple[str, str, str, str, Any, Any]] = OLD_ROWS) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    for version, statements in OLD_MIGRATIONS.items():
        for statement in statements:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
    for request_id, submitted, base_url, status, paths, files in rows:
        db.execute(
            "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status, paths, files)"
            " VALUES (?, ?, ?, 'm', ?, 'p', '{}', ?, ?, ?)",
            (request_id, submitted, submitted, base_url, status,
             paths if isinstance(paths, str) else json.dumps(paths), files if isinstance(files, str) else json.dumps(files)),
        )
    db.close()


def _old_find_file(path: Path, sha256: str) -> tuple[str, dict[str, Any]] | None:
    """What version 5 answered: a LIKE scan of the files column, newest job first (it failed on a record
    that is no object; the new lookup skips those, as this reference does)."""
    db = sqlite3.connect(path)
    try:
        for request_id, files in db.execute(
            "SELECT request_id, files FROM jobs WHERE files LIKE ? ORDER BY submitted_at DESC", (f"%{sha256}%",)
        ):
            for record in json.loads(files):
                if isinstance(record, dict) and sha256 in (record.get("sha256"), record.get("delivered_sha256")):
                    return request_id, record
    finally:
        db.close()
    return None


def _old_jobs_with_paths_in(path: Path, directories: list[str]) -> list[str]:
    terms = [json.dumps(os.path.join(directory, ""))[1:-1] for directory in set(directories)]
    db = sqlite3.connect(path)
    try:
        where = " OR ".join("instr(paths, ?) > 0" for _ in terms)
        query = f"SELECT request_id FROM jobs WHERE {where} ORDER BY submitted_at DESC, rowid DESC"
        return [row[0] for row in db.execute(query, terms)]
    finally:
        db.close()


def _found(history: History, sha256: str) -> tuple[str, dict[str, Any]] | None:
    found = history.find_file(sha256)
    return (found[0].request_id, found[1]) if found else None


def test_a_version_5_database_is_migrated_in_place_and_answers_as_before(tmp_path):
    database = tmp_path / "history.sqlite3"
    _old_database(database)
    digests = ["a" * 64, "b" * 64, "c" * 64, "d" * 64, "f" * 64]
    before = {digest: _old_find_file(database, digest) for digest in digests}
    folders = ["/out/a", "/out/b", "/out/c", "/out/nothing"]
    before_paths = {folder: _old_jobs_with_paths_in(database, [folder]) for folder in folders}

    with History(database, warn=pytest.fail) as history:
        assert [_found(history, digest) for digest in digests] == list(before.values())
        # the record found is the file's own, whichever of its two hashes was asked for
        assert _found(history, "d" * 64) == _found(history, "a" * 64)
        assert _found(history, "c" * 64)[0].startswith("bbbb3333")
        assert _found(history, "e" * 64) is None  # a bare string in the array is no file record
        assert history.find_file("0" * 64) is None
        for folder in folders:
            assert [entry.request_id for entry in history.jobs_with_paths_in([folder])] == before_paths[folder]
        assert [e.request_id for e in history.jobs_with_paths_in(["/out/a", "/out/c"])] == [
            "bbbb3333-0000-4000-8000-000000000003", "aaaa1111-0000-4000-8000-000000000001"]
        assert [e.request_id for e in history.jobs_with_ids(prefixes={"aaaa"})] == [
            "aaaa2222-0000-4000-8000-000000000002", "aaaa1111-0000-4000-8000-000000000001"]
        assert history.count() == len(OLD_ROWS)  # nothing lost

    db = sqlite3.connect(database)
    assert db.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_the_file_keys_follow_every_write(tmp_path):
    history = History(tmp_path / "history.sqlite3", warn=pytest.fail)
    generation = GenerationInput("a fox")
    ticket = history.submitting(generation, API)
    history.update(ticket, files=[_file("/o/x.png", "1" * 64)], paths=["/o/x.png"])
    assert _found(history, "1" * 64)[0] == ticket
    # settled under its request id: found under that id only
    history.submitted(ticket, "abcd0001-0000-4000-8000-000000000001")
    assert _found(history, "1" * 64)[0] == "abcd0001-0000-4000-8000-000000000001"
    assert [e.request_id for e in history.jobs_with_paths_in(["/o"])] == ["abcd0001-0000-4000-8000-000000000001"]
    # new files replace the old ones' keys; a status update leaves them alone
    history.update("abcd0001-0000-4000-8000-000000000001", files=[_file("/p/y.png", "2" * 64)], paths=["/p/y.png"])
    history.update("abcd0001-0000-4000-8000-000000000001", status="succeeded")
    assert history.find_file("1" * 64) is None
    assert history.jobs_with_paths_in(["/o"]) == []
    assert _found(history, "2" * 64)[0] == "abcd0001-0000-4000-8000-000000000001"
    assert [e.request_id for e in history.jobs_with_paths_in(["/p"])] == ["abcd0001-0000-4000-8000-000000000001"]
    # a submit settled under an id already recorded replaces that row, and its keys
    other = history.submitting(generation, API)
    history.submitted(other, "abcd0001-0000-4000-8000-000000000001")
    assert history.find_file("2" * 64) is None
    history.update("abcd0001-0000-4000-8000-000000000001", files=[_file("/p/z.png", "3" * 64)], paths=["/p/z.png"])
    assert history.remove(["abcd0001-0000-4000-8000-000000000001"])
    assert history.find_file("3" * 64) is None
    assert history.jobs_with_paths_in(["/p"]) == []
    db = sqlite3.connect(history.path)
    assert db.execute("SELECT COUNT(*) FROM file_hashes").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM file_paths").fetchone()[0] == 0
    db.close()
    history.close()


def test_a_row_with_unreadable_file_columns_is_still_written(tmp_path):
    """Another program's row with broken JSON must not make our writes to it fail."""
    history = History(tmp_path / "history.sqlite3", warn=pytest.fail)
    history.count()
    history._connection.execute(  # as another program would write it
        "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status, paths, files)"
        " VALUES ('x1', '2026-01-01', '2026-01-01', 'm', ?, 'p', '{}', 'succeeded', '[[', '{\"sha256\": 1')", (API,))
    history.update("x1", status="failed")
    history._connection.execute("UPDATE jobs SET files = '[\"x\", 3, {\"sha256\": [1]}]', paths = '{}' WHERE request_id = 'x1'")
    history.close()
    assert History(tmp_path / "history.sqlite3", warn=pytest.fail).count() == 1


def _plans(history: History, calls: list) -> dict[str, list[str]]:
    """Each statement the calls ran, with SQLite's plan for it."""
    statements: list[str] = []
    history.count()  # opens (and migrates) the database
    connection = history._connection
    connection.set_trace_callback(statements.append)
    for call in calls:
        call()
    connection.set_trace_callback(None)
    plans = {}
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            continue
        rows = connection.execute("EXPLAIN QUERY PLAN " + sql, [None] * sql.count("?")).fetchall()
        plans[sql] = [row[-1] for row in rows]
    return plans


def test_lookups_search_an_index_instead_of_scanning_the_jobs(tmp_path):
    database = tmp_path / "history.sqlite3"
    readable = [row for row in OLD_ROWS if isinstance(row[4], list)]  # listings read every column of a row
    _old_database(database, readable)
    history = History(database, warn=pytest.fail)
    for request_id, *_ in readable:  # enough rows for the planner to prefer what a large history would
        history.update(request_id, status="succeeded")
    calls = [
        lambda: history.find_file("c" * 64),
        lambda: history.jobs_with_paths_in(["/out/a", "/out/b"]),
        lambda: history.jobs_with_ids({"aaaa1111-0000-4000-8000-000000000001"}, {"bbbb"}),
        lambda: history.get("aaaa1111-0000-4000-8000-000000000001"),
        lambda: history.last(API),
        lambda: history.timings(API),
        lambda: history.entries(limit=20, status="failed"),
        lambda: history.entries(limit=20, base_url=API),
        lambda: history.entries(limit=20),  # and the orphan check every listing makes
        lambda: history.update("aaaa2222-0000-4000-8000-000000000002", files=[_file("/q.png", "9" * 64)]),
        lambda: history.remove(["bbbb4444-0000-4000-8000-000000000004"]),
    ]
    plans = _plans(history, calls)
    history.close()
    assert len(plans) >= len(calls)
    for sql, plan in plans.items():
        for step in plan:
            scanned = step.startswith("SCAN ") and " USING " not in step and "json_each" not in step
            assert not scanned, f"{sql}\n  scans: {step}"
            # a walk along an index is only for listing the newest jobs, which stops at its LIMIT
            if step.startswith("SCAN ") and "json_each" not in step:
                assert "LIMIT" in sql.upper(), f"{sql}\n  walks a whole index: {step}"
    searched = " ".join(step for plan in plans.values() for step in plan)
    for index in ("file_hashes", "file_paths", "jobs_by_api_status_time", "jobs_by_status_time", "sqlite_autoindex_jobs_1"):
        assert index in searched, index
