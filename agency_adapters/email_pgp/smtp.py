"""Sending mail: one interface, an SMTP implementation over STARTTLS (aiosmtplib).

The bridge never sends in clear: :class:`SmtpTransport` requires STARTTLS and verifies the
server's certificate (the system CAs, or ``smtp.ca_file``). aiosmtplib's exceptions are
mapped here, once (STYLE.md rule 10), to :class:`MailRefused`, which says whether trying
again may help: a 5xx reply is permanent, a 4xx reply, a timeout or no connection is not.
"""

from __future__ import annotations

import os
import ssl
from email.message import Message
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

import aiosmtplib

from agency_adapters.email_pgp.config import SmtpSettings

__all__ = ["MailRefused", "MailTransport", "MailboxFolder", "SmtpTransport"]


class MailRefused(Exception):
    """The mail was not accepted; ``permanent`` says whether a retry could help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


class MailTransport(Protocol):
    async def send(self, message: Message, *, sender: str, recipient: str) -> str:
        """Hand ``message`` over for delivery; who took it and their reply ("by HOST: 250
        OK"). Raises MailRefused."""


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
        return f"by {settings.host}: {reply}"


class MailboxFolder:
    """A stand-in mail server: each message saved as ``<folder>/<recipient>/<n>.eml``.

    For ``hub demo`` (which runs with nothing else installed) and for looking at what the
    bridge would send. The files hold only what travels by SMTP: the encrypted PGP/MIME.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def send(self, message: Message, *, sender: str, recipient: str) -> str:
        box = self._folder / recipient
        box.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = box / f"{len(list(box.glob('*.eml'))) + 1:03d}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes(policy=SMTP))
        return f"into the mailbox folder as {path}"
