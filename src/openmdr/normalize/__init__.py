"""OpenMDR normalize stage."""
