"""Checks, with the real `safetensors` package, a file that Inkwell wrote.

Usage: check_safetensors.py OURS EXPECTED

OURS must hold exactly the tensors (names, dtypes, shapes, every byte) and the metadata of EXPECTED, a
file written by `safetensors.torch.save_file`, and must be laid out as the reference writer lays out
those tensors: the same header entries in the same order, padded with spaces to 8 bytes, the same data
bytes (and the same file, byte for byte, when there is at most one metadata key, so the reference's
hash-map order cannot differ). Prints "OK <n> tensors" or exits 1 listing every difference.
"""
import json
import struct
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save


def read(path):
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def raw(t):
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return n, blob[8:8 + n], blob[8 + n:]


ours_path, expected_path = sys.argv[1:3]
problems = []
ours, ours_meta = read(ours_path)
expected, expected_meta = read(expected_path)

if set(ours) != set(expected):
    problems.append(f"tensor names differ: missing {sorted(set(expected) - set(ours))}, "
                    f"unexpected {sorted(set(ours) - set(expected))}")
for k in sorted(set(ours) & set(expected)):
    a, b = ours[k], expected[k]
    if a.dtype != b.dtype or a.shape != b.shape:
        problems.append(f"{k}: {a.dtype} {list(a.shape)} != expected {b.dtype} {list(b.shape)}")
    elif raw(a) != raw(b):
        problems.append(f"{k}: bytes differ")
if ours_meta != expected_meta:
    problems.append(f"metadata {ours_meta!r} != expected {expected_meta!r}")

blob = open(ours_path, "rb").read()
n, header, data = split(blob)
reference_blob = save(ours, metadata=ours_meta)
_, reference_header, reference_data = split(reference_blob)
if n % 8 != 0:
    problems.append(f"header length {n} is not a multiple of 8")
if not header.startswith(b'{"') and header.rstrip(b" ") != b"{}":  # A1111 and kohya check for '{"'
    problems.append(f"header starts with {header[:2]!r}, not '{{\"'")
text = header.decode("utf-8")
body = text.rstrip(" ")
if not body.endswith("}") or len(text) - len(body) > 7:
    problems.append("header is not a JSON object followed by 0 to 7 spaces")
ours_entries = list(json.loads(text).items())
reference_entries = list(json.loads(reference_header.decode("utf-8")).items())
if ours_entries != reference_entries:
    problems.append(f"header entries (in order) differ from the reference writer's:\n  ours {ours_entries}\n"
                    f"  reference {reference_entries}")
if data != reference_data:
    problems.append("data section differs from the reference writer's")
if len(ours_meta or {}) <= 1 and blob != reference_blob:
    problems.append("file differs from the reference writer's output")

if problems:
    sys.exit("\n".join(problems))
print(f"OK {len(ours)} tensors")
