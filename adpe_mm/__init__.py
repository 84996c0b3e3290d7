"""adpe_mm."""
