"""Learning histories (HDF5), dataset configs, stats, training windows and validation."""
