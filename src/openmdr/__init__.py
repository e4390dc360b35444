"""OpenMDR: open-source multi-tenant Managed Detection and Response."""

__version__ = "0.1.0"
