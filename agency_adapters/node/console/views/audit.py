"""For auditors, the DPO, the IG lead and the Caldicott Guardian: what was shared about a
subject (the hub's disclosure register) and the assurance report for a period.

The register answers "what was shared about this person" from the hub's audit log (who
disclosed which categories to whom, when, under which gateways; what a release's signed
manifest says it held; who rejected it). The report is the partnership board's counts,
drawn as the same server-rendered SVG chart ``hub report assurance --format svg`` writes
(with a <title> and <desc>), with its numbers in tables beside it. Both views are written
to the node's access log.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup
from pydantic import ValidationError

from agency_adapters.node.console.forms import FormErrors
from agency_adapters.node.console.keys import SERVICES
from agency_adapters.node.console.presenting import category_label
from agency_adapters.node.console.rendering import highest_marking, render
from agency_adapters.node.console.security import current_session, requires
from agency_adapters.node.console.views.messages import HUB_ERRORS
from hub.audit.register import Disclosure
from hub.audit.report import AssuranceReport, parse_period
from hub.client import HubProblem

__all__ = ["AUDIT_ROLES", "assurance", "audit_home", "disclosures"]

log = logging.getLogger("seh.console")

AUDIT_ROLES = ("AUDITOR", "DPO", "IG_LEAD", "CALDICOTT_GUARDIAN")
# The hub's own check of an opaque reference (hub/server/handlers.py _CASE_REF).
_SUBJECT_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _default_period(now: datetime) -> str:
    return f"{now.year}Q{(now.month - 1) // 3 + 1}"


@requires(*AUDIT_ROLES)
async def audit_home(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    return render(
        request,
        "audit.html",
        {"errors": None, "subject_ref": "", "period": _default_period(services.now())},
        title="Audit",
    )


@requires(*AUDIT_ROLES)
async def disclosures(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    subject_ref = request.query.get("subject_ref", "").strip()
    errors = FormErrors()
    if not subject_ref:
        errors.add("subject_ref", "Enter a subject reference")
    elif not _SUBJECT_REF.fullmatch(subject_ref):
        errors.add(
            "subject_ref",
            "A subject reference is letters, digits and . _ : - only, up to 128 characters "
            "(never a name)",
        )
    if errors:
        return render(
            request,
            "audit.html",
            {"errors": errors, "subject_ref": "", "period": _default_period(services.now())},
            title="Error: Audit",
            status=400,
        )
    services.viewed(session.user, "disclosure_register", subject_ref)
    problem = None
    rows: list[Disclosure] = []
    try:
        rows = [
            Disclosure.model_validate(d) for d in await services.client.disclosures(subject_ref)
        ]
    except (*HUB_ERRORS, ValidationError) as exc:
        log.warning("console: disclosure register unavailable (%s)", type(exc).__name__)
        problem = "The hub could not give the register. Try again later."
    registry = services.registry
    return render(
        request,
        "audit_disclosures.html",
        {
            "subject_ref": subject_ref,
            "rows": rows,
            "problem": problem,
            "category_name": lambda c: category_label(c, registry),
            "gateway_name": lambda g: e.title if (e := registry.gateway(g)) else g,
        },
        title="Disclosure register",
        marking=highest_marking([row.marking or "OFFICIAL" for row in rows]),
    )


def _inline_svg(report: AssuranceReport) -> Markup:
    """The report's SVG (hub/audit/report.py, which escapes every label) for inline use."""
    svg = report.to_svg()
    svg = svg.split("?>", 1)[1] if svg.startswith("<?xml") else svg
    return Markup(svg.strip())  # noqa: S704 - built by report.to_svg from escaped text


def _counts(report: AssuranceReport) -> list[tuple[str, dict[str, int]]]:
    return [
        ("Referrals made, by agency type", report.referrals_made_by_agency),
        ("Referrals received, by agency type", report.referrals_received_by_agency),
        ("Triage outcomes", report.triage_outcomes),
        ("Requests received, by agency type", report.requests_received_by_agency),
        ("Decisions, by outcome", report.decisions_by_outcome),
        ("Refusals by the hub, by rule", report.refusals_by_rule),
        ("Channel cases, by stage", report.cases_by_stage),
    ]


@requires(*AUDIT_ROLES)
async def assurance(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    session = current_session(request)
    period = request.query.get("period", "").strip()
    errors = FormErrors()
    try:
        parse_period(period)
    except ValueError as exc:
        errors.add("period", str(exc)[:1].upper() + str(exc)[1:])
    if errors:
        return render(
            request,
            "audit.html",
            {"errors": errors, "subject_ref": "", "period": period[:20]},
            title="Error: Audit",
            status=400,
        )
    services.viewed(session.user, "assurance_report", period)
    problem = None
    report: AssuranceReport | None = None
    try:
        report = AssuranceReport.model_validate(await services.client.assurance_report(period))
    except HubProblem as refusal:
        if refusal.problem.status == 404:
            problem = (
                "This node is not one of the hub's auditor nodes, so the hub does not give it "
                "the assurance report. Ask the hub operator."
            )
        else:
            problem = refusal.problem.detail or refusal.problem.title
    except (*HUB_ERRORS, ValidationError) as exc:
        log.warning("console: assurance report unavailable (%s)", type(exc).__name__)
        problem = "The hub could not give the report. Try again later."
    context: dict[str, Any] = {"period": period, "report": report, "problem": problem}
    if report is not None:
        context.update(
            chart=_inline_svg(report),
            bars=report.chart_bars(),
            counts=_counts(report),
            last_day=(report.period_end - timedelta(days=1)).date(),
        )
    return render(request, "audit_assurance.html", context, title=f"Assurance report {period}")
