"""The HTTP API for schedulers: OAuth 2.0 client credentials, /api/v1, and a Mastodon-compatible subset."""
