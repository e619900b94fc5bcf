"""The committed policy registry (``schemas/registry/*.yaml``) is complete and consistent.

The registry is policy as data: information governance staff review the YAML, and the
hub refuses to start if it is invalid. These tests pin what the rest of the hub relies
on - every gateway of REFERENCE.md 2.2-2.8, every agency type of the wire model, every
purpose of REFERENCE.md 6A - and show that a broken registry is refused with an error
naming the file. The JSON Schemas in ``schemas/registry/schema/`` must match the models.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from hub.cli.demo import DEMO_NODES, DEMO_REFERRAL_DRAFT
from hub.model.messages import AgencyType
from hub.policy import schemas as schema_module
from hub.policy.registry import (
    DEFAULT_REGISTRY_DIR,
    REGISTRY_FILES,
    PolicySettings,
    Registry,
    RegistryError,
    load_registry,
)
from hub.policy.schemas import (
    JSON_SCHEMA_DIALECT,
    REGISTRY_DOCUMENT_MODELS,
    SCHEMA_DIR,
    render_registry_schemas,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run `python -m hub.policy.schemas` and commit schemas/registry/schema/"

# Every gateway id in the tables of REFERENCE.md sections 2.2 to 2.8, plus the ids this
# registry defines for Art 10 (2.4 names the conditions but gives no ids) and the
# Schedule 1 Part 1 conditions that Art 9(2)(i) and (j) point to (2.3 "DPA 2018 link").
REFERENCE_GATEWAY_IDS = frozenset(
    {
        # 2.2 UK GDPR Art 6
        "UKGDPR-A6-1a",
        "UKGDPR-A6-1b",
        "UKGDPR-A6-1c",
        "UKGDPR-A6-1d",
        "UKGDPR-A6-1e",
        "UKGDPR-A6-1ea",
        "UKGDPR-A6-1f",
        # 2.3 Art 9(2) and DPA 2018 Schedule 1
        "UKGDPR-A9-2a",
        "UKGDPR-A9-2b",
        "UKGDPR-A9-2c",
        "UKGDPR-A9-2f",
        "UKGDPR-A9-2g",
        "UKGDPR-A9-2h",
        "UKGDPR-A9-2i",
        "UKGDPR-A9-2j",
        "DPA2018-S1P1p1",
        "DPA2018-S1P1p2",
        "DPA2018-S1P1p3",
        "DPA2018-S1P1p4",
        "DPA2018-S1P2p6",
        "DPA2018-S1P2p10",
        "DPA2018-S1P2p18",
        # 2.4 Art 10
        "UKGDPR-A10-OA",
        "DPA2018-S1-A10",
        # 2.5 DPA 2018 Schedule 2 exemptions
        "DPA2018-S2P1p2",
        "DPA2018-S2P1p5",
        # 2.6 DPA 2018 Part 3 and Schedule 8
        "DPA2018-Pt3",
        "DPA2018-S8p1",
        "DPA2018-S8p2",
        "DPA2018-S8p3",
        "DPA2018-S8p4",
        # 2.7 statutory powers and duties
        "CDA1998-s115",
        "CTSA2015-s26",
        "CTSA2015-s36",
        "CTSA2015-s37",
        "CTSA2015-s38",
        "OMA2007-s14",
        "CA1989-s17",
        "CA1989-s47",
        "CA2004-s11",
        "CA2004-s10",
        "CA2004-s16H",
        "CareA2014-s42",
        "CareA2014-s45",
        "MCA2005-s4",
        "LGA1972-s111",
        "LocA2011-s1",
        "TA2000-s38B",
        "TA2000-s39",
        "CTA2008-s19",
        "EA2002-s175",
        "NHSA2006-s251",
        # Not in REFERENCE 2.7: the implied power to share for a statutory function, from
        # seed 001 and seed 003 Annex 1 ("Power to share").
        "IMPLIED-FUNCTION",
        # 2.8 common law, human rights and professional gateways
        "CL-POLICING",
        "CLDC-CONSENT",
        "CLDC-LAW",
        "CLDC-PUBINT",
        "CLDC-BESTINT",
        "ECHR-A8",
        "CALD-P7",
        "GOLDEN-RULES",
    }
)

# REFERENCE.md 6A, Purpose.
REFERENCE_PURPOSES = frozenset(
    {
        "PREVENT_REFERRAL",
        "PREVENT_TRIAGE",
        "CHANNEL_ASSESSMENT",
        "CHANNEL_SUPPORT",
        "CHANNEL_REVIEW",
        "CHILD_SAFEGUARDING_S47",
        "CHILD_IN_NEED_S17",
        "ADULT_SAFEGUARDING_S42",
        "SAB_REQUEST_S45",
        "CRIME_PREVENTION",
        "TERRORISM_DISCLOSURE_S38B",
        "OFFENDER_MANAGEMENT",
    }
)

# The categories the issue names (at least these; lower_snake ids).
ISSUE_CATEGORIES = frozenset(
    {
        "identity",
        "contact_address_history",
        "household",
        "gp_registration",
        "mental_health_diagnoses",
        "physical_health_diagnoses",
        "medication",
        "appointments_non_attendance",
        "ae_attendance",
        "safeguarding_flags",
        "childrens_social_care",
        "adult_social_care",
        "education_attendance_exclusions",
        "housing",
        "prevent_channel_history",
        "police_contact",
        "criminal_convictions",
        "probation_status",
    }
)

# Powers and duties that REFERENCE.md 2.7 says are not information-sharing powers.
NOT_POWERS = frozenset(
    {"CTSA2015-s26", "CA2004-s11", "CA2004-s10", "EA2002-s175", "CA1989-s17", "TA2000-s39"}
)


# -- the committed registry ---------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def _document(name: str) -> Any:
    return yaml.safe_load((DEFAULT_REGISTRY_DIR / REGISTRY_FILES[name]).read_text("utf-8"))


def test_registry_dir_is_in_the_repository() -> None:
    assert DEFAULT_REGISTRY_DIR == REPO_ROOT / "schemas" / "registry"
    assert SCHEMA_DIR == REPO_ROOT / "schemas" / "registry" / "schema"


@pytest.mark.parametrize("name", sorted(REGISTRY_FILES))
def test_each_file_matches_its_document_model(name: str) -> None:
    # Checked file by file, so a failure points at one file even when another is broken.
    REGISTRY_DOCUMENT_MODELS[name].model_validate(_document(name))


def test_the_committed_registry_loads(registry: Registry) -> None:
    assert registry.gateways
    assert registry.agreements, "the demo federation's example agreement is missing"
    assert registry.settings.max_scope_categories == 8


def test_every_reference_gateway_is_defined(registry: Registry) -> None:
    defined = {g.id for g in registry.gateways}
    assert sorted(REFERENCE_GATEWAY_IDS - defined) == []
    assert sorted(defined - REFERENCE_GATEWAY_IDS) == [], "update REFERENCE_GATEWAY_IDS"


def test_every_wire_agency_type_is_defined(registry: Registry) -> None:
    assert [a.id for a in registry.agency_types] == list(get_args(AgencyType))


def test_competent_authorities_and_public_bodies(registry: Registry) -> None:
    competent = {a.id for a in registry.agency_types if a.competent_authority}
    public = {a.id for a in registry.agency_types if a.public_body}
    assert competent == {"police", "probation", "prison", "youth_justice"}
    assert public == {
        "police",
        "local_authority",
        "health",
        "probation",
        "education",
        "youth_justice",
        "prison",
    }


def test_every_reference_purpose_is_defined(registry: Registry) -> None:
    assert {p.id for p in registry.purposes} == REFERENCE_PURPOSES


def test_the_issue_categories_are_defined(registry: Registry) -> None:
    assert sorted(ISSUE_CATEGORIES - {c.id for c in registry.data_categories}) == []


# -- what the rules rely on ----------------------------------------------------------------


def test_gateway_families(registry: Registry) -> None:
    family = {g.id: g.family for g in registry.gateways}
    for gateway_id in NOT_POWERS:
        assert family[gateway_id] != "power", gateway_id
    assert family["TA2000-s39"] == "constraint"
    assert family["ECHR-A8"] == "constraint"
    for gateway_id in ("CDA1998-s115", "CTSA2015-s38", "CTSA2015-s36", "TA2000-s38B"):
        assert family[gateway_id] == "power", gateway_id
    assert {i for i, f in family.items() if f == "confidentiality"} == {
        "CLDC-CONSENT",
        "CLDC-LAW",
        "CLDC-PUBINT",
        "CLDC-BESTINT",
    }
    assert {i for i, f in family.items() if f == "exemption"} == {
        "DPA2018-S2P1p2",
        "DPA2018-S2P1p5",
    }
    for gateway_id, gateway_family in family.items():
        prefix = gateway_id.rsplit("-", 1)[0]
        if prefix == "UKGDPR-A6":
            assert gateway_family == "art6", gateway_id
        if prefix == "UKGDPR-A9":
            assert gateway_family == "art9", gateway_id
        if gateway_id.startswith(("DPA2018-S1P1", "DPA2018-S1P2")):
            assert gateway_family == "sch1", gateway_id
        if gateway_id.startswith("DPA2018-S8") or gateway_id == "DPA2018-Pt3":
            assert gateway_family == "part3", gateway_id


def test_gateway_flags(registry: Registry) -> None:
    def flagged(flag: str) -> set[str]:
        return {g.id for g in registry.gateways if getattr(g, flag)}

    # CTSA 2015 s36 no longer: consent is needed for Channel support, not for the panel's
    # assessment, so the consent rule follows the purpose (purposes.yaml consent_required;
    # seed 004 paras 43 and 59).
    assert {"UKGDPR-A6-1a", "UKGDPR-A9-2a", "CLDC-CONSENT"} == flagged("consent_required")
    assert {
        "CLDC-PUBINT",
        "CLDC-LAW",
        "TA2000-s38B",
        "CareA2014-s45",
        "UKGDPR-A6-1c",
        "CA1989-s47",
    } <= flagged("overrides_refusal")
    assert "MCA2005-s4" not in flagged("overrides_refusal")
    assert flagged("best_interests") == {"MCA2005-s4", "CLDC-BESTINT"}
    # The competent-authority test follows a law-enforcement purpose (GW-10), not these
    # gateways; para 10 needs an appropriate policy document unless disclosed to one.
    apd = {g.id: g.appropriate_policy_document for g in registry.gateways}
    assert apd["DPA2018-S1P2p10"] == "needed_unless_to_competent_authority"
    assert flagged("needs_named_function") == {"IMPLIED-FUNCTION"}
    assert {"CareA2014-s42", "CA1989-s17", "CA1989-s47", "CTSA2015-s26"} <= flagged(
        "statutory_function"
    )
    law_enforcement = {p.id for p in registry.purposes if p.law_enforcement}
    assert law_enforcement == {"CRIME_PREVENTION", "TERRORISM_DISCLOSURE_S38B"}
    assert {p.id for p in registry.purposes if p.consent_required} == {"CHANNEL_SUPPORT"}
    assert flagged("needs_sch1") == {
        "UKGDPR-A9-2b",
        "UKGDPR-A9-2g",
        "UKGDPR-A9-2h",
        "UKGDPR-A9-2i",
        "UKGDPR-A9-2j",
    }


def test_every_gateway_is_documented(registry: Registry) -> None:
    for gateway in registry.gateways:
        assert gateway.summary.strip(), gateway.id
        assert gateway.citation.strip(), gateway.id
        assert gateway.provenance.strip(), gateway.id
        assert gateway.who, f"{gateway.id}: nobody may rely on it"
        if gateway.family in ("guidance", "constraint"):
            # Not a permission to disclose to anyone.
            assert gateway.to_whom == [], gateway.id


def test_out_of_scope_gateways_permit_no_recipient(registry: Registry) -> None:
    for gateway_id in ("CTA2008-s19", "NHSA2006-s251"):
        gateway = registry.gateway(gateway_id)
        assert gateway is not None
        assert gateway.to_whom == []


def test_non_public_partners_use_legitimate_interests(registry: Registry) -> None:
    public = {a.id for a in registry.agency_types if a.public_body}
    for gateway_id in ("UKGDPR-A6-1ea", "UKGDPR-A6-1f"):
        gateway = registry.gateway(gateway_id)
        assert gateway is not None
        assert not public & set(gateway.who), gateway_id
    public_task = registry.gateway("UKGDPR-A6-1e")
    assert public_task is not None
    assert set(public_task.who) == public


def test_part3_is_for_competent_authorities_only(registry: Registry) -> None:
    competent = {a.id for a in registry.agency_types if a.competent_authority}
    for gateway in registry.gateways:
        if gateway.family == "part3":
            assert set(gateway.who) <= competent, gateway.id


def test_every_art9_condition_that_needs_sch1_has_one(registry: Registry) -> None:
    sch1 = {g.id for g in registry.gateways if g.family == "sch1"}
    pairs = {
        "UKGDPR-A9-2b": "DPA2018-S1P1p1",
        "UKGDPR-A9-2h": "DPA2018-S1P1p2",
        "UKGDPR-A9-2i": "DPA2018-S1P1p3",
        "UKGDPR-A9-2j": "DPA2018-S1P1p4",
    }
    assert set(pairs.values()) <= sch1
    assert {"DPA2018-S1P2p6", "DPA2018-S1P2p10", "DPA2018-S1P2p18"} <= sch1


def test_categories(registry: Registry) -> None:
    health_only = [c for c in registry.data_categories if c.held_by == ["health"]]
    assert health_only
    for category in health_only:
        assert category.special_category, f"{category.id}: health data is special category"
    for category_id in ("police_contact", "criminal_convictions", "probation_status"):
        category = registry.category(category_id)
        assert category is not None
        assert category.criminal_offence, category_id
    for category in registry.data_categories:
        assert category.summary.strip(), category.id
        assert category.held_by, category.id
        # Every history category has a default limit; a current-state one has none.
        assert (category.max_period_days is not None) == category.needs_period, category.id
    # The property tests need some categories that are not special category data.
    assert any(not c.special_category for c in registry.data_categories)


def test_whole_record_ids_are_refused_by_name(registry: Registry) -> None:
    whole = set(registry.settings.whole_record_ids)
    assert {
        "all",
        "everything",
        "whole_record",
        "full_record",
        "entire_record",
        "complete_record",
        "all_records",
    } <= whole
    assert not whole & {c.id for c in registry.data_categories}


def test_purposes_kinds_and_deadlines(registry: Registry) -> None:
    for purpose in registry.purposes:
        assert "note" in purpose.kinds, purpose.id
        assert len(set(purpose.kinds)) == len(purpose.kinds), purpose.id
        if "information_request" in purpose.kinds:
            # Decisions and releases carry the purpose of the request they answer.
            assert {"decision", "release"} <= set(purpose.kinds), purpose.id
            assert purpose.deadlines is not None, purpose.id
            assert purpose.deadlines.urgent_hours < purpose.deadlines.routine_hours
        else:
            assert purpose.deadlines is None, purpose.id
    s47 = registry.purpose("CHILD_SAFEGUARDING_S47")
    assert s47 is not None
    assert s47.deadlines is not None
    assert all(
        s47.deadlines.urgent_hours <= p.deadlines.urgent_hours
        for p in registry.purposes
        if p.deadlines is not None
    )
    channel = {"case_open", "case_pack", "panel_outcome", "case_review"}
    for purpose in registry.purposes:
        if not purpose.id.startswith("CHANNEL_"):
            assert not channel & set(purpose.kinds), purpose.id


def test_the_example_agreement_fits_the_demo(registry: Registry) -> None:
    agreement = registry.agreement("DSA-WILTS-PREVENT-2026")
    assert agreement is not None
    assert sorted(agreement.parties) == sorted(node for node, _, _ in DEMO_NODES)
    assert agreement.purposes == [
        "PREVENT_REFERRAL",
        "PREVENT_TRIAGE",
        "CHANNEL_ASSESSMENT",
        "CHANNEL_SUPPORT",
        "CHANNEL_REVIEW",
    ]
    assert str(agreement.valid_from) == "2026-01-01"
    assert str(agreement.valid_to) == "2027-12-31"
    # Every category in the agreement is held by one of the parties.
    party_types = {agency for _, agency, _ in DEMO_NODES}
    for category_id in agreement.categories:
        category = registry.category(category_id)
        assert category is not None
        assert party_types & set(category.held_by), category_id
    # The demo referral cites only gateways the agreement covers.
    legal_basis = DEMO_REFERRAL_DRAFT["envelope"]["legal_basis"]
    assert legal_basis["agreement"] == agreement.id
    cited = [*legal_basis["powers"], legal_basis["art6"], legal_basis["art9"], legal_basis["sch1"]]
    assert sorted(set(cited) - set(agreement.gateways)) == []


# -- a broken registry is refused, naming the file ----------------------------------------


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    target = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, target, ignore=shutil.ignore_patterns("schema"))
    return target


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    document = yaml.safe_load(path.read_text("utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def test_a_missing_file_is_named(registry_copy: Path) -> None:
    (registry_copy / "gateways.yaml").unlink()
    with pytest.raises(RegistryError, match=r"gateways\.yaml is missing"):
        load_registry(registry_copy)


def test_optional_files_may_be_absent(registry_copy: Path) -> None:
    (registry_copy / "agreements.yaml").unlink()
    (registry_copy / "settings.yaml").unlink()
    # Without its agreements file the registry has none, and default settings.
    loaded = load_registry(registry_copy)
    assert loaded.agreements == []
    assert loaded.settings == PolicySettings()


def test_bad_yaml_is_named(registry_copy: Path) -> None:
    (registry_copy / "purposes.yaml").write_text("purposes:\n  - id: [unclosed\n", "utf-8")
    with pytest.raises(RegistryError, match=r"purposes\.yaml is not valid YAML"):
        load_registry(registry_copy)


def test_an_unknown_top_level_key_is_named(registry_copy: Path) -> None:
    _edit(registry_copy / "settings.yaml", lambda d: d.update({"colour": "red"}))
    with pytest.raises(RegistryError, match=r"settings\.yaml has unknown top-level keys: colour"):
        load_registry(registry_copy)


def test_an_unknown_field_is_named(registry_copy: Path) -> None:
    _edit(registry_copy / "gateways.yaml", lambda d: d["gateways"][0].update({"colour": "red"}))
    with pytest.raises(RegistryError, match=r"gateways\.yaml: 0\.colour: Extra inputs"):
        load_registry(registry_copy)


def test_an_unknown_family_is_named(registry_copy: Path) -> None:
    _edit(registry_copy / "gateways.yaml", lambda d: d["gateways"][1].update({"family": "hope"}))
    with pytest.raises(RegistryError, match=r"gateways\.yaml: 1\.family"):
        load_registry(registry_copy)


def test_an_unknown_agency_type_in_a_gateway_is_named(registry_copy: Path) -> None:
    _edit(
        registry_copy / "gateways.yaml",
        lambda d: d["gateways"][0]["to_whom"].append("fire_service"),
    )
    with pytest.raises(RegistryError, match=r"gateways\.yaml.*fire_service"):
        load_registry(registry_copy)


def test_a_duplicate_category_id_is_named(registry_copy: Path) -> None:
    def duplicate(document: Any) -> None:
        document["data_categories"].append(dict(document["data_categories"][0]))

    _edit(registry_copy / "data_categories.yaml", duplicate)
    with pytest.raises(RegistryError, match=r"data_categories\.yaml.*identity"):
        load_registry(registry_copy)


# -- the JSON Schemas of the registry files -----------------------------------------------


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_one_schema_per_registry_file() -> None:
    assert sorted(REGISTRY_DOCUMENT_MODELS) == sorted(REGISTRY_FILES)
    assert sorted(render_registry_schemas()) == sorted(
        f"{name}.schema.json" for name in REGISTRY_FILES
    )


def test_committed_registry_schemas_match_the_models() -> None:
    rendered = render_registry_schemas()
    committed = {path.name for path in SCHEMA_DIR.iterdir() if path.is_file()}
    problems = [
        *(f"missing: {name}" for name in sorted(set(rendered) - committed)),
        *(f"not generated by any model: {name}" for name in sorted(committed - set(rendered))),
        *(
            f"out of date: {name}"
            for name in sorted(set(rendered) & committed)
            if (SCHEMA_DIR / name).read_text(encoding="utf-8") != rendered[name]
        ),
    ]
    assert not problems, "\n".join([*problems, REGENERATE])


def test_registry_schema_rendering_is_deterministic() -> None:
    assert render_registry_schemas() == render_registry_schemas()
    for text in render_registry_schemas().values():
        assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text


@pytest.mark.parametrize("name", sorted(REGISTRY_FILES))
def test_every_registry_schema_names_its_dialect_and_forbids_unknown_fields(name: str) -> None:
    schema = json.loads(render_registry_schemas()[f"{name}.schema.json"])
    assert (
        schema["$schema"] == JSON_SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    )
    assert schema["$id"] == f"urn:seh:schema:registry:{name}"
    assert schema["required"] == [name]
    definitions = schema.get("$defs", {})
    for node in _walk(schema):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, node.get("title")
        ref = node.get("$ref")
        if ref is not None:
            assert ref.removeprefix("#/$defs/") in definitions


def test_main_writes_registry_schemas_and_removes_stale_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "schema"
    target.mkdir()
    (target / "retired.schema.json").write_text("{}\n")
    (target / "gateways.schema.json").write_text("{}\n")
    monkeypatch.setattr(schema_module, "SCHEMA_DIR", target)

    assert schema_module.main() == 0
    rendered = render_registry_schemas()
    assert sorted(p.name for p in target.iterdir()) == sorted(rendered)
    for name, text in rendered.items():
        assert (target / name).read_text(encoding="utf-8") == text
    assert "removed" in capsys.readouterr().out

    assert schema_module.main() == 0  # nothing to do the second time
    assert capsys.readouterr().out == ""
