"""OpenMDR enrich stage."""
