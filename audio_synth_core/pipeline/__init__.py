"""The run lifecycle: planning, runs (prepare/commit), one-shard generate and validate."""
