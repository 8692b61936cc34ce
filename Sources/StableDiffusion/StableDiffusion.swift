// Stable Diffusion 1.x: tokenizer, text encoder, UNet, VAE, schedulers, loaders, pipeline.
