"""Protective markings: read them, write them, check them (REFERENCE.md 1.2-1.9).

Three jobs, all pure (STYLE.md rule 2):

- :func:`parse_marking` reads a marking string as people and partner systems write it
  ("Official-Sensitive", "OFFICIAL SENSTIVE", "PROTECT - PERSONAL", "UK OFFICIAL-SENSITIVE"
  with "REL-EU" on the next line, ...) into a :class:`~hub.model.Marking`, saying what it
  normalised and refusing, rather than guessing, anything it does not understand (MK-01).
- :func:`render_marking` writes the canonical string, which parses back to the same
  marking.
- :func:`check_marking` applies rules MK-02 .. MK-12 to an envelope's structured marking
  and returns every violation.

The vocabulary (tiers, handling instructions, descriptors, legacy GPMS markings) comes
from ``schemas/registry/markings.yaml``; the grammar is the proposal in REFERENCE.md 1.7:
``[UK] tier [- handling] [- descriptor ...] [- codeword] [- caveat ...]``, plus ``REL EU``
and the embargo sentence.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from pydantic import ValidationError

from hub.model import EnvelopeFields, Marking, Violation
from hub.policy.facts import PolicyFacts
from hub.policy.registry import (
    Descriptor,
    HandlingInstruction,
    LegacyMarking,
    MarkingLevel,
    MarkingsRegistry,
    Registry,
)

__all__ = [
    "MAX_MARKING_CHARS",
    "MarkingParse",
    "check_marking",
    "check_marking_rules",
    "marking_level",
    "parse_marking",
    "render_marking",
]

# Longer text is not a marking; refusing it up front keeps parsing cheap on hostile input.
MAX_MARKING_CHARS: Final = 2000

_PATH: Final = "$.marking"
_Tier = Literal["OFFICIAL", "SECRET", "TOP SECRET"]
_TIERS: Final[tuple[_Tier, ...]] = ("OFFICIAL", "SECRET", "TOP SECRET")
_LEVEL_RANK: Final[dict[str, int]] = {
    "OFFICIAL": 0,
    "OFFICIAL-SENSITIVE": 1,
    "SECRET": 2,
    "TOP SECRET": 3,
}
_CARRIED_TIER: Final = "OFFICIAL"
_TIER_OF_LEVEL: Final[dict[str, _Tier]] = {
    "OFFICIAL": "OFFICIAL",
    "SECRET": "SECRET",
    "TOP SECRET": "TOP SECRET",
}
_CAVEAT_TIERS: Final = frozenset({"SECRET", "TOP SECRET"})
# The longest piece of a user's text quoted back in a message or note.
_QUOTE_MAX: Final = 60


@dataclass(frozen=True, slots=True)
class MarkingParse:
    """What :func:`parse_marking` made of a marking string.

    ``marking`` is None when the text was not understood (MK-01) or is a legacy marking
    the hub refuses (MK-13). A marking with only an embargo problem (MK-07) is still
    returned, with the violation. ``notes`` say what was normalised or mapped, for the
    user and the audit log; ``original`` is the text exactly as received, which the
    caller keeps verbatim (REFERENCE.md 1.9).
    """

    marking: Marking | None
    violations: tuple[Violation, ...]
    notes: tuple[str, ...]
    original: str


# --- level ------------------------------------------------------------------------------


def marking_level(marking: Marking) -> MarkingLevel:
    """OFFICIAL, OFFICIAL-SENSITIVE, SECRET or TOP SECRET.

    ``-SENSITIVE`` on a higher tier (itself an MK-02 violation) never lowers the level.
    """
    if marking.tier == _CARRIED_TIER:
        return "OFFICIAL-SENSITIVE" if marking.sensitive else "OFFICIAL"
    return marking.tier


def _rank(level: str) -> int:
    # An unknown accreditation ranks below everything, so it never receives anything.
    return _LEVEL_RANK.get(level, -1)


# --- rendering --------------------------------------------------------------------------


def render_marking(marking: Marking) -> str:
    """The canonical marking string; :func:`parse_marking` reads it back to ``marking``.

    :meth:`Marking.render` plus what it leaves out: ``REL EU`` and the embargo sentence
    (REFERENCE.md 1.7), e.g. ``OFFICIAL - EMBARGOED. This information will remain
    classified until 01/03/2026 at 09:30 UTC, after which the information will be
    OFFICIAL - FOR PUBLIC RELEASE``.
    """
    text = marking.render()
    if marking.rel_eu:
        text += " - REL EU"
    if marking.embargo_until is not None and marking.embargo_then is not None:
        text += (
            f". This information will remain classified until "
            f"{_render_embargo_time(marking.embargo_until)}, "
            f"after which the information will be {marking.embargo_then}"
        )
    return text


def _render_embargo_time(when: datetime) -> str:
    # A time without a zone is read as UTC, as parse_marking reads one (see _read_when).
    try:
        utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # within hours of year 1 or 9999: not a real embargo
        return when.isoformat()
    clock = f"{utc.hour:02d}:{utc.minute:02d}"
    if utc.second:
        clock += f":{utc.second:02d}"
    return f"{utc.day:02d}/{utc.month:02d}/{utc.year:04d} at {clock} UTC"


# --- the vocabulary, from the registry --------------------------------------------------

_PhraseKind = Literal["uk", "tier", "legacy", "handling", "descriptor", "rel_eu"]


@dataclass(frozen=True, slots=True)
class _Phrase:
    kind: _PhraseKind
    tier: _Tier | None = None
    sensitive: bool = False
    legacy: LegacyMarking | None = None
    handling: HandlingInstruction | None = None
    descriptor: Descriptor | None = None


_TOKEN = re.compile(r"[^\s/,]+|[/,]")
# Descriptor spellings seen in the wild besides the registry's exact string.
_DESCRIPTOR_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "LPP": ("LEGAL PROFESSIONAL PRIVILEGE", "LPP", "(LPP)"),
}
_SCHEME_PREFERENCE: Final = {"current": 0, "local": 1, "2014": 2}


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_TOKEN.findall(text.upper()))


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    phrases: dict[tuple[str, ...], _Phrase]
    longest: int
    org_use_suffix: tuple[str, ...]
    descriptor_by_id: dict[str, Descriptor]


def _vocabulary(markings: MarkingsRegistry) -> _Vocabulary:
    phrases: dict[tuple[str, ...], _Phrase] = {("UK",): _Phrase("uk")}
    for tier in _TIERS:
        words = tier.split()
        phrases[tuple(words)] = _Phrase("tier", tier=tier)
        sensitive = (*words[:-1], f"{words[-1]}-SENSITIVE")
        phrases[sensitive] = _Phrase("tier", tier=tier, sensitive=True)
    tier_phrases = set(phrases)
    for legacy in markings.legacy:
        for spelling in (legacy.string, *legacy.aliases):
            key = _tokens(spelling)
            # GPMS SECRET / TOP SECRET read the same as the current tiers: keep those.
            if key and key not in tier_phrases:
                phrases[key] = _Phrase("legacy", legacy=legacy)
    org_use_suffix: tuple[str, ...] = ("USE", "ONLY")
    for handling in markings.handling_instructions:
        if handling.id == "ORG_USE_ONLY":
            org_use_suffix = _tokens(handling.string) or org_use_suffix
        elif key := _tokens(handling.string):
            phrases[key] = _Phrase("handling", handling=handling)
    # Where two descriptors share a spelling (COMMERCIAL, 2014 and current) the current
    # one wins.
    ordered = sorted(markings.descriptors, key=lambda d: -_SCHEME_PREFERENCE[d.scheme])
    for descriptor in ordered:
        for spelling in (descriptor.string, *_DESCRIPTOR_ALIASES.get(descriptor.id, ())):
            if key := _tokens(spelling):
                phrases[key] = _Phrase("descriptor", descriptor=descriptor)
    for spelling in ("REL EU", "REL-EU"):
        phrases[_tokens(spelling)] = _Phrase("rel_eu")
    return _Vocabulary(
        phrases=phrases,
        longest=max(len(key) for key in phrases),
        org_use_suffix=org_use_suffix,
        descriptor_by_id={d.id: d for d in markings.descriptors},
    )


# --- normalisation ----------------------------------------------------------------------

# Hyphen, non-breaking hyphen, figure dash, en dash, em dash, horizontal bar, minus.
_DASHES: Final = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_DASH_TABLE: Final = str.maketrans(dict.fromkeys(_DASHES, "-"))
_JOIN = rf"[\s_\-{_DASHES}]*"
_SENSITIVE_SPELLINGS: Final = (
    "SENSITIVE",
    "SENSTIVE",
    "SENSITVE",
    "SENSATIVE",
    "SENSETIVE",
    "SENSITIV",
)
_TOP_SECRET = re.compile(rf"\bTOP[\s_\-{_DASHES}]+SECRET\b", re.IGNORECASE)
_TIER_SENSITIVE = re.compile(
    rf"\b(?P<tier>OFFICIAL|SECRET|TOP SECRET){_JOIN}(?:{'|'.join(_SENSITIVE_SPELLINGS)})\b",
    re.IGNORECASE,
)
# A separator between parts: a dash with a space on at least one side, a colon, a
# semicolon or a line break. A dash inside a word ("OFFICIAL-SENSITIVE", "REL-EU") is not.
_SEPARATOR = re.compile(r"\s+-+\s*|\s*-+\s+|^-+|-+$|\s*[:;\n]\s*", re.MULTILINE)
_SPACES = re.compile(r"[^\S\n]+")
_LINES = re.compile(r" *\n[\s]*")


def _normalise(text: str, notes: list[str]) -> str:
    """Case, width, dashes and spaces; the spellings of -SENSITIVE and TOP SECRET."""
    text = unicodedata.normalize("NFKC", text)
    # Format characters (zero-width spaces and joiners) vanish; other controls are spaces.
    text = "".join(
        "" if unicodedata.category(ch) == "Cf" else " " if _is_control(ch) else ch for ch in text
    )
    text = _LINES.sub("\n", _SPACES.sub(" ", text)).strip()

    def top_secret(match: re.Match[str]) -> str:
        if match.group(0) != "TOP SECRET":
            notes.append(f"normalised {_quote(match.group(0))} to TOP SECRET")
        return "TOP SECRET"

    def tier_sensitive(match: re.Match[str]) -> str:
        tier = match.group("tier").upper()
        canonical = f"{tier}-SENSITIVE"
        if match.group(0) != canonical:
            notes.append(f"normalised {_quote(match.group(0))} to {canonical}")
        return canonical

    text = _TIER_SENSITIVE.sub(tier_sensitive, _TOP_SECRET.sub(top_secret, text))
    text = unicodedata.normalize("NFKC", text.upper()).translate(_DASH_TABLE)
    return text


def _is_control(ch: str) -> bool:
    return ch != "\n" and unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}


def _quote(text: str) -> str:
    text = text.replace("\n", " / ")
    if len(text) > _QUOTE_MAX:
        text = text[: _QUOTE_MAX - 3] + "..."
    return f"'{text}'"


# --- the embargo sentence ---------------------------------------------------------------

_EMBARGO_START = re.compile(r"\bTHIS INFORMATION WILL REMAIN\b")
_EMBARGO_SENTENCE = re.compile(
    r"THIS INFORMATION WILL REMAIN (?:CLASSIFIED|EMBARGOED|SENSITIVE) UNTIL\b"
    r"(?P<when>.*?)[\s,]+AFTER WHICH (?:THE INFORMATION|IT) WILL BE\b(?P<then>.*)",
    re.DOTALL,
)
_ZONE = r"(?:\s*(?P<zone>UTC|GMT|BST|Z|[+-]\d{2}:?\d{2}))?"
_CLOCK = r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})(?:[:.](?P<second>\d{2}))?(?:\s*(?P<ampm>AM|PM))?"
_WHEN_DMY = re.compile(
    r"\b(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4}|\d{2})\b(?:\s*(?:AT|,))?\s*"
    + _CLOCK
    + _ZONE
    + r"\b"
)
_WHEN_ISO = re.compile(
    r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})(?:T|\s+(?:AT\s+)?)" + _CLOCK + _ZONE
)
_FILLER = frozenset({"", "ON", "AT", "THE", "OF"})


@dataclass(slots=True)
class _Embargo:
    until: datetime | None = None
    then: str | None = None
    problems: list[str] = field(default_factory=list)


def _read_embargo(sentence: str, registry: Registry, notes: list[str], depth: int) -> _Embargo:
    embargo = _Embargo()
    match = _EMBARGO_SENTENCE.fullmatch(sentence)
    if match is None:
        embargo.problems.append(
            "the embargo sentence was not understood; write it as 'This information will "
            "remain classified until DD/MM/YYYY at HH:MM, after which the information will "
            "be <marking>'"
        )
        return embargo
    embargo.until = _read_when(match.group("when"), embargo.problems, notes)
    then_text = _unwrap(match.group("then"))
    if not then_text:
        embargo.problems.append("the embargo sentence does not say what marking applies after it")
        return embargo
    if depth > 0:
        embargo.problems.append("an embargo cannot apply after another embargo")
        return embargo
    after = _parse(then_text, registry, depth + 1)
    notes.extend(f"after the embargo: {note}" for note in after.notes)
    if after.marking is None or after.violations:
        reasons = "; ".join(v.message for v in after.violations)
        embargo.problems.append(
            f"the marking that applies after the embargo ({_quote(then_text)}) is not "
            f"understood: {reasons}"
        )
        return embargo
    rendered = render_marking(after.marking)
    if len(rendered) > 120:
        embargo.problems.append(
            "the marking that applies after the embargo is longer than 120 characters"
        )
        return embargo
    embargo.then = rendered
    return embargo


def _unwrap(text: str) -> str:
    """The post-embargo marking without its full stop and any [brackets] or quotes."""
    text = text.strip().rstrip(".").strip()
    while len(text) >= 2 and (text[0], text[-1]) in {("[", "]"), ('"', '"'), ("'", "'")}:
        text = text[1:-1].strip()
    return text


def _read_when(text: str, problems: list[str], notes: list[str]) -> datetime | None:
    text = text.strip()
    match = _WHEN_DMY.search(text) or _WHEN_ISO.search(text)
    if match is None:
        problems.append(
            f"the embargo time {_quote(text)} was not understood; write it as "
            "DD/MM/YYYY at HH:MM (UTC)"
        )
        return None
    year = int(match.group("year"))
    if len(match.group("year")) == 2:
        year += 2000
    hour = int(match.group("hour"))
    ampm = match.group("ampm")
    if ampm is not None:
        if not 1 <= hour <= 12:
            problems.append(f"the embargo time {_quote(match.group(0))} is not a valid time")
            return None
        hour = hour % 12 + (12 if ampm == "PM" else 0)
    zone = match.group("zone")
    try:
        offset = _zone_offset(zone)
        written = datetime(
            year,
            int(match.group("month")),
            int(match.group("day")),
            hour,
            int(match.group("minute")),
            int(match.group("second") or 0),
            tzinfo=offset,
        )
        until = written.astimezone(UTC)
    except (ValueError, OverflowError):
        problems.append(f"the embargo time {_quote(match.group(0))} is not a valid date and time")
        return None
    if zone is None:
        # UK clock time is UTC or one hour ahead of it, so reading it as UTC never lifts
        # the embargo early.
        notes.append(
            "the embargo time gives no time zone; read as UTC, which is never earlier than "
            "the same clock time in the UK"
        )
    leftover = (text[: match.start()] + " " + text[match.end() :]).split()
    announcement = " ".join(w for w in leftover if w not in _FILLER)
    if announcement:
        notes.append(
            f"the embargo's announcement {_quote(announcement)} is not kept in the "
            "structured marking; only the date and time are"
        )
    return until


def _zone_offset(zone: str | None) -> timezone:
    if zone is None or zone in {"UTC", "GMT", "Z"}:
        return UTC
    if zone == "BST":
        return timezone(timedelta(hours=1))
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


# --- parsing ----------------------------------------------------------------------------

_ItemKind = Literal[
    "uk", "tier", "legacy", "handling", "orgs", "descriptor", "caveat", "rel_eu", "word"
]
_CANONICAL_ORDER: Final[dict[str, int]] = {
    "uk": 0,
    "tier": 1,
    "legacy": 1,
    "handling": 2,
    "orgs": 2,
    "descriptor": 3,
    "word": 4,
    "caveat": 5,
    "rel_eu": 6,
}
_COUNTRY = re.compile(r"[^\W_]+")
_ORG_WORD = re.compile(r"[^\W_][\w&'.()\-]*")
_CODEWORD = re.compile(r"[A-Z]{2,}")
_ORG_NAME_MAX = 80


@dataclass(frozen=True, slots=True)
class _Item:
    kind: _ItemKind
    written: str
    phrase: _Phrase | None = None
    orgs: tuple[str, ...] = ()
    alone: bool = False  # the only thing between two separators (a codeword candidate)


@dataclass(slots=True)
class _Reading:
    items: list[_Item] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # MK-01 messages


def parse_marking(text: str, registry: Registry) -> MarkingParse:
    """Read a marking string; never raises, whatever the text.

    Violations use rule MK-01 (not understood, or not exactly one tier), MK-13 (a GPMS
    marking the hub refuses) and MK-07 (EMBARGOED without a readable embargo sentence),
    all at path ``$.marking``. Combination rules (MK-02 .. MK-09) are for
    :func:`check_marking_rules` on the result.
    """
    return _parse(text, registry, depth=0)


def _parse(text: str, registry: Registry, depth: int) -> MarkingParse:
    notes: list[str] = []
    if len(text) > MAX_MARKING_CHARS:
        return _refused(
            text,
            [
                _violation(
                    "MK-01",
                    _PATH,
                    f"the marking is {len(text)} characters long; a marking is at most "
                    f"{MAX_MARKING_CHARS} characters, e.g. 'OFFICIAL-SENSITIVE - PERSONAL DATA'",
                )
            ],
            notes,
        )
    normalised = _normalise(text, notes)
    if not normalised:
        return _refused(
            text,
            [
                _violation(
                    "MK-01",
                    _PATH,
                    "the marking is empty; give a classification, e.g. "
                    "'OFFICIAL-SENSITIVE - PERSONAL DATA'",
                )
            ],
            notes,
        )

    embargo: _Embargo | None = None
    head = normalised
    start = _EMBARGO_START.search(normalised)
    if start is not None:
        head = normalised[: start.start()].rstrip(" \n.,;:-")
        embargo = _read_embargo(normalised[start.start() :], registry, notes, depth)

    vocabulary = _vocabulary(registry.markings)
    reading = _Reading()
    for segment in _SEPARATOR.split(head):
        _read_segment(_tokens(segment), vocabulary, reading)
    return _assemble(text, reading, embargo, vocabulary, notes)


def _read_segment(tokens: Sequence[str], vocabulary: _Vocabulary, reading: _Reading) -> None:
    """Match the words between two separators against the vocabulary, longest first.

    A part of its own that ends in USE ONLY and does not start with a tier names
    organisations, whatever words they use ("LEGAL SERVICES USE ONLY"); this is how
    :func:`render_marking` writes it. In the 2014 style without separators
    ("OFFICIAL-SENSITIVE HOME OFFICE USE ONLY") the organisations start at the first word
    that means nothing else.
    """
    suffix = vocabulary.org_use_suffix
    _, phrase_length = _longest_phrase(tokens, 0, vocabulary)
    if phrase_length != len(tokens) and not _starts_with_tier(tokens, vocabulary):
        end = _find(tokens, suffix, 0)
        if end is not None and end + len(suffix) == len(tokens):
            _read_organisations(tokens, end, vocabulary, reading)
            return
    # Where each run of "COUNTRY/COUNTRY..." ends, and where USE ONLY occurs, found once
    # so that hostile input costs linear time.
    chain_ends = _country_chain_ends(tokens)
    suffixes = [j for j in range(len(tokens)) if _at(tokens, j, suffix)]
    i = 0
    while i < len(tokens):
        phrase, length = _longest_phrase(tokens, i, vocabulary)
        if phrase is None or phrase.kind == "uk":
            end = _caveat_end(tokens, i, chain_ends)
            if end is not None:
                countries = [t for t in tokens[i : end - 2] if t not in {"/", ","}]
                reading.items.append(_Item("caveat", "/".join(countries) + " EYES ONLY"))
                i = end
                continue
        if phrase is not None:
            written = " ".join(tokens[i : i + length])
            reading.items.append(_Item(phrase.kind, written, phrase=phrase))
            i += length
            continue
        later = bisect.bisect_left(suffixes, i)
        if later < len(suffixes):
            end = suffixes[later]
            _read_organisations(tokens[i:], end - i, vocabulary, reading)
            i = end + len(suffix)
            continue
        reading.items.append(_Item("word", tokens[i], alone=len(tokens) == 1))
        i += 1


def _starts_with_tier(tokens: Sequence[str], vocabulary: _Vocabulary) -> bool:
    phrase, length = _longest_phrase(tokens, 0, vocabulary)
    if phrase is not None and phrase.kind == "uk":
        phrase, _ = _longest_phrase(tokens, length, vocabulary)
    return phrase is not None and phrase.kind in {"tier", "legacy"}


def _read_organisations(
    tokens: Sequence[str], end: int, vocabulary: _Vocabulary, reading: _Reading
) -> None:
    """``NAME [/ NAME ...] USE ONLY``, names separated by '/' or ','; USE ONLY at ``end``."""
    suffix = vocabulary.org_use_suffix
    written = " ".join(tokens[: end + len(suffix)])
    names: list[str] = []
    current: list[str] = []
    for token in (*tokens[:end], "/"):
        if token in {"/", ","}:
            if current:
                names.append(" ".join(current))
            current = []
        else:
            current.append(token)
    if not names:
        reading.problems.append(
            "'USE ONLY' needs the organisation(s) before it, e.g. 'HOME OFFICE USE ONLY'"
        )
    # Written as the canonical form would write it, the list may be a fixed phrase.
    canonical = _tokens(" / ".join(names)) + suffix
    phrase = vocabulary.phrases.get(canonical)
    if names and phrase is not None:
        reading.items.append(_Item(phrase.kind, written, phrase=phrase))
        return
    for index, name in enumerate(names):
        words = name.split()
        readable = len(name) <= _ORG_NAME_MAX and all(_ORG_WORD.fullmatch(w) for w in words)
        # The first name must not read as something else when written in canonical form.
        if index == 0 and readable:
            readable = not _starts_with_tier(words, vocabulary) and (
                words[0] not in _SENSITIVE_SPELLINGS
            )
        if not readable:
            reading.problems.append(
                f"{_quote(name)} is not an organisation name the hub can carry (words of "
                "letters, digits and & ' . ( ) -, not starting with a classification, at "
                f"most {_ORG_NAME_MAX} characters)"
            )
    reading.items.append(_Item("orgs", written, orgs=tuple(names)))


def _longest_phrase(
    tokens: Sequence[str], start: int, vocabulary: _Vocabulary
) -> tuple[_Phrase | None, int]:
    for length in range(min(vocabulary.longest, len(tokens) - start), 0, -1):
        phrase = vocabulary.phrases.get(tuple(tokens[start : start + length]))
        if phrase is not None:
            return phrase, length
    return None, 0


def _country_chain_ends(tokens: Sequence[str]) -> list[int]:
    """For each index, the index after the ``COUNTRY[/COUNTRY...]`` run starting there."""
    ends = list(range(len(tokens) + 2))
    for i in range(len(tokens) - 1, -1, -1):
        if not _COUNTRY.fullmatch(tokens[i]):
            ends[i] = i
        elif (
            i + 2 < len(tokens)
            and tokens[i + 1] in {"/", ","}
            and _COUNTRY.fullmatch(tokens[i + 2])
        ):
            ends[i] = ends[i + 2]
        else:
            ends[i] = i + 1
    return ends


def _caveat_end(tokens: Sequence[str], start: int, chain_ends: Sequence[int]) -> int | None:
    """``COUNTRY[/COUNTRY...] EYES ONLY`` from ``start``: the index after it, or None."""
    end = chain_ends[start]
    if end > start and _at(tokens, end, ("EYES", "ONLY")):
        return end + 2
    return None


def _at(tokens: Sequence[str], index: int, needle: tuple[str, ...]) -> bool:
    return tuple(tokens[index : index + len(needle)]) == needle


def _find(tokens: Sequence[str], needle: tuple[str, ...], start: int) -> int | None:
    for i in range(start, len(tokens) - len(needle) + 1):
        if tuple(tokens[i : i + len(needle)]) == needle:
            return i
    return None


def _assemble(
    text: str,
    reading: _Reading,
    embargo: _Embargo | None,
    vocabulary: _Vocabulary,
    notes: list[str],
) -> MarkingParse:
    problems = list(reading.problems)
    refusals: list[Violation] = []
    items = reading.items
    tiers = [item for item in items if item.kind in {"tier", "legacy"}]
    if not tiers:
        problems.append(
            "no classification tier was found; a marking starts with OFFICIAL, "
            "OFFICIAL-SENSITIVE, SECRET or TOP SECRET"
        )
    elif len(tiers) > 1:
        problems.append(
            "a marking has exactly one classification tier; this one has "
            + " and ".join(_quote(t.written) for t in tiers)
        )
    leading = items[1:] if items and items[0].kind == "uk" else items
    if tiers and leading and leading[0] is not tiers[0]:
        problems.append(
            f"a marking starts with its classification tier; {_quote(leading[0].written)} "
            "comes before it"
        )
    if any(item.kind == "uk" for item in leading):
        problems.append("the UK prefix goes only immediately before the classification tier")

    tier: _Tier = "OFFICIAL"
    sensitive = False
    phrase = tiers[0].phrase if len(tiers) == 1 else None
    if phrase is not None:
        if phrase.legacy is not None:
            mapped = _map_legacy(phrase.legacy, text, refusals, notes)
            if mapped is not None:
                tier, sensitive = mapped
        elif phrase.tier is not None:
            tier, sensitive = phrase.tier, phrase.sensitive

    handling_items = [item for item in items if item.kind in {"handling", "orgs"}]
    distinct_handling = list(dict.fromkeys(item.written for item in handling_items))
    if len(distinct_handling) > 1:
        problems.append(
            "a marking has at most one handling instruction; this one has "
            + " and ".join(_quote(h) for h in distinct_handling)
        )
    elif len(handling_items) > 1:
        notes.append(f"dropped the repeated handling instruction {_quote(distinct_handling[0])}")

    descriptors: list[str] = []
    for item in items:
        if item.kind != "descriptor" or item.phrase is None or item.phrase.descriptor is None:
            continue
        descriptor_id = _current_descriptor(item.phrase.descriptor, vocabulary, notes)
        if descriptor_id in descriptors:
            notes.append(f"dropped the repeated descriptor {_quote(item.written)}")
        else:
            descriptors.append(descriptor_id)

    unknown: list[str] = []
    for item in items:
        if item.kind != "word":
            continue
        if item.alone and tier in _CAVEAT_TIERS and _CODEWORD.fullmatch(item.written):
            notes.append(
                f"codeword {item.written} noted but not kept; codewords belong to "
                "SECRET and TOP SECRET material, which the hub does not carry"
            )
        else:
            unknown.append(item.written)
    if unknown:
        problems.append(
            "not understood: "
            + ", ".join(_quote(w) for w in dict.fromkeys(unknown))
            + "; a marking may hold only the tier, a handling instruction, descriptors, "
            "national caveats and REL EU from the hub's registry"
        )

    ranks = [_CANONICAL_ORDER[item.kind] for item in items]
    if ranks != sorted(ranks):
        notes.append(
            "put the parts in the canonical order (tier, handling instruction, "
            "descriptors, national caveats)"
        )

    embargo_problems: list[str] = []
    handling_item = handling_items[0] if handling_items else None
    is_embargoed = (
        handling_item is not None
        and handling_item.phrase is not None
        and handling_item.phrase.handling is not None
        and handling_item.phrase.handling.id == "EMBARGOED"
    )
    if embargo is not None:
        embargo_problems.extend(embargo.problems)
        if not is_embargoed:
            embargo_problems.append(
                "the embargo sentence needs the EMBARGOED handling instruction in the marking"
            )
    elif is_embargoed:
        embargo_problems.append(
            "EMBARGOED needs the sentence 'This information will remain classified until "
            "DD/MM/YYYY at HH:MM, after which the information will be <marking>'"
        )

    violations = [_violation("MK-01", _PATH, p) for p in problems] + refusals
    marking: Marking | None = None
    if not violations:
        try:
            marking = Marking(
                tier=tier,
                sensitive=sensitive,
                uk_prefix=bool(items) and items[0].kind == "uk",
                handling=_handling_id(handling_item),
                handling_orgs=handling_item.orgs if handling_item is not None else (),
                descriptors=tuple(descriptors),
                national_caveats=tuple(item.written for item in items if item.kind == "caveat"),
                rel_eu=any(item.kind == "rel_eu" for item in items),
                embargo_until=embargo.until if embargo is not None else None,
                embargo_then=embargo.then if embargo is not None else None,
            )
        except ValidationError as exc:
            reasons = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
            violations.append(
                _violation("MK-01", _PATH, f"the marking could not be read: {reasons}")
            )
    violations.extend(_violation("MK-07", _PATH, p) for p in embargo_problems)
    return MarkingParse(
        marking=marking,
        violations=tuple(violations),
        notes=tuple(dict.fromkeys(notes)),
        original=text,
    )


def _handling_id(
    item: _Item | None,
) -> (
    Literal["RECIPIENTS_ONLY", "FOR_PUBLIC_RELEASE", "ORG_USE_ONLY", "HMG_USE_ONLY", "EMBARGOED"]
    | None
):
    if item is None:
        return None
    if item.kind == "orgs":
        return "ORG_USE_ONLY"
    if item.phrase is None or item.phrase.handling is None:  # pragma: no cover - by design
        raise ValueError("a handling item always carries its handling instruction")
    return item.phrase.handling.id


def _map_legacy(
    legacy: LegacyMarking, text: str, refusals: list[Violation], notes: list[str]
) -> tuple[_Tier, bool] | None:
    if legacy.treatment == "reject" or legacy.maps_to is None:
        refusals.append(
            _violation(
                "MK-13",
                _PATH,
                f"{legacy.string} is a pre-2014 (GPMS) marking the hub does not carry; ask "
                "its creator to reclassify it under the current scheme (usually "
                "OFFICIAL-SENSITIVE) and send it again",
            )
        )
        return None
    notes.append(
        f"legacy {legacy.string} mapped to {legacy.maps_to} for routing; "
        f"original kept: {_quote(text.strip())}"
    )
    if legacy.maps_to == "OFFICIAL-SENSITIVE":
        return "OFFICIAL", True
    return _TIER_OF_LEVEL[legacy.maps_to], False


def _current_descriptor(descriptor: Descriptor, vocabulary: _Vocabulary, notes: list[str]) -> str:
    if descriptor.scheme == "2014" and descriptor.current_equivalent is not None:
        current = vocabulary.descriptor_by_id.get(descriptor.current_equivalent)
        if current is not None and current.id != descriptor.id:
            if current.string != descriptor.string:
                notes.append(f"read the 2014 descriptor {descriptor.string} as {current.string}")
            return current.id
    if descriptor.flag_for_review:
        notes.append(
            f"{descriptor.string} is a local descriptor with no current central "
            "equivalent; kept, and flagged for information governance review"
        )
    return descriptor.id


def _refused(text: str, violations: list[Violation], notes: list[str]) -> MarkingParse:
    return MarkingParse(
        marking=None, violations=tuple(violations), notes=tuple(notes), original=text
    )


def _violation(rule: str, path: str, message: str) -> Violation:
    return Violation(rule=rule, path=path, message=message)


# --- checking ---------------------------------------------------------------------------


def check_marking_rules(
    marking: Marking, registry: Registry, *, path: str = _PATH
) -> list[Violation]:
    """The rules about a marking on its own: MK-02 .. MK-09, every violation."""
    violations: list[Violation] = []
    level = marking_level(marking)
    markings = registry.markings

    if marking.sensitive and marking.tier != _CARRIED_TIER:
        violations.append(
            _violation(
                "MK-02",
                f"{path}.sensitive",
                f"-SENSITIVE attaches only to OFFICIAL; mark this {marking.tier} without it",
            )
        )

    if marking.handling is not None:
        handling = next(
            (h for h in markings.handling_instructions if h.id == marking.handling), None
        )
        shown = _handling_string(marking, handling)
        if handling is None:
            violations.append(
                _violation(
                    "MK-05",
                    f"{path}.handling",
                    f"the handling instruction {shown} is not in the hub's registry",
                )
            )
        elif level not in handling.allowed_with:
            rule = {"FOR_PUBLIC_RELEASE": "MK-03", "RECIPIENTS_ONLY": "MK-04"}.get(
                handling.id, "MK-05"
            )
            violations.append(
                _violation(
                    rule,
                    f"{path}.handling",
                    f"{shown} is not used with {level}; it goes only with "
                    f"{_levels(handling.allowed_with)}. Remove it or change the classification",
                )
            )

    descriptors = {d.id: d for d in markings.descriptors}
    for index, descriptor_id in enumerate(marking.descriptors):
        descriptor = descriptors.get(descriptor_id)
        where = f"{path}.descriptors[{index}]"
        if descriptor is None:
            violations.append(
                _violation(
                    "MK-05",
                    where,
                    f"{descriptor_id} is not a descriptor in the hub's registry; use one of "
                    + ", ".join(d.id for d in markings.descriptors if d.scheme != "2014"),
                )
            )
        elif descriptor.scheme == "2014" and descriptor.current_equivalent is not None:
            violations.append(
                _violation(
                    "MK-05",
                    where,
                    f"{descriptor_id} is a 2014 descriptor; use its current equivalent "
                    f"{descriptor.current_equivalent}",
                )
            )
        elif level not in descriptor.allowed_with:
            violations.append(
                _violation(
                    "MK-05",
                    where,
                    f"the descriptor {descriptor.string} is not used with {level}; it goes "
                    f"only with {_levels(descriptor.allowed_with)}. Remove it or change the "
                    "classification",
                )
            )

    caveats = marking.national_caveats
    if caveats and marking.tier not in _CAVEAT_TIERS:
        violations.append(
            _violation(
                "MK-06",
                f"{path}.national_caveats",
                "national caveats may only be applied to SECRET and TOP SECRET; remove "
                + ", ".join(caveats),
            )
        )
    if list(caveats) != sorted(caveats):
        violations.append(
            _violation(
                "MK-06",
                f"{path}.national_caveats",
                "several national caveats are written in alphabetical order: "
                + " - ".join(sorted(caveats)),
            )
        )

    violations.extend(_embargo_violations(marking, registry, path))

    if marking.rel_eu and not marking.uk_prefix:
        violations.append(
            _violation(
                "MK-08",
                f"{path}.rel_eu",
                "REL EU needs the UK prefix, e.g. 'UK OFFICIAL-SENSITIVE' with 'REL EU'",
            )
        )

    if marking.tier != _CARRIED_TIER:
        violations.append(
            _violation(
                "MK-09",
                f"{path}.tier",
                f"{marking.tier} material needs dedicated accredited networks; the hub "
                "carries only OFFICIAL and OFFICIAL-SENSITIVE. Send it by an approved "
                "route for its tier. Nothing was stored.",
            )
        )
    if caveats:
        violations.append(
            _violation(
                "MK-09",
                f"{path}.national_caveats",
                "the hub carries nothing with a national caveat (caveats belong to SECRET "
                "and TOP SECRET material). Nothing was stored.",
            )
        )
    return violations


def _embargo_violations(marking: Marking, registry: Registry, path: str) -> list[Violation]:
    violations: list[Violation] = []
    if marking.handling == "EMBARGOED":
        if marking.embargo_until is None:
            violations.append(
                _violation(
                    "MK-07",
                    f"{path}.embargo_until",
                    "EMBARGOED needs the date and time the embargo lifts (embargo_until)",
                )
            )
        if marking.embargo_then is None:
            violations.append(
                _violation(
                    "MK-07",
                    f"{path}.embargo_then",
                    "EMBARGOED needs the marking that applies after the embargo "
                    "(embargo_then), e.g. 'OFFICIAL - FOR PUBLIC RELEASE'",
                )
            )
    elif marking.embargo_until is not None or marking.embargo_then is not None:
        violations.append(
            _violation(
                "MK-07",
                f"{path}.handling",
                "an embargo time or post-embargo marking is given but the handling "
                "instruction is not EMBARGOED; add EMBARGOED or remove the embargo details",
            )
        )
    if marking.embargo_until is not None and marking.embargo_until.tzinfo is None:
        violations.append(
            _violation(
                "MK-07",
                f"{path}.embargo_until",
                "the embargo time needs a time zone; give it in UTC (ending in Z)",
            )
        )
    if marking.embargo_then is not None:
        after = parse_marking(marking.embargo_then, registry)
        problems = [v.message for v in after.violations]
        if after.marking is not None and after.marking.handling == "EMBARGOED":
            problems.append("an embargo cannot apply after another embargo")
        if problems:
            violations.append(
                _violation(
                    "MK-07",
                    f"{path}.embargo_then",
                    f"the marking after the embargo ({_quote(marking.embargo_then)}) is not "
                    f"understood: {'; '.join(problems)}",
                )
            )
    return violations


def check_marking(
    fields: EnvelopeFields, facts: PolicyFacts, registry: Registry
) -> list[Violation]:
    """Every marking rule for an envelope: MK-02 .. MK-12.

    MK-11 (recipient accreditation) is judged only for tiers the hub carries: for
    SECRET and TOP SECRET, MK-09 already refuses the message and every recipient would
    repeat it.
    """
    marking = fields.marking
    violations = check_marking_rules(marking, registry)
    level = marking_level(marking)

    minimum = registry.markings.minimum_level_by_kind.get(fields.kind)
    if minimum is not None and _rank(level) < _rank(minimum):
        violations.append(
            _violation(
                "MK-10",
                f"{_PATH}.sensitive",
                f"a {fields.kind.replace('_', ' ')} must be marked at least {minimum}; "
                f"it is marked {level}. Mark it {minimum}"
                + (
                    ", e.g. 'OFFICIAL-SENSITIVE - PERSONAL DATA'"
                    if minimum == "OFFICIAL-SENSITIVE"
                    else ""
                ),
            )
        )

    if marking.tier == _CARRIED_TIER:
        for index, node in enumerate(fields.recipients):
            party = facts.recipients.get(node)
            if party is not None and _rank(party.accreditation) < _rank(level):
                violations.append(
                    _violation(
                        "MK-11",
                        f"$.recipients[{index}]",
                        f"{node} is accredited for {party.accreditation or 'nothing'} only "
                        f"and cannot receive {level} material; remove it from the recipients",
                    )
                )

    if facts.answers is not None:
        answered = marking_level(facts.answers.marking)
        originator = facts.answers_sender is not None and (
            facts.answers_sender == facts.sender.node_id
        )
        if _rank(level) < _rank(answered) and not originator:
            violations.append(
                _violation(
                    "MK-12",
                    f"{_PATH}.sensitive" if marking.tier == _CARRIED_TIER else f"{_PATH}.tier",
                    f"this reply is marked {level} but answers a message marked {answered}; "
                    "only the creator of that marking may lower it (HR-01). Mark the reply "
                    f"{answered}",
                )
            )
    return violations


def _handling_string(marking: Marking, handling: HandlingInstruction | None) -> str:
    if marking.handling == "ORG_USE_ONLY":
        suffix = handling.string if handling is not None else "USE ONLY"
        return f"{' / '.join(marking.handling_orgs)} {suffix}"
    if handling is not None:
        return handling.string
    return str(marking.handling).replace("_", " ")


def _levels(levels: Iterable[str]) -> str:
    return ", ".join(levels)
