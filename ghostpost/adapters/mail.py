"""Sends notification emails over SMTP (stdlib smtplib), plain text."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from ghostpost.settings import Settings


class SmtpMailer:
    """Implements services.ports.Mailer: one connection per message (the worker sends few)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> str:
        """Where mail goes, for people (no credentials)."""
        s = self.settings
        return f"smtp://{s.smtp_host}:{s.smtp_port}" + (" (STARTTLS)" if s.smtp_starttls else "")

    def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=s.smtp_from.rpartition("@")[2] or None)
        message.set_content(body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(message)
