"""Where scenes come from: search (STAC APIs, static catalogs), the frozen result, fetching into the cache."""
