"""Dataset synthesis: texts, speakers, balance, splits, filtering, augmentation, exports."""
