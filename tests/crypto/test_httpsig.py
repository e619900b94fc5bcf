"""Tests for ``hub.crypto.httpsig``: RFC 9421 request signatures and RFC 9530 digests.

Every key in this file is an insecure test key: fixed seeds, or the key the RFC itself
publishes. None may ever sign anything real.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import time
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from multidict import CIMultiDict, CIMultiDictProxy

from hub.crypto.httpsig import (
    REQUIRED_COMPONENTS,
    SIGNATURE_LABEL,
    ContentDigester,
    ParsedSignature,
    SignatureRejected,
    content_digest_header,
    content_digest_matches,
    parse_signature,
    sign_request,
    signature_base,
    verify_request,
)
from hub.crypto.keys import NodeKeys, SigningKey, verify_detached

# Insecure test keys: deterministic seeds, never used outside tests.
KEYS = NodeKeys.from_seed(b"\x01" * 32)
OTHER_KEYS = NodeKeys.from_seed(b"\x02" * 32)
KEYID = "node:test-agency"

NOW = 1_700_000_000
NONCE = "bm9uY2UtMDAwMQ"
METHOD = "POST"
PATH = "/v1/messages/abc%20def"
QUERY = "since=2024-01-01T00%3A00%3A00Z&limit=10"
BODY = b'{"hello": "world"}'
DIGEST = content_digest_header(BODY)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _signed(**overrides: object) -> dict[str, str]:
    args: dict[str, object] = {
        "method": METHOD,
        "path": PATH,
        "query": QUERY,
        "body_digest_header": DIGEST,
        "key": KEYS.signing,
        "keyid": KEYID,
        "created": NOW,
        "nonce": NONCE,
    }
    args.update(overrides)
    return sign_request(**args)  # type: ignore[arg-type]


def _verify(headers: dict[str, str], **overrides: object) -> ParsedSignature:
    args: dict[str, object] = {
        "method": METHOD,
        "path": PATH,
        "query": QUERY,
        "headers": headers,
        "public_key": KEYS.public.signing,
        "now": NOW,
    }
    args.update(overrides)
    return verify_request(**args)  # type: ignore[arg-type]


def _sign_raw(
    components: tuple[str, ...],
    params: str,
    *,
    label: str = SIGNATURE_LABEL,
    values: dict[str, str] | None = None,
) -> dict[str, str]:
    """Sign an arbitrary ``Signature-Input`` member, building the base independently.

    This writes the RFC 9421 section 2.5 base by hand (not with ``signature_base``),
    so that a refusal below is the verifier's policy and not a broken signature.
    """
    known = {
        "@method": METHOD,
        "@path": PATH,
        "@query": "?" + QUERY,
        "content-digest": DIGEST,
        **(values or {}),
    }
    inner = "(" + " ".join(f'"{name}"' for name in components) + ")" + params
    lines = [f'"{name}": {known[name]}' for name in components]
    lines.append(f'"@signature-params": {inner}')
    signature = KEYS.signing.sign_detached("\n".join(lines).encode("ascii"))
    return {
        "Signature-Input": f"{label}={inner}",
        "Signature": f"{label}=:{_b64(signature)}:",
        "Content-Digest": DIGEST,
    }


FULL_PARAMS = f';created={NOW};keyid="{KEYID}";alg="ed25519";nonce="{NONCE}"'


# ---------------------------------------------------------------------------------------
# 1. Round trip
# ---------------------------------------------------------------------------------------


def test_round_trip() -> None:
    headers = _signed()
    parsed = _verify(headers)
    assert parsed.label == SIGNATURE_LABEL
    assert parsed.components == REQUIRED_COMPONENTS
    assert (parsed.keyid, parsed.created, parsed.nonce) == (KEYID, NOW, NONCE)
    assert parsed.alg == "ed25519"
    assert parsed.expires is None
    assert len(parsed.signature) == 64
    assert headers["Content-Digest"] == DIGEST
    assert content_digest_matches(headers["Content-Digest"], hashlib.sha256(BODY).digest())


def test_sign_request_serialization_is_exact() -> None:
    headers = _signed()
    expected_params = (
        '("@method" "@path" "@query" "content-digest")'
        f';created={NOW};keyid="{KEYID}";alg="ed25519";nonce="{NONCE}"'
    )
    assert headers["Signature-Input"] == f"sig1={expected_params}"
    assert headers["Signature"].startswith("sig1=:")
    assert headers["Signature"].endswith(":")
    parsed = parse_signature(headers)
    assert parsed.signature_params == expected_params
    base = signature_base(parsed, method=METHOD, path=PATH, query=QUERY, headers=headers)
    assert base == (
        f'"@method": {METHOD}\n"@path": {PATH}\n"@query": ?{QUERY}\n'
        f'"content-digest": {DIGEST}\n"@signature-params": {expected_params}'
    ).encode("ascii")


def test_round_trip_with_empty_query() -> None:
    # RFC 9421 section 2.2.7: with no query the @query value is "?" alone.
    headers = _signed(query="")
    parsed = _verify(headers, query="")
    base = signature_base(parsed, method=METHOD, path=PATH, query="", headers=headers)
    assert b'\n"@query": ?\n' in base
    with pytest.raises(SignatureRejected):
        _verify(headers, query="x=1")


def test_round_trip_with_aiohttp_headers_and_given_parse() -> None:
    # aiohttp hands the hub a CIMultiDictProxy with wire spelling of names; the
    # Signature-Input dictionary here is split over two field lines (RFC 8941 4.2).
    signed = _signed()
    label, params = signed["Signature-Input"].split("=", 1)
    raw = CIMultiDict[str]()
    raw.add("content-digest", signed["Content-Digest"])
    raw.add("SIGNATURE-INPUT", 'other=("@method");created=1;keyid="x"')
    raw.add("Signature-Input", f"{label}={params}")
    raw.add("signature", signed["Signature"])
    headers = CIMultiDictProxy(raw)
    parsed = parse_signature(headers)
    assert parsed.label == SIGNATURE_LABEL
    assert (
        verify_request(
            method=METHOD,
            path=PATH,
            query=QUERY,
            headers=headers,
            public_key=KEYS.public.signing,
            now=NOW,
            parsed=parsed,
        )
        == parsed
    )


def test_created_window_edges_accepted() -> None:
    headers = _signed()
    _verify(headers, now=NOW + 300)
    _verify(headers, now=NOW - 300)
    _verify(headers, now=NOW + 30, max_skew=30)


def test_unexpired_expires_accepted() -> None:
    headers = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS + f";expires={NOW + 60}")
    assert _verify(headers, now=NOW + 60).expires == NOW + 60


def test_sign_request_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="Content-Digest"):
        _signed(body_digest_header="not a digest!")
    with pytest.raises(ValueError, match="printable ASCII"):
        _signed(nonce="line\nbreak")
    with pytest.raises(ValueError, match="empty"):
        _signed(nonce="")


# ---------------------------------------------------------------------------------------
# 2. Interoperability with the independent http-message-signatures package (3.0.0)
# ---------------------------------------------------------------------------------------


@dataclass
class _PackageRequest:
    """The request view http_message_signatures' component resolver reads.

    ``requests`` is not installed, and the package does not need it: its resolver
    (``HTTPSignatureComponentResolver``) reads an uppercase ``method``, an encoded
    absolute ``url`` and ``headers``, and treats an object without ``status_code`` as a
    request. Signing also assigns and deletes headers; a plain dict does all of that.
    """

    method: str
    url: str
    headers: dict[str, str]


def _package_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(KEYS.signing.seed)


@pytest.mark.parametrize(("path", "query"), [(PATH, QUERY), ("/v1/inbox", "")])
def test_package_signature_accepted_by_our_verifier(path: str, query: str) -> None:
    url = f"https://hub.example{path}" + (f"?{query}" if query else "")
    message = _PackageRequest(method="PUT", url=url, headers={"Content-Type": "application/json"})
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={KEYID: _package_key()}),
    )
    signer.sign(
        message,
        key_id=KEYID,
        created=datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC),
        nonce=NONCE,
        label=SIGNATURE_LABEL,
        include_alg=True,
        covered_component_ids=REQUIRED_COMPONENTS,
        body=BODY,  # the package writes its own Content-Digest from the body
    )
    parsed = verify_request(
        method="PUT",
        path=path,
        query=query,
        headers=message.headers,
        public_key=KEYS.public.signing,
        now=NOW,
    )
    assert parsed.components == REQUIRED_COMPONENTS
    assert (parsed.keyid, parsed.created, parsed.nonce, parsed.alg) == (
        KEYID,
        NOW,
        NONCE,
        "ed25519",
    )
    # Their RFC 9530 digest is the one we would write, and it matches the body.
    assert message.headers["Content-Digest"] == content_digest_header(BODY)
    assert content_digest_matches(message.headers["Content-Digest"], hashlib.sha256(BODY).digest())
    # A tampered request signed by them is refused by us.
    with pytest.raises(SignatureRejected):
        verify_request(
            method="POST",
            path=path,
            query=query,
            headers=message.headers,
            public_key=KEYS.public.signing,
            now=NOW,
        )


def test_our_signature_accepted_by_package_verifier() -> None:
    # The package checks "created" against the real clock (5 s of skew), so sign now.
    created = int(time.time())
    headers = _signed(created=created)
    message = _PackageRequest(
        method=METHOD, url=f"https://hub.example{PATH}?{QUERY}", headers=dict(headers)
    )
    public = ed25519.Ed25519PublicKey.from_public_bytes(KEYS.public.signing)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={KEYID: public}, private_keys={}),
    )
    results = verifier.verify(message, require_components=REQUIRED_COMPONENTS, body=BODY)
    assert len(results) == 1
    assert results[0].label == SIGNATURE_LABEL
    assert results[0].nonce == NONCE
    assert results[0].parameters["created"] == created
    assert results[0].body == BODY  # they checked our Content-Digest against the body
    tampered = dataclasses.replace(message, url=f"https://hub.example/v1/other?{QUERY}")
    with pytest.raises(InvalidSignature):
        verifier.verify(tampered, require_components=REQUIRED_COMPONENTS, body=BODY)


def test_content_digest_matches_package_digest() -> None:
    for body in (b"", BODY, bytes(range(256)) * 100):
        assert content_digest_header(body) == ContentDigest.create(body)


# ---------------------------------------------------------------------------------------
# 3. RFC 9421 Appendix B.2.6: Signing a Request Using ed25519
# ---------------------------------------------------------------------------------------

# Appendix B.1.4, "test-key-ed25519": a key the RFC publishes, so an insecure test key.
# The JWK "d" is the 32-byte seed and "x" the public key, both base64url; the PKCS#8
# form is the same seed behind a fixed 16-byte DER prefix.
RFC9421_ED25519_JWK_D = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
RFC9421_ED25519_JWK_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
RFC9421_ED25519_PKCS8_B64 = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF"

# Appendix B.2.6: the covered components and parameters of label "sig-b26" ...
RFC9421_B26_SIGNATURE_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
# ... and the published signature.
RFC9421_B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1"
    "u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
)
# Appendix B.2.6: the signature base the RFC prints for it.
RFC9421_B26_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)
# Appendix B.2: the test request, POST /foo?param=Value&Pet=dog to example.com; only
# the fields B.2.6 covers are needed (plus Host, the source of @authority).
RFC9421_B2_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Length": "18",
}


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rfc_b26_parsed() -> ParsedSignature:
    params = RFC9421_B26_SIGNATURE_INPUT.removeprefix("sig-b26=")
    signature = base64.b64decode(RFC9421_B26_SIGNATURE.removeprefix("sig-b26=").strip(":"))
    return ParsedSignature(
        label="sig-b26",
        components=("date", "@method", "@path", "@authority", "content-type", "content-length"),
        keyid="test-key-ed25519",
        created=1618884473,
        nonce="",
        alg=None,
        expires=None,
        signature=signature,
        signature_params=params,
    )


def test_rfc9421_b14_key_forms_agree() -> None:
    seed = _b64url(RFC9421_ED25519_JWK_D)
    assert len(seed) == 32
    assert base64.b64decode(RFC9421_ED25519_PKCS8_B64)[-32:] == seed
    assert SigningKey(seed).public_bytes == _b64url(RFC9421_ED25519_JWK_X)


def test_rfc9421_b26_signature_verifies_over_our_base() -> None:
    parsed = _rfc_b26_parsed()
    headers = {**RFC9421_B2_HEADERS, "Signature-Input": RFC9421_B26_SIGNATURE_INPUT}
    base = signature_base(
        parsed,
        method="POST",
        path="/foo",
        query="param=Value&Pet=dog",
        headers=headers,
        authority=headers["Host"],
    )
    assert base == RFC9421_B26_BASE.encode("ascii")
    public = _b64url(RFC9421_ED25519_JWK_X)
    verify_detached(public, base, parsed.signature)
    # Ed25519 is deterministic, so the RFC's seed reproduces the published signature.
    assert SigningKey(_b64url(RFC9421_ED25519_JWK_D)).sign_detached(base) == parsed.signature
    # And the whole verify path (clock, base, signature) accepts it at its own time.
    assert (
        verify_request(
            method="POST",
            path="/foo",
            query="param=Value&Pet=dog",
            headers=headers,
            public_key=public,
            now=1618884473,
            parsed=parsed,
            authority="example.com",
        )
        == parsed
    )


def test_rfc9421_b26_refused_by_hub_policy() -> None:
    # The RFC example covers neither @query nor content-digest and has no nonce, so the
    # hub's parser refuses it even though the signature itself is good.
    headers = {
        **RFC9421_B2_HEADERS,
        "Signature-Input": RFC9421_B26_SIGNATURE_INPUT,
        "Signature": RFC9421_B26_SIGNATURE,
    }
    with pytest.raises(SignatureRejected, match="required components"):
        parse_signature(headers)


def test_authority_needed_when_covered() -> None:
    with pytest.raises(SignatureRejected):
        signature_base(
            _rfc_b26_parsed(),
            method="POST",
            path="/foo",
            query="",
            headers=RFC9421_B2_HEADERS,
        )


# ---------------------------------------------------------------------------------------
# 4. Refusals
# ---------------------------------------------------------------------------------------


def test_raw_helper_signature_is_accepted() -> None:
    # Guards the refusal tests below: the hand-built base is the one we verify.
    assert _verify(_sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS)).nonce == NONCE


def test_tampered_path_rejected() -> None:
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(_signed(), path="/v1/messages/other")


def test_tampered_query_rejected() -> None:
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(_signed(), query=QUERY + "&x=1")


def test_tampered_method_rejected() -> None:
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(_signed(), method="DELETE")


def test_changed_content_digest_rejected() -> None:
    headers = _signed()
    headers["Content-Digest"] = content_digest_header(b"another body")
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(headers)


def test_missing_content_digest_rejected() -> None:
    headers = _signed()
    del headers["Content-Digest"]
    with pytest.raises(SignatureRejected, match="absent"):
        _verify(headers)


def test_wrong_key_rejected() -> None:
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(_signed(), public_key=OTHER_KEYS.public.signing)


def test_signed_by_wrong_key_rejected() -> None:
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(_signed(key=OTHER_KEYS.signing))


@pytest.mark.parametrize(
    ("now", "reason"),
    [(NOW + 301, "too old"), (NOW - 301, "future"), (NOW + 100_000, "too old")],
)
def test_created_outside_window_rejected(now: int, reason: str) -> None:
    with pytest.raises(SignatureRejected, match=reason):
        _verify(_signed(), now=now)


def test_created_outside_narrow_window_rejected() -> None:
    with pytest.raises(SignatureRejected):
        _verify(_signed(), now=NOW + 31, max_skew=30)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (f';created={NOW};keyid="{KEYID}";alg="ed25519"', "nonce missing"),
        (f';created={NOW};keyid="{KEYID}";alg="ed25519";nonce=""', "nonce missing"),
        (f';created={NOW};alg="ed25519";nonce="{NONCE}"', "keyid missing"),
        (f';keyid="{KEYID}";alg="ed25519";nonce="{NONCE}"', "created missing"),
        (f';created="{NOW}";keyid="{KEYID}";nonce="{NONCE}"', "not an integer"),
        (f';created={NOW};keyid=node;nonce="{NONCE}"', "not a string"),
        (f';created=?1;keyid="{KEYID}";nonce="{NONCE}"', "not an integer"),
        (FULL_PARAMS + ';context="x"', "unknown signature parameter"),
    ],
)
def test_bad_signature_parameters_rejected(params: str, reason: str) -> None:
    with pytest.raises(SignatureRejected, match=reason):
        _verify(_sign_raw(REQUIRED_COMPONENTS, params))


@pytest.mark.parametrize("missing", REQUIRED_COMPONENTS)
def test_required_component_not_covered_rejected(missing: str) -> None:
    components = tuple(name for name in REQUIRED_COMPONENTS if name != missing)
    with pytest.raises(SignatureRejected, match="required components not covered"):
        _verify(_sign_raw(components, FULL_PARAMS))


@pytest.mark.parametrize("alg", ["rsa-pss-sha512", "hmac-sha256", "ED25519", "ecdsa-p256-sha256"])
def test_alg_other_than_ed25519_rejected(alg: str) -> None:
    params = f';created={NOW};keyid="{KEYID}";alg="{alg}";nonce="{NONCE}"'
    with pytest.raises(SignatureRejected, match="alg"):
        _verify(_sign_raw(REQUIRED_COMPONENTS, params))


def test_alg_absent_accepted() -> None:
    # RFC 9421 section 2.3: alg is optional; the key decides the algorithm.
    params = f';created={NOW};keyid="{KEYID}";nonce="{NONCE}"'
    assert _verify(_sign_raw(REQUIRED_COMPONENTS, params)).alg is None


def test_expired_signature_rejected() -> None:
    headers = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS + f";expires={NOW + 10}")
    with pytest.raises(SignatureRejected, match="expired"):
        _verify(headers, now=NOW + 11)


def test_expires_before_created_rejected() -> None:
    headers = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS + f";expires={NOW - 1}")
    with pytest.raises(SignatureRejected):
        _verify(headers)


@pytest.mark.parametrize(
    "signature",
    [
        "sig1=:not base64!:",
        "sig1=",
        "sig1=:AAAA",
        'sig1="c2lnbmF0dXJl"',
        "sig1=token",
        "sig1=(:AAAA:)",
        f"sig1=:{_b64(bytes(63))}:",
        f"sig1=:{_b64(bytes(64))}=:",  # more padding than base64 has
        f"sig1=:{_b64(bytes(64))}:,",
        f"sig1=:{_b64(bytes(64))}: junk",
        f"other=:{_b64(bytes(64))}:",
        "",
    ],
)
def test_malformed_signature_header_rejected(signature: str) -> None:
    headers = _signed()
    headers["Signature"] = signature
    with pytest.raises(SignatureRejected):
        _verify(headers)


def test_valid_but_wrong_signature_bytes_rejected() -> None:
    headers = _signed()
    headers["Signature"] = f"sig1=:{_b64(bytes(64))}:"
    with pytest.raises(SignatureRejected, match="bad signature"):
        _verify(headers)


@pytest.mark.parametrize(
    "signature_input",
    [
        'sig1=("@method" "@path" "@query" "content-digest"',
        'sig1=("@method" "@path" "@query" "content-digest");created=',
        'sig1=("@method""@path" "@query" "content-digest");created=1;keyid="k";nonce="n"',
        "sig1",
        "Sig1=()",
        'sig1="@method"',
    ],
)
def test_malformed_signature_input_rejected(signature_input: str) -> None:
    headers = _signed()
    headers["Signature-Input"] = signature_input
    with pytest.raises(SignatureRejected):
        _verify(headers)


@pytest.mark.parametrize("name", ["Signature", "Signature-Input"])
def test_missing_signature_field_rejected(name: str) -> None:
    headers = _signed()
    del headers[name]
    with pytest.raises(SignatureRejected, match="missing"):
        _verify(headers)


def test_repeated_label_rejected() -> None:
    headers = _signed()
    headers["Signature-Input"] = headers["Signature-Input"] + ", " + headers["Signature-Input"]
    with pytest.raises(SignatureRejected, match="malformed"):
        _verify(headers)


def test_several_labels_without_sig1_rejected() -> None:
    first = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS, label="a")
    second = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS, label="b")
    headers = {
        "Signature-Input": first["Signature-Input"] + ", " + second["Signature-Input"],
        "Signature": first["Signature"] + ", " + second["Signature"],
        "Content-Digest": DIGEST,
    }
    with pytest.raises(SignatureRejected, match="several"):
        _verify(headers)


def test_sig1_chosen_among_several_labels_and_single_other_label_taken() -> None:
    only = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS, label="node")
    assert _verify(only).label == "node"
    ours = _signed()
    headers = {
        "Signature-Input": only["Signature-Input"] + ", " + ours["Signature-Input"],
        "Signature": ours["Signature"] + ", " + only["Signature"],
        "Content-Digest": DIGEST,
    }
    assert _verify(headers).label == SIGNATURE_LABEL


def test_label_missing_from_signature_rejected() -> None:
    headers = _sign_raw(REQUIRED_COMPONENTS, FULL_PARAMS)
    headers["Signature"] = headers["Signature"].replace("sig1=", "sig2=")
    with pytest.raises(SignatureRejected, match="label"):
        _verify(headers)


@pytest.mark.parametrize(
    ("components", "reason"),
    [
        (('"@method" "@path" "@query" "content-digest";sf'), "component parameters"),
        (('"@method" "@path" "@query" "content-digest" "@method"'), "repeated"),
        (('"@method" "@path" "@query" "Content-Digest" "content-digest"'), "lowercase"),
        (('"@method" "@path" "@query" "content-digest" "@signature-params"'), "@signature"),
        (('"@method" "@path" "@query" content-digest'), "not a string"),
    ],
)
def test_bad_component_identifiers_rejected(components: str, reason: str) -> None:
    headers = _signed()
    headers["Signature-Input"] = f"sig1=({components}){FULL_PARAMS}"
    with pytest.raises(SignatureRejected, match=reason):
        _verify(headers)


def test_unsupported_derived_component_rejected() -> None:
    target = {"@target-uri": f"https://hub.example{PATH}?{QUERY}"}
    headers = _sign_raw((*REQUIRED_COMPONENTS, "@target-uri"), FULL_PARAMS, values=target)
    with pytest.raises(SignatureRejected, match="unsupported derived component"):
        signature_base(
            parse_signature(headers), method=METHOD, path=PATH, query=QUERY, headers=headers
        )


def test_covered_header_field_combines_lines() -> None:
    # RFC 9421 section 2.1: values trimmed, several field lines joined with ", ".
    raw = CIMultiDict[str]()
    raw.add("X-Agency", "  police ")
    raw.add("x-agency", "\tcouncil")
    signed = _sign_raw(
        (*REQUIRED_COMPONENTS, "x-agency"), FULL_PARAMS, values={"x-agency": "police, council"}
    )
    for name, value in signed.items():
        raw.add(name, value)
    assert _verify(CIMultiDictProxy(raw)).components[-1] == "x-agency"  # type: ignore[arg-type]


def test_newline_in_covered_value_rejected() -> None:
    # A raw LF in a value would let a request forge extra lines of the signature base.
    headers = _signed()
    with pytest.raises(SignatureRejected, match="newline"):
        _verify(headers, path=PATH + '\n"@query": ?')


def test_reasons_never_carry_key_material() -> None:
    seed_b64 = _b64(KEYS.signing.seed)
    with pytest.raises(SignatureRejected) as caught:
        _verify(_signed(), public_key=OTHER_KEYS.public.signing)
    assert caught.value.reason == "bad signature"
    assert seed_b64 not in str(caught.value)
    assert _b64(OTHER_KEYS.public.signing) not in str(caught.value)


# ---------------------------------------------------------------------------------------
# 5. Content-Digest
# ---------------------------------------------------------------------------------------

SHA256 = hashlib.sha256(BODY).digest()
SHA512_MEMBER = f"sha-512=:{_b64(hashlib.sha512(BODY).digest())}:"


def test_content_digest_header_format() -> None:
    assert content_digest_header(BODY) == f"sha-256=:{_b64(SHA256)}:"


def test_content_digest_matches_good() -> None:
    assert content_digest_matches(DIGEST, SHA256)
    assert content_digest_matches(f"{SHA512_MEMBER}, {DIGEST}", SHA256)
    assert content_digest_matches(f"{DIGEST},{SHA512_MEMBER}", SHA256)
    assert content_digest_matches(f"  {DIGEST};p=1 , md5=:AAAA: ", SHA256)


def test_content_digest_matches_unpadded_base64() -> None:
    # RFC 8941 section 4.2.7: parsers SHOULD NOT fail when "=" padding is absent.
    assert content_digest_matches(f"sha-256=:{_b64(SHA256).rstrip('=')}:", SHA256)


def test_content_digest_matches_wrong_digest() -> None:
    assert not content_digest_matches(DIGEST, hashlib.sha256(b"other").digest())
    assert not content_digest_matches(content_digest_header(b"other"), SHA256)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha-256",
        "sha-256=",
        f"sha-256={_b64(SHA256)}",
        f"sha-256=:{_b64(SHA256)}",
        f'sha-256="{_b64(SHA256)}"',
        f"sha-256=:{_b64(SHA256)}=:",
        f"sha-256=:{_b64(SHA256)[:-2]}:",
        "sha-256=:!!!!:",
        f"SHA-256=:{_b64(SHA256)}:",
        f"{DIGEST},",
        f"{DIGEST} {SHA512_MEMBER}",
        f"{DIGEST}, {DIGEST}",
        f"sha-256=(:{_b64(SHA256)}:)",
        f"sha-256=:{_b64(SHA256 + b'x')}:",
        f"sha-256=:{_b64(SHA256)}:, caf\u00e9=1",
    ],
)
def test_content_digest_matches_malformed(value: str) -> None:
    assert not content_digest_matches(value, SHA256)


def test_content_digest_matches_sha512_only() -> None:
    assert not content_digest_matches(SHA512_MEMBER, SHA256)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1 << 16])
def test_content_digester_streaming_equals_one_shot(chunk_size: int) -> None:
    body = bytes(range(256)) * 257
    digester = ContentDigester()
    for start in range(0, len(body), chunk_size):
        digester.update(body[start : start + chunk_size])
    assert digester.header_value() == content_digest_header(body)
    assert digester.digest() == hashlib.sha256(body).digest()


def test_content_digester_empty_body() -> None:
    assert ContentDigester().header_value() == content_digest_header(b"")
