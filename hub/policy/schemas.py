"""JSON Schemas of the policy registry files, generated into ``schemas/registry/schema/``.

The YAML files in ``schemas/registry/`` are policy as data, reviewed by information
governance staff; :func:`hub.policy.registry.load_registry` validates them at start-up.
These schemas describe the same document shapes for editors, reviewers and tools in
other languages; the pydantic models in :mod:`hub.policy.registry` stay the source of
truth, and ``tests/policy/test_registry_data.py`` fails when the committed files drift
from them. Regenerate with::

    python -m hub.policy.schemas

Each schema is JSON Schema draft 2020-12 with ``$id`` ``urn:seh:schema:registry:<name>``,
written with sorted keys so that a regeneration with no model change leaves every file
byte-for-byte the same. Cross-references between files (an agency type named in a
gateway, a gateway named in an agreement) are checked by the loader, not by the schemas.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from hub.model.schemas import (
    JSON_SCHEMA_DIALECT,
    render_model_schemas,
    schema_filename,
    write_schema_files,
)
from hub.policy.registry import (
    AgencyTypeEntry,
    DataCategory,
    DataSharingAgreement,
    DecisionReason,
    Gateway,
    MarkingsRegistry,
    PolicySettings,
    Purpose,
    RetentionPolicy,
    RolesRegistry,
    RuleText,
    SecureEmailDomain,
)

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "REGISTRY_DOCUMENT_MODELS",
    "SCHEMA_DIR",
    "main",
    "render_registry_schemas",
    "schema_filename",
]

# hub/policy/schemas.py -> the repository root is three levels up.
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "registry" / "schema"


class _RegistryDocument(BaseModel):
    # The loader refuses unknown top-level keys; the schemas say the same.
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarkingsDocument(_RegistryDocument):
    """``markings.yaml``: protective marking tiers, handling instructions, descriptors."""

    markings: MarkingsRegistry


class AgencyTypesDocument(_RegistryDocument):
    """``agency_types.yaml``: the kinds of organisation that run a node."""

    agency_types: list[AgencyTypeEntry]


class GatewaysDocument(_RegistryDocument):
    """``gateways.yaml``: every lawful gateway a legal basis may cite."""

    gateways: list[Gateway]


class DataCategoriesDocument(_RegistryDocument):
    """``data_categories.yaml``: what a request's scope may name."""

    data_categories: list[DataCategory]


class PurposesDocument(_RegistryDocument):
    """``purposes.yaml``: purpose codes, the kinds that may use them, and deadlines."""

    purposes: list[Purpose]


class RulesDocument(_RegistryDocument):
    """``rules.yaml``: every rule the hub enforces, with its stable id."""

    rules: list[RuleText]


class AgreementsDocument(_RegistryDocument):
    """``agreements.yaml``: data sharing agreements a legal basis may cite."""

    agreements: list[DataSharingAgreement]


class SettingsDocument(_RegistryDocument):
    """``settings.yaml``: hub-wide policy settings."""

    settings: PolicySettings


class RolesDocument(_RegistryDocument):
    """``roles.yaml``: which roles may refer, decide and release; consultations to record."""

    roles: RolesRegistry


class DecisionReasonsDocument(_RegistryDocument):
    """``decision_reasons.yaml``: the reason codes a decision may give (local policy)."""

    decision_reasons: list[DecisionReason]


class RetentionDocument(_RegistryDocument):
    """``retention.yaml``: how long the hub keeps each kind's ciphertext (local policy)."""

    retention: RetentionPolicy


class SecureEmailDomainsDocument(_RegistryDocument):
    """``secure_email_domains.yaml``: where the email bridge may send, up to which marking."""

    secure_email_domains: list[SecureEmailDomain]


# One document model per registry file, keyed by the file's top-level key (which is also
# its name without ``.yaml``; see hub.policy.registry.REGISTRY_FILES).
REGISTRY_DOCUMENT_MODELS: dict[str, type[BaseModel]] = {
    "markings": MarkingsDocument,
    "agency_types": AgencyTypesDocument,
    "gateways": GatewaysDocument,
    "data_categories": DataCategoriesDocument,
    "purposes": PurposesDocument,
    "rules": RulesDocument,
    "agreements": AgreementsDocument,
    "settings": SettingsDocument,
    "roles": RolesDocument,
    "decision_reasons": DecisionReasonsDocument,
    "retention": RetentionDocument,
    "secure_email_domains": SecureEmailDomainsDocument,
}


def render_registry_schemas() -> dict[str, str]:
    """``{"<name>.schema.json": JSON text}`` for every registry file's document shape."""
    return render_model_schemas(REGISTRY_DOCUMENT_MODELS, "urn:seh:schema:registry:")


def main() -> int:
    """Write every schema into ``schemas/registry/schema/``; remove ones no model makes."""
    write_schema_files(render_registry_schemas(), SCHEMA_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
