"""The disclosure register and the assurance report, loaded from the store.

Shared by the API (``/v1/audit/disclosures``, ``/v1/reports/assurance``) and the CLI
(``hub audit disclosures``, ``hub report assurance``); the computing is pure, in
``hub/audit/register.py`` and ``hub/audit/report.py``.
"""

from __future__ import annotations

from datetime import datetime

from hub.audit.register import Disclosure, disclosure_register
from hub.audit.report import AssuranceReport, assurance_report, parse_period
from hub.model import AuditEntry
from hub.policy.registry import Registry
from hub.policy.workflow import CaseState, RequestState
from hub.store import AuditRow, Store

__all__ = ["load_assurance", "load_register"]


async def load_register(store: Store, subject_ref: str, *, node_id: str | None) -> list[Disclosure]:
    """Every disclosure about ``subject_ref``; with ``node_id``, only those it took part in."""
    async with store.read() as view:
        about = list(await view.audit.rows_for_subject(subject_ref))
        # Case packs may carry only the case reference: follow the subject's cases too.
        cases = sorted({e.case_ref for e in _entries(about) if e.case_ref is not None})
        seen = {row.idx for row in about}
        rows = about + [
            row for row in await view.audit.rows_for_cases(cases) if row.idx not in seen
        ]
        rows.sort(key=lambda row: row.idx)
        requests = {
            r.ref: RequestState.model_validate_json(r.state_json)
            for r in await view.workflows.all_of("request")
        }
    entries = [AuditEntry.model_validate_json(row.entry_json) for row in rows]
    disclosures = disclosure_register(subject_ref, entries, requests=requests)
    if node_id is None:
        return disclosures
    return [d for d in disclosures if node_id == d.discloser or node_id in d.recipients]


def _entries(rows: list[AuditRow]) -> list[AuditEntry]:
    return [AuditEntry.model_validate_json(row.entry_json) for row in rows]


async def load_assurance(
    store: Store, registry: Registry, period: str, now: datetime
) -> AssuranceReport:
    """The assurance report for ``period`` (e.g. 2026Q3) as at ``now``."""
    start, end = parse_period(period)
    async with store.read() as view:
        rows = await view.audit.rows_between(start, end)
        requests = [
            RequestState.model_validate_json(r.state_json)
            for r in await view.workflows.all_of("request")
        ]
        cases = [
            CaseState.model_validate_json(r.state_json) for r in await view.workflows.all_of("case")
        ]
        agency_types = {node.id: node.agency_type for node in await view.nodes.list_all()}
    entries = [AuditEntry.model_validate_json(row.entry_json) for row in rows]
    return assurance_report(period, entries, requests, cases, agency_types, registry, now)
