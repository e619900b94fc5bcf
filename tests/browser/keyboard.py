"""Drive a console page by keyboard alone, as a caseworker who cannot use a mouse would.

Every helper moves focus with Tab (or the arrow keys inside a radio group or a select) and
acts with the keys a person would press; none clicks. A field that Tab never reaches is a
failure of the page, so each helper fails with the field it could not reach.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "choose",
    "focused",
    "press_button",
    "select_option",
    "tab_to",
    "tick",
    "type_into",
]

# Enough for the longest form (the referral form); a page that needs more is a finding.
TAB_LIMIT = 400


def focused(locator: Any) -> bool:
    """Whether ``locator`` (one element) holds the keyboard focus."""
    return bool(locator.evaluate("element => element === document.activeElement"))


def tab_to(page: Any, locator: Any, *, limit: int = TAB_LIMIT) -> None:
    """Press Tab until ``locator`` has the focus (wrapping round the page at most once)."""
    target = locator.first
    target.wait_for(state="attached")
    if focused(target):
        return
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(target):
            return
    raise AssertionError(f"Tab never reached {locator} on {page.url}")


def type_into(page: Any, locator: Any, text: str, *, clear: bool = True) -> None:
    """Tab to a text field or text area and type ``text`` (replacing what is there)."""
    tab_to(page, locator)
    if clear:
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
    if text:
        page.keyboard.type(text)


def tick(page: Any, locator: Any, *, checked: bool = True) -> None:
    """Tab to a checkbox and press Space until it is ``checked`` (or not)."""
    tab_to(page, locator)
    if locator.first.is_checked() != checked:
        page.keyboard.press("Space")
    assert locator.first.is_checked() == checked, f"Space did not toggle {locator}"


def choose(page: Any, locator: Any, *, limit: int = 40) -> None:
    """Choose one radio button: Tab into its group, then the arrow keys to it.

    Tab stops once per radio group (on the checked radio, or the first), and the arrow
    keys move and check within it, as in every browser.
    """
    target = locator.first
    name = target.get_attribute("name")
    group = page.locator(f'input[type="radio"][name="{name}"]')
    if not any(focused(group.nth(index)) for index in range(group.count())):
        for _ in range(TAB_LIMIT):
            page.keyboard.press("Tab")
            if any(focused(group.nth(index)) for index in range(group.count())):
                break
        else:
            raise AssertionError(f"Tab never reached the radio group {name!r} on {page.url}")
    if focused(target) and not target.is_checked():
        page.keyboard.press("Space")
    for _ in range(limit):
        if focused(target) and target.is_checked():
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"the arrow keys never reached {locator} in {name!r}")


def select_option(page: Any, locator: Any, label: str, *, limit: int = 200) -> None:
    """Tab to a ``<select>`` and press the arrow keys until ``label`` is chosen."""
    tab_to(page, locator)
    target = locator.first

    def current() -> str:
        return str(target.evaluate("el => el.options[el.selectedIndex]?.text.trim() ?? ''"))

    if current() == label:
        return
    page.keyboard.press("Home")
    for _ in range(limit):
        if current() == label:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{label!r} is not an option of {locator}")


def press_button(page: Any, locator: Any) -> None:
    """Tab to a button (or link) and press Enter."""
    tab_to(page, locator)
    page.keyboard.press("Enter")
