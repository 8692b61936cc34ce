// A whole libjpeg decode in one C call, so that libjpeg's error exits (a longjmp, which Swift frames
// cannot survive) stay in C. See jpeg_decode.c.
#ifndef INKWELL_CJPEG_H
#define INKWELL_CJPEG_H

#include <stddef.h>
#include <stdint.h>

typedef enum __attribute__((enum_extensibility(closed))) CJPEGStatus {
    CJPEGStatusDecoded,
    /// libjpeg stopped with a fatal error; `message` says why (empty if it did not).
    CJPEGStatusFailed,
    /// The data ended before the image did; `message` holds libjpeg's warning, or is empty.
    CJPEGStatusTruncated,
    /// width × height is over the limit; nothing was allocated for the image.
    CJPEGStatusTooLarge,
    /// The frame has a number of components other than 1, 3 or 4 (in `components`).
    CJPEGStatusUnsupported,
} CJPEGStatus;

typedef struct CJPEGResult {
    /// The decoded size, or the frame's size when it is too large or unsupported.
    int width, height, components;
    /// Decoded: width × height × components bytes (grey, RGB or CMYK), malloc'ed; the caller frees it.
    unsigned char *pixels;
    /// libjpeg's formatted message (JMSG_LENGTH_MAX bytes).
    char message[200];
} CJPEGResult;

/// Decodes `size` bytes of JPEG to 8-bit grey, RGB or CMYK, set up as Pillow sets it up (default islow
/// IDCT, fancy upsampling). Images of more than `max_pixels` pixels are refused from the header alone.
/// `scale_denom` (1, 2, 4 or 8) decodes at that fraction of the size by DCT scaling, as Pillow's `draft`;
/// the result then holds the scaled size, ⌈width / scale_denom⌉ × ⌈height / scale_denom⌉.
/// `header_only` stops after the header: `width`, `height` and `components` are the frame's, no pixels.
CJPEGStatus cjpeg_decode(const unsigned char *data, size_t size, int64_t max_pixels, int scale_denom,
                         int header_only, CJPEGResult *result);

#endif
