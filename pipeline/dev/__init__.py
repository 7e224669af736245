"""Development helpers: the synthetic data generator, synthetic production, the demo."""
