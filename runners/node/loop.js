'use strict';
// The measured loop of runners/loop.py in Node.js: load -> inputs -> warm-up -> measured window -> result.
// Every timestamp is process.hrtime.bigint(), CLOCK_MONOTONIC: the clock of Python's time.monotonic_ns(), which the
// orchestrator integrates energy over. session.run is awaited inside each timed iteration (it resolves when ORT has
// written the outputs: the CPU provider's synchronisation).
const fs = require('node:fs');
const os = require('node:os');
const v8 = require('node:v8');
const vm = require('node:vm');
const {RunnerError, checkRequest, errorOf, newResult} = require('./protocol');
const {readInputs} = require('./inputs-file');
const {outputDigest, nonfiniteProblem} = require('./digest');
const {saveOutputs} = require('./npz');
const {checkRuntime, sessionOptions, CPU_EP} = require('./session-options');
const {loadOrt, ortVersions} = require('./ort');

const clock = process.hrtime.bigint;

// The garbage collector, callable (gc.collect() before the window in Python): V8 exposes it only behind a flag.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc');

// runners/failures.py's markers of running out of memory.
const OOM_MARKERS = ['out of memory', 'failed to allocate memory', 'std::bad_alloc', 'bad allocation',
  'array buffer allocation failed', 'heap out of memory'];

function classify(err, phaseKind) {
  const text = String(err && err.message || err).toLowerCase();
  if (err instanceof RangeError && text.includes('allocation')) return 'out-of-memory';
  if (OOM_MARKERS.some((m) => text.includes(m))) return 'out-of-memory';
  if (err instanceof RunnerError) return err.kind;
  return phaseKind;
}

// (iterations, seconds, seconds of the first inference): until >= iterations AND >= seconds.
async function warmUp(run, iterations, seconds) {
  const minNs = BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let first = null;
  const start = clock();
  while (n < iterations || clock() - start < minNs) {
    await run();
    n += 1;
    if (first === null) first = Number(clock() - start) / 1e9;
  }
  return {n, seconds: Number(clock() - start) / 1e9, first};
}

// The window: until at least minIterations AND minSeconds (one iteration at least), or maxSeconds.
async function measure(run, minIterations, minSeconds, maxSeconds) {
  const minNs = BigInt(Math.round(minSeconds * 1e9));
  const maxNs = maxSeconds === null ? null : BigInt(Math.round(maxSeconds * 1e9));
  const latencies = [];
  let outputs = null;
  const start = clock();
  for (;;) {
    const t0 = clock();
    outputs = await run();
    const t1 = clock();
    latencies.push(Number(t1 - t0));
    if ((latencies.length >= minIterations && t1 - start >= minNs) || (maxNs !== null && t1 - start >= maxNs)) break;
  }
  const end = clock();
  return {start, end, latencies, outputs};
}

// A typed array of `type` holding `data`'s values (numpy's astype for the types an ONNX graph declares).
const CASTS = {float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, uint64: BigUint64Array};
function cast(input, type) {
  if (input.dtype === type) return input.data;
  const bigSource = typeof input.data[0] === 'bigint';
  if (type === 'bool') return Uint8Array.from(input.data, (v) => (v ? 1 : 0));
  const Target = CASTS[type];
  if (!Target) throw new RunnerError(`input ${input.name}: cannot cast ${input.dtype} to ${type}`, 'unsupported');
  if (Target === BigInt64Array || Target === BigUint64Array) {
    return Target.from(input.data, (v) => (bigSource ? v : BigInt(Math.trunc(Number(v)))));
  }
  return Target.from(input.data, Number);
}

function cpuDevice() {
  const model = os.cpus()[0]?.model?.trim() || os.arch();
  return `cpu: ${model} (${os.cpus().length} logical CPUs)`;
}

function peakRssBytes() {
  return process.resourceUsage().maxRSS * 1024; // KiB on Linux
}

// Run the request and answer a RunResult; never throws for a failure of the run (it becomes status "error").
async function execute(request, processStartNs) {
  const result = newResult(request);
  result.versions = {node: process.versions.node, v8: process.versions.v8};
  result.process_start_ns = processStartNs;
  let phase = 'bad-request';
  try {
    checkRequest(request);
    checkRuntime(request);
    const options = sessionOptions(request);
    if (!request.inputs_path) {
      throw new RunnerError(`runtime ${request.runtime} needs inputs_path (the inputs file of runners/inputs_file.py)`,
        'bad-request');
    }
    if (!request.artifact_path) {
      throw new RunnerError(`runtime ${request.runtime} needs artifact_path (the exported .onnx model)`, 'bad-request');
    }
    const ort = loadOrt();
    result.versions = {...result.versions, ...ortVersions(ort)};

    phase = 'load';
    if (!fs.statSync(request.artifact_path, {throwIfNoEntry: false})?.isFile()) {
      throw new RunnerError(`artifact ${request.artifact_path} does not exist`, 'load');
    }
    const t0 = clock();
    const session = await ort.InferenceSession.create(request.artifact_path, options);
    result.load_seconds = Number(clock() - t0) / 1e9;
    result.devices = [cpuDevice()];
    result.provider_used = CPU_EP;
    result.threads = request.threads;
    result.runtime_facts = {client: 'node', session_options: options};
    result.node_placement = {status: 'unknown', requested: CPU_EP,
      reason: "the Node.js client does not capture ONNX Runtime's log (on the CPU provider every node is on the CPU)"};
    process.stderr.write(`loaded ${request.artifact_path} in ${result.load_seconds.toFixed(3)} s\n`);

    phase = 'bad-request';
    const declared = new Map(session.inputMetadata.map((m) => [m.name, m]));
    const feeds = {};
    for (const input of readInputs(request.inputs_path)) {
      const type = declared.get(input.name)?.type ?? input.dtype;
      feeds[input.name] = new ort.Tensor(type, cast(input, type), input.shape);
    }

    phase = 'runtime';
    const run = () => session.run(feeds);
    const b = request.budget;
    result.first_inference_ns = clock();
    const warm = await warmUp(run, b.warmup_iterations, b.warmup_seconds);
    result.warmup_iterations = warm.n;
    result.warmup_seconds = warm.seconds;
    result.engine_build_seconds = warm.first;
    collectGarbage(); // the warm-up's garbage is collected now, not inside the window
    const window = await measure(run, b.min_iterations, b.min_seconds, b.max_seconds);
    result.window_start_ns = window.start;
    result.window_end_ns = window.end;
    if (warm.n === 0) result.first_inference_ns = window.start;
    result.latencies_ns = window.latencies;
    result.iterations = window.latencies.length;
    result.output_digest = outputDigest(window.outputs);
    const problem = nonfiniteProblem(window.outputs);
    if (problem !== null) throw new RunnerError(problem, 'output');
    if (request.outputs_path) saveOutputs(request.outputs_path, window.outputs);
    result.status = 'ok';
  } catch (err) {
    result.status = 'error';
    result.error = errorOf(err, classify(err, phase));
  } finally {
    result.peak_host_rss_bytes = peakRssBytes();
  }
  return result;
}

module.exports = {execute, warmUp, measure, classify, cast};
