"""AWS CloudTrail parser ("cloudtrail"): one CloudTrail record object per raw record.

The file framer splits ``{"Records": [...]}`` files; handing the whole envelope to this
parser is refused with a reason saying so.

``fields`` is the record flattened with dotted keys, the names Sigma's CloudTrail rules
use (``userIdentity.type``, ``requestParameters.bucketName``,
``responseElements.ConsoleLogin``, ``additionalEventData.MFAUsed``...).  Lists stay lists,
and lists of objects are also spread into multi-valued dotted keys
(``requestParameters.containerDefinitions.command``), as search engines index them.
``requestParameters`` and ``responseElements`` are additionally kept whole, as compact
JSON text, because rules also match on them as one value
(``requestParameters|contains``).

Entities, chosen for what an analyst pivots on:

* ``host``: ``recipientAccountId``, the AWS account the activity happened in; it is the
  cloud "asset" that inventory, criticality and per-asset analytics key on;
* ``user``: ``userIdentity.userName``, else the last part of ``userIdentity.arn`` (the
  session name for assumed roles, often the person behind an SSO session; ``root`` for
  the root user), else the invoking AWS service; ``user_domain``: the identity's account;
* ``src_ip``: ``sourceIPAddress`` when it is an IP address.  AWS service callers put a
  service name there (``ec2.amazonaws.com``); that stays in ``fields`` and names the user
  of ``AWSService`` identities;
* ``domain``: ``eventSource``, the API endpoint that was called (``iam.amazonaws.com``);
* ``action`` and ``event_code``: ``eventName``; ``outcome``: "failure" when the call failed
  (``errorCode``, or a console login answered "Failure"), else "success";
* ``bytes_in``/``bytes_out``: S3 data events' transferred bytes from the caller's point of
  view (``bytes_in`` = ``bytesTransferredOut`` of the service, what the caller received);
* ``message``: ``errorMessage`` when present.

``natural_key`` is the globally unique ``eventID``, so the same record delivered twice (S3
export and EventBridge, say) is stored once.
"""

from __future__ import annotations

from typing import Any

import orjson

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.jsonlines import (
    as_int,
    as_ip,
    first_line,
    flatten_object,
    load_json_object,
    to_time,
)

_REQUIRED = ("eventTime", "eventName", "eventSource")
_WHOLE_VALUE_KEYS = ("requestParameters", "responseElements")


def _principal_name(identity: dict[str, Any]) -> str | None:
    """The human-meaningful name of a CloudTrail ``userIdentity``."""
    name = identity.get("userName")
    if type(name) is str and name:
        return name
    arn = identity.get("arn")
    if type(arn) is str and arn:
        tail = arn.rsplit("/", 1)[-1] if "/" in arn else arn.rsplit(":", 1)[-1]
        if tail:
            return tail
    invoked_by = identity.get("invokedBy")
    if type(invoked_by) is str and invoked_by:
        return invoked_by
    principal = identity.get("principalId")
    if type(principal) is str and principal:
        return principal.rsplit(":", 1)[-1]
    account = identity.get("accountId")
    return account if type(account) is str and account else None


class CloudTrailParser:
    """Parser for single AWS CloudTrail records ("cloudtrail")."""

    name = "cloudtrail"

    def parse(self, record: RawRecord) -> Event:
        """Parse one CloudTrail record object into an event (raises :class:`ParseError`)."""
        obj = load_json_object(record)
        if type(obj.get("Records")) is list:
            raise ParseError(
                "a CloudTrail file envelope ({Records: [...]}): the framer must split it into one record each"
            )
        missing = [key for key in _REQUIRED if key not in obj]
        if missing:
            raise ParseError(f"not a CloudTrail record: missing {', '.join(missing)}")
        event_name = obj["eventName"]
        event_source = obj["eventSource"]
        if type(event_name) is not str or type(event_source) is not str:
            raise ParseError("not a CloudTrail record: eventName and eventSource must be text")
        time = to_time(obj["eventTime"])

        fields = flatten_object(obj, expand_object_lists=True)
        for key in _WHOLE_VALUE_KEYS:
            value = obj.get(key)
            if type(value) is dict or type(value) is list:
                fields[key] = orjson.dumps(value).decode()

        identity = obj.get("userIdentity")
        if type(identity) is not dict:
            identity = {}
        account = identity.get("accountId")
        recipient = obj.get("recipientAccountId")
        error_code = obj.get("errorCode")
        response = obj.get("responseElements")
        failed = (error_code is not None and error_code != "Success") or (
            type(response) is dict and response.get("ConsoleLogin") == "Failure"
        )
        extra = obj.get("additionalEventData")
        if type(extra) is not dict:
            extra = {}
        user_agent = obj.get("userAgent")
        event_id = obj.get("eventID")

        event = Event(
            time=time,
            source_format="cloudtrail",
            fields=fields,
            source_type="aws:cloudtrail",
            product="aws",
            service="cloudtrail",
            event_code=event_name,
            action=event_name,
            outcome="failure" if failed else "success",
            host=recipient if type(recipient) is str and recipient else None,
            user=_principal_name(identity),
            user_domain=account if type(account) is str and account else None,
            src_ip=as_ip(obj.get("sourceIPAddress")),
            domain=event_source or None,
            user_agent=user_agent if type(user_agent) is str and user_agent else None,
            bytes_in=as_int(extra.get("bytesTransferredOut")),
            bytes_out=as_int(extra.get("bytesTransferredIn")),
            message=first_line(obj.get("errorMessage")),
        )
        if type(event_id) is str and event_id:
            event.natural_key = f"cloudtrail|{event_id}"
        return event


register(CloudTrailParser())
