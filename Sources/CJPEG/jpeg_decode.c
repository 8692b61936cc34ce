// The system libjpeg-turbo (Debian: libjpeg62-turbo-dev). libjpeg reports a fatal error by calling
// `error_exit`, which must not return: the documented way out is a longjmp back to a setjmp (libjpeg's
// example.c). A longjmp across Swift frames is undefined, so the whole decode, from the header to
// jpeg_destroy_decompress, runs here between one setjmp and the error handlers' longjmps, and Swift
// gets a status and libjpeg's message.
#include "CJPEG.h"

#include <setjmp.h>
#include <stdio.h>  // before jpeglib.h, which uses FILE
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

_Static_assert(sizeof(((CJPEGResult *)0)->message) >= JMSG_LENGTH_MAX, "message buffer below JMSG_LENGTH_MAX");

struct error_manager {
    struct jpeg_error_mgr pub;  // first, so libjpeg's `err` pointer is this struct's address
    jmp_buf escape;
    CJPEGStatus status;
    char *message;
};

static void error_exit(j_common_ptr cinfo) {
    struct error_manager *err = (struct error_manager *)cinfo->err;
    cinfo->err->format_message(cinfo, err->message);
    err->status = CJPEGStatusFailed;
    longjmp(err->escape, 1);
}

// Warnings (level −1) about corrupt entropy data are recovered from, as in Pillow; running out of data
// is not: libjpeg would pad the image with grey and invent an EOI, Pillow calls the file truncated (even
// when only the EOI marker is missing).
static void emit_message(j_common_ptr cinfo, int level) {
    struct error_manager *err = (struct error_manager *)cinfo->err;
    if (level >= 0 || cinfo->err->msg_code != JWRN_JPEG_EOF) return;
    cinfo->err->format_message(cinfo, err->message);
    err->status = CJPEGStatusTruncated;
    longjmp(err->escape, 1);
}

static void output_message(j_common_ptr cinfo) { (void)cinfo; }

CJPEGStatus cjpeg_decode(const unsigned char *data, size_t size, int64_t max_pixels, int scale_denom,
                         int header_only, CJPEGResult *result) {
    memset(result, 0, sizeof *result);
    struct jpeg_decompress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo);  // zeroed: destroying it is safe even if creation failed
    struct error_manager err;
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = error_exit;
    err.pub.emit_message = emit_message;
    err.pub.output_message = output_message;
    err.message = result->message;
    // Only memory reached through pointers changes between here and a longjmp, so no local needs `volatile`.
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        free(result->pixels);
        result->pixels = NULL;
        return err.status;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    result->width = (int)cinfo.image_width;
    result->height = (int)cinfo.image_height;
    result->components = cinfo.num_components;
    CJPEGStatus status = CJPEGStatusDecoded;
    // The size check happens on the header, before libjpeg allocates anything for the image.
    if ((int64_t)cinfo.image_width * (int64_t)cinfo.image_height > max_pixels) {
        status = CJPEGStatusTooLarge;
        goto done;
    }
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break;  // libjpeg turns YCCK into CMYK itself
    default:
        status = CJPEGStatusUnsupported;
        goto done;
    }
    if (header_only) goto done;
    // DCT scaling (Pillow's draft): libjpeg-turbo decodes at 1/2, 1/4 or 1/8 straight from the DCT
    // coefficients, so the full-size image is never made; 1 keeps the full-size decode unchanged.
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)(scale_denom > 1 ? scale_denom : 1);
    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    size_t bytes = row_bytes * cinfo.output_height;
    result->pixels = malloc(bytes > 0 ? bytes : 1);
    if (result->pixels == NULL) {
        strcpy(result->message, "out of memory for the pixels");
        status = CJPEGStatusFailed;
        goto done;
    }
    result->width = (int)cinfo.output_width;
    result->height = (int)cinfo.output_height;
    result->components = cinfo.output_components;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = result->pixels + (size_t)cinfo.output_scanline * row_bytes;
        // A memory source never suspends, so 0 rows would mean libjpeg gave up without saying why.
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            status = CJPEGStatusTruncated;
            goto done;
        }
    }
    jpeg_finish_decompress(&cinfo);

done:
    jpeg_destroy_decompress(&cinfo);
    if (status != CJPEGStatusDecoded) {
        free(result->pixels);
        result->pixels = NULL;
    }
    return status;
}
