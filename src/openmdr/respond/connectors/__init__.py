"""Connectors from the response engine to real systems: block lists, LDAP, webhooks, EDRs."""

from openmdr.respond.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorRegistry,
    ConnectorResult,
    ConnectorTimeout,
    RetryPolicy,
    call_with_retry,
)

__all__ = [
    "Connector",
    "ConnectorError",
    "ConnectorRegistry",
    "ConnectorResult",
    "ConnectorTimeout",
    "RetryPolicy",
    "call_with_retry",
]
