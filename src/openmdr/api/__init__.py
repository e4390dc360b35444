"""OpenMDR api stage."""
