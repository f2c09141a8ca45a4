/* Enhance an image file with libptgrm.
 *
 *   cc -o ptgrm-enhance enhance.c netpbm.c $(pkg-config --cflags --libs ptgrm)
 *   ./ptgrm-enhance [--model DIR] [--strength S] [--provider auto|tensorrt|cuda|cpu] IN OUT
 *
 * IN is a binary PGM, PPM or PAM file (8-bit grey, RGB or RGBA); OUT is written in the same kind.
 * Without --model the library's default model is used ($PTGRM_MODEL, ...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netpbm.h"
#include "ptgrm.h"

static int fail(const char *what, ptgrm_status status) {
    fprintf(stderr, "ptgrm-enhance: %s failed (status %d): %s\n", what, (int)status, ptgrm_last_error());
    return 1;
}

static int parse_provider(const char *name, ptgrm_provider *out) {
    ptgrm_provider p;
    for (p = PTGRM_PROVIDER_AUTO; p <= PTGRM_PROVIDER_CPU; p++) {
        if (strcmp(name, ptgrm_provider_name(p)) == 0) {
            *out = p;
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *in_path = NULL, *out_path = NULL;
    char err[256];
    netpbm_image img;
    ptgrm_options opts;
    ptgrm_engine *engine = NULL;
    ptgrm_image in, out;
    ptgrm_provider provider;
    ptgrm_pixel_format format;
    ptgrm_status st;
    unsigned char *result;
    size_t size;
    int i, rc = 1;

    if ((st = ptgrm_options_init(&opts, sizeof opts)) != PTGRM_OK) return fail("ptgrm_options_init", st);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--strength") == 0 && i + 1 < argc) {
            opts.strength = strtof(argv[++i], NULL);
        } else if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc) {
            if (parse_provider(argv[++i], &opts.provider)) {
                fprintf(stderr, "ptgrm-enhance: unknown provider %s\n", argv[i]);
                return 2;
            }
        } else if (!in_path) {
            in_path = argv[i];
        } else if (!out_path) {
            out_path = argv[i];
        } else {
            in_path = NULL;
            break;
        }
    }
    if (!in_path || !out_path) {
        fprintf(stderr, "usage: %s [--model DIR] [--strength S] [--provider auto|tensorrt|cuda|cpu] IN OUT\n", argv[0]);
        return 2;
    }

    if (netpbm_read(in_path, &img, err, sizeof err)) {
        fprintf(stderr, "ptgrm-enhance: %s\n", err);
        return 1;
    }
    format = img.channels == 1 ? PTGRM_FORMAT_GRAY8 : img.channels == 3 ? PTGRM_FORMAT_RGB8 : PTGRM_FORMAT_RGBA8;
    size = (size_t)img.width * img.height * img.channels;
    /* Start from a copy so that alpha, which the engine leaves untouched, is carried over. */
    result = malloc(size);
    if (!result) {
        fprintf(stderr, "ptgrm-enhance: out of memory\n");
        goto done;
    }
    memcpy(result, img.pixels, size);

    if ((st = ptgrm_engine_create(model, &opts, &engine)) != PTGRM_OK) {
        rc = fail("ptgrm_engine_create", st);
        goto done;
    }
    if ((st = ptgrm_engine_active_provider(engine, &provider)) != PTGRM_OK) {
        rc = fail("ptgrm_engine_active_provider", st);
        goto done;
    }
    if ((st = ptgrm_image_wrap(&in, format, img.width, img.height, img.pixels, size)) != PTGRM_OK ||
        (st = ptgrm_image_wrap(&out, format, img.width, img.height, result, size)) != PTGRM_OK) {
        rc = fail("ptgrm_image_wrap", st);
        goto done;
    }
    if ((st = ptgrm_engine_process(engine, &in, &out)) != PTGRM_OK) {
        rc = fail("ptgrm_engine_process", st);
        goto done;
    }
    free(img.pixels);
    img.pixels = result;
    result = NULL;
    if (netpbm_write(out_path, &img, err, sizeof err)) {
        fprintf(stderr, "ptgrm-enhance: %s\n", err);
        goto done;
    }
    printf("ptgrm %s: %ux%u %s -> %s on %s\n", ptgrm_version(), img.width, img.height, in_path, out_path,
           ptgrm_provider_name(provider));
    rc = 0;
done:
    ptgrm_engine_destroy(engine);
    free(result);
    netpbm_free(&img);
    return rc;
}
