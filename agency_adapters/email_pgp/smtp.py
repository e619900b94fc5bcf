"""Sending mail: one interface, an SMTP implementation over STARTTLS (aiosmtplib).

The bridge never sends in clear: :class:`SmtpTransport` requires STARTTLS and verifies the
server's certificate (the system CAs, or ``smtp.ca_file``). aiosmtplib's exceptions are
mapped here, once (STYLE.md rule 10), to :class:`MailRefused`, which says whether trying
again may help: a 5xx reply is permanent, a 4xx reply, a timeout or no connection is not.
"""

from __future__ import annotations

import ssl
from email.message import Message
from typing import Protocol

import aiosmtplib

from agency_adapters.email_pgp.config import SmtpSettings

__all__ = ["MailRefused", "MailTransport", "SmtpTransport"]


class MailRefused(Exception):
    """The mail was not accepted; ``permanent`` says whether a retry could help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


class MailTransport(Protocol):
    async def send(self, message: Message, *, sender: str, recipient: str) -> str:
        """Hand ``message`` over for delivery; the server's reply. Raises MailRefused."""


class SmtpTransport:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._tls = ssl.create_default_context(
            cafile=None if settings.ca_file is None else str(settings.ca_file)
        )

    async def send(self, message: Message, *, sender: str, recipient: str) -> str:
        settings = self._settings
        try:
            errors, reply = await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password(),
                start_tls=True,  # required: refuse a server that does not offer STARTTLS
                tls_context=self._tls,
                timeout=settings.timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise MailRefused(
                f"the SMTP server refused {recipient}: {detail}",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise MailRefused(
                f"the SMTP server answered {exc.code} {exc.message}", permanent=exc.code >= 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise MailRefused(
                f"could not hand the mail to {settings.host}:{settings.port}: {exc}",
                permanent=False,
            ) from None
        if recipient in errors:
            code, text = errors[recipient]
            raise MailRefused(
                f"the SMTP server refused {recipient}: {code} {text}", permanent=code >= 500
            )
        return reply
