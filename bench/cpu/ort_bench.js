#!/usr/bin/env node
// ONNX Runtime side of bench/cpu: time one model at one batch size, print one JSON line.
//
//   node ort_bench.js MODEL.onnx INPUT.bin BATCH ITERS THREADS
//
// INPUT.bin: one letterboxed image, raw float32 NCHW (bench_cpu --dump-input writes it).
// The shared exports have a static batch of 1, which ONNX Runtime enforces, so a batch of N
// is N back-to-back runs of one image (the time and images/s are per batch of N).
'use strict';
const path = require('path');
const fs = require('fs');

const baseRss = process.memoryUsage().rss; // node itself, before ONNX Runtime loads
let ort;
try {
  ort = require(path.join(__dirname, '../../tests/ref/node_modules/onnxruntime-node'));
} catch (e) {
  process.stderr.write('ort_bench: onnxruntime-node missing (npm install in tests/ref)\n');
  process.exit(77);
}

async function main() {
  const [model, input, batchS, itersS, threadsS] = process.argv.slice(2);
  if (!threadsS) {
    process.stderr.write('usage: ort_bench.js MODEL INPUT.bin BATCH ITERS THREADS\n');
    process.exit(2);
  }
  const batch = Number(batchS), iters = Number(itersS), threads = Number(threadsS);
  const s = await ort.InferenceSession.create(model, {
    logSeverityLevel: 3,
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // ORT_SPIN=0: intra-op threads do not spin-wait (the counterpart of our
    // OMP_WAIT_POLICY=passive; fairer on a machine shared with other work)
    ...(process.env.ORT_SPIN === '0' ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  });
  const shape = s.inputMetadata[0].shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const static1 = shape[0] === 1;
  const runBatch = async () => {
    if (static1) {
      for (let b = 0; b < batch; b++) await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', data, shape) });
    } else {
      const big = new Float32Array(data.length * batch);
      for (let b = 0; b < batch; b++) big.set(data, b * data.length);
      const sh = shape.slice();
      sh[0] = batch;
      await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', big, sh) });
    }
  };
  for (let i = 0; i < 3; i++) await runBatch(); // warm-up
  const t = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    await runBatch();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.sort((a, b) => a - b);
  const med = t[Math.floor(t.length / 2)];
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(
    JSON.stringify({
      runtime: 'onnxruntime-node ' + (ort.env.versions ? ort.env.versions.common : '1.30.0'),
      model: path.basename(model),
      batch,
      threads,
      iters,
      median_ms: +med.toFixed(2),
      p90_ms: +t[Math.floor(t.length * 0.9)].toFixed(2),
      images_per_s: +((1000 * batch) / med).toFixed(2),
      peak_rss_mb: +(peak / 1048576).toFixed(1),
      base_rss_mb: +(baseRss / 1048576).toFixed(1),
      batch_mode: static1 ? 'sequential' : 'native',
    }) + '\n',
  );
}
main().catch((e) => {
  process.stderr.write('ort_bench: ' + (e && e.message ? e.message : e) + '\n');
  process.exit(1);
});
