"""A Channel case pack as a PDF that a panel member can take into the meeting.

The node console shows a case pack on screen; a panel member also needs it on paper or on
a meeting laptop. :func:`render_case_pack_pdf` turns a decrypted ``CasePackPayload`` into
the bytes of a PDF, with no I/O and no clock (the caller passes ``generated_at``), so the
console and the email bridge (issue 11) get the same document and tests can compare bytes.

What every page carries, and why:

- the envelope's protective marking, in capitals, in a bar at the top and again at the
  bottom. REFERENCE.md 1.7 gives the marking strings (all capitals, parts joined by
  " - "); putting them at the top and bottom of every page is the house rule for issue 9,
  following GSCP practice for documents [UNCONFIRMED: REFERENCE.md does not state the
  placement]. A pack is marked at its highest section (MK-10,
  ``CasePackPayload.needs_sensitive_marking``), so an envelope marking lower than a
  section's is refused rather than printed.
- who it was prepared for ("Prepared for <name>, <organisation>"), the case reference and
  "Page N of M", so a stray page says whose copy it was.

The cover page gives the case reference, the meeting date, who prepared the pack, when
the reader's access ends and the handling instructions (see ``_handling_instructions``
for which come from the sources and which are local policy). Each section then follows
with its own marking, its text and its structured parts as tables.

Free text is escaped before it reaches reportlab's paragraph mini-markup, so a ``<`` or
``&`` in a section is printed, never read as markup. Characters outside the WinAnsi set of
the built-in Helvetica (e.g. "Ś", "ő", CJK) print as a black square; names in that range
need an embedded font (not done yet).

Output is deterministic: reportlab's invariant mode fixes the timestamps and document id
it would otherwise take from the clock and randomness, so equal inputs give equal bytes.
The PDF's metadata holds the marking, the words "Channel case pack" and the case
reference only: no names, which a file listing or a mail client would show.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from xml.sax.saxutils import escape

from pydantic import TypeAdapter, ValidationError
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from hub.model import CasePackPayload, CasePackSection, OpaqueRef
from hub.model.payloads import (
    VAF_FACTORS,
    AssessedFactor,
    CasePackSectionKind,
    DimensionAssessment,
    DocumentMarking,
    PartnerReturn,
    Professional,
    ProposedSupportPlan,
    SupportType,
    VulnerabilityAssessment,
)

__all__ = ["SECTION_KIND_LABELS", "CasePackRenderError", "render_case_pack_pdf"]


class CasePackRenderError(ValueError):
    """The inputs cannot make a correct pack; nothing was rendered."""


# Plain-English names for the section kinds (REFERENCE.md 4.4).
SECTION_KIND_LABELS: Final[Mapping[CasePackSectionKind, str]] = {
    "REFERRAL_SUMMARY": "Referral summary",
    "TRIAGE_SUMMARY": "Police triage summary and risk assessment",
    "PARTNER_RETURN": "Partner information return",
    "VULNERABILITY_ASSESSMENT": "Vulnerability assessment",
    "OTHER_VULNERABILITIES_AND_SUPPORT": "Other vulnerabilities and existing support",
    "PROPOSED_SUPPORT_PLAN": "Proposed support plan",
    "CONSENT_AND_CAPACITY": "Consent and capacity",
    "REVIEW_HISTORY": "Review history",
}

_SUPPORT_TYPE_LABELS: Final[Mapping[SupportType, str]] = {
    "IDEOLOGICAL_MENTORING": "Ideological mentoring",
    "LIFE_SKILLS_MENTORING": "Life skills mentoring",
    "EDUCATION_OR_TRAINING": "Education or training",
    "EMPLOYMENT": "Employment",
    "HEALTH": "Health",
    "MENTAL_HEALTH": "Mental health",
    "HOUSING": "Housing",
    "SUBSTANCE_MISUSE": "Substance misuse",
    "FAMILY_SUPPORT": "Family support",
    "DIVERSIONARY_ACTIVITY": "Diversionary activity",
    "OTHER": "Other",
}

_FRAMEWORK_LABELS: Final = {
    "VAF": "Vulnerability Assessment Framework (VAF)",
    "PAF": "Prevent Assessment Framework (PAF)",
    "OTHER": "Other framework",
}

_MARKING: Final = TypeAdapter(DocumentMarking)
_REF: Final = TypeAdapter(OpaqueRef)
_READER_TEXT_MAX: Final = 200
# C0 controls other than tab and newline, DEL and C1 controls: reportlab cannot show them.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_PARAGRAPH_BREAK: Final = re.compile(r"\n[ \t]*\n\s*")
_PIECE_CHARS: Final = 3000

# Page geometry (A4, points). The marking bars and the reader line grow to fit their text.
_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN: Final = 18 * mm
_TEXT_WIDTH: Final = _PAGE_WIDTH - 2 * _MARGIN
_BAR_FONT: Final = "Helvetica-Bold"
_BAR_SIZE: Final = 11.0
_BAR_LEADING: Final = 13.0
_BAR_PADDING: Final = 7.0
_FOOTER_FONT: Final = "Helvetica"
_FOOTER_SIZE: Final = 8.5
_FOOTER_LEADING: Final = 10.5
_PAGE_NUMBER_WIDTH: Final = 62 * mm
_GAP: Final = 6 * mm

_BLACK: Final = colors.black
_RULE_GREY: Final = colors.HexColor("#b1b4b6")  # GOV.UK border colour
_PANEL_GREY: Final = colors.HexColor("#f3f2f1")  # GOV.UK light grey


def _style(name: str, **overrides: Any) -> ParagraphStyle:
    base: dict[str, Any] = {
        "fontName": "Helvetica",
        "fontSize": 10.5,
        "leading": 14,
        "textColor": _BLACK,
        "spaceAfter": 6,
    }
    base.update(overrides)
    return ParagraphStyle(name, **base)


_BODY: Final = _style("body")
_TITLE: Final = _style("title", fontName="Helvetica-Bold", fontSize=24, leading=30, spaceAfter=4)
_CAPTION: Final = _style("caption", fontSize=13, leading=17, textColor=colors.HexColor("#505a5f"))
# Space before a section heading rather than after a section: a trailing spacer that
# does not fit would start a blank last page (space before is dropped at a page top).
_H2: Final = _style("h2", fontName="Helvetica-Bold", fontSize=17, leading=22, spaceBefore=26)
# A sub-heading never ends a page alone: it goes over with what follows it.
_H3: Final = _style(
    "h3", fontName="Helvetica-Bold", fontSize=12.5, leading=16, spaceBefore=8, keepWithNext=1
)
_KIND: Final = _style("kind", fontSize=11, leading=14, textColor=colors.HexColor("#505a5f"))
_SECTION_MARKING: Final = _style("section-marking", fontName="Helvetica-Bold", spaceAfter=0)
_CELL: Final = _style("cell", fontSize=9.5, leading=12.5, spaceAfter=0)
_CELL_BOLD: Final = _style("cell-bold", fontName="Helvetica-Bold", fontSize=9.5, leading=12.5)
_BULLET: Final = _style("bullet", leftIndent=12, bulletIndent=0)
_NOTICE: Final = _style("notice", fontName="Helvetica-Bold", fontSize=12, leading=16)


@dataclass(frozen=True, slots=True)
class _PageFurniture:
    """What every page carries: the marking bars and the reader line, laid out once."""

    marking_lines: tuple[str, ...]
    reader_lines: tuple[str, ...]
    case_ref: str

    @classmethod
    def laid_out(cls, marking: str, reader_line: str, case_ref: str) -> _PageFurniture:
        return cls(
            marking_lines=tuple(
                simpleSplit(marking, _BAR_FONT, _BAR_SIZE, _TEXT_WIDTH - 2 * _BAR_PADDING)
            ),
            reader_lines=tuple(
                simpleSplit(
                    reader_line, _FOOTER_FONT, _FOOTER_SIZE, _TEXT_WIDTH - _PAGE_NUMBER_WIDTH
                )
            ),
            case_ref=case_ref,
        )

    @property
    def bar_height(self) -> float:
        return len(self.marking_lines) * _BAR_LEADING + 2 * _BAR_PADDING - 2

    @property
    def frame_top(self) -> float:
        return _PAGE_HEIGHT - _MARGIN - self.bar_height - _GAP

    @property
    def frame_bottom(self) -> float:
        footer = len(self.reader_lines) * _FOOTER_LEADING + 3
        return _MARGIN + self.bar_height + footer + _GAP


def render_case_pack_pdf(
    pack: CasePackPayload,
    *,
    marking: str,
    reader_name: str,
    reader_organisation: str,
    case_ref: str,
    message_id: str,
    access_expires_at: datetime,
    generated_at: datetime,
) -> bytes:
    """The case pack as a PDF for ``reader_name``; equal inputs give equal bytes.

    ``marking`` is the envelope's marking as text (``hub.policy.marking.render_marking``).
    Raises :class:`CasePackRenderError` if an input cannot make a correct pack.
    """
    shown_marking = _checked_marking(pack, marking)
    reader = _checked_reader_text(reader_name, "reader_name")
    organisation = _checked_reader_text(reader_organisation, "reader_organisation")
    ref = _checked_ref(case_ref, "case_ref")
    message = _checked_ref(message_id, "message_id")
    expires = _checked_utc(access_expires_at, "access_expires_at")
    generated = _checked_utc(generated_at, "generated_at")

    furniture = _PageFurniture.laid_out(
        shown_marking, f"Prepared for {reader}, {organisation}", ref
    )
    story: list[Flowable] = [
        *_cover(pack, shown_marking, reader, organisation, ref, message, expires, generated),
        PageBreak(),
    ]
    for number, section in enumerate(pack.sections, start=1):
        story.extend(_section(number, len(pack.sections), section))

    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_PAGE_HEIGHT - furniture.frame_top,
        bottomMargin=furniture.frame_bottom,
        # Fixed timestamps and document id: the same inputs give the same bytes.
        invariant=1,
        title=f"{shown_marking} Channel case pack",
        subject=f"Case {ref}",
        author="",
        creator="Safeguarding Exchange Hub node",
        keywords=[],
    )
    frame = Frame(
        _MARGIN,
        furniture.frame_bottom,
        _TEXT_WIDTH,
        furniture.frame_top - furniture.frame_bottom,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    doc.addPageTemplates([PageTemplate(id="pack", frames=[frame])])

    def canvas_maker(*args: Any, **kwargs: Any) -> Canvas:
        return _FurnishedCanvas(furniture, *args, **kwargs)

    doc.build(story, canvasmaker=canvas_maker)
    return out.getvalue()


# --- Input checks ---------------------------------------------------------------------


def _checked_marking(pack: CasePackPayload, marking: str) -> str:
    try:
        valid = _MARKING.validate_python(marking)
    except ValidationError:
        # MK-09: the hub carries OFFICIAL and OFFICIAL-SENSITIVE only.
        raise CasePackRenderError(
            "marking must be an OFFICIAL or OFFICIAL-SENSITIVE marking as text, e.g. "
            "'OFFICIAL-SENSITIVE - PERSONAL DATA' (REFERENCE.md 1.7, MK-09)"
        ) from None
    if _CONTROL.search(valid) or "\t" in valid:
        raise CasePackRenderError("marking must be one line of printable text")
    # The marking strings are capitals (REFERENCE.md 1.4, 1.5, 1.7); organisation names in
    # "... USE ONLY" are shown in capitals too.
    shown = valid.upper()
    sensitive = shown.removeprefix("UK ").startswith("OFFICIAL-SENSITIVE")
    if pack.needs_sensitive_marking() and not sensitive:
        # MK-10: a pack is marked at its highest section; printing it lower would
        # under-protect the OFFICIAL-SENSITIVE sections.
        raise CasePackRenderError(
            "the pack has OFFICIAL-SENSITIVE sections, so its marking must be "
            "OFFICIAL-SENSITIVE (MK-10: a pack is marked at its highest section)"
        )
    return shown


def _checked_reader_text(value: str, field: str) -> str:
    text = value.strip()
    if not text or len(text) > _READER_TEXT_MAX:
        raise CasePackRenderError(f"{field} must be 1 to {_READER_TEXT_MAX} characters")
    if _CONTROL.search(text) or "\n" in text or "\t" in text:
        raise CasePackRenderError(f"{field} must be one line of printable text")
    return text


def _checked_ref(value: str, field: str) -> str:
    try:
        return _REF.validate_python(value)
    except ValidationError:
        raise CasePackRenderError(
            f"{field} must be a reference of 3 to 80 letters, digits and ._:- "
            "starting with a letter or digit"
        ) from None


def _checked_utc(value: datetime, field: str) -> datetime:
    offset = value.utcoffset()
    if offset is None:
        raise CasePackRenderError(f"{field} must carry a time zone (UTC is shown)")
    return value.astimezone(UTC)


# --- Text -------------------------------------------------------------------------------


def _safe(text: str) -> str:
    """Free text as reportlab paragraph markup: escaped, with line breaks kept."""
    cleaned = _CONTROL.sub(" ", text).replace("\t", "    ")
    return escape(cleaned).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br/>")


def _paragraphs(text: str, style: ParagraphStyle = _BODY) -> list[Flowable]:
    """Free text as paragraphs: a blank line starts a new one; each may span pages.

    reportlab splits a paragraph across pages in time that grows with the square of its
    length (a 300,000-character paragraph took 19 s), so a long one is cut at spaces into
    pieces of about ``_PIECE_CHARS`` set with no gap between them: it reads as one
    paragraph with a short line where two pieces meet, and a whole section of the largest
    size a payload allows renders in seconds.
    """
    joined = ParagraphStyle(f"{style.name}-joined", parent=style, spaceAfter=0)
    flowables: list[Flowable] = []
    for chunk in _PARAGRAPH_BREAK.split(text.strip()):
        if not chunk.strip():
            continue
        pieces = _pieces(chunk)
        flowables.extend(
            Paragraph(_safe(piece), style if last else joined)
            for piece, last in zip(pieces, _last_flags(len(pieces)), strict=True)
        )
    return flowables


def _pieces(paragraph: str) -> list[str]:
    pieces: list[str] = []
    rest = paragraph.strip()
    while len(rest) > _PIECE_CHARS:
        cut = max(rest.rfind(" ", 0, _PIECE_CHARS), rest.rfind("\n", 0, _PIECE_CHARS))
        if cut <= 0:
            cut = _PIECE_CHARS  # no space to cut at: cut inside the word
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip()
    pieces.append(rest)
    return pieces


def _last_flags(count: int) -> list[bool]:
    return [index == count - 1 for index in range(count)]


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"  # GOV.UK style: 14 March 2026


def _moment(value: datetime) -> str:
    return f"{_day(value)}, {value:%H:%M} UTC"


def _person(person: Professional) -> str:
    return f"{person.name}, {person.role}, {person.organisation}"


# --- Cover --------------------------------------------------------------------------------


def _handling_instructions(marking: str) -> list[str]:
    """What a reader must do with the pack, each with where the rule comes from."""
    lines = [
        # GSCP Principle Three [SRC:S1] (REFERENCE.md 1.2).
        "Everyone who handles this pack owes a duty of confidentiality, whatever its "
        "marking. Share it only with people at this panel meeting who need to know.",
        # The sources do not say this for case packs: it is local policy.
        "Do not copy, print further copies of or forward this pack (local policy).",
        # Retention and secure deletion are for the data sharing agreement (ICO code,
        # DSA-06, REFERENCE.md 5.2); destroying the pack after the meeting is local policy.
        "Destroy every copy securely after the meeting (local policy).",
        # HR-05 [SRC:S1] (REFERENCE.md 1.8).
        "If this pack is lost, or you think someone else has seen it, tell your "
        "organisation's security team and data protection officer at once.",
    ]
    if "RECIPIENTS ONLY" in marking:
        # RECIPIENTS ONLY [SRC:S1] (REFERENCE.md 1.4).
        lines.insert(
            1,
            "RECIPIENTS ONLY: only the named recipients may read it. You need the panel "
            "chair's authorisation before you brief anyone else on it.",
        )
    return lines


def _cover(
    pack: CasePackPayload,
    marking: str,
    reader: str,
    organisation: str,
    case_ref: str,
    message_id: str,
    expires: datetime,
    generated: datetime,
) -> list[Flowable]:
    details = [
        ("Case reference", case_ref),
        ("Meeting date", _day(pack.meeting_date)),
        ("Prepared by", _person(pack.prepared_by)),
        ("Prepared for", f"{reader}, {organisation}"),
        ("Marking", marking),
        ("Message", message_id),
        ("Generated", _moment(generated)),
    ]
    notice = Table(
        [[Paragraph(_safe(f"Access to this pack ends {_moment(expires)}."), _NOTICE)]],
        colWidths=[_TEXT_WIDTH],
    )
    notice.setStyle(
        TableStyle(
            [
                ("LINEBEFORE", (0, 0), (0, 0), 5, _BLACK),
                ("BACKGROUND", (0, 0), (0, 0), _PANEL_GREY),
                ("LEFTPADDING", (0, 0), (0, 0), 10),
                ("TOPPADDING", (0, 0), (0, 0), 8),
                ("BOTTOMPADDING", (0, 0), (0, 0), 8),
            ]
        )
    )
    contents = [
        (
            f"{number}.",
            _section_heading_text(section),
            section.marking.upper(),
        )
        for number, section in enumerate(pack.sections, start=1)
    ]
    story: list[Flowable] = [
        Paragraph("Channel case pack", _TITLE),
        Paragraph("For the Channel panel meeting", _CAPTION),
        Spacer(1, 6 * mm),
        _key_value_table(details),
        Spacer(1, 6 * mm),
        notice,
        Spacer(1, 4 * mm),
        Paragraph("Handling instructions", _H3),
        *[
            Paragraph(_safe(line), _BULLET, bulletText="\u2022")
            for line in _handling_instructions(marking)
        ],
        Paragraph("Contents", _H3),
        _table(("", "Section", "Marking"), contents, (10 * mm, 88 * mm, None)),
    ]
    return story


# --- Sections ----------------------------------------------------------------------------


def _section_heading_text(section: CasePackSection) -> str:
    return section.title or SECTION_KIND_LABELS[section.kind]


def _section_caption(number: int, total: int, section: CasePackSection) -> str:
    caption = f"Section {number} of {total}"
    if section.title is not None:
        # A titled section still says what kind of section it is.
        caption += f": {SECTION_KIND_LABELS[section.kind]}"
    return caption


def _section(number: int, total: int, section: CasePackSection) -> list[Flowable]:
    heading: list[Flowable] = [
        Paragraph(_safe(f"{number}. {_section_heading_text(section)}"), _H2),
        Paragraph(_safe(_section_caption(number, total, section)), _KIND),
        Spacer(1, 2 * mm),
        _section_marking(section.marking.upper()),
        Spacer(1, 3 * mm),
    ]
    body = _paragraphs(section.content)
    # Keep the heading with the first paragraph, so a heading never ends a page alone.
    story: list[Flowable] = [KeepTogether([*heading, *body[:1]]), *body[1:]]
    if section.partner_return is not None:
        story.extend(_partner_return(section.partner_return))
    if section.assessment is not None:
        story.extend(_assessment(section.assessment))
    if section.support_plan is not None:
        story.extend(_support_plan(section.support_plan))
    return story


def _section_marking(marking: str) -> Flowable:
    box = Table(
        [[Paragraph(_safe(f"Section marking: {marking}"), _SECTION_MARKING)]],
        colWidths=[_TEXT_WIDTH],
    )
    box.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (0, 0), 1.5, _BLACK),
                ("LEFTPADDING", (0, 0), (0, 0), 6),
                ("TOPPADDING", (0, 0), (0, 0), 4),
                ("BOTTOMPADDING", (0, 0), (0, 0), 5),
            ]
        )
    )
    return box


def _partner_return(partner: PartnerReturn) -> list[Flowable]:
    rows = [
        ("Provided by", partner.provided_by),
        ("Provider node", partner.provider_node or "Not given"),
        ("Lawful gateways", ", ".join(partner.gateway_ids)),
        ("Consent record", partner.consent_record_ref or "None (not given on consent)"),
        ("Release message", partner.release_ref or "Not given"),
    ]
    return [Paragraph("Who provided this and on what basis", _H3), _key_value_table(rows)]


def _present(factor: AssessedFactor) -> str:
    if factor.present is None:
        return "Not known"
    return "Yes" if factor.present else "No"


def _factor_label(factor: str, framework: str) -> str:
    known = VAF_FACTORS.get(factor) if framework == "VAF" else None
    return known[1].capitalize() if known else "-"


def _assessment(assessment: VulnerabilityAssessment) -> list[Flowable]:
    rows = [
        ("Framework", _FRAMEWORK_LABELS[assessment.framework]),
        ("Version", assessment.version or "Not given"),
        ("Assessed on", _day(assessment.assessed_on)),
        ("Assessed by", _person(assessment.assessed_by)),
    ]
    story: list[Flowable] = [Paragraph("Assessment", _H3), _key_value_table(rows)]
    dimensions: Sequence[tuple[str, DimensionAssessment]] = (
        ("Engagement with a group, cause or ideology", assessment.engagement),
        ("Intent to cause harm", assessment.intent),
        ("Capability to cause harm", assessment.capability),
    )
    for heading, dimension in dimensions:
        story.append(Paragraph(_safe(heading), _H3))
        story.extend(_paragraphs(dimension.summary))
        if dimension.factors:
            story.append(
                _table(
                    ("Factor", "Description", "Present", "Evidence"),
                    [
                        (
                            f.factor,
                            _factor_label(f.factor, assessment.framework),
                            _present(f),
                            f.evidence or "-",
                        )
                        for f in dimension.factors
                    ],
                    (16 * mm, 62 * mm, 18 * mm, None),
                )
            )
        else:
            story.append(Paragraph("No factors recorded.", _BODY))
    return story


def _support_plan(plan: ProposedSupportPlan) -> list[Flowable]:
    consent = plan.consent_request
    consent_rows = [
        ("How", consent.how),
        ("When", _day(consent.when) if consent.when else "Not set"),
        ("By whom", consent.by_whom),
    ]
    items = [
        (
            _SUPPORT_TYPE_LABELS[item.support_type],
            item.description,
            item.provider,
            item.delivery or "-",
            _day(item.start_date) if item.start_date else "Not set",
        )
        for item in plan.items
    ]
    return [
        # CTSA 2015 s36(5)(a): how, when and by whom consent will be requested.
        Paragraph("How consent will be requested", _H3),
        _key_value_table(consent_rows),
        Paragraph("Support proposed", _H3),
        _table(
            ("Support", "Description", "Provider", "How and when", "Starts"),
            items,
            (28 * mm, 52 * mm, 32 * mm, None, 22 * mm),
        ),
    ]


# --- Tables -------------------------------------------------------------------------------


def _key_value_table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(
        [
            [Paragraph(_safe(key), _CELL_BOLD), Paragraph(_safe(value), _CELL)]
            for key, value in rows
        ],
        colWidths=[42 * mm, _TEXT_WIDTH - 42 * mm],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.75, _RULE_GREY),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return table


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    widths: Sequence[float | None],
) -> Table:
    """A table with a bold header row repeated on each page it runs onto."""
    fixed = sum(w for w in widths if w is not None)
    flexible = [w for w in widths if w is None]
    share = (_TEXT_WIDTH - fixed) / len(flexible) if flexible else 0
    col_widths = [w if w is not None else share for w in widths]
    data = [[Paragraph(_safe(cell), _CELL_BOLD) for cell in header]]
    data.extend([Paragraph(_safe(cell), _CELL) for cell in row] for row in rows)
    table = Table(data, colWidths=col_widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 1.5, _BLACK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.75, _RULE_GREY),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


# --- Page furniture -------------------------------------------------------------------------


class _FurnishedCanvas(Canvas):
    """A canvas that draws the marking bars and "Page N of M" once the page count is known.

    Pages are held back until ``save``: only then is M known (reportlab's usual recipe for
    a total page count), and every page gets its furniture drawn in one place.
    """

    def __init__(self, furniture: _PageFurniture, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._furniture = furniture
        self._held_pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._held_pages.append(dict(self.__dict__))
        # Canvas.showPage would write the page now; hold it and start a fresh one instead
        # (the stubs omit this private method, which reportlab's own recipes call).
        self._startPage()  # type: ignore[attr-defined]

    def save(self) -> None:
        total = len(self._held_pages)
        for number, state in enumerate(self._held_pages, start=1):
            self.__dict__.update(state)
            self._draw_furniture(number, total)
            super().showPage()
        super().save()

    def _draw_furniture(self, number: int, total: int) -> None:
        furniture = self._furniture
        self.saveState()
        self._marking_bar(_PAGE_HEIGHT - _MARGIN - furniture.bar_height)
        self._marking_bar(_MARGIN)
        self.setFillColor(_BLACK)
        self.setFont(_FOOTER_FONT, _FOOTER_SIZE)
        # The reader line sits just above the bottom bar, its last line level with the
        # page number.
        y = _MARGIN + furniture.bar_height + 3 + _FOOTER_LEADING * (len(furniture.reader_lines) - 1)
        page = f"Case {furniture.case_ref}  |  Page {number} of {total}"
        self.drawRightString(_PAGE_WIDTH - _MARGIN, _MARGIN + furniture.bar_height + 3, page)
        for line in furniture.reader_lines:
            self.drawString(_MARGIN, y, line)
            y -= _FOOTER_LEADING
        self.restoreState()

    def _marking_bar(self, y: float) -> None:
        lines = self._furniture.marking_lines
        self.setFillColor(_BLACK)
        self.rect(_MARGIN, y, _TEXT_WIDTH, self._furniture.bar_height, stroke=0, fill=1)
        self.setFillColor(colors.white)
        self.setFont(_BAR_FONT, _BAR_SIZE)
        baseline = y + self._furniture.bar_height - _BAR_PADDING - _BAR_SIZE * 0.75
        for line in lines:
            self.drawCentredString(_PAGE_WIDTH / 2, baseline, line)
            baseline -= _BAR_LEADING
