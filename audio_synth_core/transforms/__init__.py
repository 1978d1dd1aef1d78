"""Audio transforms applied to generated speech (anonymization)."""
