"""Sends notification emails over SMTP (stdlib smtplib), plain text."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send (from settings.smtp_*)."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 10.0


class SmtpMailer:
    """Implements services.ports.Mailer: one connection per message (the worker sends few)."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    def describe(self) -> str:
        """Where mail goes, for people (no credentials)."""
        s = self.server
        return f"smtp://{s.host}:{s.port}" + (" (STARTTLS)" if s.starttls else "")

    def send(self, to: str, subject: str, body: str) -> None:
        s = self.server
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or None)
        message.set_content(body)
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
            if s.starttls:
                smtp.starttls()
            if s.username:
                smtp.login(s.username, s.password)
            smtp.send_message(message)
