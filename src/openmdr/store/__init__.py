"""OpenMDR store stage."""
