"""Token endpoint grants, one module per grant_type."""
