"""The HTTP API for schedulers: OAuth 2.0, /api/v1, and a Mastodon-compatible subset."""
