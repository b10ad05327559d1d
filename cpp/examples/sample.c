/* Example of the C ABI: sample COUNT images from a generator (MLP or conv) and write them as one grid picture
 * (binary PGM for 1 channel, PPM for 3), laid out like gan-sample's grids: near-square, each image
 * upscaled 2 x, 2 black pixels between. Conditional models cycle through their classes.
 *
 *   onnxgan_sample MODEL.onnx OUT.pgm [COUNT=16] [SEED=0] [THREADS=0]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnxgan/sampler.h"

enum { SCALE = 2, PAD = 2 };

static int fail(const char *what) {
  fprintf(stderr, "onnxgan_sample: %s: %s\n", what, onnxgan_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 6) {
    fprintf(stderr, "usage: %s MODEL.onnx OUT.pgm [COUNT=16] [SEED=0] [THREADS=0]\n", argv[0]);
    return 2;
  }
  const long long count = argc > 3 ? atoll(argv[3]) : 16;
  const unsigned long long seed = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  onnxgan_options options = {argc > 5 ? atoi(argv[5]) : 0, ONNXGAN_PRECISION_AUTO, ONNXGAN_KERNEL_AUTO};
  if (count < 1 || count > 4096) {
    fprintf(stderr, "onnxgan_sample: COUNT must be 1..4096\n");
    return 2;
  }
  onnxgan_model *model = NULL;
  if (onnxgan_open_file(argv[1], &options, &model) != ONNXGAN_OK) return fail("cannot load the model");
  onnxgan_info info;
  onnxgan_get_info(model, &info);
  if (info.channels != 1 && info.channels != 3) {
    fprintf(stderr, "onnxgan_sample: %lld channels: only 1 (PGM) or 3 (PPM) can be written\n", (long long)info.channels);
    onnxgan_close(model);
    return 2;
  }
  const long long h = info.height, w = info.width, c = info.channels;
  const size_t pixels_size = (size_t)(count * h * w * c);
  unsigned char *pixels = malloc(pixels_size); /* (count, H, W, C) */
  if (!pixels || onnxgan_sample(model, count, seed, 0.0, NULL, ONNXGAN_OUTPUT_UINT8, pixels, pixels_size) != ONNXGAN_OK) {
    free(pixels);
    onnxgan_close(model);
    return fail("cannot sample");
  }
  onnxgan_close(model);

  const long long columns = (long long)ceil(sqrt((double)count)), rows = (count + columns - 1) / columns;
  const long long cell_h = h * SCALE + PAD, cell_w = w * SCALE + PAD;
  const long long height = rows * cell_h + PAD, width = columns * cell_w + PAD;
  unsigned char *canvas = calloc((size_t)(height * width * c), 1); /* (height, width, C), black */
  if (!canvas) {
    free(pixels);
    fprintf(stderr, "onnxgan_sample: out of memory\n");
    return 1;
  }
  for (long long i = 0; i < count; ++i) {
    const long long top = PAD + (i / columns) * cell_h, left = PAD + (i % columns) * cell_w;
    for (long long y = 0; y < h * SCALE; ++y)
      for (long long x = 0; x < w * SCALE; ++x)
        for (long long k = 0; k < c; ++k)
          canvas[((top + y) * width + left + x) * c + k] = pixels[((i * h + y / SCALE) * w + x / SCALE) * c + k];
  }
  FILE *out = fopen(argv[2], "wb");
  int ok = out != NULL;
  if (ok) {
    fprintf(out, "P%c\n%lld %lld\n255\n", c == 1 ? '5' : '6', width, height);
    ok = fwrite(canvas, 1, (size_t)(height * width * c), out) == (size_t)(height * width * c);
    ok = (fclose(out) == 0) && ok;
  }
  free(canvas);
  free(pixels);
  if (!ok) {
    fprintf(stderr, "onnxgan_sample: cannot write %s\n", argv[2]);
    return 1;
  }
  printf("wrote %s: %lld images of %lldx%lldx%lld, seed %llu, %d threads\n", argv[2], count, c, h, w, seed, info.threads);
  return 0;
}
