// The system image codecs (Debian: libpng-dev, libjpeg62-turbo-dev, libwebp-dev; zlib1g-dev comes with
// libpng-dev). PNG is parsed in Swift over zlib because libpng's full API reports errors by longjmp,
// which Swift cannot survive; libpng's simplified png_image API (no longjmp escapes it) writes PNGs.
#include <stdio.h>
#include <zlib.h>
#include <png.h>
#include <jpeglib.h>
#include <jerror.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <webp/demux.h>
