"""The HTTPS side of webhooks: one caller shared by admission webhooks and CRD conversion webhooks.

Public surface: `ClientConfig` (where a webhook lives and whom to trust),
`post_json` (one call, every failure a `WebhookCallError`) and `RawStatusError`
(a Status built field by field, for the answers kube copies from a webhook).
"""
from kapi.webhook.client import ClientConfig, WebhookCallError, post_json
from kapi.webhook.status import RawStatusError, internal_error

__all__ = ["ClientConfig", "RawStatusError", "WebhookCallError", "internal_error", "post_json"]
