// The system image codecs (Debian: libpng-dev, libjpeg62-turbo-dev, libwebp-dev).
#include <stdio.h>
#include <png.h>
#include <jpeglib.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <webp/demux.h>
