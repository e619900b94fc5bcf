"""The keyboard helpers find what a keyboard user cannot reach, and act only by keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM
from tests.browser.keyboard import choose, tick, type_into, unreachable_controls

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
)

FORM = """
<main>
  <label for="a">A</label><input id="a">
  <label for="b">B</label><input id="b" {b}>
  <input type="radio" name="r" id="r1" value="1"><label for="r1">One</label>
  <input type="radio" name="r" id="r2" value="2"><label for="r2">Two</label>
  <input type="checkbox" id="c"><label for="c">C</label>
  <input type="hidden" name="csrf_token" value="x">
  <button id="go">Go</button>
</main>
"""


def test_a_control_taken_out_of_the_tab_order_is_reported(browser: Any) -> None:
    page = browser.new_page()
    try:
        page.set_content(FORM.format(b=""))
        assert unreachable_controls(page) == []
        page.set_content(FORM.format(b='tabindex="-1"'))
        assert unreachable_controls(page) == ["#b"]
    finally:
        page.close()


def test_the_helpers_fill_a_form_with_keys_alone(browser: Any) -> None:
    page = browser.new_page()
    try:
        page.set_content(FORM.format(b=""))
        type_into(page, page.locator("#b"), "typed")
        choose(page, page.locator("#r2"))
        tick(page, page.locator("#c"))
        assert page.locator("#b").input_value() == "typed"
        assert page.locator("#r2").is_checked()
        assert not page.locator("#r1").is_checked()
        assert page.locator("#c").is_checked()
    finally:
        page.close()
