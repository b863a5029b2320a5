"""SRTM 1\" tiles, the EGM96 geoid and the DEM on the AOI grid."""
