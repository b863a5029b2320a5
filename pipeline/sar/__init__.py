"""Sentinel-1 SAR: orbit, geocoding and radiometry numerics, and the product readers."""

from pipeline.sar.product import Sentinel1Product, open_product

__all__ = ["Sentinel1Product", "open_product"]
