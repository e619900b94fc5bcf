"""The shared output helpers of hub/cli/common.py: what people see, and JSON unchanged."""

from __future__ import annotations

import json

import pytest

from hub.cli.common import emit, fields, problem_text, table, violations_text


def test_json_mode_prints_exactly_the_indented_json(capsys: pytest.CaptureFixture[str]) -> None:
    document = {"b": [1, 2], "a": "é", "c": None}
    emit(document, json_mode=True, human=lambda _: "not this")
    assert capsys.readouterr().out == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_a_list_of_records_is_a_padded_table(capsys: pytest.CaptureFixture[str]) -> None:
    emit([{"id": "a", "n": 10}, {"id": "bbb", "n": None, "tags": ["x", "y"]}], json_mode=False)
    assert capsys.readouterr().out == ("id   n   tags\n---  --  ----\na    10  -\nbbb  -   x, y\n")
    assert table([]) == "(none)\n"


def test_one_record_is_key_value_lines_with_nested_records_indented() -> None:
    text = fields({"ok": True, "log": {"index": 3}, "rows": [{"node": "n1", "state": "pending"}]})
    assert text == (
        "ok: yes\nlog:\n  index: 3\nrows:\n  node  state\n  ----  -------\n  n1    pending\n"
    )


def test_cells_stay_on_one_line() -> None:
    assert table([{"message": "two\nlines"}]).splitlines()[2] == "two lines"


def test_a_refusal_names_its_status_detail_and_every_rule() -> None:
    problem = {
        "status": 422,
        "title": "Refused before sending",
        "detail": "nothing was sent",
        "violations": [{"rule": "WF-01", "path": "$.recipients", "message": "no LA"}],
    }
    lines = problem_text(problem).splitlines()
    assert lines[:2] == ["refused (422): Refused before sending", "nothing was sent"]
    assert lines[-1].split() == ["WF-01", "$.recipients", "no", "LA"]
    assert violations_text([]) == "no rule broken\n"
    assert violations_text(problem["violations"]).startswith("1 rule(s) broken:\n")
