/* Minimal Netpbm reader/writer for the examples: binary PGM (P5), PPM (P6) and PAM (P7) with
 * maxval 255 and 1 (grey), 3 (RGB) or 4 (RGB_ALPHA) channels. */
#ifndef PTGRM_EXAMPLE_NETPBM_H
#define PTGRM_EXAMPLE_NETPBM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct netpbm_image {
    unsigned width, height;
    unsigned channels;      /* 1, 3 or 4 */
    int pam;                /* read from / write as P7 */
    unsigned char *pixels;  /* width * height * channels bytes, rows top to bottom, malloc'd */
} netpbm_image;

/* 0 on success; on failure -1 with a reason in err. */
int netpbm_read(const char *path, netpbm_image *img, char *err, size_t err_len);
int netpbm_write(const char *path, const netpbm_image *img, char *err, size_t err_len);
void netpbm_free(netpbm_image *img);

#ifdef __cplusplus
}
#endif

#endif
