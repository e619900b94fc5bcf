"""Wire models are strict, frozen and forbid unknown fields (STYLE.md rule 7).

Documents are parsed as the hub parses them at the edge: ``model_validate_json`` over the
bytes received, after ``loads_strict`` has refused duplicate keys, NaN and Infinity.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from hub.model import (
    INLINE_PAYLOAD_MAX_BYTES,
    Draft,
    Envelope,
    EnvelopeFields,
    Marking,
    PayloadDescriptor,
    StrictJSONError,
    loads_strict,
)

SENDER = "health.bsw-icb"
RECIPIENTS = ["la.wiltshire", "police.ctp-sw"]


def _b64(size: int, fill: bytes = b"\x00") -> str:
    return base64.b64encode(fill * size).decode("ascii")


def _envelope_doc() -> dict[str, Any]:
    """A valid envelope as it would arrive; the keys and signature are placeholders."""
    return {
        "version": 1,
        "id": "018f3c1e-7b2a-7c3d-8e4f-0123456789ab",
        "sender": SENDER,
        "created_at": "2024-06-01T12:00:00Z",
        "kind": "referral",
        "author": {"user_ref": "u-7f3a91", "role": "REFERRER", "vetting": "BPSS"},
        "recipients": list(RECIPIENTS),
        "marking": {"tier": "OFFICIAL", "sensitive": True, "descriptors": ["PERSONAL_DATA"]},
        "subject_ref": "subj-000123",
        "purpose": "PREVENT_REFERRAL",
        "payload": {
            "media_type": "application/json",
            "sha256": "ab" * 32,
            "size": 58,
            "transport": "inline",
            "inline": _b64(58),
            "sealed_keys": {node: _b64(80, b"k") for node in [*RECIPIENTS, SENDER]},
        },
        "signature": _b64(64, b"s"),
    }


def _parse(document: dict[str, Any]) -> Envelope:
    return Envelope.model_validate_json(json.dumps(document))


def _refused(document: dict[str, Any], error_type: str, loc: tuple[str | int, ...]) -> str:
    """Assert the envelope is refused with ``error_type`` at ``loc``; return the message."""
    with pytest.raises(ValidationError) as caught:
        _parse(document)
    errors = caught.value.errors(include_url=False)
    matching = [e for e in errors if e["type"] == error_type and tuple(e["loc"]) == loc]
    assert matching, f"expected {error_type} at {loc}, got {errors}"
    return str(matching[0]["msg"])


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    document = copy.deepcopy(_envelope_doc())
    change(document)
    return document


def test_the_valid_envelope_parses() -> None:
    # The positive control: every refusal below is due to its one change.
    envelope = _parse(_envelope_doc())
    assert envelope.sender == SENDER
    assert envelope.readers() == frozenset([*RECIPIENTS, SENDER])
    assert envelope.payload.inline_bytes() == b"\x00" * 58


# --------------------------------------------------------------------------------------
# Unknown fields and immutability
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        pytest.param(lambda d: d.__setitem__("note", "free text"), ("note",), id="top-level"),
        pytest.param(
            lambda d: d["author"].__setitem__("name", "A Person"), ("author", "name"), id="author"
        ),
        pytest.param(
            lambda d: d["payload"].__setitem__("filename", "x.pdf"),
            ("payload", "filename"),
            id="payload",
        ),
        pytest.param(
            lambda d: d["marking"].__setitem__("colour", "red"), ("marking", "colour"), id="marking"
        ),
        pytest.param(
            lambda d: d.__setitem__("Signature", d["signature"]), ("Signature",), id="case-variant"
        ),
    ],
)
def test_unknown_fields_are_refused(
    change: Callable[[dict[str, Any]], object], loc: tuple[str, ...]
) -> None:
    _refused(_changed(change), "extra_forbidden", loc)


def test_models_are_frozen() -> None:
    envelope = _parse(_envelope_doc())
    with pytest.raises(ValidationError, match="frozen"):
        envelope.sender = "police.ctp-sw"
    with pytest.raises(ValidationError, match="frozen"):
        envelope.payload.size = 1
    with pytest.raises(ValidationError, match="frozen"):
        envelope.marking.tier = "SECRET"
    assert envelope.sender == SENDER
    assert envelope.payload.size == 58


# --------------------------------------------------------------------------------------
# Strict types: nothing is coerced
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error_type", "loc"),
    [
        pytest.param(
            lambda d: d["payload"].__setitem__("size", "10"),
            "int_type",
            ("payload", "size"),
            id="size-as-string",
        ),
        pytest.param(
            lambda d: d["payload"].__setitem__("size", 10.0),
            "int_type",
            ("payload", "size"),
            id="size-as-float",
        ),
        pytest.param(
            lambda d: d["payload"].__setitem__("size", True),
            "int_type",
            ("payload", "size"),
            id="size-as-bool",
        ),
        pytest.param(
            lambda d: d["payload"].__setitem__("size", -1),
            "greater_than_equal",
            ("payload", "size"),
            id="negative-size",
        ),
        pytest.param(
            lambda d: d["marking"].__setitem__("sensitive", "true"),
            "bool_type",
            ("marking", "sensitive"),
            id="bool-as-string",
        ),
        pytest.param(
            lambda d: d["marking"].__setitem__("sensitive", 1),
            "bool_type",
            ("marking", "sensitive"),
            id="bool-as-int",
        ),
        pytest.param(
            lambda d: d.__setitem__("recipients", "la.wiltshire"),
            "tuple_type",
            ("recipients",),
            id="recipients-as-string",
        ),
        pytest.param(
            lambda d: d.__setitem__("created_at", 1717243200),
            "datetime_type",
            ("created_at",),
            id="epoch-seconds",
        ),
        pytest.param(lambda d: d.__setitem__("version", 2), "literal_error", ("version",), id="v2"),
        pytest.param(
            lambda d: d.__setitem__("version", "1"), "literal_error", ("version",), id="v-string"
        ),
        pytest.param(
            lambda d: d.__setitem__("kind", "gossip"), "literal_error", ("kind",), id="kind"
        ),
        pytest.param(
            lambda d: d["payload"].__setitem__("sha256", "AB" * 32),
            "string_pattern_mismatch",
            ("payload", "sha256"),
            id="upper-case-sha256",
        ),
        pytest.param(
            lambda d: d.__setitem__("signature", "not base64!"),
            "string_pattern_mismatch",
            ("signature",),
            id="signature-not-base64",
        ),
        pytest.param(
            lambda d: d.__setitem__("subject_ref", "Sam Testperson"),
            "string_pattern_mismatch",
            ("subject_ref",),
            id="free-text-subject-ref",
        ),
        pytest.param(
            lambda d: d.__setitem__("sender", "Health"),
            "string_pattern_mismatch",
            ("sender",),
            id="bad-node-id",
        ),
        pytest.param(
            lambda d: d.__setitem__("id", "018f3c1e-7b2a-4c3d-8e4f-0123456789ab"),
            "string_pattern_mismatch",
            ("id",),
            id="uuid4-not-uuid7",
        ),
    ],
)
def test_wrong_types_are_refused_not_coerced(
    change: Callable[[dict[str, Any]], object], error_type: str, loc: tuple[str, ...]
) -> None:
    _refused(_changed(change), error_type, loc)


# --------------------------------------------------------------------------------------
# Recipients and sealed keys
# --------------------------------------------------------------------------------------


def test_duplicate_recipients_are_refused() -> None:
    def repeat(d: dict[str, Any]) -> None:
        d["recipients"] = ["la.wiltshire", "police.ctp-sw", "la.wiltshire"]

    assert "must not repeat" in _refused(_changed(repeat), "value_error", ("recipients",))
    with pytest.raises(ValidationError, match="must not repeat"):
        EnvelopeFields.model_validate_json(
            json.dumps(
                {k: v for k, v in _changed(repeat).items() if k in EnvelopeFields.model_fields}
            )
        )


@pytest.mark.parametrize(
    ("recipients", "error_type"),
    [([], "too_short"), ([f"la.council-{i}" for i in range(65)], "too_long")],
)
def test_recipient_count_is_bounded(recipients: list[str], error_type: str) -> None:
    def set_recipients(d: dict[str, Any]) -> None:
        d["recipients"] = recipients
        d["payload"]["sealed_keys"] = {n: _b64(80) for n in [*recipients, SENDER]}

    _refused(_changed(set_recipients), error_type, ("recipients",))


def test_sender_among_recipients_is_refused() -> None:
    def to_self(d: dict[str, Any]) -> None:
        d["recipients"] = [*RECIPIENTS, SENDER]

    assert "cannot send a message to itself" in _refused(_changed(to_self), "value_error", ())


def test_sealed_keys_missing_a_recipient_are_refused() -> None:
    message = _refused(
        _changed(lambda d: d["payload"]["sealed_keys"].pop("police.ctp-sw")), "value_error", ()
    )
    assert "lacks a key for police.ctp-sw" in message


def test_sealed_keys_for_a_stranger_are_refused() -> None:
    message = _refused(
        _changed(lambda d: d["payload"]["sealed_keys"].__setitem__("education.stranger", _b64(80))),
        "value_error",
        (),
    )
    assert "education.stranger" in message


def test_the_sender_may_omit_its_own_sealed_key() -> None:
    envelope = _parse(_changed(lambda d: d["payload"]["sealed_keys"].pop(SENDER)))
    assert set(envelope.payload.sealed_keys) == set(RECIPIENTS)


# --------------------------------------------------------------------------------------
# Payload transport
# --------------------------------------------------------------------------------------


def _descriptor(**changes: Any) -> dict[str, Any]:
    descriptor: dict[str, Any] = _envelope_doc()["payload"]
    descriptor.update(changes)
    return {k: v for k, v in descriptor.items() if v is not None}


def test_inline_transport_without_inline_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs its ciphertext in 'inline'"):
        PayloadDescriptor.model_validate_json(json.dumps(_descriptor(inline=None)))


def test_blob_transport_with_inline_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not also carry 'inline'"):
        PayloadDescriptor.model_validate_json(json.dumps(_descriptor(transport="blob")))
    blob = _descriptor(transport="blob", inline=None, size=10 * INLINE_PAYLOAD_MAX_BYTES)
    assert PayloadDescriptor.model_validate_json(json.dumps(blob)).transport == "blob"


def test_inline_payload_over_64_kib_is_refused() -> None:
    assert INLINE_PAYLOAD_MAX_BYTES == 65536
    at_limit = _descriptor(size=65536, inline=_b64(65536))
    assert PayloadDescriptor.model_validate_json(json.dumps(at_limit)).size == 65536
    over = _descriptor(size=65537, inline=_b64(65537))
    with pytest.raises(ValidationError, match="inline payloads are at most 65536 bytes"):
        PayloadDescriptor.model_validate_json(json.dumps(over))


def test_unknown_cipher_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        PayloadDescriptor.model_validate_json(json.dumps(_descriptor(cipher="aes-256-gcm")))
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("literal_error", ("cipher",))
    ]


# --------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "created_at",
    [
        pytest.param("2024-06-01T12:00:00", id="no-timezone"),
        pytest.param("2024-06-01T13:00:00+01:00", id="not-utc"),
        pytest.param("2024-06-01T07:00:00-05:00", id="negative-offset"),
    ],
)
def test_created_at_must_be_utc_with_a_timezone(created_at: str) -> None:
    message = _refused(
        _changed(lambda d: d.__setitem__("created_at", created_at)), "value_error", ("created_at",)
    )
    assert "UTC" in message


@pytest.mark.parametrize("created_at", ["2024-06-01T12:00:00Z", "2024-06-01T12:00:00+00:00"])
def test_created_at_in_utc_is_accepted(created_at: str) -> None:
    envelope = _parse(_changed(lambda d: d.__setitem__("created_at", created_at)))
    assert envelope.created_at.utcoffset() is not None
    assert envelope.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------
# Drafts
# --------------------------------------------------------------------------------------


def _draft(payload: dict[str, Any]) -> str:
    envelope = {
        k: v
        for k, v in _envelope_doc().items()
        if k not in {"version", "id", "sender", "created_at", "payload", "signature"}
    }
    return json.dumps({"envelope": envelope, "payload": payload})


def test_draft_leaves_id_sender_and_time_to_the_node() -> None:
    draft = Draft.model_validate_json(_draft({"content": {"form": "synthetic"}}))
    assert (draft.envelope.id, draft.envelope.sender, draft.envelope.created_at) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({}, id="neither"),
        pytest.param({"content": {"a": 1}, "file": "referral.pdf"}, id="both"),
    ],
)
def test_draft_payload_needs_exactly_one_source(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'content' or 'file'"):
        Draft.model_validate_json(_draft(payload))


# --------------------------------------------------------------------------------------
# loads_strict
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b'{"a": 1, "a": 2}', "duplicate key 'a'", id="duplicate-top-level"),
        pytest.param(b'{"a": {"b": 1, "b": 1}}', "duplicate key 'b'", id="duplicate-nested"),
        pytest.param(b'[{"x": 1}, {"x": 1, "x": 1}]', "duplicate key 'x'", id="duplicate-in-array"),
        pytest.param(b'{"size": NaN}', "NaN is not allowed", id="nan"),
        pytest.param(b'{"size": Infinity}', "Infinity is not allowed", id="infinity"),
        pytest.param(b'{"size": -Infinity}', "-Infinity is not allowed", id="minus-infinity"),
        pytest.param(b"[NaN]", "NaN is not allowed", id="nan-in-array"),
        pytest.param(b'{"a": 1', "not valid JSON", id="truncated"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"{'a': 1}", "not valid JSON", id="single-quotes"),
        pytest.param(b'{"a": "\xff"}', "not valid JSON", id="invalid-utf8"),
    ],
)
def test_loads_strict_refuses(raw: bytes, message: str) -> None:
    with pytest.raises(StrictJSONError, match=message):
        loads_strict(raw)


def test_loads_strict_accepts_ordinary_json() -> None:
    assert loads_strict(b'{"a": [1, 2.5, "x", null, true], "b": {"a": 1}}') == {
        "a": [1, 2.5, "x", None, True],
        "b": {"a": 1},
    }
    assert loads_strict('{"caf\u00e9": 1e3}') == {"caf\u00e9": 1000.0}
    # Equal keys in different objects are not duplicates.
    assert loads_strict(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


def test_strict_json_error_is_a_value_error() -> None:
    # Callers that only know ValueError still catch it.
    assert issubclass(StrictJSONError, ValueError)


# --------------------------------------------------------------------------------------
# Marking.render
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marking", "rendered"),
    [
        (Marking(tier="OFFICIAL"), "OFFICIAL"),
        (Marking(tier="OFFICIAL", sensitive=True), "OFFICIAL-SENSITIVE"),
        (
            Marking(tier="OFFICIAL", sensitive=True, descriptors=("PERSONAL_DATA",)),
            "OFFICIAL-SENSITIVE - PERSONAL DATA",
        ),
        (
            Marking(tier="OFFICIAL", sensitive=True, handling="RECIPIENTS_ONLY"),
            "OFFICIAL-SENSITIVE - RECIPIENTS ONLY",
        ),
        (
            Marking(
                tier="OFFICIAL",
                sensitive=True,
                handling="ORG_USE_ONLY",
                handling_orgs=("POLICE", "WILTSHIRE COUNCIL"),
            ),
            "OFFICIAL-SENSITIVE - POLICE / WILTSHIRE COUNCIL USE ONLY",
        ),
        (
            Marking(tier="OFFICIAL", handling="ORG_USE_ONLY", handling_orgs=("NHS",)),
            "OFFICIAL - NHS USE ONLY",
        ),
        (
            Marking(
                tier="OFFICIAL",
                sensitive=True,
                uk_prefix=True,
                handling="RECIPIENTS_ONLY",
                descriptors=("PERSONAL_DATA", "HR_MANAGEMENT"),
            ),
            "UK OFFICIAL-SENSITIVE - RECIPIENTS ONLY - PERSONAL DATA - HR / MANAGEMENT",
        ),
        (
            Marking(tier="OFFICIAL", sensitive=True, descriptors=("LPP",)),
            "OFFICIAL-SENSITIVE - LEGAL PROFESSIONAL PRIVILEGE (LPP)",
        ),
        (
            Marking(tier="OFFICIAL", sensitive=True, descriptors=("NEW_DESCRIPTOR",)),
            "OFFICIAL-SENSITIVE - NEW DESCRIPTOR",
        ),
        (Marking(tier="SECRET", national_caveats=("UK EYES ONLY",)), "SECRET - UK EYES ONLY"),
    ],
)
def test_marking_render(marking: Marking, rendered: str) -> None:
    assert marking.render() == rendered


def test_marking_render_never_shows_a_lower_tier_than_the_marking() -> None:
    # An invalid SECRET + -SENSITIVE renders as written, never as OFFICIAL-SENSITIVE.
    assert Marking(tier="SECRET", sensitive=True).render() == "SECRET-SENSITIVE"


def test_org_use_only_needs_its_organisations() -> None:
    with pytest.raises(ValidationError, match="ORG_USE_ONLY needs the organisations"):
        Marking(tier="OFFICIAL", handling="ORG_USE_ONLY")
    with pytest.raises(ValidationError, match="only for the ORG_USE_ONLY"):
        Marking(tier="OFFICIAL", handling="HMG_USE_ONLY", handling_orgs=("NHS",))


def test_node_ids_with_a_trailing_newline_are_not_node_ids() -> None:
    from hub.model import is_node_id

    assert is_node_id("health.bsw-icb")
    assert not is_node_id("health.bsw-icb\n")
