#ifndef GATEHOUSE_JPEG_SHIM_H
#define GATEHOUSE_JPEG_SHIM_H

#include <stddef.h>

// libjpeg reports errors by longjmp from error_exit, which Swift cannot catch: these two calls
// set the jump point, turn every libjpeg error (and every warning, such as a truncated file) into
// a return code and a message, and free what they allocated. Nothing else is hand-written C.

/// Decodes `size` bytes of JPEG to 8-bit grayscale, reduced by the largest of 1/8, 1/4, 1/2 that
/// keeps the width at least `target_width` (so a 4K snapshot costs about 500 x 270 bytes).
/// Refuses pictures of more than `max_pixels` before decoding. On success returns 0 and sets
/// `*pixels` (free with gh_jpeg_free), the reduced `*width`/`*height` and the full ones; on
/// failure returns non-zero with `message` filled.
int gh_jpeg_decode_gray(const unsigned char *data, size_t size, int target_width, long long max_pixels,
                        unsigned char **pixels, int *width, int *height, int *full_width, int *full_height,
                        char *message, size_t message_size);

/// Encodes `width` x `height` pixels of `components` (1 gray, 3 RGB) 8-bit samples as a baseline
/// JPEG of `quality` (1-100). On success returns 0 and sets `*jpeg`/`*jpeg_size` (free with gh_jpeg_free).
int gh_jpeg_encode(const unsigned char *pixels, int width, int height, int components, int quality,
                   unsigned char **jpeg, size_t *jpeg_size, char *message, size_t message_size);

void gh_jpeg_free(void *pointer);

#endif
