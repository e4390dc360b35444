"""OpenMDR generator stage."""
