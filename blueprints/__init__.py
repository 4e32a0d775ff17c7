"""One package per area of the panel."""
