"""DRF API views under /api/v1/; each sets portal_access."""
