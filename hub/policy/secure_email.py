"""Which partner mail addresses the email bridge may send to, up to which marking.

Pure: the registry's ``secure_email_domains`` list in, violations out (STYLE.md rule 2).
The bridge calls :func:`email_transport_violations` when it enrols a partner (nothing is
enrolled on a domain the list lacks) and again before every send (a message marked above
what the partner's domain may carry is a visible delivery failure, never a send).

- EM-01: the address's domain is on the list (the entry itself, or a subdomain of an
  entry with ``subdomains: true``). Seed 004 expects "secure email" to a "secure mail
  account"; REFERENCE.md 1.8 HR-08 says never personal email.
- EM-02: the message's marking is no higher than the entry's ``highest_marking``.

The most specific entry wins: ``wiltshire.gov.uk`` listed at OFFICIAL overrides
``gov.uk`` with subdomains at OFFICIAL-SENSITIVE.
"""

from __future__ import annotations

import re
from typing import Final

from hub.model import Marking, Violation
from hub.policy.marking import marking_level
from hub.policy.registry import Registry, SecureEmailDomain

__all__ = ["domain_entry", "email_domain", "email_transport_violations"]

_RANK: Final = {"OFFICIAL": 0, "OFFICIAL-SENSITIVE": 1, "SECRET": 2, "TOP SECRET": 3}
# One mailbox: a local part of printable ASCII without spaces or angle brackets, one @,
# and a domain of dot-separated labels (RFC 5321 4.1.2, simplified: no quoted local parts).
_ADDRESS: Final = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9.-]{1,253})$")


def email_domain(address: str) -> str | None:
    """The lower-cased domain of ``address``, or None if it is not one plain mailbox."""
    match = _ADDRESS.match(address)
    if match is None:
        return None
    domain = match.group(1).lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or any(not label or label.startswith("-") for label in labels):
        return None
    return domain


def domain_entry(registry: Registry, address: str) -> SecureEmailDomain | None:
    """The most specific list entry covering ``address``'s domain, if any."""
    domain = email_domain(address)
    if domain is None:
        return None
    best: SecureEmailDomain | None = None
    for entry in registry.secure_email_domains:
        covers = domain == entry.domain or (
            entry.subdomains and domain.endswith("." + entry.domain)
        )
        if covers and (best is None or len(entry.domain) > len(best.domain)):
            best = entry
    return best


def email_transport_violations(
    registry: Registry, address: str, marking: Marking | None = None
) -> list[Violation]:
    """EM-01 and EM-02 for mail to ``address`` (EM-02 only when ``marking`` is given)."""
    if email_domain(address) is None:
        return [
            Violation(
                rule="EM-01",
                path="$.email",
                message=f"{address!r} is not one plain email address (name@domain)",
            )
        ]
    entry = domain_entry(registry, address)
    if entry is None:
        return [
            Violation(
                rule="EM-01",
                path="$.email",
                message=(
                    f"the domain of {address!r} is not on the secure email list "
                    "(schemas/registry/secure_email_domains.yaml); partners must use an "
                    "institutional secure mail account, never personal email"
                ),
            )
        ]
    if marking is None:
        return []
    level = marking_level(marking)
    if _RANK[level] > _RANK[entry.highest_marking]:
        return [
            Violation(
                rule="EM-02",
                path="$.marking",
                message=(
                    f"a message marked {level} may not be emailed to {entry.domain}"
                    f"{' (or its subdomains)' if entry.subdomains else ''}, which may carry "
                    f"at most {entry.highest_marking}"
                ),
            )
        ]
    return []
