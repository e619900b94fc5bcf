"""Request authentication: RFC 9421 HTTP Message Signatures (Ed25519) and RFC 9530 digests.

Every request a node sends to the hub carries three fields:

* ``Content-Digest`` (RFC 9530 section 2): the SHA-256 of the request content, so the
  signature covers the body without hashing it twice;
* ``Signature-Input`` and ``Signature`` (RFC 9421 section 4): an Ed25519 signature
  (RFC 9421 section 3.3.6) over ``@method``, ``@path``, ``@query`` and
  ``content-digest``, with the ``created``, ``keyid``, ``alg`` and ``nonce`` parameters.

This module parses and checks the signature only. The caller compares the digest with
the body it actually received (:func:`content_digest_matches`) and keeps the replay
cache of ``(keyid, nonce)`` pairs; both need state this module does not own.

Both signature fields are RFC 8941 Structured Field Dictionaries. The parser below is a
complete RFC 8941 parser (no RFC 9651 Dates or Display Strings), written here rather
than taken from a dependency so that only ``hub.crypto`` decides what an authenticating
field means. It is stricter than RFC 8941 in two respects: a repeated dictionary key or
parameter is refused instead of silently overwritten, because two readings of an
authenticating field must never be possible; and a Byte Sequence with more "=" padding
than base64 needs is refused (absent padding is accepted, as section 4.2.7 asks).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from hub.crypto.errors import SignatureInvalid
from hub.crypto.keys import SigningKey, verify_detached

__all__ = [
    "REQUIRED_COMPONENTS",
    "SIGNATURE_LABEL",
    "ContentDigester",
    "ParsedSignature",
    "SignatureRejected",
    "content_digest_header",
    "content_digest_matches",
    "parse_signature",
    "sign_request",
    "signature_base",
    "verify_request",
]

# The hub refuses any signature that does not cover all of these: the method and target
# (so a signature cannot be replayed against another endpoint) and the body's digest.
REQUIRED_COMPONENTS: tuple[str, ...] = ("@method", "@path", "@query", "content-digest")
SIGNATURE_LABEL = "sig1"

# RFC 9421 section 3.3.6: the registered algorithm name for Ed25519.
_ALG = "ed25519"
_ED25519_SIGNATURE_BYTES = 64
# RFC 9421 section 2.3 defines these signature parameters. ``tag`` is accepted and
# ignored; any other parameter is refused, since it could carry semantics we do not
# enforce.
_KNOWN_PARAMS = frozenset({"created", "expires", "nonce", "alg", "keyid", "tag"})


class SignatureRejected(Exception):
    """Authentication failed; ``.reason`` is a short private explanation for the log.

    The reason is never shown to the caller, who only learns that authentication
    failed. It never contains key material.
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------
# RFC 9530 Content-Digest
# --------------------------------------------------------------------------------------


def _digest_field(sha256: bytes) -> str:
    # RFC 9530 section 2: a Dictionary keyed by algorithm (section 5 registers
    # "sha-256"), each value an RFC 8941 Byte Sequence (section 3.3.5: ":base64:").
    return f"sha-256=:{base64.b64encode(sha256).decode('ascii')}:"


def content_digest_header(body: bytes) -> str:
    """The ``Content-Digest`` value of ``body``: ``sha-256=:<base64>:`` (RFC 9530)."""
    return _digest_field(hashlib.sha256(body).digest())


class ContentDigester:
    """Incremental :func:`content_digest_header` for bodies that arrive in chunks."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def digest(self) -> bytes:
        """The raw SHA-256 of everything passed to :meth:`update` so far."""
        return self._hash.digest()

    def header_value(self) -> str:
        return _digest_field(self._hash.digest())


def content_digest_matches(header_value: str, expected_sha256: bytes) -> bool:
    """Whether a ``Content-Digest`` value holds a ``sha-256`` member equal to the expected.

    Other members (``sha-512`` for instance) are ignored: the hub hashes with SHA-256
    only, and RFC 9530 section 2 lets a recipient ignore digests it does not check.
    A field without ``sha-256`` or that is not a valid Dictionary does not match.
    """
    try:
        members = _Parser(header_value).parse_dictionary()
    except _ParseError:
        return False
    entry = members.get("sha-256")
    if entry is None:
        return False
    member = entry[0]
    if not isinstance(member, _Item) or type(member.value) is not bytes:
        return False
    if len(member.value) != hashlib.sha256().digest_size:
        return False
    return hmac.compare_digest(member.value, expected_sha256)


# --------------------------------------------------------------------------------------
# RFC 8941 Structured Field Values: Dictionaries and everything a member can hold
# --------------------------------------------------------------------------------------


class _Token(str):
    """An RFC 8941 Token (section 3.3.4), kept distinct from a String (section 3.3.3)."""

    __slots__ = ()


_BareItem = int | float | str | bytes | bool
_Params = dict[str, _BareItem]


@dataclass(frozen=True, slots=True)
class _Item:
    value: _BareItem
    params: _Params


@dataclass(frozen=True, slots=True)
class _InnerList:
    items: tuple[_Item, ...]
    params: _Params


_Member = _Item | _InnerList


class _ParseError(Exception):
    """The field is not a valid RFC 8941 Structured Field."""


_LCALPHA = frozenset("abcdefghijklmnopqrstuvwxyz")
_ALPHA = _LCALPHA | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_DIGIT = frozenset("0123456789")
_KEY_CHARS = _LCALPHA | _DIGIT | frozenset("_-.*")
# RFC 9110 section 5.6.2 tchar, plus ":" and "/" for RFC 8941 section 3.3.4 tokens.
_TOKEN_CHARS = _ALPHA | _DIGIT | frozenset("!#$%&'*+-.^_`|~:/")
_BASE64_CHARS = _ALPHA | _DIGIT | frozenset("+/")


class _Parser:
    """RFC 8941 section 4.2 parsing, one algorithm step per method."""

    __slots__ = ("_pos", "_text")

    def __init__(self, text: str) -> None:
        # Section 4.2: structured fields are ASCII; leading and trailing SP are dropped.
        if not text.isascii():
            raise _ParseError("not ASCII")
        self._text = text.strip(" ")
        self._pos = 0

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _eof(self) -> bool:
        return self._pos >= len(self._text)

    def _skip_sp(self) -> None:
        while self._peek() == " ":
            self._pos += 1

    def _skip_ows(self) -> None:
        while self._peek() in (" ", "\t"):
            self._pos += 1

    def parse_dictionary(self) -> dict[str, tuple[_Member, str]]:
        """Section 4.2.2. Each member comes with its exact text as received."""
        result: dict[str, tuple[_Member, str]] = {}
        while not self._eof():
            key = self._parse_key()
            if key in result:
                raise _ParseError("repeated dictionary key")
            start = self._pos
            member: _Member
            if self._peek() == "=":
                self._pos += 1
                start = self._pos
                member = self._parse_item_or_inner_list()
            else:
                member = _Item(True, self._parse_parameters())
            result[key] = (member, self._text[start : self._pos])
            self._skip_ows()
            if self._eof():
                return result
            if self._peek() != ",":
                raise _ParseError("expected ','")
            self._pos += 1
            self._skip_ows()
            if self._eof():
                raise _ParseError("trailing ','")
        return result

    def _parse_item_or_inner_list(self) -> _Member:
        # Section 4.2.1.1.
        if self._peek() == "(":
            return self._parse_inner_list()
        return self._parse_item()

    def _parse_inner_list(self) -> _InnerList:
        # Section 4.2.1.2.
        self._pos += 1
        items: list[_Item] = []
        while not self._eof():
            self._skip_sp()
            if self._peek() == ")":
                self._pos += 1
                return _InnerList(tuple(items), self._parse_parameters())
            items.append(self._parse_item())
            if self._peek() not in (" ", ")"):
                raise _ParseError("inner list items must be separated by SP")
        raise _ParseError("unterminated inner list")

    def _parse_item(self) -> _Item:
        # Section 4.2.3.
        value = self._parse_bare_item()
        return _Item(value, self._parse_parameters())

    def _parse_bare_item(self) -> _BareItem:
        # Section 4.2.3.1.
        char = self._peek()
        if char == "-" or char in _DIGIT:
            return self._parse_number()
        if char == '"':
            return self._parse_string()
        if char == ":":
            return self._parse_byte_sequence()
        if char == "?":
            return self._parse_boolean()
        if char == "*" or char in _ALPHA:
            return self._parse_token()
        raise _ParseError("unrecognised bare item")

    def _parse_parameters(self) -> _Params:
        # Section 4.2.3.2.
        params: _Params = {}
        while self._peek() == ";":
            self._pos += 1
            self._skip_sp()
            key = self._parse_key()
            if key in params:
                raise _ParseError("repeated parameter")
            value: _BareItem = True
            if self._peek() == "=":
                self._pos += 1
                value = self._parse_bare_item()
            params[key] = value
        return params

    def _parse_key(self) -> str:
        # Section 4.2.3.3.
        char = self._peek()
        if not (char == "*" or char in _LCALPHA):
            raise _ParseError("bad key")
        start = self._pos
        while not self._eof() and self._peek() in _KEY_CHARS:
            self._pos += 1
        return self._text[start : self._pos]

    def _parse_number(self) -> int | float:
        # Section 4.2.4: at most 15 digits for an Integer; a Decimal has at most 12
        # integer digits and 1 to 3 fractional digits.
        sign = 1
        if self._peek() == "-":
            sign = -1
            self._pos += 1
        if self._eof() or self._peek() not in _DIGIT:
            raise _ParseError("number without digits")
        start = self._pos
        is_decimal = False
        while not self._eof():
            char = self._peek()
            if char in _DIGIT:
                self._pos += 1
            elif char == "." and not is_decimal:
                if self._pos - start > 12:
                    raise _ParseError("decimal too long")
                is_decimal = True
                self._pos += 1
            else:
                break
            if not is_decimal and self._pos - start > 15:
                raise _ParseError("integer too long")
            if is_decimal and self._pos - start > 16:
                raise _ParseError("decimal too long")
        digits = self._text[start : self._pos]
        if not is_decimal:
            return sign * int(digits)
        if digits.endswith(".") or len(digits) - digits.index(".") - 1 > 3:
            raise _ParseError("bad decimal fraction")
        return sign * float(digits)

    def _parse_string(self) -> str:
        # Section 4.2.5: printable ASCII; only '"' and '\' may be escaped.
        self._pos += 1
        out: list[str] = []
        while not self._eof():
            char = self._peek()
            self._pos += 1
            if char == "\\":
                escaped = self._peek()
                if escaped not in ('"', "\\"):
                    raise _ParseError("bad escape")
                self._pos += 1
                out.append(escaped)
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise _ParseError("control character in string")
            else:
                out.append(char)
        raise _ParseError("unterminated string")

    def _parse_token(self) -> _Token:
        # Section 4.2.6.
        start = self._pos
        self._pos += 1
        while not self._eof() and self._peek() in _TOKEN_CHARS:
            self._pos += 1
        return _Token(self._text[start : self._pos])

    def _parse_byte_sequence(self) -> bytes:
        # Section 4.2.7. Parsers SHOULD NOT fail when "=" padding is absent or pad bits
        # are non-zero, so padding is restored here before a strict decode; "=" may only
        # end the sequence.
        self._pos += 1
        end = self._text.find(":", self._pos)
        if end < 0:
            raise _ParseError("unterminated byte sequence")
        encoded = self._text[self._pos : end]
        self._pos = end + 1
        unpadded = encoded.rstrip("=")
        missing = -len(unpadded) % 4
        if (
            any(char not in _BASE64_CHARS for char in unpadded)
            or missing == 3
            or len(encoded) - len(unpadded) > missing
        ):
            raise _ParseError("bad base64")
        try:
            return base64.b64decode(unpadded + "=" * missing, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _ParseError("bad base64") from exc

    def _parse_boolean(self) -> bool:
        # Section 4.2.8.
        self._pos += 1
        char = self._peek()
        if char == "1":
            self._pos += 1
            return True
        if char == "0":
            self._pos += 1
            return False
        raise _ParseError("bad boolean")


def _serialize_string(value: str) -> str:
    # RFC 8941 section 4.1.6: printable ASCII only, with '"' and '\' escaped.
    if not all(" " <= char <= "~" for char in value):
        raise ValueError("a structured field string must be printable ASCII")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# --------------------------------------------------------------------------------------
# RFC 9421 HTTP Message Signatures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedSignature:
    """One signature from ``Signature-Input``/``Signature``, not yet verified."""

    label: str
    components: tuple[str, ...]
    keyid: str
    created: int
    nonce: str
    alg: str | None
    expires: int | None
    signature: bytes
    # The serialized @signature-params value exactly as received (RFC 9421 section 2.3):
    # the last line of the signature base is built from these bytes, not re-serialized.
    signature_params: str


def _normalise_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lowercased field name -> combined value (RFC 9421 section 2.1).

    ``items()`` of an aiohttp ``CIMultiDictProxy`` yields every field line; a plain
    dict may hold the same name in two spellings. Either way each line's value is
    trimmed of leading and trailing whitespace and the lines are joined with ", " in
    order, as RFC 9110 section 5.3 combines repeated fields.
    """
    combined: dict[str, list[str]] = {}
    for name, value in headers.items():
        combined.setdefault(name.lower(), []).append(value.strip(" \t"))
    return {name: ", ".join(values) for name, values in combined.items()}


def _select_label(inputs: Mapping[str, object]) -> str:
    if SIGNATURE_LABEL in inputs:
        return SIGNATURE_LABEL
    if len(inputs) != 1:
        # Labels are not covered by the signature (RFC 9421 section 4.1), so choosing
        # among several unknown ones would be guesswork.
        raise SignatureRejected("several signatures and none labelled sig1")
    return next(iter(inputs))


def _int_param(params: _Params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    # bool is an int subclass in Python; an RFC 8941 Boolean is not an Integer.
    if type(value) is not int:
        raise SignatureRejected(f"signature parameter {name} is not an integer")
    return value


def _str_param(params: _Params, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    # RFC 9421 section 2.3 defines these as Strings; a Token is refused.
    if type(value) is not str:
        raise SignatureRejected(f"signature parameter {name} is not a string")
    return value


def parse_signature(headers: Mapping[str, str]) -> ParsedSignature:
    """Parse ``Signature-Input`` and ``Signature`` (RFC 9421 section 4) and check policy.

    Picks the ``sig1`` label if present, else the only label. Refuses (with
    :class:`SignatureRejected`) missing or malformed fields, a missing ``keyid``,
    ``created`` or ``nonce``, an ``alg`` other than ``ed25519``, unknown parameters,
    and a covered-component list that omits any of :data:`REQUIRED_COMPONENTS`.
    """
    fields = _normalise_headers(headers)
    raw_input = fields.get("signature-input")
    raw_signature = fields.get("signature")
    if raw_input is None or raw_signature is None:
        raise SignatureRejected("Signature-Input or Signature missing")
    try:
        inputs = _Parser(raw_input).parse_dictionary()
    except _ParseError as exc:
        raise SignatureRejected("malformed Signature-Input") from exc
    try:
        signatures = _Parser(raw_signature).parse_dictionary()
    except _ParseError as exc:
        raise SignatureRejected("malformed Signature") from exc
    if not inputs:
        raise SignatureRejected("no signature")
    label = _select_label(inputs)
    if label not in signatures:
        raise SignatureRejected("Signature lacks the selected label")

    member, params_text = inputs[label]
    if not isinstance(member, _InnerList):
        raise SignatureRejected("Signature-Input member is not an inner list")
    sig_member = signatures[label][0]
    if not isinstance(sig_member, _Item) or type(sig_member.value) is not bytes:
        raise SignatureRejected("Signature member is not a byte sequence")
    if len(sig_member.value) != _ED25519_SIGNATURE_BYTES:
        raise SignatureRejected("Signature has the wrong length for ed25519")

    components: list[str] = []
    for item in member.items:
        # RFC 9421 section 2: component identifiers are Strings. Parameters (sf, key,
        # bs, req, name) are not supported here, so they are refused rather than
        # silently dropped from the signature base.
        if type(item.value) is not str:
            raise SignatureRejected("component identifier is not a string")
        if item.params:
            raise SignatureRejected("component parameters are not supported")
        name = item.value
        if name != name.lower() or not name:
            # Section 2.1: field names are lowercased in component identifiers.
            raise SignatureRejected("component identifier is not lowercase")
        if name == "@signature-params":
            # Section 2.3: it is the last line of every base, never a covered item.
            raise SignatureRejected("@signature-params listed as a component")
        if name in components:
            # Section 2.5: a repeated component identifier makes the base invalid.
            raise SignatureRejected("repeated component identifier")
        components.append(name)
    missing = [name for name in REQUIRED_COMPONENTS if name not in components]
    if missing:
        raise SignatureRejected(f"required components not covered: {', '.join(missing)}")

    params = member.params
    unknown = sorted(set(params) - _KNOWN_PARAMS)
    if unknown:
        raise SignatureRejected("unknown signature parameter")
    keyid = _str_param(params, "keyid")
    created = _int_param(params, "created")
    nonce = _str_param(params, "nonce")
    alg = _str_param(params, "alg")
    expires = _int_param(params, "expires")
    _str_param(params, "tag")  # type check only; the hub does not use tags
    if keyid is None or not keyid:
        raise SignatureRejected("keyid missing")
    if created is None:
        raise SignatureRejected("created missing")
    if nonce is None or not nonce:
        raise SignatureRejected("nonce missing")
    if alg is not None and alg != _ALG:
        # Section 3.2 step 6: the algorithm is fixed by the key; a mismatching alg
        # parameter means the signer and the verifier disagree and must fail.
        raise SignatureRejected("alg is not ed25519")
    return ParsedSignature(
        label=label,
        components=tuple(components),
        keyid=keyid,
        created=created,
        nonce=nonce,
        alg=alg,
        expires=expires,
        signature=sig_member.value,
        signature_params=params_text,
    )


def _component_value(
    name: str,
    *,
    method: str,
    path: str,
    query: str,
    fields: Mapping[str, str],
    authority: str | None,
) -> str:
    if name == "@method":
        # Section 2.2.1: the method as sent; it is case-sensitive, so it is not folded.
        return method
    if name == "@path":
        # Section 2.2.6: the absolute path, still percent-encoded; an empty path is "/".
        return path or "/"
    if name == "@query":
        # Section 2.2.7: "?" followed by the query; "?" alone when there is none.
        return "?" + query
    if name == "@authority":
        # Section 2.2.3: the authority normalised per RFC 9110 section 4.2.3; the host
        # is case-insensitive, so it is lowercased. The caller drops any default port.
        if authority is None:
            raise SignatureRejected("@authority covered but not known")
        return authority.lower()
    if name.startswith("@"):
        raise SignatureRejected(f"unsupported derived component {name!r}")
    value = fields.get(name)
    if value is None:
        raise SignatureRejected(f"covered field {name!r} absent")
    return value


def signature_base(
    parsed: ParsedSignature,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    authority: str | None = None,
) -> bytes:
    """The signature base of RFC 9421 section 2.5 for ``parsed`` over this request.

    One ``"name": value`` line per covered component, in the order covered, then
    ``"@signature-params": `` followed by the parameters exactly as received. Lines
    are joined by LF with no trailing newline. ``path`` is the percent-encoded absolute
    path and ``query`` the raw query string without its leading ``?``.
    """
    fields = _normalise_headers(headers)
    lines: list[str] = []
    for name in parsed.components:
        value = _component_value(
            name, method=method, path=path, query=query, fields=fields, authority=authority
        )
        # Section 2.5: a value holding CR or LF would forge extra lines of the base.
        if "\n" in value or "\r" in value:
            raise SignatureRejected(f"newline in component {name!r}")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {parsed.signature_params}')
    base = "\n".join(lines)
    # Section 2.5: the signature base is US-ASCII; non-ASCII field values are refused
    # rather than encoded one of several possible ways.
    if not base.isascii():
        raise SignatureRejected("non-ASCII signature base")
    return base.encode("ascii")


def sign_request(
    *,
    method: str,
    path: str,
    query: str,
    body_digest_header: str,
    key: SigningKey,
    keyid: str,
    created: int,
    nonce: str,
) -> dict[str, str]:
    """Sign a request; return the ``Signature-Input``, ``Signature`` and digest fields.

    Covers exactly :data:`REQUIRED_COMPONENTS` with the parameters ``created``,
    ``keyid``, ``alg="ed25519"`` and ``nonce`` (RFC 9421 section 2.3), under the label
    :data:`SIGNATURE_LABEL`. ``body_digest_header`` is the request's ``Content-Digest``
    value, from :func:`content_digest_header` or :class:`ContentDigester`.
    """
    try:
        digest_members = _Parser(body_digest_header).parse_dictionary()
    except _ParseError as exc:
        raise ValueError("body_digest_header is not a valid Content-Digest value") from exc
    if not digest_members:
        raise ValueError("body_digest_header is empty")
    if type(created) is not int:
        raise TypeError("created must be an int (seconds since the epoch)")
    if not keyid or not nonce:
        raise ValueError("keyid and nonce must not be empty")
    covered = " ".join(_serialize_string(name) for name in REQUIRED_COMPONENTS)
    # RFC 9421 section 2.3: the inner list of covered components, then its parameters.
    params = (
        f"({covered});created={created};keyid={_serialize_string(keyid)}"
        f";alg={_serialize_string(_ALG)};nonce={_serialize_string(nonce)}"
    )
    draft = ParsedSignature(
        label=SIGNATURE_LABEL,
        components=REQUIRED_COMPONENTS,
        keyid=keyid,
        created=created,
        nonce=nonce,
        alg=_ALG,
        expires=None,
        signature=b"",
        signature_params=params,
    )
    try:
        base = signature_base(
            draft,
            method=method,
            path=path,
            query=query,
            headers={"content-digest": body_digest_header},
        )
    except SignatureRejected as exc:
        raise ValueError(f"cannot sign this request: {exc.reason}") from None
    signature = key.sign_detached(base)
    return {
        # RFC 9421 sections 4.1 and 4.2: Dictionaries keyed by the same label.
        "Signature-Input": f"{SIGNATURE_LABEL}={params}",
        "Signature": f"{SIGNATURE_LABEL}=:{base64.b64encode(signature).decode('ascii')}:",
        "Content-Digest": body_digest_header,
    }


def verify_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    public_key: bytes,
    now: int,
    max_skew: int = 300,
    parsed: ParsedSignature | None = None,
    authority: str | None = None,
) -> ParsedSignature:
    """Verify a request's signature (RFC 9421 section 3.2); return what was verified.

    ``parsed`` lets a caller that already parsed the fields (to find the key by
    ``keyid``) avoid parsing twice. ``created`` must lie within ``max_skew`` seconds of
    ``now`` in either direction, and ``expires``, if present, must not have passed.

    Not done here: comparing ``Content-Digest`` with the body (use
    :func:`content_digest_matches`) and refusing a replayed ``(keyid, nonce)``.
    """
    if parsed is None:
        parsed = parse_signature(headers)
    # Section 3.2.1: the verifier decides how old (or how far in the future, given
    # clock skew) a signature may be; outside the window it is refused outright, which
    # also bounds how long the caller's replay cache must remember a nonce.
    if parsed.created > now + max_skew:
        raise SignatureRejected("created is in the future")
    if parsed.created < now - max_skew:
        raise SignatureRejected("created is too old")
    if parsed.expires is not None:
        if parsed.expires < parsed.created:
            raise SignatureRejected("expires precedes created")
        # Section 2.3: after expires the signature must not be accepted.
        if now > parsed.expires:
            raise SignatureRejected("signature expired")
    base = signature_base(
        parsed, method=method, path=path, query=query, headers=headers, authority=authority
    )
    try:
        # Section 3.3.6: Ed25519 over the signature base itself, no prehash.
        verify_detached(public_key, base, parsed.signature)
    except SignatureInvalid:
        raise SignatureRejected("bad signature") from None
    return parsed
