"""OpenMDR ingest stage."""
