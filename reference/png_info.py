"""Reads a PNG with Pillow and reports what a print dialog or an image editor sees: mode, bit depth, size and
density (info["dpi"], from pHYs). With a second argument, also writes its pixels back as an 8-bit grey PNG
(Pillow's convert("L")), so a caller can compare the pixels Pillow decoded."""
import json
import sys

from PIL import Image

im = Image.open(sys.argv[1])
im.load()
with open(sys.argv[1], "rb") as f:
    ihdr = f.read(33)[16:29]  # after the signature and the chunk's length and type
report = {"mode": im.mode, "size": list(im.size), "format": im.format, "bit_depth": ihdr[8], "colour_type": ihdr[9],
          "dpi": list(im.info["dpi"]) if "dpi" in im.info else None}
if len(sys.argv) > 2:
    im.convert("L").save(sys.argv[2])
print(json.dumps(report))
