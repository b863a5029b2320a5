"""Evaluation of translations: metrics per distortion region, FID, contrast enhancement, figures."""
