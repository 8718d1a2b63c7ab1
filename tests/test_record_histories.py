"""`make histories` records beside the old histories and never overwrites one."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.record_histories import new_history_path


def test_a_recorded_scenario_gets_a_new_file_beside_the_old(tmp_path: Path) -> None:
    day = date(2026, 11, 24)
    first = new_history_path(tmp_path, "order_completed", day)
    assert first.name == "order_completed.json"
    first.write_text("old")
    second = new_history_path(tmp_path, "order_completed", day)
    assert second.name == "order_completed-20261124.json"
    second.write_text("newer")
    third = new_history_path(tmp_path, "order_completed", day)
    assert third.name == "order_completed-20261124-2.json"
    assert first.read_text() == "old" and second.read_text() == "newer"
