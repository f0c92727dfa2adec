"""Outbound platforms: the only code that publishes anywhere."""
