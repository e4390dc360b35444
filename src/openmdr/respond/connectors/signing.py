"""HMAC-SHA256 signatures of outgoing webhooks, and their verification on the receiving side.

The signed message is ``<timestamp>.<body>`` (timestamp in Unix seconds), so a captured
request cannot be replayed later with another timestamp.  Headers:
``X-OpenMDR-Timestamp``, ``X-OpenMDR-Signature: sha256=<hex>``, ``X-OpenMDR-Delivery``
(stable across retries: receivers use it to drop duplicates) and ``X-OpenMDR-Event``.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-OpenMDR-Signature"
TIMESTAMP_HEADER = "X-OpenMDR-Timestamp"
DELIVERY_HEADER = "X-OpenMDR-Delivery"
EVENT_HEADER = "X-OpenMDR-Event"
#: Largest accepted difference between the signature time and the receiver's clock.
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``sha256=<hex>`` signature of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``signature`` is the sender's signature of ``body`` at ``timestamp``, within ``tolerance``."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
