"""The webhook door: signed POSTs of `analysis.completed`, `rule.violated` and `suggestion.made`
from a durable outbox (`mugpos.stores.outbox`), registered on `Mugpos.event_sinks`."""

from mugpos.webhooks.dispatcher import EVENT_TYPES, WebhookConfig, WebhookDispatcher, attach_webhooks, door
from mugpos.webhooks.signing import sign, verify

__all__ = ["EVENT_TYPES", "WebhookConfig", "WebhookDispatcher", "attach_webhooks", "door", "sign", "verify"]
