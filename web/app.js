/* The page (index.html): open a model (from models.json beside the page, a file picker or a drop),
 * show its metadata, draw an 8x8 grid from a seed (a class for conditional models, optional
 * truncation) and a latent walk between two seeds. State for tests: window.onnxganPage. */
"use strict";

const GRID = 64, PAD = 2;
const $ = (id) => document.getElementById(id);
const page = window.onnxganPage = {state: "loading", runtime: null, sampler: null, source: null, lastPixels: null,
                                   lastMs: null, error: null};

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
  page.error = isError ? text : null;
}

function parseSeed(id) {
  const text = $(id).value.trim();
  if (!/^[0-9]+$/.test(text) || BigInt(text) >= 1n << 64n) throw new Error(`seed "${text}" is not an integer in [0, 2**64)`);
  return BigInt(text);
}

// uint8 pixels (n, H, W, C) -> canvas, `columns` per row, PAD black pixels between, upscaled by CSS.
function draw(canvas, pixels, n, columns) {
  const {height: h, width: w, channels: c} = page.sampler.info;
  const rows = Math.ceil(n / columns);
  canvas.width = columns * (w + PAD) + PAD;
  canvas.height = rows * (h + PAD) + PAD;
  const context = canvas.getContext("2d");
  const picture = context.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < n; ++i) {
    const top = PAD + Math.floor(i / columns) * (h + PAD), left = PAD + (i % columns) * (w + PAD);
    for (let y = 0; y < h; ++y)
      for (let x = 0; x < w; ++x) {
        const source = ((i * h + y) * w + x) * c, target = ((top + y) * canvas.width + left + x) * 4;
        for (let k = 0; k < 3; ++k) picture.data[target + k] = pixels[source + (c === 1 ? 0 : k)];
        picture.data[target + 3] = 255;
      }
  }
  context.putImageData(picture, 0, 0);
  const zoom = Math.max(1, Math.floor(Math.min(640 / canvas.width, 480 / canvas.height)));
  canvas.style.width = `${canvas.width * zoom}px`;
  canvas.style.height = `${canvas.height * zoom}px`;
}

// The picked class for every image, or null: the kernel cycles through the classes (the walk then
// uses class 0).
function labels(n) {
  const value = Number($("class").value);
  return page.sampler.info.num_classes === 0 || value < 0 ? null : new Array(n).fill(value);
}

function truncation() {
  return $("truncate").checked ? Number($("truncation").value) : 0;
}

function sampleGrid() {
  try {
    const seed = parseSeed("seed");
    const start = performance.now();
    const pixels = page.sampler.sample(GRID, seed, {truncation: truncation(), labels: labels(GRID)});
    page.lastMs = performance.now() - start;
    page.lastPixels = pixels;
    draw($("grid"), pixels, GRID, 8);
    setStatus(`${page.source}: 64 images from seed ${seed} in ${page.lastMs.toFixed(1)} ms (WebAssembly, one thread)`);
    page.state = "sampled";
  } catch (error) {
    setStatus(error.message, true);
  }
}

// Spherical interpolation of z(a) and z(b), as Sampler.interpolate does in Python (float64, then float32).
function slerp(a, b, steps) {
  const dot = a.reduce((sum, v, i) => sum + v * b[i], 0);
  const norm = (v) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm(a) * norm(b)))));
  const z = new Float32Array(steps * a.length);
  for (let s = 0; s < steps; ++s) {
    const t = s / (steps - 1);
    const [wa, wb] = Math.sin(omega) < 1e-6 ? [1 - t, t]
                   : [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)];
    for (let i = 0; i < a.length; ++i) z[s * a.length + i] = wa * a[i] + wb * b[i];
  }
  return z;
}

function walk() {
  try {
    const steps = Number($("walk-steps").value);
    if (!(Number.isInteger(steps) && steps >= 2 && steps <= 64)) throw new Error("steps must be 2..64");
    const z = slerp(page.sampler.latent(1, parseSeed("walk-a"), truncation()),
                    page.sampler.latent(1, parseSeed("walk-b"), truncation()), steps);
    const value = Number($("class").value);
    const classes = page.sampler.info.num_classes;
    draw($("strip"), page.sampler.generatePixels(z, classes === 0 ? null : new Array(steps).fill(Math.max(value, 0))),
         steps, steps);
  } catch (error) {
    setStatus(error.message, true);
  }
}

function showModel(sampler, source) {
  if (page.sampler) page.sampler.close();
  page.sampler = sampler;
  page.source = source;
  const table = $("metadata");
  table.replaceChildren();
  const rows = Object.entries(sampler.metadata);
  rows.push(["(kernel)", `onnxgan ${page.runtime.version}, WebAssembly, ${sampler.info.threads} thread`]);
  for (const [key, value] of rows) {
    const row = table.insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = value;
  }
  const classes = sampler.info.num_classes;
  const names = classes ? JSON.parse(sampler.metadata.class_names || "[]") : [];
  const select = $("class");
  select.replaceChildren(new Option("each class in turn", "-1"));
  for (let k = 0; k < classes; ++k) select.add(new Option(names[k] === undefined ? String(k) : `${k}: ${names[k]}`, String(k)));
  $("class-label").hidden = classes === 0;
  $("controls").hidden = false;
  sampleGrid();
  walk();
}

function openBytes(bytes, source) {
  try {
    showModel(page.runtime.open(bytes), source);
  } catch (error) {
    const hint = error.status === "unsupported"
      ? " This page samples the generators gan-export writes; sample this model with gan-sample (onnxruntime)." : "";
    $("controls").hidden = true;
    setStatus(`${source}: ${error.message}.${hint}`, true);
  }
}

async function openUrl(url) {
  setStatus(`Loading ${url}...`);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    openBytes(new Uint8Array(await response.arrayBuffer()), url);
  } catch (error) {
    setStatus(`${url}: cannot load it (${error.message})`, true);
  }
}

async function openFile(file) {
  openBytes(new Uint8Array(await file.arrayBuffer()), file.name);
}

// models.json beside the page (written by gan-sample --web): [{"file": "model.onnx", "title": "..."}].
// Opened from disk (file://) or absent, there is no list: pick or drop a file.
async function listModels() {
  let models = [];
  try {
    const response = await fetch("models.json");
    if (response.ok) models = await response.json();
  } catch (error) {
    return;
  }
  if (!models.length) return;
  const select = $("model-list");
  for (const model of models) select.add(new Option(model.title || model.file, model.file));
  select.addEventListener("change", () => openUrl(select.value));
  $("model-list-label").hidden = false;
  await openUrl(models[0].file);
}

async function main() {
  try {
    page.runtime = await OnnxganApi.load();
  } catch (error) {
    setStatus(`The WebAssembly sampler did not load (${error}); serve this folder over http(s), e.g. ` +
              "python3 -m http.server", true);
    return;
  }
  setStatus("Pick or drop a model.onnx.");
  page.state = "ready";
  $("file").addEventListener("change", (event) => event.target.files[0] && openFile(event.target.files[0]));
  const drop = $("drop");
  document.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", () => drop.classList.remove("over"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) openFile(event.dataTransfer.files[0]);
  });
  $("sample").addEventListener("click", sampleGrid);
  $("next-seed").addEventListener("click", () => {
    $("seed").value = String((parseSeed("seed") + 1n) % (1n << 64n));
    sampleGrid();
  });
  $("class").addEventListener("change", () => { sampleGrid(); walk(); });
  $("truncate").addEventListener("change", () => {
    $("truncation").disabled = !$("truncate").checked;
    sampleGrid();
    walk();
  });
  $("truncation").addEventListener("input", () => {
    $("truncation-value").textContent = Number($("truncation").value).toFixed(2);
  });
  $("truncation").addEventListener("change", () => { sampleGrid(); walk(); });
  $("walk").addEventListener("click", walk);
  await listModels();
}

main();
