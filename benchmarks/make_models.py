"""Random-weight SD1.x-architecture models for `make bench`, saved as diffusers folders with diffusers itself.

usage: make_models.py ROOT TOKENIZER_DIR NAME...   (NAME: small, sd15; a folder that exists is skipped)

  small  a scaled-down SD1.5: 4 blocks, VAE factor 8, 256-wide CLIP text encoder
  sd15   SD1.5's exact component configs (reference formats.md §1), random weights: ~4.3 GB on disk;
         the bench times training on it at the real shape, which random weights do not change."""
import contextlib
import os
import shutil
import sys

# Quiet the Hugging Face libraries (set before they are imported): `make bench` output is its tables.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import torch  # noqa: E402
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

DOWN = ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D")
UP = ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D")


@contextlib.contextmanager
def native_stdout_silenced():
    """The tokenizers library (Rust) prints "Ignored unknown kwarg option __type" for SD1.5's
    tokenizer_config.json straight to file descriptor 1, past Python's logging: point it at /dev/null
    while a tokenizer loads (bench.py uses this too)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def small():
    unet = UNet2DConditionModel(block_out_channels=(64, 128, 256, 256), cross_attention_dim=256, attention_head_dim=8,
                                sample_size=32)
    vae = AutoencoderKL(block_out_channels=(32, 64, 128, 128), layers_per_block=2, norm_num_groups=32,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                                        num_attention_heads=4, vocab_size=49408, max_position_embeddings=77))
    return unet, vae, text


def sd15():
    # Every value spelled out (not left to defaults that could drift between diffusers versions).
    # attention_head_dim=8 is SD1.5's (misnamed) head count.
    unet = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, down_block_types=DOWN, up_block_types=UP,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                                attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5, act_fn="silu",
                                flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, mid_block_scale_factor=1)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                        layers_per_block=2, norm_num_groups=32, act_fn="silu", sample_size=512, scaling_factor=0.18215,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    # CLIP ViT-L/14's text tower, with the hub config's own token ids.
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                                        projection_dim=768, layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
                                        pad_token_id=1))
    return unet, vae, text


def save(target, tokenizer_dir, unet, vae, text):
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
    with native_stdout_silenced():
        tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    # Written under a temporary name and renamed last, so an interrupted run never leaves a folder that
    # looks complete and would be skipped next time.
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    pipe.save_pretrained(partial, safe_serialization=True)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(partial, "tokenizer", name))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def main():
    root, tokenizer_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:] or ["small"]
    makers = {"small": small, "sd15": sd15}
    for name in names:
        target = os.path.join(root, name)
        if os.path.exists(os.path.join(target, "model_index.json")):
            continue
        print(f"make_models: writing {target}", file=sys.stderr)
        torch.manual_seed(0)
        with torch.no_grad():
            save(target, tokenizer_dir, *makers[name]())


if __name__ == "__main__":
    main()
