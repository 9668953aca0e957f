"""modelspec's benchmarks: measured, not asserted. Run ``python -m benchmarks --help``."""
