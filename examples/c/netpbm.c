/* See netpbm.h. Deliberately small: enough to feed real photos to the examples without a
 * dependency on an image library. */
#include "netpbm.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Next whitespace-separated token of a P5/P6 header, skipping '#' comments. */
static int next_token(FILE *f, char *tok, size_t len) {
    int c;
    size_t n = 0;
    for (;;) {
        c = fgetc(f);
        if (c == '#') {
            while (c != '\n' && c != EOF) c = fgetc(f);
        } else if (!isspace(c)) {
            break;
        }
    }
    while (c != EOF && !isspace(c) && n + 1 < len) {
        tok[n++] = (char)c;
        c = fgetc(f);
    }
    tok[n] = '\0';
    return n > 0 ? 0 : -1; /* the single whitespace after the last token has been consumed */
}

static int parse_uint(const char *s, unsigned *out) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > 65535) return -1;
    *out = (unsigned)v;
    return 0;
}

static int read_pam_header(FILE *f, netpbm_image *img, unsigned *maxval, char *err, size_t err_len) {
    char line[256], tuple[64] = "";
    img->channels = 0;
    while (fgets(line, sizeof line, f)) {
        char key[32], val[64];
        if (line[0] == '#' || line[0] == '\n') continue;
        if (strncmp(line, "ENDHDR", 6) == 0) {
            if (strcmp(tuple, "GRAYSCALE") == 0 && img->channels == 1) return 0;
            if (strcmp(tuple, "RGB") == 0 && img->channels == 3) return 0;
            if (strcmp(tuple, "RGB_ALPHA") == 0 && img->channels == 4) return 0;
            snprintf(err, err_len, "unsupported PAM TUPLTYPE %s with DEPTH %u", tuple, img->channels);
            return -1;
        }
        if (sscanf(line, "%31s %63s", key, val) != 2) continue;
        if (strcmp(key, "WIDTH") == 0 && parse_uint(val, &img->width)) break;
        if (strcmp(key, "HEIGHT") == 0 && parse_uint(val, &img->height)) break;
        if (strcmp(key, "DEPTH") == 0 && parse_uint(val, &img->channels)) break;
        if (strcmp(key, "MAXVAL") == 0 && parse_uint(val, maxval)) break;
        if (strcmp(key, "TUPLTYPE") == 0) snprintf(tuple, sizeof tuple, "%s", val);
    }
    snprintf(err, err_len, "bad PAM header");
    return -1;
}

int netpbm_read(const char *path, netpbm_image *img, char *err, size_t err_len) {
    char magic[3] = "", tok[32];
    unsigned maxval = 0;
    size_t size;
    FILE *f = fopen(path, "rb");
    memset(img, 0, sizeof *img);
    if (!f) {
        snprintf(err, err_len, "cannot open %s", path);
        return -1;
    }
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6' && magic[1] != '7')) {
        snprintf(err, err_len, "%s is not a binary PGM/PPM/PAM file", path);
        goto fail;
    }
    if (magic[1] == '7') {
        img->pam = 1;
        if (read_pam_header(f, img, &maxval, err, err_len)) goto fail;
    } else {
        img->channels = magic[1] == '5' ? 1 : 3;
        if (next_token(f, tok, sizeof tok) || parse_uint(tok, &img->width) || next_token(f, tok, sizeof tok) ||
            parse_uint(tok, &img->height) || next_token(f, tok, sizeof tok) || parse_uint(tok, &maxval)) {
            snprintf(err, err_len, "bad P%c header in %s", magic[1], path);
            goto fail;
        }
    }
    if (maxval != 255 || img->width == 0 || img->height == 0) {
        snprintf(err, err_len, "%s: need 8-bit samples (maxval 255) and a non-empty size", path);
        goto fail;
    }
    size = (size_t)img->width * img->height * img->channels;
    img->pixels = malloc(size);
    if (!img->pixels || fread(img->pixels, 1, size, f) != size) {
        snprintf(err, err_len, "%s is truncated (expected %zu pixel bytes)", path, size);
        goto fail;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    netpbm_free(img);
    return -1;
}

int netpbm_write(const char *path, const netpbm_image *img, char *err, size_t err_len) {
    size_t size = (size_t)img->width * img->height * img->channels;
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) {
        snprintf(err, err_len, "cannot create %s", path);
        return -1;
    }
    if (img->pam) {
        const char *tuple = img->channels == 1 ? "GRAYSCALE" : img->channels == 3 ? "RGB" : "RGB_ALPHA";
        fprintf(f, "P7\nWIDTH %u\nHEIGHT %u\nDEPTH %u\nMAXVAL 255\nTUPLTYPE %s\nENDHDR\n", img->width,
                img->height, img->channels, tuple);
    } else {
        fprintf(f, "P%c\n%u %u\n255\n", img->channels == 1 ? '5' : '6', img->width, img->height);
    }
    ok = fwrite(img->pixels, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok) snprintf(err, err_len, "writing %s failed", path);
    return ok ? 0 : -1;
}

void netpbm_free(netpbm_image *img) {
    free(img->pixels);
    img->pixels = NULL;
}
