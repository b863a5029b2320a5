"""Sentinel-1 SAR: orbit, geocoding and radiometry numerics, and the product readers.

The product reader (:func:`open_product`, :class:`Sentinel1Product`) is loaded on first use, so that
the numerics (e.g. :mod:`pipeline.sar.distortion`'s flag conventions, which evaluation imports with
torch alone) do not pull in the XML and projection stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.sar.product import Sentinel1Product, open_product

__all__ = ["Sentinel1Product", "open_product"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline.sar import product

        return getattr(product, name)
    raise AttributeError(f"module 'pipeline.sar' has no attribute {name!r}")
