"""Prefect tasks: thin wrappers running one core operation over one shard, with retries."""
