"""The e-mail channel's sender: one EMAIL outbox row -> one e-mail through `SMTP_URL`
(docs/email.md). The delivery worker calls it as ``await sender(message)``, exactly as
it calls the webhook sender (`outbound.messages.Sender`)."""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

from gql_inventory.outbound.mail_templates import MailTemplates, TemplateError
from gql_inventory.outbound.messages import ClaimedMessage, SendOutcome
from gql_inventory.outbound.smtp import SmtpTarget, parse_smtp_url, send_message
from gql_inventory.settings import Settings


class EmailSender:
    """Sends EMAIL outbox rows to `target`, from `mail_from`, worded by `templates`.

    `alert_emails` are the operator addresses (ALERT_EMAILS): an ORDER_NEEDS_ATTENTION
    row to one of them carries the admin's reason, to any other address the buyer's
    wording. Implements `outbound.messages.Sender`: it never raises for the message, the
    server or the network; each is a `SendOutcome` (docs/email.md, "Outcomes").
    """

    def __init__(
        self,
        target: SmtpTarget,
        *,
        mail_from: str,
        alert_emails: list[str],
        timeout_seconds: float,
        templates: MailTemplates | None = None,
    ) -> None:
        self.target = target
        self.mail_from = mail_from
        self.alert_emails = frozenset(a.lower() for a in alert_emails)
        self.timeout_seconds = timeout_seconds
        self.templates = templates or MailTemplates.load()

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSender | None:
        """The sender `settings` describe (SMTP_URL, MAIL_FROM, ALERT_EMAILS,
        SMTP_TIMEOUT_SECONDS), or None when SMTP_URL is unset (e-mail is off)."""
        if settings.smtp_url is None:
            return None
        return cls(
            parse_smtp_url(settings.smtp_url.get_secret_value()),
            mail_from=settings.mail_from,
            alert_emails=settings.alert_emails,
            timeout_seconds=settings.smtp_timeout_seconds,
        )

    def compose(self, message: ClaimedMessage) -> EmailMessage:
        """The e-mail of `message`: From MAIL_FROM, To its recipient, the topic's subject,
        a plain-text body and its HTML alternative; `Message-ID` derived from the outbox
        message id, so every attempt of one message carries the same one.

        Raises `ValueError` (`TemplateError` among them) when it cannot be sent as is: no
        recipient, a recipient or subject with a line break (header injection), a
        recipient that is not one address, a topic with no wording, a payload that is not
        an event body.
        """
        recipient = message.recipient or ""
        if not recipient or any(c in recipient for c in "\r\n"):
            raise ValueError("the recipient is empty or carries a line break")
        local, at, domain = recipient.rpartition("@")
        if not at or not local or not domain or any(c in recipient for c in ' <>,;"\\'):
            raise ValueError("the recipient is not one e-mail address")
        operator = recipient.lower() in self.alert_emails
        mail = self.templates.render(message.topic, message.payload, operator=operator)
        if any(c in mail.subject for c in "\r\n"):
            raise ValueError("the subject carries a line break")
        email = EmailMessage()
        try:
            email["To"] = Address(addr_spec=recipient)
        except HeaderParseError as exc:
            raise ValueError(f"the recipient is not an e-mail address ({exc})") from None
        email["From"] = self.mail_from
        email["Subject"] = mail.subject
        domain = parseaddr(self.mail_from)[1].rpartition("@")[2] or "gql-inventory.invalid"
        email["Message-ID"] = f"<{message.message_id}@{domain}>"
        email.set_content(mail.text)
        email.add_alternative(mail.html, subtype="html")
        return email

    async def __call__(self, message: ClaimedMessage) -> SendOutcome:
        """One attempt of `message`: composed (`compose`) then sent (`smtp.send_message`).
        A message that cannot be composed is `gone` (FAILED now: a retry cannot help),
        with the reason in `error`."""
        try:
            email = self.compose(message)
        except (ValueError, TemplateError) as exc:
            return SendOutcome(delivered=False, error=f"not sent: {exc}", gone=True)
        return await send_message(self.target, email, timeout_seconds=self.timeout_seconds)
