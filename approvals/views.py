"""HTML views; each declares its access rule with portal.access."""
