"""The case pack PDF, read back with pypdf (text and where it sits) and drawn by poppler."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
from PIL import Image
from pypdf import PageObject, PdfReader

from agency_adapters.node.casepack_pdf import (
    SECTION_KIND_LABELS,
    CasePackRenderError,
    render_case_pack_pdf,
)
from hub.model import CasePackPayload, CasePackSection
from hub.model.examples import synthetic_case_pack
from hub.model.payloads import CasePackSectionKind

MARKING = "OFFICIAL-SENSITIVE - PERSONAL DATA"
READER = "Alex Example"
ORGANISATION = "Synthetic NHS Trust"
EXPIRES = datetime(2026, 3, 14, 17, 0, tzinfo=UTC)
GENERATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def render(pack: CasePackPayload, **overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "marking": MARKING,
        "reader_name": READER,
        "reader_organisation": ORGANISATION,
        "case_ref": "case-0001",
        "message_id": "msg-0001",
        "access_expires_at": EXPIRES,
        "generated_at": GENERATED,
    }
    arguments.update(overrides)
    return render_case_pack_pdf(pack, **arguments)


@dataclass(frozen=True)
class PageText:
    """A page's text lines, top of the page first, and its whole text with spaces collapsed."""

    lines: tuple[str, ...]
    text: str


def read_page(page: PageObject) -> PageText:
    fragments: dict[int, list[str]] = {}

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            # Where the text sits on the page: the text matrix under the CTM.
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            fragments.setdefault(round(y), []).append(text.strip())

    text = page.extract_text(visitor_text=visit)
    lines = tuple(" ".join(fragments[y]) for y in sorted(fragments, reverse=True))
    # Table cells come out a line each: the flat text reads them as a sentence.
    return PageText(lines=lines, text=" ".join(text.split()))


def read_pages(pdf: bytes) -> list[PageText]:
    return [read_page(page) for page in PdfReader(io.BytesIO(pdf)).pages]


def long_pack() -> CasePackPayload:
    """The synthetic pack with long sections: many paragraphs, and one longer than a page."""
    base = synthetic_case_pack(3)
    many = "\n\n".join(
        f"SYNTHETIC paragraph {i} of the review history, about nobody real. " * 6 for i in range(40)
    )
    one_block = "SYNTHETIC unbroken account for the consent section. " * 400
    extra = (
        CasePackSection(
            kind="REVIEW_HISTORY",
            title="Reviews so far",
            marking=MARKING,
            content=f"Kestrel phrase opens it.\n\n{many}\n\nOsprey phrase ends it.",
        ),
        CasePackSection(
            kind="CONSENT_AND_CAPACITY",
            marking=MARKING,
            content=f"Harrier phrase first. {one_block} Merlin phrase last.",
        ),
    )
    return CasePackPayload(
        meeting_date=base.meeting_date,
        prepared_by=base.prepared_by,
        sections=(*base.sections, *extra),
    )


def test_marking_is_the_first_and_last_line_of_every_page_and_the_reader_is_on_each() -> None:
    pages = read_pages(render(long_pack()))

    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert page.lines[0] == MARKING, number
        assert page.lines[-1] == MARKING, number
        assert f"Prepared for {READER}, {ORGANISATION}" in page.text
        assert f"Page {number} of {len(pages)}" in page.text


@pytest.mark.parametrize(
    "marking", [MARKING, "OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA"]
)
def test_no_page_is_left_with_only_its_marking_and_reader_line(marking: str) -> None:
    for number, page in enumerate(read_pages(render(long_pack(), marking=marking)), start=1):
        # Two marking lines, the reader line and the page number, and content.
        assert len(page.lines) > 4, number


SUB_HEADINGS = {
    "Who provided this and on what basis",
    "Assessment",
    "Engagement with a group, cause or ideology",
    "Intent to cause harm",
    "Capability to cause harm",
    "How consent will be requested",
    "Support proposed",
}


def test_no_page_ends_with_a_sub_heading_whose_content_is_overleaf() -> None:
    pages = read_pages(render(long_pack()))
    assert any(heading in page.text for page in pages for heading in SUB_HEADINGS)

    for number, page in enumerate(pages, start=1):
        # From the bottom: the marking, the reader line with the page number, then content.
        assert page.lines[-3] not in SUB_HEADINGS, number


def test_the_cover_gives_the_case_the_meeting_the_expiry_and_the_handling_rules() -> None:
    pack = synthetic_case_pack(1)
    cover = read_pages(render(pack))[0].text

    assert "Channel case pack" in cover
    assert "case-0001" in cover
    assert "msg-0001" in cover
    assert f"{pack.meeting_date.day} {pack.meeting_date:%B %Y}" in cover
    assert pack.prepared_by.name in cover
    assert "Access to this pack ends 14 March 2026, 17:00 UTC." in cover
    assert "Generated 1 March 2026, 09:30 UTC" in cover
    assert "Do not copy, print further copies of or forward this pack (local policy)." in cover
    assert "Destroy every copy securely after the meeting (local policy)." in cover
    assert "security team" in cover
    # No RECIPIENTS ONLY in the marking, so no chair's-authorisation line.
    assert "RECIPIENTS ONLY" not in cover


def test_a_recipients_only_pack_says_who_may_brief_others() -> None:
    cover = read_pages(
        render(synthetic_case_pack(1), marking="OFFICIAL-SENSITIVE - RECIPIENTS ONLY")
    )[0]

    assert cover.lines[0] == "OFFICIAL-SENSITIVE - RECIPIENTS ONLY"
    assert "panel chair's authorisation" in cover.text


def test_every_section_shows_its_title_marking_content_and_tables() -> None:
    pack = long_pack()
    flat = " ".join(page.text for page in read_pages(render(pack)))

    for number, section in enumerate(pack.sections, start=1):
        heading = section.title or SECTION_KIND_LABELS[section.kind]
        assert f"{number}. {heading}" in flat
    assert "Section marking: OFFICIAL-SENSITIVE - PERSONAL DATA" in flat
    assert "Section marking: OFFICIAL" in flat.replace(MARKING, "")
    # The section kind in plain English beside a title of its own.
    assert "Section 6 of 7: Review history" in flat
    for phrase in ("Kestrel phrase", "Osprey phrase", "Harrier phrase", "Merlin phrase"):
        assert phrase in flat
    assert "paragraph 39 of the review history" in flat
    # The synthetic sections' own text.
    for section in pack.sections[:5]:
        assert section.content[-30:] in flat
    # Partner return: who provided it, and the gateways.
    assert "Synthetic Integrated Care Board" in flat
    assert "CTSA2015-s38, UKGDPR-A6-1e" in flat
    assert "consent-0003" in flat
    # Assessment: the dimensions and the factors, with their VAF wording.
    assert "Engagement with a group, cause or ideology" in flat
    assert "Intent to cause harm" in flat
    assert "Capability to cause harm" in flat
    assert "Transitional periods" in flat
    assert '"us and them" thinking' in flat
    # Support plan: consent request and the items.
    assert "Home visit with a parent present" in flat
    assert "Ideological mentoring" in flat
    assert "Synthetic Intervention Provider Ltd" in flat


def test_the_largest_section_in_one_paragraph_renders_whole_and_in_good_time() -> None:
    base = synthetic_case_pack(4)
    filler = "SYNTHETIC words of one very long paragraph. "
    body = f"Goshawk start. {filler * ((1_000_000 - 40) // len(filler))}Buzzard end."
    pack = CasePackPayload(
        meeting_date=base.meeting_date,
        prepared_by=base.prepared_by,
        sections=(CasePackSection(kind="REVIEW_HISTORY", marking=MARKING, content=body),),
    )

    started = time.monotonic()
    pdf = render(pack)
    # Unsplit, reportlab took minutes on this (time grows with the square of the length).
    assert time.monotonic() - started < 60
    reader = PdfReader(io.BytesIO(pdf))
    first, last = read_page(reader.pages[1]), read_page(reader.pages[-1])
    assert "Goshawk start." in first.text
    assert "Buzzard end." in last.text
    # Every word is there, none lost where the paragraph was cut into pieces (a phrase
    # may run over a page, a word may not). The cover is page 1.
    words = sum(read_page(page).text.split().count("SYNTHETIC") for page in reader.pages[1:])
    assert words == body.split().count("SYNTHETIC")


def test_markup_in_free_text_is_printed_not_obeyed() -> None:
    base = synthetic_case_pack(2)
    hostile = (
        'Score < 3 & rising; <b>not bold</b> <font size="60">HUGE</font> '
        '<img src="/etc/hostname"/> <unclosed & &amp; &#65;'
    )
    pack = CasePackPayload(
        meeting_date=base.meeting_date,
        prepared_by=base.prepared_by,
        sections=(
            CasePackSection(
                kind="REFERRAL_SUMMARY",
                title="Title with <i>tags</i> & more",
                marking=MARKING,
                content=f"{hostile}\n\nSecond line\x00with a control character.",
            ),
        ),
    )
    pages = read_pages(render(pack, reader_organisation="Smith & Jones <Trust>"))
    flat = " ".join(page.text for page in pages)

    assert " ".join(hostile.split()) in flat
    assert "1. Title with <i>tags</i> & more" in flat
    assert "Second line with a control character." in flat
    assert all(f"Prepared for {READER}, Smith & Jones <Trust>" in p.text for p in pages)


def test_the_same_inputs_give_the_same_bytes() -> None:
    first = render(long_pack())

    assert render(long_pack()) == first
    assert render(long_pack(), generated_at=GENERATED + timedelta(minutes=1)) != first


def test_metadata_holds_the_marking_and_the_case_ref_and_no_names() -> None:
    pack = synthetic_case_pack(1)
    metadata = PdfReader(io.BytesIO(render(pack))).metadata
    assert metadata is not None

    assert metadata.title == f"{MARKING} Channel case pack"
    assert metadata.subject == "Case case-0001"
    values = " ".join(str(value) for value in metadata.values())
    for personal in (READER, ORGANISATION, pack.prepared_by.name, pack.prepared_by.organisation):
        assert personal not in values


def test_a_long_marking_and_reader_line_wrap_and_stay_whole() -> None:
    marking = (
        "OFFICIAL-SENSITIVE - SYNTHETIC COUNTY COUNCIL, SYNTHETIC INTEGRATED CARE BOARD AND "
        "SYNTHETIC CONSTABULARY USE ONLY - PERSONAL DATA"
    )
    reader = "Alexandra Jacqueline Example-Placeholder-Synthetic"
    organisation = "Synthetic Integrated Care Board for the Northern and Western Districts"
    pages = read_pages(
        render(
            synthetic_case_pack(1),
            marking=marking,
            reader_name=reader,
            reader_organisation=organisation,
        )
    )

    for page in pages:
        assert page.text.count(marking) >= 2
        assert f"Prepared for {reader}, {organisation}" in page.text


def test_the_marking_is_shown_in_capitals() -> None:
    pages = read_pages(
        render(synthetic_case_pack(1), marking="OFFICIAL-SENSITIVE - Home Office USE ONLY")
    )

    assert pages[0].lines[0] == "OFFICIAL-SENSITIVE - HOME OFFICE USE ONLY"
    assert pages[-1].lines[-1] == "OFFICIAL-SENSITIVE - HOME OFFICE USE ONLY"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"marking": "SECRET"}, "OFFICIAL or OFFICIAL-SENSITIVE"),
        ({"marking": "official-sensitive"}, "OFFICIAL or OFFICIAL-SENSITIVE"),
        ({"marking": "OFFICIAL"}, "MK-10"),
        ({"marking": "OFFICIAL-SENSITIVE - PERSONAL\x07DATA"}, "one line"),
        ({"reader_name": "  "}, "reader_name must be 1 to 200"),
        ({"reader_name": "Alex\nExample"}, "reader_name must be one line"),
        ({"reader_organisation": "x" * 201}, "reader_organisation must be 1 to 200"),
        ({"case_ref": "case 1"}, "case_ref must be a reference"),
        ({"message_id": ""}, "message_id must be a reference"),
        ({"access_expires_at": datetime(2026, 3, 14, 17, 0)}, "access_expires_at must carry"),
        ({"generated_at": datetime(2026, 3, 1, 9, 30)}, "generated_at must carry"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CasePackRenderError, match=message):
        render(synthetic_case_pack(1), **overrides)


def test_times_in_another_zone_are_shown_in_utc() -> None:
    bst = timezone(timedelta(hours=1))
    cover = read_pages(
        render(synthetic_case_pack(1), access_expires_at=datetime(2026, 6, 1, 18, 0, tzinfo=bst))
    )[0]

    assert "Access to this pack ends 1 June 2026, 17:00 UTC." in cover.text


def test_every_section_kind_has_a_plain_english_label() -> None:
    assert set(SECTION_KIND_LABELS) == set(get_args(CasePackSectionKind))


def test_the_cover_renders_to_a_readable_image(tmp_path: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm is missing: install Debian poppler-utils to draw the PDF")
    pdf = tmp_path / "casepack.pdf"
    pdf.write_bytes(render(long_pack()))
    subprocess.run(
        [
            pdftoppm,
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(tmp_path / "cover"),
        ],
        check=True,
        timeout=60,
    )
    png = tmp_path / "cover.png"
    print(f"case pack cover drawn to {png}")

    # Pillow comes with reportlab, which draws its images with it.
    with Image.open(png) as image:
        grey = image.convert("L")
    width, height = grey.size

    def darkness(box: tuple[int, int, int, int], below: int) -> float:
        histogram = grey.crop(box).histogram()
        return sum(histogram[:below]) / sum(histogram)

    # Mostly white paper with real ink on it: neither blank nor a black page.
    assert 0.03 < darkness((0, 0, width, height), 100) < 0.5
    assert 1 - darkness((0, 0, width, height), 201) > 0.4
    # The marking bars: a black band across the text column near the top and bottom.
    column = (width // 8, width * 7 // 8)
    top_band = max(darkness((column[0], y, column[1], y + 1), 60) for y in range(height // 8))
    bottom_band = max(
        darkness((column[0], y, column[1], y + 1), 60) for y in range(height * 7 // 8, height)
    )
    assert top_band > 0.6
    assert bottom_band > 0.6
