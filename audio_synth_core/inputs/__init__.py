"""What runs read: catalogs, foreign datasets, text normalization."""
