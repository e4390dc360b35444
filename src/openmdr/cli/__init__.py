"""OpenMDR cli stage."""
