"""Parser module syslog (being written)."""
