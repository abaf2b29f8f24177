"""Package data: the paper registry, ImageNet class names and synsets, CLIP prompt templates."""
