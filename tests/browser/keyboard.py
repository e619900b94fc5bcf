"""Drive a console page by keyboard alone, as a caseworker who cannot use a mouse would.

Every helper moves focus with Tab (or the arrow keys inside a radio group or a select) and
acts with the keys a person would press; none clicks. A field that Tab never reaches is a
failure of the page, so each helper fails with the field it could not reach.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

__all__ = [
    "choose",
    "focused",
    "press_button",
    "select_option",
    "tab_to",
    "tick",
    "type_date",
    "type_datetime",
    "type_into",
    "unreachable_controls",
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


# The orders a browser's date field may show its parts in (its own locale decides, not the
# page's): month/day/year with a 12-hour clock (en-US), day/month/year (en-GB), year first.
_DATE_ORDERS = (("month", "day", "year", True), ("day", "month", "year", False))
_DATE_ORDERS += (("year", "month", "day", False),)


def _reenter(page: Any, target: Any) -> None:
    """Leave a date field backwards (Shift+Tab crosses its parts), then Tab into its first part."""
    for _ in range(12):
        if not focused(target):
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert focused(target), f"Tab did not come back to {target}"


def _type_moment(page: Any, locator: Any, moment: date | datetime, with_time: bool) -> None:
    tab_to(page, locator)
    target = locator.first
    expected = f"{moment:%Y-%m-%dT%H:%M}" if with_time else f"{moment:%Y-%m-%d}"
    language = str(page.evaluate("navigator.language"))
    orders = sorted(_DATE_ORDERS, key=lambda order: order[3] != (language == "en-US"))
    for attempt, (first, second, third, twelve_hour) in enumerate(orders):
        if attempt:
            _reenter(page, target)
        parts = {"year": f"{moment:%Y}", "month": f"{moment:%m}", "day": f"{moment:%d}"}
        for name in (first, second, third):
            page.keyboard.type(parts[name])
            if name == "year":
                # A year part takes up to six digits: Tab moves on to the next part.
                page.keyboard.press("Tab")
        if with_time and isinstance(moment, datetime):
            hour = moment.hour % 12 or 12 if twelve_hour else moment.hour
            page.keyboard.type(f"{hour:02d}{moment:%M}")
            if twelve_hour:
                page.keyboard.type("P" if moment.hour >= 12 else "A")
        if target.input_value() == expected:
            return
    raise AssertionError(f"could not type {expected} into {locator} on {page.url}")


def type_date(page: Any, locator: Any, day: date) -> None:
    """Tab to an ``<input type=date>`` and type the day, part by part, as a person would."""
    _type_moment(page, locator, day, with_time=False)


def type_datetime(page: Any, locator: Any, moment: datetime) -> None:
    """Tab to an ``<input type=datetime-local>`` and type the date and time (to the minute)."""
    _type_moment(page, locator, moment, with_time=True)


# Every control a person fills in or presses on a form, keyed so that a radio group counts
# once (Tab stops once per group; the arrow keys move within it).
_KEY_OF = """
el => el.type === 'radio'
  ? 'radio:' + el.name
  : (el.id ? '#' + el.id : el.name || el.outerHTML.slice(0, 80))
"""
_CONTROL_KEYS = f"""
() => Array.from(
    document.querySelectorAll('main input, main select, main textarea, main button'))
  .filter(el => el.type !== 'hidden' && !el.disabled && el.getClientRects().length > 0)
  .map({_KEY_OF})
"""
_FOCUSED_KEY = f"""
() => {{
  const el = document.activeElement;
  return (!el || el === document.body) ? null : ({_KEY_OF})(el);
}}
"""


def unreachable_controls(page: Any, *, limit: int = 2000) -> list[str]:
    """The form controls in ``<main>`` that Tab never reaches, going once round the page.

    Empty when every field, checkbox, radio group, select and button can be reached by
    keyboard alone (and so filled in with the keys the other helpers press).
    """
    wanted = set(page.evaluate(_CONTROL_KEYS))
    assert wanted, f"no form controls on {page.url}"
    page.locator("body").focus()
    reached: set[str] = set()
    first: str | None = None
    for _ in range(limit):
        page.keyboard.press("Tab")
        key = page.evaluate(_FOCUSED_KEY)
        if key is None:
            continue
        if key == first:
            break
        first = first or key
        reached.add(key)
        if wanted <= reached:
            break
    return sorted(wanted - reached)
