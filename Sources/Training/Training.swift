// Training: datasets (prepare, captions, split), caches, the LoRA trainer loop, validation, checkpoints.
