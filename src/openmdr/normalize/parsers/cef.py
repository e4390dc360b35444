"""Parser module cef (being written)."""
