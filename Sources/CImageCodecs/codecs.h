// The system image codecs (Debian: libpng-dev, libwebp-dev; zlib1g-dev comes with libpng-dev). PNG is
// parsed in Swift over zlib because libpng's full API reports errors by longjmp, which Swift cannot
// survive; libpng's simplified png_image API (no longjmp escapes it) writes PNGs. JPEG goes through
// CJPEG, a C wrapper that keeps libjpeg's longjmp in C.
#include <stdio.h>
#include <zlib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <webp/demux.h>
