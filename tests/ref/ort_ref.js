#!/usr/bin/env node
// ONNX Runtime reference for the detector tests (the independent side of the comparison).
//
//   node ort_ref.js info MODEL.onnx
//       one JSON line: {"inputs": [{name, shape}], "outputs": [{name, shape}]}
//   node ort_ref.js run MODEL.onnx OUTDIR IN.bin [IN.bin ...]
//       each IN.bin is raw little-endian float32 NCHW for the model's first input (batch 1,
//       or a multiple of the per-image size for a batch); writes OUTDIR/<IN basename>.o<i>.bin
//       for every output i, raw float32, and prints one JSON line per input with the shapes.
//
// Exit codes: 0 ok, 77 onnxruntime-node missing (tests treat it as "skipped"), 1 error.
'use strict';
const fs = require('fs');
const path = require('path');

let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  process.stderr.write('ort_ref: onnxruntime-node is not installed (npm install in tests/ref)\n');
  process.exit(77);
}

function fail(msg) {
  process.stderr.write('ort_ref: ' + msg + '\n');
  process.exit(1);
}

async function session(model, threads) {
  return ort.InferenceSession.create(model, {
    logSeverityLevel: 3,
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const threads = Number(process.env.ORT_THREADS || 2);
  const mode = argv[0];
  if (mode === 'info' && argv.length === 2) {
    const s = await session(argv[1], threads);
    const out = {
      inputs: s.inputMetadata.map((m) => ({ name: m.name, shape: m.shape })),
      outputs: s.outputMetadata.map((m) => ({ name: m.name, shape: m.shape })),
    };
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  if (mode !== 'run' || argv.length < 4) fail('usage: ort_ref.js info MODEL | run MODEL OUTDIR IN.bin...');
  const s = await session(argv[1], threads);
  const inShape = s.inputMetadata[0].shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const per = inShape.slice(1).reduce((a, b) => a * b, 1);
  for (const file of argv.slice(3)) {
    const buf = fs.readFileSync(file);
    if (buf.length % (4 * per) !== 0) fail(`${file}: ${buf.length} bytes is not a multiple of one input`);
    const n = buf.length / (4 * per);
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    const feeds = {};
    feeds[s.inputNames[0]] = new ort.Tensor('float32', data, [n].concat(inShape.slice(1)));
    const res = await s.run(feeds);
    const base = path.join(argv[2], path.basename(file, '.bin'));
    const shapes = [];
    s.outputNames.forEach((name, i) => {
      const t = res[name];
      if (t.type !== 'float32') fail(`output ${name} is ${t.type}`);
      fs.writeFileSync(`${base}.o${i}.bin`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      shapes.push(t.dims);
    });
    process.stdout.write(JSON.stringify({ input: file, outputs: shapes }) + '\n');
  }
}

main().catch((e) => fail(String(e && e.message ? e.message : e)));
