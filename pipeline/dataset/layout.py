"""Names of the patch store's layout, free of the geospatial stack (training imports it with torch alone)."""

SPLITS = ("train", "val", "test")
"""Split names, by split id (0 train, 1 validation, 2 test)."""

LAYERS = ("sar", "dem", "optical", "valid", "flags")
"""Per-patch arrays of the store, each (patch, channel, y, x)."""
