"""Parser module zeek (being written)."""
