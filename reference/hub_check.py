"""The real huggingface_hub and diffusers on a Hugging Face cache, for the download tests (HubDownloadTests):

  hub_check.py load CACHE REPO SOURCE      what snapshot_download(local_files_only=True) finds for REPO in CACHE,
                                           and StableDiffusionPipeline.from_pretrained(local_files_only=True)
                                           loading it with the same UNet weights as the folder SOURCE
  hub_check.py fill ENDPOINT CACHE REPO [VARIANT]
                                           diffusers' own download of REPO from ENDPOINT (HF_ENDPOINT) into CACHE

Prints one JSON object: the snapshot folder (real path) and the files in it."""
import json
import os
import sys


def listing(snapshot: str) -> list:
    return sorted(os.path.relpath(os.path.join(r, f), snapshot) for r, _, fs in os.walk(snapshot) for f in fs)


command = sys.argv[1]
if command == "fill":
    endpoint, cache, repo = sys.argv[2:5]
    variant = sys.argv[5] if len(sys.argv) > 5 else None
    os.environ["HF_ENDPOINT"] = endpoint  # read by huggingface_hub at import
    from diffusers import DiffusionPipeline
    snapshot = DiffusionPipeline.download(repo, cache_dir=cache, variant=variant)
    print(json.dumps({"snapshot": os.path.realpath(snapshot), "files": listing(snapshot)}))
elif command == "load":
    cache, repo, source = sys.argv[2:5]
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from huggingface_hub import snapshot_download
    snapshot = snapshot_download(repo, cache_dir=cache, local_files_only=True)
    pipe = StableDiffusionPipeline.from_pretrained(repo, cache_dir=cache, local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    reference = UNet2DConditionModel.from_pretrained(os.path.join(source, "unet"))
    same = all(torch.equal(a, b) for a, b in zip(pipe.unet.state_dict().values(), reference.state_dict().values()))
    print(json.dumps({"snapshot": os.path.realpath(snapshot), "files": listing(snapshot), "unet_equal": same,
                      "components": sorted(k for k, v in pipe.components.items() if v is not None)}))
else:
    sys.exit(f"unknown command {command}")
