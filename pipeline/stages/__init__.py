"""Stages: one module per workflow rule (or family of rules), files in and files out.

The stages are the only code that opens the chain's files: they read inputs, call the pure
numerics of ``core``, ``dem``, ``sar``, ``optical`` and ``dataset``, write outputs atomically,
and log what they did. The command line (:mod:`pipeline.cli`) turns arguments into typed
parameters (``Params.from_dict``, defaults from the schema) and calls them.

=================  ==========================================  =====================================
module             rules                                       physical step
=================  ==========================================  =====================================
``sources``        search, fetch_sentinel1/2, fetch_dem,       catalog search, downloads, pairing
                   triplets
``dem``            dem, dem_extended, dem_normalise            SRTM mosaic, voids, EGM96 -> WGS84
``terrain_correct`` terrain_correct, sar_geometry              calibration, noise, geocoding, dB
``distortion``     distortion, distortion_geometry             foreshortening/layover/shadow
``mosaic``         mosaic_slices                               slices of one pass as one image
``optical``        optical                                     L2A decoding, SCL mask, stretch
``tiles``          tiles                                       256 x 256 patches of one triplet
``store``          store                                       zarr store, index, card, quicklooks
``train``          train_model                                 model training
``evaluate``       evaluate_model, evaluation_table,           Table 1, figures, report inputs
                   evaluation_figures, report_inputs
=================  ==========================================  =====================================
"""
