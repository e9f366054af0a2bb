"""Management API v2 under /api/v2."""
