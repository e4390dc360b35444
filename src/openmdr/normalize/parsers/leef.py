"""Parser module leef (being written)."""
