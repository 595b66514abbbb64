"""Sending one plain-text email through the SMTP server CHECKOUT_SMTP_URL names:
`smtp://[user:password@]host[:port]/?from=address` (plain, or STARTTLS when the server offers
it), `smtp+starttls://` (STARTTLS required), `smtps://` (TLS from the start). The URL's
password is never logged or shown."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT = 10.0  # seconds: a slow mail server must not hold a request for long
SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(RuntimeError):
    """The email could not be handed to the server (the message says why, no secret)."""


@dataclass(frozen=True)
class Server:
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str


def server_of(url: str) -> Server:
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise MailError("CHECKOUT_SMTP_URL must be smtp://, smtp+starttls:// or smtps:// "
                        "with a host")
    sender = parse_qs(parts.query).get("from", [""])[0] or f"checkout@{parts.hostname}"
    return Server(parts.scheme, parts.hostname, parts.port or SCHEMES[parts.scheme],
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None, sender)


def send(url: str, to: str, subject: str, body: str) -> None:
    """Hand one message to the server; MailError when it cannot be."""
    server = server_of(url)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = server.sender, to, subject
    message.set_content(body)
    try:
        if server.scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
        with client:
            client.ehlo()
            if server.scheme == "smtp+starttls" or (server.scheme == "smtp"
                                                    and client.has_extn("starttls")):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if server.user is not None:
                client.login(server.user, server.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"the mail server {server.host}:{server.port} did not take the "
                        f"message ({type(exc).__name__})") from exc
