"""EM-01 and EM-02: the secure email list (schemas/registry/secure_email_domains.yaml)."""

from __future__ import annotations

import pytest

from hub.model import Marking
from hub.policy.registry import Registry, SecureEmailDomain, load_registry
from hub.policy.secure_email import domain_entry, email_domain, email_transport_violations

OFFICIAL = Marking(tier="OFFICIAL")
OFFICIAL_SENSITIVE = Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def rules(registry: Registry, address: str, marking: Marking | None = None) -> list[str]:
    return [v.rule for v in email_transport_violations(registry, address, marking)]


def test_the_sources_routes_carry_official_sensitive(registry: Registry) -> None:
    # Seed 004: "using secure email i.e. via your NHS.net account", marked OFFICIAL SENSITIVE.
    assert rules(registry, "a.nurse@nhs.net", OFFICIAL_SENSITIVE) == []
    # REFERENCE 1.8 HR-08: *.gov.uk bodies encrypt email in transit.
    assert rules(registry, "prevent@wiltshire.gov.uk", OFFICIAL_SENSITIVE) == []


def test_nhs_net_covers_only_itself_and_gov_uk_its_subdomains(registry: Registry) -> None:
    assert rules(registry, "x@fake.nhs.net") == ["EM-01"]
    assert rules(registry, "x@gov.uk") == []
    assert rules(registry, "x@notgov.uk") == ["EM-01"]  # a suffix, not a subdomain


@pytest.mark.parametrize("address", ["mentor@gmail.com", "someone@example.com", "x@hotmail.co.uk"])
def test_personal_and_unlisted_mail_is_refused_with_em_01(registry: Registry, address: str) -> None:
    (violation,) = email_transport_violations(registry, address)
    assert violation.rule == "EM-01"
    assert "never personal email" in violation.message


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "two@@x.gov.uk", "a b@x.gov.uk", "x@-bad.gov.uk", "x@gov"]
)
def test_what_is_not_one_plain_address_is_named(registry: Registry, address: str) -> None:
    assert email_domain(address) is None
    (violation,) = email_transport_violations(registry, address)
    assert (violation.rule, violation.path) == ("EM-01", "$.email")
    assert "not one plain email address" in violation.message


def test_case_and_a_trailing_dot_do_not_matter(registry: Registry) -> None:
    assert email_domain("A.Nurse@NHS.NET") == "nhs.net"
    assert rules(registry, "A.Nurse@NHS.NET.", OFFICIAL_SENSITIVE) == []


def test_a_marking_above_the_domains_highest_is_em_02_and_the_most_specific_entry_wins(
    registry: Registry,
) -> None:
    narrowed = registry.model_copy(
        update={
            "secure_email_domains": [
                *registry.secure_email_domains,
                SecureEmailDomain(
                    domain="volunteers.example.gov.uk",
                    subdomains=True,
                    highest_marking="OFFICIAL",
                    summary="test",
                    source="test",
                ),
            ]
        }
    )
    entry = domain_entry(narrowed, "m@team.volunteers.example.gov.uk")
    assert entry is not None
    assert entry.domain == "volunteers.example.gov.uk"
    assert rules(narrowed, "m@team.volunteers.example.gov.uk", OFFICIAL) == []
    (violation,) = email_transport_violations(
        narrowed, "m@team.volunteers.example.gov.uk", OFFICIAL_SENSITIVE
    )
    assert (violation.rule, violation.path) == ("EM-02", "$.marking")
    assert "at most OFFICIAL" in violation.message
    # The rest of gov.uk still carries OFFICIAL-SENSITIVE.
    assert rules(narrowed, "prevent@wiltshire.gov.uk", OFFICIAL_SENSITIVE) == []


def test_every_entry_cites_a_source_and_the_rules_are_registered(registry: Registry) -> None:
    assert registry.secure_email_domains
    assert all(entry.source and entry.summary for entry in registry.secure_email_domains)
    assert {"EM-01", "EM-02"} <= registry.rule_ids()


def test_a_domain_listed_twice_is_refused_naming_the_file(registry: Registry) -> None:
    from pydantic import ValidationError

    doubled = registry.model_dump()
    doubled["secure_email_domains"] = [*doubled["secure_email_domains"]] * 2
    with pytest.raises(ValidationError, match=r"secure_email_domains.yaml: secure email domain"):
        Registry.model_validate(doubled)


def test_a_marking_the_hub_never_carries_is_not_a_highest(registry: Registry) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="highest_marking"):
        SecureEmailDomain(
            domain="x.gov.uk",
            highest_marking="SECRET",
            summary="s",
            source="s",  # type: ignore[arg-type]
        )
