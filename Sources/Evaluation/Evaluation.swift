// Evaluation: CLIP model (vision + text towers) for CLIP score, line-art metrics.
