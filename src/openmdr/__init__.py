"""OpenMDR: open-source multi-tenant Managed Detection and Response."""

from openmdr import _accelerated

__version__ = "0.1.0"

_accelerated.install()  # a compiled module whose source changed since the build runs from source
