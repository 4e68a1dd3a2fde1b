"""One SMTP submission with smtplib: plain, STARTTLS or SSL; credentials never logged."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from bot.config import Config


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # plain | starttls | ssl
    user: str
    password: str
    timeout: float

    @classmethod
    def from_config(cls, cfg: Config) -> SmtpSettings:
        return cls(
            cfg.get("smtp", "host"),
            int(cfg.get("smtp", "port")),
            cfg.get("smtp", "security"),
            cfg.get("smtp", "user"),
            cfg.get("smtp", "password"),
            float(cfg.get("smtp", "timeout")),
        )

    def __repr__(self) -> str:  # the password never reaches a log or a traceback
        return f"SmtpSettings({self.security}://{self.host}:{self.port}, user={self.user!r})"


def send(s: SmtpSettings, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
    """Submit ``msg``; raises OSError / smtplib.SMTPException when it was not accepted."""
    ctx = ssl.create_default_context()
    conn: smtplib.SMTP
    if s.security == "ssl":
        conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ctx)
    else:
        conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
    with conn:
        if s.security == "starttls":
            conn.starttls(context=ctx)
        if s.user:
            conn.login(s.user, s.password)
        conn.send_message(msg, from_addr=sender, to_addrs=recipients)
