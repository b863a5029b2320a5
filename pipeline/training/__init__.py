"""Training of the bundled translators: data, losses, trainers, checkpoints, loop (no Snakemake here)."""
