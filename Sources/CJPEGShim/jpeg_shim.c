#include "jpeg_shim.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct gh_error {
    struct jpeg_error_mgr manager;  // first, so the library's pointer is ours
    jmp_buf jump;
};

static void gh_error_exit(j_common_ptr info) {
    struct gh_error *error = (struct gh_error *)info->err;
    longjmp(error->jump, 1);
}

// A warning (corrupt data, premature end of file) would let libjpeg fill the rest with grey and
// report success: a truncated snapshot must be an error, not a grey picture that scores as covered.
static void gh_emit_message(j_common_ptr info, int level) {
    if (level < 0) gh_error_exit(info);
}

static void gh_message(j_common_ptr info, char *message, size_t message_size) {
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    snprintf(message, message_size, "%s", text);
}

int gh_jpeg_decode_gray(const unsigned char *data, size_t size, int target_width, long long max_pixels,
                        unsigned char **pixels, int *width, int *height, int *full_width, int *full_height,
                        char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct gh_error error;
    unsigned char *volatile output = NULL;
    *pixels = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = gh_error_exit;
    error.manager.emit_message = gh_emit_message;
    if (setjmp(error.jump)) {
        gh_message((j_common_ptr)&info, message, message_size);
        jpeg_destroy_decompress(&info);
        free(output);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    *full_width = (int)info.image_width;
    *full_height = (int)info.image_height;
    if ((long long)info.image_width * (long long)info.image_height > max_pixels) {
        snprintf(message, message_size, "picture of %ux%u is larger than the %lld pixels allowed",
                 info.image_width, info.image_height, max_pixels);
        jpeg_destroy_decompress(&info);
        return 2;
    }
    unsigned int denominator = 8;
    while (denominator > 1 && (info.image_width + denominator - 1) / denominator < (unsigned int)target_width) denominator /= 2;
    info.scale_num = 1;
    info.scale_denom = denominator;
    info.out_color_space = JCS_GRAYSCALE;
    info.dct_method = JDCT_IFAST;
    jpeg_start_decompress(&info);
    size_t stride = info.output_width * (size_t)info.output_components;
    output = malloc(stride * info.output_height);
    if (output == NULL) {
        snprintf(message, message_size, "out of memory for a %ux%u picture", info.output_width, info.output_height);
        jpeg_destroy_decompress(&info);
        return 3;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = output + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    jpeg_destroy_decompress(&info);
    *pixels = output;
    return 0;
}

int gh_jpeg_encode(const unsigned char *pixels, int width, int height, int components, int quality,
                   unsigned char **jpeg, size_t *jpeg_size, char *message, size_t message_size) {
    struct jpeg_compress_struct info;
    struct gh_error error;
    // libjpeg grows this buffer with malloc as it writes; its address is taken, so it survives the longjmp.
    unsigned char *destination = NULL;
    unsigned long buffer_size = 0;
    *jpeg = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = gh_error_exit;
    if (setjmp(error.jump)) {
        gh_message((j_common_ptr)&info, message, message_size);
        jpeg_destroy_compress(&info);
        free(destination);
        return 1;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, &destination, &buffer_size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = components;
    info.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    size_t stride = (size_t)width * (size_t)components;
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * info.next_scanline);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    *jpeg = destination;
    *jpeg_size = (size_t)buffer_size;
    jpeg_destroy_compress(&info);
    return 0;
}

void gh_jpeg_free(void *pointer) { free(pointer); }
