"""Settings split: base (shared), local (embedded default), production, test."""
