"""Parser module suricata (being written)."""
