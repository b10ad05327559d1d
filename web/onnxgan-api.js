/* onnxgan's C ABI (cpp/include/onnxgan/sampler.h) in the browser: the native sampler compiled to
 * WebAssembly (onnxgan.js + onnxgan.wasm, built from cpp/wasm) wrapped in two small classes.
 *
 *   const runtime = await OnnxganApi.load();
 *   const sampler = runtime.open(new Uint8Array(await file.arrayBuffer()));   // throws OnnxganError
 *   const pixels = sampler.sample(64, 42n, {truncation: 0.7});                  // uint8 (64, H, W, C)
 *
 * Seeds are BigInts in [0, 2**64); the same seed gives the same z as every other backend
 * (runtime/latent.py). The library is the native Python backend's, run by its portable kernel
 * (auto-vectorised with WASM SIMD) on one thread.
 */
"use strict";

const OnnxganApi = (() => {
  const STATUS_NAMES = ["ok", "io", "format", "unsupported", "argument", "memory", "internal", "nonfinite"];  // onnxgan_status
  const OUTPUT_UINT8 = 1;
  // onnxgan_info on wasm32 (offset, type): cpp/wasm/binding.c asserts this layout at compile time.
  const INFO_SIZE = 80;
  const INFO_FIELDS = {
    latent_dim: [0, "i64"], channels: [8, "i64"], height: [16, "i64"], width: [24, "i64"], image_size: [32, "i64"],
    num_classes: [40, "i64"], value_min: [48, "f32"], value_max: [52, "f32"], threads: [56, "i32"],
    precision: [60, "i32"], kernel: [64, "i32"], metadata_count: [72, "i64"],
  };
  const SEED_LIMIT = 1n << 64n;

  class OnnxganError extends Error {
    constructor(status, message) {
      super(message);
      this.name = "OnnxganError";
      this.status = STATUS_NAMES[status] || String(status);  // "unsupported": valid ONNX this kernel cannot run
    }
  }

  async function load() {
    return new Runtime(await OnnxganModule());  // onnxgan.js, loaded by a <script> tag before this file
  }

  class Runtime {
    constructor(module) {
      this.module = module;
      this.version = module.UTF8ToString(module._onnxgan_version());
    }

    // model.onnx bytes (Uint8Array) -> Sampler; one thread (the page's main thread).
    open(bytes) {
      return this.withMemory(bytes.length + 20, (base) => {  // bytes, padding to 4, options (12), handle (4)
        const M = this.module;
        const data = base, options = base + bytes.length + (4 - bytes.length % 4), handle = options + 12;
        M.HEAPU8.set(bytes, data);
        M.HEAP32.set([1, 0, 0], options >> 2);  // threads 1, precision auto (float32 on the portable kernel), kernel auto (portable here)
        this.check(M._onnxgan_open_memory(data, bytes.length, options, handle));
        return new Sampler(this, M.HEAP32[handle >> 2]);
      });
    }

    check(status) {
      if (status !== 0) throw new OnnxganError(status, this.module.UTF8ToString(this.module._onnxgan_last_error()));
    }

    // Runs body(pointer) on `bytes` of wasm memory, freed afterwards. Views of HEAP* must be taken
    // after any call that may grow the memory.
    withMemory(bytes, body) {
      const pointer = this.module._malloc(Math.max(bytes, 1));
      if (!pointer) throw new OnnxganError(5, "out of memory");
      try {
        return body(pointer);
      } finally {
        this.module._free(pointer);
      }
    }
  }

  class Sampler {
    constructor(runtime, handle) {
      this.runtime = runtime;
      this.handle = handle;
      const M = runtime.module;
      this.info = runtime.withMemory(INFO_SIZE, (pointer) => {
        runtime.check(M._onnxgan_get_info(handle, pointer));
        const info = {};
        for (const [name, [offset, type]] of Object.entries(INFO_FIELDS))
          info[name] = type === "i64" ? Number(M.HEAP64[(pointer + offset) >> 3])
                     : type === "f32" ? M.HEAPF32[(pointer + offset) >> 2] : M.HEAP32[(pointer + offset) >> 2];
        return info;
      });
      // Every metadata_props entry: key -> its JSON text (docs/onnx-contract.md).
      this.metadata = runtime.withMemory(8, (pointer) => {
        const entries = {};
        for (let i = 0; i < this.info.metadata_count; ++i) {
          runtime.check(M._onnxgan_metadata_entry(handle, BigInt(i), pointer, pointer + 4));
          entries[M.UTF8ToString(M.HEAP32[pointer >> 2])] = M.UTF8ToString(M.HEAP32[(pointer + 4) >> 2]);
        }
        return entries;
      });
    }

    // n images of seed as uint8 (n, H, W, C). truncation 0: none, else >= 0.1 (runtime/latent.py's
    // rule); labels: null (conditional models cycle through the classes) or n class indices.
    sample(n, seed, {truncation = 0, labels = null} = {}) {
      checkSeed(seed);
      const size = n * this.info.image_size;
      return this.withLabels(n, labels, (labelPointer) => this.runtime.withMemory(size, (out) => {
        const M = this.runtime.module;
        this.runtime.check(M._onnxgan_sample(this.handle, BigInt(n), seed, truncation, labelPointer, OUTPUT_UINT8, out, size));
        return M.HEAPU8.slice(out, out + size);
      }));
    }

    // z float32 (n, latent_dim) of seed, as Sampler.latent gives it in Python.
    latent(n, seed, truncation = 0) {
      checkSeed(seed);
      const count = n * this.info.latent_dim;
      return this.runtime.withMemory(4 * count, (out) => {
        const M = this.runtime.module;
        this.runtime.check(M._onnxgan_latent(BigInt(n), BigInt(this.info.latent_dim), seed, truncation, out, 4 * count));
        return M.HEAPF32.slice(out >> 2, (out >> 2) + count);
      });
    }

    // z Float32Array (n, latent_dim) [+ labels] -> uint8 images (n, H, W, C), mapped as sample() maps them.
    generatePixels(z, labels = null) {
      const n = z.length / this.info.latent_dim, size = n * this.info.image_size;
      return this.withLabels(n, labels, (labelPointer) => this.runtime.withMemory(4 * z.length + 4 * size + size, (base) => {
        const M = this.runtime.module, images = base + 4 * z.length, out = images + 4 * size;
        M.HEAPF32.set(z, base >> 2);
        this.runtime.check(M._onnxgan_generate(this.handle, BigInt(n), base, labelPointer, images, 4 * size));
        this.runtime.check(M._onnxgan_to_uint8(this.handle, BigInt(n), images, 4 * size, out, size));
        return M.HEAPU8.slice(out, out + size);
      }));
    }

    withLabels(n, labels, body) {
      if (labels === null) return body(0);
      if (labels.length !== n) throw new OnnxganError(4, `need ${n} labels, got ${labels.length}`);
      return this.runtime.withMemory(8 * n, (pointer) => {
        this.runtime.module.HEAP64.set(Array.from(labels, BigInt), pointer >> 3);
        return body(pointer);
      });
    }

    close() {
      this.runtime.module._onnxgan_close(this.handle);
      this.handle = 0;
    }
  }

  function checkSeed(seed) {
    if (typeof seed !== "bigint" || seed < 0n || seed >= SEED_LIMIT)
      throw new OnnxganError(4, `seed must be an integer in [0, 2**64), got ${seed}`);
  }

  return {load, OnnxganError};
})();
