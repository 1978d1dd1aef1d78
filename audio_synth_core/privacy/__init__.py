"""Speaker embeddings and the attacker evaluation."""
