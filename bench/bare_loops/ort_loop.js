#!/usr/bin/env node
'use strict';
// A bare ONNX Runtime loop in Node.js: what a user writes, with nothing of greenrt (bench/client_overhead.py).
//   node ort_loop.js MODEL.onnx INPUTS.json THREADS WARMUP ITERATIONS      (onnxruntime-node found on NODE_PATH)
// THREADS 0 keeps ONNX Runtime's default. The session has the Node runner's options for the CPU provider (every graph
// optimisation, intra-op threads); WARMUP untimed `await session.run`, then ITERATIONS timed ones with one clock read
// after each, so the per-iteration latencies sum to the loop's whole time. Prints one JSON object.
const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');

const TYPED = {float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array,
  bool: Uint8Array};

// greenrt's inputs file (runners/inputs_file.py's format) as ORT tensors, read without greenrt's code.
function readFeeds(indexPath) {
  const index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  const feeds = {};
  for (const e of index.inputs) {
    const bytes = fs.readFileSync(path.join(path.dirname(indexPath), e.file));
    const data = new TYPED[e.dtype](e.shape.reduce((a, b) => a * b, 1));
    new Uint8Array(data.buffer).set(bytes);
    feeds[e.name] = new ort.Tensor(e.dtype, data, e.shape);
  }
  return feeds;
}

async function main(argv) {
  if (argv.length !== 5) {
    process.stderr.write('usage: node ort_loop.js MODEL.onnx INPUTS.json THREADS WARMUP ITERATIONS\n');
    return 2;
  }
  const [model, index] = argv;
  const [threads, warmup, iterations] = argv.slice(2).map(Number);
  const options = {executionProviders: ['cpu'], graphOptimizationLevel: 'all'};
  if (threads > 0) options.intraOpNumThreads = threads;
  const session = await ort.InferenceSession.create(model, options);
  const feeds = readFeeds(index);
  for (let i = 0; i < warmup; i += 1) await session.run(feeds);
  const clock = process.hrtime.bigint;
  const stamps = new Array(iterations + 1);
  stamps[0] = clock();
  for (let i = 1; i <= iterations; i += 1) {
    await session.run(feeds);
    stamps[i] = clock();
  }
  const latencies = [];
  for (let i = 1; i <= iterations; i += 1) latencies.push(Number(stamps[i] - stamps[i - 1]));
  process.stdout.write(`${JSON.stringify({language: 'node', engine: 'onnxruntime', threads: threads || null,
    warmup_iterations: warmup, versions: {onnxruntime: ort.env.versions.node || ort.env.versions.common,
      node: process.versions.node}, latencies_ns: latencies, loop_ns: Number(stamps[iterations] - stamps[0])})}\n`);
  return 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err) => {
  process.stderr.write(`ort_loop.js: ${err && err.message || err}\n`);
  process.exitCode = 1;
});
