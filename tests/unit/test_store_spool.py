"""The durable spool (store.spool): fsync'd JSON lines, crash-safe idempotent replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store.spool import Spool


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"request_id": f"r{i}", "n": i} for i in range(start, start + n)]


class Sink:
    """A `write` callback that remembers rows by request_id (idempotent, like the DB writer)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise ConnectionError("database down")
        self.calls += 1
        for row in rows:
            self.rows.setdefault(row["request_id"], row)


def test_appended_rows_survive_a_restart_and_replay_once(tmp_path: Path) -> None:
    Spool(tmp_path).append(_rows(5))
    spool = Spool(tmp_path)  # a new process
    assert spool.depth == 5
    sink = Sink()
    assert spool.replay(sink, batch_size=2) == 5
    assert sorted(sink.rows) == [f"r{i}" for i in range(5)]
    assert sink.calls == 3
    assert spool.depth == 0
    assert not spool.path.exists() and not spool.replaying_path.exists()
    assert spool.replay(sink) == 0


def test_failed_replay_keeps_every_row_for_the_next_try(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_rows(6))
    with pytest.raises(ConnectionError):
        spool.replay(Sink(fail_after=1), batch_size=2)
    assert spool.depth == 6
    assert spool.replaying_path.exists()
    spool.append(_rows(2, start=6))  # new rows while the replay file is parked
    assert spool.depth == 8
    sink = Sink()
    assert spool.replay(sink, batch_size=2) == 8
    assert len(sink.rows) == 8 and spool.depth == 0


def test_leftover_replay_file_from_a_crash_is_replayed_on_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_rows(3))
    spool.path.rename(spool.replaying_path)  # the process died right after rotating
    spool.append(_rows(2, start=3))
    restarted = Spool(tmp_path)
    assert restarted.depth == 5
    sink = Sink()
    assert restarted.replay(sink) == 5
    assert len(sink.rows) == 5


def test_a_line_torn_by_a_crash_goes_to_the_dead_file_and_does_not_eat_the_next_row(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    spool.append(_rows(1))
    with spool.path.open("ab") as f:
        f.write(b'{"request_id": "torn", "n"')  # crash mid-append: no newline
    spool = Spool(tmp_path)
    spool.append(_rows(1, start=1))
    sink = Sink()
    assert spool.replay(sink) == 2
    assert sorted(sink.rows) == ["r0", "r1"]
    assert spool.dead_depth == 1
    assert "torn" in spool.dead_path.read_text()


def test_appends_during_a_replay_are_kept_for_the_next_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(_rows(2))
    seen: list[str] = []

    def write(rows: list[dict[str, Any]]) -> None:
        seen.extend(r["request_id"] for r in rows)
        spool.append([{"request_id": "late"}])  # the sink spooling while we replay

    assert spool.replay(write) == 2
    assert seen == ["r0", "r1"]
    assert spool.depth == 1
    sink = Sink()
    spool.replay(sink)
    assert list(sink.rows) == ["late"]


def test_unicode_and_odd_values_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    row = {"request_id": "u", "prompt": 'héllo \u2028 ✓ \n"quoted"', "x": None, "f": 1.5}
    spool.append([row])
    sink = Sink()
    Spool(tmp_path).replay(sink)
    assert sink.rows["u"] == row
