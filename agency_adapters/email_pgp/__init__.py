"""The secure-email bridge: partners without a node send and receive OpenPGP mail.

``docs/email-bridge.md`` is the operator's guide. The modules: ``config`` (bridge.toml),
``store`` (the folder, partners and the delivery queue), ``partners`` (set-up and
enrolment), ``mime`` (PGP/MIME, RFC 3156), ``smtp`` (sending over STARTTLS) and
``outbound`` (from the hub to the partner's mailbox).
"""

from agency_adapters.email_pgp.config import BridgeConfig, BridgeConfigError, load_bridge_config
from agency_adapters.email_pgp.outbound import DeliveryReport, deliver_once
from agency_adapters.email_pgp.partners import (
    EnrolmentError,
    add_partner,
    disable_partner,
    init_bridge,
    list_partners,
    open_keyring,
    update_partner_key,
)
from agency_adapters.email_pgp.smtp import MailRefused, MailTransport, SmtpTransport
from agency_adapters.email_pgp.store import BridgeFolder, BridgeStore, Delivery, Partner

__all__ = [
    "BridgeConfig",
    "BridgeConfigError",
    "BridgeFolder",
    "BridgeStore",
    "Delivery",
    "DeliveryReport",
    "EnrolmentError",
    "MailRefused",
    "MailTransport",
    "Partner",
    "SmtpTransport",
    "add_partner",
    "deliver_once",
    "disable_partner",
    "init_bridge",
    "list_partners",
    "load_bridge_config",
    "open_keyring",
    "update_partner_key",
]
