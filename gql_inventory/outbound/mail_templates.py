"""E-mail wording: an outbox payload rendered through the files in `templates/` into a
subject, a plain-text body and an HTML body (docs/email.md, "Templates").

The templates are `string.Template` files: ``<audience>_<topic>.txt`` (first line
``Subject: ...``, then the text body) and ``<audience>_<topic>.html``. Every value taken
from the payload is HTML-escaped in the HTML body; lists (order lines, levels, variants)
are rendered here, each item escaped, so a template holds no logic.
"""

from __future__ import annotations

import html
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

import orjson

from gql_inventory.kit.money import format_money, to_minor_units
from gql_inventory.models import WebhookTopic
from gql_inventory.outbound.outbox import OperatorTopic

BUYER = "buyer"
OPERATOR = "operator"

#: Who may get an e-mail of each topic. A topic with both audiences (an order needing
#: attention) reads as the operator's only for an ALERT_EMAILS address.
AUDIENCES: dict[str, tuple[str, ...]] = {
    WebhookTopic.PAYMENT_FAILED: (BUYER,),
    WebhookTopic.ORDER_CANCELLED: (BUYER,),
    WebhookTopic.ORDER_REFUNDED: (BUYER,),
    WebhookTopic.ORDER_NEEDS_ATTENTION: (BUYER, OPERATOR),
    WebhookTopic.STOCK_OUT: (OPERATOR,),
    OperatorTopic.DELIVERY_FAILED: (OPERATOR,),
    OperatorTopic.INVARIANT_DRIFT: (OPERATOR,),
    OperatorTopic.LOW_STOCK_REPORT: (OPERATOR,),
}

#: Items of a list shown in one e-mail; the rest are counted ("and 12 more").
MAX_ITEMS = 200


class TemplateError(ValueError):
    """A message that cannot be worded: no template for its topic, or a payload that is
    not an event body. Retrying cannot help."""


@dataclass(frozen=True, slots=True)
class RenderedMail:
    """A worded e-mail: `subject` (one line), `text` and `html` bodies."""

    subject: str
    text: str
    html: str


class MailTemplates:
    """The template files, read once (`load`), and the rendering of a payload with them."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self._files = dict(files)

    @classmethod
    def load(cls) -> MailTemplates:
        """Read every file of the package's `templates/` folder. Raises `OSError` if the
        package was installed without them (pyproject's package-data)."""
        folder = resources.files("gql_inventory.outbound") / "templates"
        return cls(
            {entry.name: entry.read_text("utf-8") for entry in folder.iterdir() if entry.is_file()}
        )

    def render(self, topic: str, payload: str, *, operator: bool) -> RenderedMail:
        """Word the event `payload` (``{"type", "timestamp", "data"}``) of `topic` for an
        operator (`operator`: the recipient is an ALERT_EMAILS address) or a buyer.

        Raises `TemplateError` for a topic with no e-mail wording or a payload that is
        not a JSON object with a `data` object.
        """
        audiences = AUDIENCES.get(topic)
        if audiences is None:
            raise TemplateError(f"no e-mail wording for topic {topic}")
        audience = OPERATOR if operator and OPERATOR in audiences else audiences[0]
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise TemplateError("the payload is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise TemplateError("the payload has no data object")
        name = f"{audience}_{topic.lower()}"
        try:
            text_template, html_template = self._files[name + ".txt"], self._files[name + ".html"]
        except KeyError:
            raise TemplateError(f"the template {name} is missing") from None
        values = _values(body["data"], str(body.get("timestamp", "")))
        subject_line, _, text_body = text_template.partition("\n")
        subject = string.Template(subject_line.removeprefix("Subject:").strip())
        try:
            return RenderedMail(
                subject=subject.substitute(_as_text(values)),
                text=string.Template(text_body.lstrip("\n")).substitute(_as_text(values)),
                html=string.Template(html_template).substitute(_as_html(values)),
            )
        except (KeyError, ValueError) as exc:  # a template naming an unknown placeholder
            raise TemplateError(f"the template {name} is broken: {exc!r}") from None


Value = str | list[str]


def _as_text(values: Mapping[str, Value]) -> dict[str, str]:
    return {
        k: "\n".join(f"- {item}" for item in v) if isinstance(v, list) else v
        for k, v in values.items()
    }


def _as_html(values: Mapping[str, Value]) -> dict[str, str]:
    def one(v: Value) -> str:
        if isinstance(v, list):
            return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in v) + "</ul>"
        return html.escape(v)

    return {k: one(v) for k, v in values.items()}


def money(value: Any) -> str:
    """A GraphQL `Money` object (``{"amount": "12.5", "currencyCode": "usd"}``) as people
    read it: ``12.50 USD`` (`kit.money.format_money`); anything else as given."""
    if not isinstance(value, Mapping):
        return "" if value is None else str(value)
    amount, code = value.get("amount"), str(value.get("currencyCode") or "")
    try:
        return format_money(to_minor_units(Decimal(str(amount)), code), code)
    except (InvalidOperation, ValueError):
        return f"{amount} {code}".strip()


def _name(value: Any) -> str:
    """A location (or anything with a name) as one string."""
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("id") or "")
    return "" if value is None else str(value)


def _items(values: Any, describe: Any) -> list[str]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return []
    shown = [describe(v) if isinstance(v, Mapping) else str(v) for v in values[:MAX_ITEMS]]
    if len(values) > MAX_ITEMS:
        shown.append(f"and {len(values) - MAX_ITEMS} more")
    return shown


def _line(line: Mapping[str, Any]) -> str:
    title = f" ({line['title']})" if line.get("title") else ""
    return f"{line.get('quantity', '?')} x {line.get('sku', '?')}{title}"


def _level(level: Mapping[str, Any]) -> str:
    where = _name(level.get("location"))
    return f"{level.get('sku', '?')} @ {where}: {level.get('detail') or ''}".rstrip(": ")


def _variant(variant: Mapping[str, Any]) -> str:
    return (
        f"{variant.get('sku', '?')} {variant.get('title') or ''}: {variant.get('available', '?')} "
        f"available (threshold {variant.get('threshold', '?')})"
    ).replace("  ", " ")


def _text(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    return default if value is None else str(value)


def _values(data: Mapping[str, Any], timestamp: str) -> dict[str, Value]:
    """Every placeholder the templates may use, from the event's `data` (docs/email.md
    lists the keys read); a missing key is an empty string or empty list."""
    order_id = _text(data, "orderId") or _text(data, "id")
    refunded = data.get("refunded") or data.get("amount") or data.get("total")
    return {
        "timestamp": timestamp,
        "order_id": order_id,
        "order_ref": order_id[:8].upper(),
        "email": _text(data, "email"),
        "status": _text(data, "status"),
        "total": money(data.get("total")),
        "refunded": money(refunded),
        "lines": _items(data.get("lines"), _line),
        "reason": _text(data, "attentionReason") or _text(data, "reason"),
        "payment_error": _text(data, "lastPaymentError"),
        "sku": _text(data, "sku"),
        "location": _name(data.get("location")),
        "available": _text(data, "available"),
        "on_hand": _text(data, "onHand"),
        "url": _text(data, "url"),
        "event_topic": _text(data, "topic"),
        "message_id": _text(data, "messageId"),
        "attempts": _text(data, "attempts"),
        "last_status": _text(data, "lastStatusCode", "none"),
        "last_error": _text(data, "lastError", "none"),
        "count": _text(data, "count", "0"),
        "levels": _items(data.get("levels"), _level),
        "variants": _items(data.get("variants"), _variant),
        "date": _text(data, "date") or timestamp[:10],
    }
