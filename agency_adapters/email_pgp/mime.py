"""PGP/MIME (RFC 3156) mail: what the bridge sends to a partner.

The partner receives one ``multipart/encrypted`` message (RFC 3156 section 4, RFC 1847):

- part 1, ``application/pgp-encrypted``, holding ``Version: 1``;
- part 2, ``application/octet-stream``, holding the ASCII-armoured OpenPGP message: the
  *inner* MIME message encrypted to the partner's key and signed by the bridge's key in
  one OpenPGP message (RFC 3156 section 6.2, the combined form).

The inner message is ``multipart/mixed``: a ``text/plain`` body whose first line is the
protective marking, then the attachments (the case pack PDF). Only the outer headers
travel in clear, so the subject holds the marking first (seed 004: the email "should
always be protectively marked at OFFICIAL SENSITIVE"), the kind of message and its
opaque references, never a name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.encoders import encode_7or8bit
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

__all__ = ["Attachment", "inner_message", "pgp_mime_message"]


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    media_type: str  # e.g. "application/pdf"
    content: bytes


def inner_message(body: str, attachments: Sequence[Attachment] = ()) -> bytes:
    """The message that gets encrypted: the body, then each attachment; CRLF line ends."""
    inner = MIMEMultipart("mixed")
    inner.attach(MIMEText(body, "plain", "utf-8"))
    for attachment in attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        if maintype != "application" or not subtype:
            raise ValueError(
                f"attachment media type {attachment.media_type!r} is not application/*"
            )
        part = MIMEApplication(attachment.content, subtype)
        part.add_header("Content-Disposition", "attachment", filename=attachment.filename)
        inner.attach(part)
    return inner.as_bytes(policy=SMTP)


def pgp_mime_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    armored: bytes,
    date: datetime,
) -> Message:
    """The outer ``multipart/encrypted`` message around an armoured OpenPGP message."""
    outer = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    outer["From"] = sender
    outer["To"] = recipient
    outer["Subject"] = subject
    outer["Date"] = format_datetime(date)
    outer["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    outer.preamble = "This is an OpenPGP/MIME encrypted message (RFC 3156)."
    version = MIMEApplication(b"Version: 1\r\n", "pgp-encrypted", _encoder=encode_7or8bit)
    version.add_header("Content-Description", "PGP/MIME version identification")
    body = MIMEApplication(armored, "octet-stream", _encoder=encode_7or8bit)
    body.add_header("Content-Description", "OpenPGP encrypted message")
    body.add_header("Content-Disposition", "inline", filename="encrypted.asc")
    outer.attach(version)
    outer.attach(body)
    return outer
