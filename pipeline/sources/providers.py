"""What differs between the catalogs that serve the same products: asset keys and URL signing.

Sentinel-1 GRD items use the same keys in the Planetary Computer, Earth Search
and CDSE catalogs (``vv``, ``vh``, ``safe-manifest``, ``schema-product-vv``,
``schema-calibration-vv``, ``schema-noise-vv``, ...). Sentinel-2 L2A keys differ;
the pipeline's own (local) items use the Planetary Computer's.
"""

from __future__ import annotations

from typing import Callable

from pipeline.optical.reflectance import S2_LAYOUTS_OFFSET_UNRELIABLE  # noqa: F401  (re-exported)
from pipeline.errors import SardemError

# canonical key (the Planetary Computer's) -> the provider's key; None: the provider has no such asset
S2_ASSET_KEYS: dict[str, dict[str, str | None]] = {
    "planetary_computer": {"B02": "B02", "B03": "B03", "B04": "B04", "SCL": "SCL",
                           "product-metadata": "product-metadata", "granule-metadata": "granule-metadata"},
    "earth_search": {"B02": "blue", "B03": "green", "B04": "red", "SCL": "scl", "product-metadata": None,
                     "granule-metadata": "granule_metadata"},
    "earth_search_c1": {"B02": "blue", "B03": "green", "B04": "red", "SCL": "scl",
                        "product-metadata": "product_metadata", "granule-metadata": "granule_metadata"},
    "cdse": {"B02": "B02_10m", "B03": "B03_10m", "B04": "B04_10m", "SCL": "SCL_20m",
             "product-metadata": "product_metadata", "granule-metadata": None},
}
S2_BANDS = ("B02", "B03", "B04", "SCL")



class ProviderError(SardemError, ValueError):
    """An unknown provider, or an item that lacks what the provider should have."""


def s2_asset_keys(provider: str) -> dict[str, str | None]:
    try:
        return S2_ASSET_KEYS[provider]
    except KeyError:
        raise ProviderError(f"unknown Sentinel-2 asset layout {provider!r}; known: {', '.join(S2_ASSET_KEYS)}") from None


def href_signer(sign: str | None) -> Callable[[str], str]:
    """A function that makes an asset href readable: the Planetary Computer's SAS signing, or identity.

    Signing happens just before each read (never in the frozen search result): signed
    URLs expire.
    """
    if not sign:
        return lambda href: href
    if sign == "planetary_computer":
        import planetary_computer

        return lambda href: planetary_computer.sign(href) if href.startswith("https://") else href
    raise ProviderError(f"unknown URL signing {sign!r}; known: planetary_computer, or null")
