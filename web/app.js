/* The page (index.html): open a model (from models.json beside the page, a file picker or a drop), say
 * what it is in two lines (its raw metadata folded below), draw an 8x8 grid from a seed (a class for
 * conditional models, live truncation) and an animated latent walk between two seeds within one class
 * (or one row per class). The URL's hash holds the view (model, seed, class, truncation), so a link
 * reproduces it. A file the kernel refuses is one plain sentence; the model on screen stays.
 * State for tests: window.onnxganPage. */
"use strict";

const GRID = 64, COLUMNS = 8, PAD = 2, FRAME_MS = 120;
const MAX_HEIGHT = 640, ANIMATION_HEIGHT = 280;  // CSS px: the grid fits a laptop's screen, a walking digit stays a digit
const $ = (id) => document.getElementById(id);
const page = window.onnxganPage = {state: "loading", runtime: null, sampler: null, source: null, lastPixels: null,
                                   lastMs: null, error: null, walkRows: null, lastDownload: null, frame: 0,
                                   wanted: readHash()};

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

// ---- drawing: whole multiples of the model's pixels, as large as the column allows ----

// uint8 pixels (n, H, W, C) -> canvas, `columns` per row, PAD black pixels between. The canvas holds
// the picture at `zoom` device pixels per model pixel, the largest whole number that fits the column
// (devicePixelRatio included, so a phone's screen is used too), and is shown at that size: crisp at
// every width, never stretched by CSS; at most maxHeight CSS px tall.
function draw(canvas, pixels, n, columns, maxHeight = MAX_HEIGHT) {
  canvas.drawn = {pixels, n, columns, maxHeight};
  const {height: h, width: w, channels: c} = page.sampler.info;
  const rows = Math.ceil(n / columns);
  const width = columns * (w + PAD) + PAD, height = rows * (h + PAD) + PAD;
  const ratio = window.devicePixelRatio || 1;
  const room = Math.max(canvas.parentElement.clientWidth, 1) * ratio;  // device pixels across the column
  const zoom = Math.max(1, Math.floor(Math.min(room / width, maxHeight * ratio / height)));
  canvas.width = width * zoom;
  canvas.height = height * zoom;
  canvas.style.width = `${canvas.width / ratio}px`;
  canvas.style.height = `${canvas.height / ratio}px`;
  const context = canvas.getContext("2d");
  const picture = context.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < n; ++i) {
    const top = PAD + Math.floor(i / columns) * (h + PAD), left = PAD + (i % columns) * (w + PAD);
    for (let y = 0; y < h * zoom; ++y)
      for (let x = 0; x < w * zoom; ++x) {
        const source = ((i * h + Math.floor(y / zoom)) * w + Math.floor(x / zoom)) * c;
        const target = ((top * zoom + y) * canvas.width + left * zoom + x) * 4;
        for (let k = 0; k < 3; ++k) picture.data[target + k] = pixels[source + (c === 1 ? 0 : k)];
        picture.data[target + 3] = 255;
      }
  }
  context.putImageData(picture, 0, 0);
}

function redraw() {
  for (const canvas of document.querySelectorAll("canvas"))
    if (canvas.drawn) draw(canvas, canvas.drawn.pixels, canvas.drawn.n, canvas.drawn.columns, canvas.drawn.maxHeight);
}

// ---- the grid ----

// The picked class for every image, or null: the kernel cycles through the classes.
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
    draw($("grid"), pixels, GRID, COLUMNS);
    setStatus(`${page.source}: 64 images from seed ${seed} in ${page.lastMs.toFixed(1)} ms (WebAssembly, one thread)`);
    page.state = "sampled";
    writeHash();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function randomSeed() {
  const words = crypto.getRandomValues(new Uint32Array(2));
  $("seed").value = String((BigInt(words[0]) << 32n) | BigInt(words[1]));
  sampleGrid();
}

// ---- the walk ----

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

// The classes the walk runs through, one row each: the picked class, or every class when the picker
// says "each class in turn"; [null] for unconditional models. A walk keeps its class: a class that
// changed every frame would be a counter, not a walk (gan-sample --interpolate does the same).
function walkClasses() {
  const classes = page.sampler.info.num_classes, value = Number($("class").value);
  if (classes === 0) return [null];
  return value >= 0 ? [value] : Array.from({length: classes}, (_, k) => k);
}

function walk() {
  try {
    const steps = Number($("walk-steps").value);
    if (!(Number.isInteger(steps) && steps >= 2 && steps <= 64)) throw new Error("steps must be 2..64");
    const z = slerp(page.sampler.latent(1, parseSeed("walk-a"), truncation()),
                    page.sampler.latent(1, parseSeed("walk-b"), truncation()), steps);
    const rows = walkClasses().map((k) => page.sampler.generatePixels(z, k === null ? null : new Array(steps).fill(k)));
    page.walkRows = rows;
    const strip = new Uint8Array(rows.length * rows[0].length);
    rows.forEach((row, r) => strip.set(row, r * row.length));
    // one row per class; a single walk wraps at 8 frames, so that its frames are drawn large too
    draw($("strip"), strip, rows.length * steps, rows.length > 1 ? steps : Math.min(steps, COLUMNS));
    $("walk-note").textContent = rows.length > 1 ? `each class in its own row, ${steps} steps`
      : page.sampler.info.num_classes ? `within class ${className(walkClasses()[0])}, ${steps} steps` : `${steps} steps`;
    page.frame = 0;
    showFrame();
    writeHash();
  } catch (error) {
    setStatus(error.message, true);
  }
}

// One frame of the walk for every row, side by side; the timer moves along the walk and back.
function showFrame() {
  const rows = page.walkRows;
  if (!rows) return;
  const steps = rows[0].length / page.sampler.info.image_size, size = page.sampler.info.image_size;
  const t = page.frame % (2 * steps - 2), step = t < steps ? t : 2 * steps - 2 - t;  // ping-pong
  const cells = new Uint8Array(rows.length * size);
  rows.forEach((row, r) => cells.set(row.subarray(step * size, (step + 1) * size), r * size));
  draw($("animation"), cells, rows.length, Math.min(rows.length, 10), ANIMATION_HEIGHT);
}

function toggleAnimation() {
  if (page.timer) {
    clearInterval(page.timer);
    page.timer = null;
  } else {
    page.timer = setInterval(() => { page.frame += 1; showFrame(); }, FRAME_MS);
  }
  $("play").textContent = page.timer ? "Pause" : "Play";
}

// ---- the model ----

function metadataValue(key) {
  try {
    return JSON.parse(page.sampler.metadata[key]);
  } catch (error) {
    return undefined;
  }
}

function className(k) {
  const names = metadataValue("class_names");
  return Array.isArray(names) && names[k] !== undefined && names[k] !== String(k) ? `${k} (${names[k]})` : String(k);
}

// Two lines a person reads: what the model makes, and where it comes from and how it runs here.
function summary(sampler) {
  const {height: h, width: w, channels: c, latent_dim: latent, num_classes: classes} = sampler.info;
  const names = metadataValue("class_names");
  const shown = Array.isArray(names) ? names.slice(0, 10).join(", ") + (names.length > 10 ? ", ..." : "") : "";
  const colour = c === 1 ? "grey" : c === 3 ? "colour" : `${c}-channel`;
  const what = `${metadataValue("model") || "A"} generator: ${h}x${w} ${colour} images from a z of ${latent} ` +
    (classes ? `numbers, conditional on ${classes} classes (${shown}).` : "numbers, unconditional.");
  const training = metadataValue("training") || {};
  const fid = typeof training.fid === "number" && typeof training.fid_floor === "number"
    ? `, FID ${training.fid} against the real-vs-real floor ${training.fid_floor}` : "";
  const preset = typeof training.preset === "string" ? ` of the ${training.preset} recipe` : "";
  const how = `Trained ${metadataValue("training_step") ?? "?"} steps${preset}${fid}; ` +
    `${metadataValue("weights_dtype") || "float32"} weights, exported by onnxgan ${metadataValue("package_version") || "?"}; ` +
    `sampled here by onnxgan ${page.runtime.version} (WebAssembly, ${sampler.info.threads} thread).`;
  return [what, how];
}

function showModel(sampler, source) {
  if (page.sampler) page.sampler.close();
  page.sampler = sampler;
  page.source = source;
  [$("summary-what").textContent, $("summary-how").textContent] = summary(sampler);
  const table = $("metadata");
  table.replaceChildren();
  const rows = Object.entries(sampler.metadata);
  rows.push(["(kernel)", `onnxgan ${page.runtime.version}, WebAssembly, ${sampler.info.threads} thread`]);
  for (const [key, value] of rows) {
    const row = table.insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = value;
  }
  const select = $("class");
  select.replaceChildren(new Option("each class in turn", "-1"));
  for (let k = 0; k < sampler.info.num_classes; ++k) select.add(new Option(className(k), String(k)));
  $("class-row").hidden = sampler.info.num_classes === 0;
  for (const id of ["controls", "summary", "metadata-details"]) $(id).hidden = false;
  applyWanted();
  sampleGrid();
  walk();
}

// What a refusal means to a person, in one sentence: the kernel's words before its detail.
function plainWords(error) {
  const message = String(error.message);
  if (error.status === "unsupported")
    return `this page cannot run it (${message}); it samples the generators gan-export writes, gan-sample runs the others`;
  if (error.status === "format") return message.split(" (")[0] + (message.includes("cut short") ? "; copy or export it again" : "");
  return message;
}

function openBytes(bytes, source) {
  let sampler;
  try {
    sampler = page.runtime.open(bytes);
  } catch (error) {
    const still = page.sampler ? ` Still showing ${page.source}.` : "";
    if (page.sampler && page.listed) $("model-list").value = page.source;
    setStatus(`${source}: ${plainWords(error)}.${still}`, true);
    return;
  }
  showModel(sampler, source);
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

// models.json beside the page (written by gan-web): [{"file": "model.onnx", "title": "..."}].
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
  page.listed = true;
  const wanted = models.find((model) => model.file === page.wanted.model) || models[0];
  select.value = wanted.file;
  await openUrl(wanted.file);
}

// ---- the view in the URL: #model=FILE&seed=S&class=K&truncation=T ----

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return Object.fromEntries(params.entries());
}

// Put the view the hash asked for into the controls, once, for the model it names.
function applyWanted() {
  const wanted = page.wanted;
  page.wanted = {};
  if (wanted.model !== undefined && wanted.model !== page.source) return;
  if (/^[0-9]+$/.test(wanted.seed || "")) $("seed").value = wanted.seed;
  if (wanted.class !== undefined && [...$("class").options].some((option) => option.value === wanted.class))
    $("class").value = wanted.class;
  const t = Number(wanted.truncation);
  if (wanted.truncation !== undefined && t >= 0.1 && t <= 2) {
    $("truncate").checked = true;
    $("truncation").disabled = false;
    $("truncation").value = String(t);
    $("truncation-value").textContent = t.toFixed(2);
  }
}

function writeHash() {
  const params = new URLSearchParams({model: page.source, seed: $("seed").value.trim()});
  if (page.sampler.info.num_classes && Number($("class").value) >= 0) params.set("class", $("class").value);
  if ($("truncate").checked) params.set("truncation", $("truncation").value);
  history.replaceState(null, "", `#${params}`);
  $("link").href = location.href;
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(location.href);
    setStatus(`Copied a link to this view: ${location.href}`);
  } catch (error) {  // no clipboard (a plain-http page): the link beside the button still carries the view
    setStatus(`Copy this link to share the view: ${location.href}`);
  }
}

function download() {
  const name = `${page.source.replace(/\.onnx$/, "").replace(/[^A-Za-z0-9._-]+/g, "_")}-seed${$("seed").value.trim()}.png`;
  $("grid").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    page.lastDownload = {name, bytes: blob.size};
  }, "image/png");
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
  $("seed").addEventListener("keydown", (event) => { if (event.key === "Enter") sampleGrid(); });
  $("random-seed").addEventListener("click", randomSeed);
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
  $("truncation").addEventListener("input", () => {  // live: the grid follows the slider
    $("truncation-value").textContent = Number($("truncation").value).toFixed(2);
    sampleGrid();
  });
  $("truncation").addEventListener("change", walk);
  for (const id of ["walk-a", "walk-b", "walk-steps"])
    $(id).addEventListener("keydown", (event) => { if (event.key === "Enter") walk(); });
  $("walk").addEventListener("click", walk);
  $("play").addEventListener("click", toggleAnimation);
  $("download").addEventListener("click", download);
  $("copy-link").addEventListener("click", copyLink);
  window.addEventListener("resize", redraw);
  toggleAnimation();
  await listModels();
}

main();
