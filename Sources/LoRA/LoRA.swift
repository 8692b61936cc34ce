// LoRA: adapters on linear and 1x1-conv layers, targeting by key pattern, kohya/PEFT file formats, fuse/unfuse.
