"""The bridge's SMTP listener: aiosmtpd on the bridge's event loop, STARTTLS required.

Every mail is handed to one ``process(raw, mail_from)`` coroutine
(:func:`agency_adapters.email_pgp.inbound.receive_mail` in ``hub bridge serve``), whose
outcome gives the SMTP reply: ``250`` once the bridge has dealt with it (accepted or
refused with an encrypted reply), ``550`` for a sender that is not an enrolled partner.
A client that does not start TLS gets ``530`` from aiosmtpd before it may send.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Final

from aiosmtpd.smtp import SMTP, Envelope, Session

from agency_adapters.email_pgp.config import ListenSettings
from agency_adapters.email_pgp.inbound import InboundOutcome
from hub.policy.secure_email import email_domain

__all__ = ["MAIL_SIZE_LIMIT", "start_listener"]

_log = logging.getLogger("seh.bridge")

# A referral or a reply by mail is a form: 10 MiB is generous and bounds what is held.
MAIL_SIZE_LIMIT: Final = 10 << 20

Process = Callable[[bytes, str], Awaitable[InboundOutcome]]


class _Handler:
    def __init__(self, process: Process) -> None:
        self._process = process

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            outcome = await self._process(raw, str(envelope.mail_from or ""))
        except Exception:  # one bad mail must not stop the listener
            _log.exception(
                "bridge: could not process a mail from a sender at %s",
                email_domain(str(envelope.mail_from or "")) or "no domain",
            )
            return "451 4.3.0 the bridge could not process the mail; try again later"
        return outcome.smtp_reply


async def start_listener(settings: ListenSettings, process: Process) -> asyncio.Server:
    """Listen on ``settings``; the caller closes the returned server."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.cert_file, settings.key_file)
    handler = _Handler(process)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            tls_context=context,
            require_starttls=True,
            data_size_limit=MAIL_SIZE_LIMIT,
            loop=loop,
        ),
        host=settings.host,
        port=settings.port,
    )
    _log.info("bridge: receiving partners' mail on %s:%s", settings.host, settings.port)
    return server
