"""Demo helpers: a tiny offline model and datasets for tests and the live demo."""
