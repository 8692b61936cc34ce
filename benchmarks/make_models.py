"""Random-weight SD1.x-architecture models for `make bench`, saved as diffusers folders with diffusers
itself: `small` (a scaled-down SD1.5: 4 blocks, VAE factor 8, CLIP tokenizer). Skips what exists."""
import os
import shutil
import sys

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

root, tokenizer_dir = sys.argv[1], sys.argv[2]
target = os.path.join(root, "small")
if os.path.exists(os.path.join(target, "model_index.json")):
    sys.exit(0)
torch.manual_seed(0)
unet = UNet2DConditionModel(block_out_channels=(64, 128, 256, 256), cross_attention_dim=256, attention_head_dim=8,
                            sample_size=32)
vae = AutoencoderKL(block_out_channels=(32, 64, 128, 128), layers_per_block=2, norm_num_groups=32,
                    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
text = CLIPTextModel(CLIPTextConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                                    num_attention_heads=4, vocab_size=49408, max_position_embeddings=77))
scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1)
pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(tokenizer_dir),
                               unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                               requires_safety_checker=False)
pipe.save_pretrained(target, safe_serialization=True)
for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(target, "tokenizer", name))
