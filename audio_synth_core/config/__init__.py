"""Run configurations: typed models with clear errors."""
