"""Generator comparison: prompts, evaluation, the comparison table, promotion."""
