'use strict';
// The runner protocol (runners/protocol.py) as the Node.js runner reads and writes it: the RunRequest's fields and
// their checks, the RunResult, and the atomic JSON write. Mirrors the Python side field by field.
const fs = require('node:fs');
const path = require('node:path');

const SCHEMA_VERSION = 1;
const ERROR_KINDS = ['bad-request', 'unsupported', 'load', 'runtime', 'out-of-memory', 'export', 'output'];

const REQUEST_FIELDS = ['run_id', 'runtime', 'model', 'batch_size', 'result_path', 'precision', 'weights',
  'input_seed', 'budget', 'model_options', 'artifact_path', 'outputs_path', 'inputs_path', 'threads',
  'provider_options', 'user_model', 'cuda_jit_cache', 'schema'];
const REQUIRED_FIELDS = ['run_id', 'runtime', 'model', 'batch_size', 'result_path'];
const BUDGET_DEFAULTS = {warmup_iterations: 5, warmup_seconds: 0.0, min_iterations: 10, min_seconds: 0.0,
  max_seconds: null};
const WEIGHTS_FIELDS = ['kind', 'seed', 'path'];

class ProtocolError extends Error {}

// A failure with a kind (runners/failures.py's RunnerError).
class RunnerError extends Error {
  constructor(message, kind = 'runtime') {
    super(message);
    if (!ERROR_KINDS.includes(kind)) throw new Error(`unknown error kind ${kind}; valid: ${ERROR_KINDS.join(', ')}`);
    this.kind = kind;
  }
}

function checkFields(name, data, known) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ProtocolError(`${name}: expected a JSON object`);
  }
  const schema = data.schema ?? SCHEMA_VERSION;
  if (schema !== SCHEMA_VERSION) {
    throw new ProtocolError(`${name}: schema ${schema} is not the supported version ${SCHEMA_VERSION}`);
  }
  const unknown = Object.keys(data).filter((k) => !known.includes(k)).sort();
  if (unknown.length) {
    throw new ProtocolError(`${name}: unknown field(s) ${unknown.join(', ')}; valid: ${[...known].sort().join(', ')}`);
  }
}

// The request in `file` with its defaults filled in; ProtocolError where it does not follow the protocol.
function readRequest(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProtocolError(`${file}: no such file`);
  }
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`${file}: not valid JSON (${err.message})`);
  }
  checkFields('RunRequest', data, REQUEST_FIELDS);
  const missing = REQUIRED_FIELDS.filter((k) => !(k in data));
  if (missing.length) {
    throw new ProtocolError(`RunRequest: missing required field(s): ${missing.join(', ')}`);
  }
  if (data.budget !== undefined) checkFields('Budget', data.budget, Object.keys(BUDGET_DEFAULTS));
  if (data.weights !== undefined) checkFields('Weights', data.weights, WEIGHTS_FIELDS);
  return {precision: 'fp32', input_seed: 0, model_options: {}, artifact_path: null, outputs_path: null,
    inputs_path: null, threads: null, provider_options: {}, user_model: null, cuda_jit_cache: null,
    schema: SCHEMA_VERSION, ...data, budget: {...BUDGET_DEFAULTS, ...(data.budget || {})}};
}

// The raw JSON object of a request file that failed to parse as a request ({} if it is not one).
function rawRequest(file) {
  try {
    const data = JSON.parse(fs.readFileSync(file, 'utf8'));
    return data && typeof data === 'object' && !Array.isArray(data) ? data : {};
  } catch (err) {
    return {};
  }
}

// The request's own fields (runners/loop.py's _check_fields): RunnerError of kind bad-request.
function checkRequest(request) {
  const bad = (message) => new RunnerError(message, 'bad-request');
  const isCount = (v) => Number.isInteger(v) && v >= 0;
  const isSeconds = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (!Number.isInteger(request.batch_size) || request.batch_size < 1) {
    throw bad(`batch size must be a positive integer, not ${JSON.stringify(request.batch_size)}`);
  }
  const b = request.budget;
  if (!isCount(b.warmup_iterations) || !isCount(b.min_iterations) || !isSeconds(b.warmup_seconds) ||
      !isSeconds(b.min_seconds)) {
    throw bad(`budget values must be non-negative numbers (iterations: integers): ${JSON.stringify(b)}`);
  }
  if (b.max_seconds !== null && !(typeof b.max_seconds === 'number' && b.max_seconds > 0)) {
    throw bad(`budget.max_seconds must be positive, not ${b.max_seconds}`);
  }
  if (request.threads !== null && (!Number.isInteger(request.threads) || request.threads < 1)) {
    throw bad(`threads must be a positive integer or null, not ${JSON.stringify(request.threads)}`);
  }
}

function newResult(request) {
  return {run_id: String(request.run_id ?? ''), runtime: String(request.runtime ?? ''),
    model: String(request.model ?? ''), batch_size: Number.isInteger(request.batch_size) ? request.batch_size : 0,
    status: 'error', error: null, versions: {}, devices: [], provider_used: null, threads: null,
    window_start_ns: null, window_end_ns: null, iterations: 0, latencies_ns: [], load_seconds: null,
    warmup_seconds: null, warmup_iterations: 0, engine_build_seconds: null, peak_host_rss_bytes: null,
    peak_device_bytes: null, output_digest: null, process_start_ns: null, first_inference_ns: null,
    node_placement: null, runtime_facts: null, generation: null, schema: SCHEMA_VERSION};
}

// The protocol's error record: a RunnerError's own message, any other error's name and message.
function errorOf(err, kind) {
  const message = err instanceof RunnerError ? err.message : `${err && err.name || 'Error'}: ${err && err.message}`;
  const trace = String(err && err.stack || '').split('\n').slice(-30).join('\n').slice(-4000);
  return {kind, message: message.slice(0, 2000), traceback: trace};
}

// JSON with the result's integers exact: nanosecond stamps exceed 2^53 as BigInt, written as bare digits.
function stringify(data) {
  return JSON.stringify(data, (key, value) => (typeof value === 'bigint' ? `@@big:${value}@@` : value), 1)
    .replace(/"@@big:(-?\d+)@@"/g, '$1');
}

// Write JSON through a temporary file and a rename, so a reader never sees half a file.
function writeJsonAtomic(file, data) {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, {recursive: true});
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, stringify(data));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, {force: true});
    throw err;
  }
}

module.exports = {SCHEMA_VERSION, ERROR_KINDS, ProtocolError, RunnerError, readRequest, rawRequest, checkRequest,
  newResult, errorOf, writeJsonAtomic, stringify};
