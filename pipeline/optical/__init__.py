"""Sentinel-2 L2A: metadata, reflectance decoding and masking."""
