"""Loads LoRA files into a tiny diffusers StableDiffusionPipeline, live, and reports what diffusers made of them.

usage: lora_interop.py --unet DIR --io FILE --out FILE --case NAME=PATH[:SCALE][,PATH[:SCALE]...] [--case ...]

For each case a fresh pipeline (the UNet from DIR, a tiny random CLIP text encoder with 2 layers of width 32) loads
every file with `load_lora_weights` under its own adapter name, `set_adapters` gives each its SCALE, and the UNet runs
on the `sample`/`timesteps`/`encoder_hidden_states` of the io file. Written to the out file: `NAME.output`, and for
every text-encoder module peft adapted `NAME.<i>.te.<module>.lora_A` / `.lora_B` / `.scaling` (i = file index).
Prints a JSON summary: adapted UNet and text-encoder module counts per case, and kohya's sshs_model_hash of every file."""
import argparse
import hashlib
import json

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

torch.set_num_threads(1)


def pipeline(unet_dir: str) -> StableDiffusionPipeline:
    torch.manual_seed(3)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                                num_hidden_layers=2, vocab_size=1000, projection_dim=32,
                                                bos_token_id=0, eos_token_id=2, pad_token_id=1)).eval()
    vae = AutoencoderKL(block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), norm_num_groups=8, latent_channels=4)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=None,
                                   unet=UNet2DConditionModel.from_pretrained(unet_dir).eval(),
                                   scheduler=DDIMScheduler(steps_offset=1, clip_sample=False), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def addnet_hash(path: str) -> str:
    """kohya's sshs_model_hash (library/train_util.py addnet_hash_safetensors): SHA-256 of the bytes after the header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        return hashlib.sha256(f.read()).hexdigest()


def lora_layers(model: torch.nn.Module):
    return [(name, m) for name, m in model.named_modules() if hasattr(m, "lora_A") and len(m.lora_A) > 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unet", required=True)
    parser.add_argument("--io", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--case", action="append", required=True)
    args = parser.parse_args()
    io = load_file(args.io)
    results, summary, hashes = {}, {}, {}
    for case in args.case:
        name, files = case.split("=", 1)
        pipe = pipeline(args.unet)
        adapters, weights = [], []
        for i, spec in enumerate(files.split(",")):
            path, scale = spec.rsplit(":", 1) if ":" in spec else (spec, "1")
            pipe.load_lora_weights(path, adapter_name=f"a{i}")
            hashes[path] = addnet_hash(path)
            adapters.append(f"a{i}")
            weights.append(float(scale))
        pipe.set_adapters(adapters, adapter_weights=weights)
        with torch.no_grad():
            results[f"{name}.output"] = pipe.unet(io["sample"], io["timesteps"], io["encoder_hidden_states"]).sample
        te_layers = lora_layers(pipe.text_encoder)
        for i, adapter in enumerate(adapters):
            for module, layer in te_layers:
                if adapter not in layer.lora_A:
                    continue
                prefix = f"{name}.{i}.te.{module}"
                results[prefix + ".lora_A"] = layer.lora_A[adapter].weight.detach()
                results[prefix + ".lora_B"] = layer.lora_B[adapter].weight.detach()
                results[prefix + ".scaling"] = torch.tensor(float(layer.scaling[adapter]), dtype=torch.float64)
        summary[name] = {"unet_modules": len(lora_layers(pipe.unet)), "text_encoder_modules": len(te_layers)}
    save_file({k: v.contiguous() for k, v in results.items()}, args.out)
    print(json.dumps({"cases": summary, "hashes": hashes}))


if __name__ == "__main__":
    main()
