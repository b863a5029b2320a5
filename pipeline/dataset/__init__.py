"""The training dataset: optical preparation, triplets, 256 x 256 tiling, the patch store and splits."""
