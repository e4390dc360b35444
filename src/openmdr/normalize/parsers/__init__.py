"""Built-in parsers; importing this package registers every one of them."""

from openmdr.normalize.parsers import (  # noqa: F401
    cef,
    cloudtrail,
    jsonlines,
    leef,
    suricata,
    syslog,
    windows,
    zeek,
)
