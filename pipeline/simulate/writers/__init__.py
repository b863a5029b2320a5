"""Writers of the simulated products in the real formats (SAFE, L2A, HGT, STAC): used by the simulator only."""
