// Debian's libjpeg-turbo through its libjpeg API (libjpeg62-turbo-dev, pkg-config libjpeg).
// jpeglib.h needs size_t and FILE declared before it.
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
