#!/usr/bin/env node
'use strict';
// greenrt's Node.js runner of ONNX Runtime (onnxruntime/onnx-from-*/cpu@node), the contract of `python -m runners`:
//   node runners/node/runner.js run --request REQUEST.json     a RunRequest in, its RunResult at result_path
//   node runners/node/runner.js versions                       the versions it runs with, as JSON
// Exit status as runners/cli.py: 0 the result says "ok"; 1 it says "error" (the result is still written); 2 the
// request cannot be read or does not follow the protocol (an error result is written where its result_path can be
// found); 3 the result itself cannot be written. SIGTERM is left to Node's default (the process ends by the signal,
// no result), as the Python runner does; the orchestrator records it as killed.

// The first thing the runner executes: its start on the host's monotonic clock (runners/__init__.py's twin).
const PROCESS_START_NS = process.hrtime.bigint();

const {ProtocolError, newResult, readRequest, rawRequest, writeJsonAtomic} = require('./protocol');

const USAGE = 'usage: node runners/node/runner.js run --request FILE | versions';

function fail(message) {
  process.stderr.write(`runner (node): ${String(message).replace(/\n/g, ' ')}\n`);
}

function write(file, result) {
  try {
    writeJsonAtomic(file, result);
    return true;
  } catch (err) {
    fail(`cannot write the result to ${file}: ${err.message}`);
    return false;
  }
}

function summary(result) {
  if (result.status !== 'ok') {
    return `${result.run_id}: error (${result.error.kind}): ${result.error.message}`.split('\n')[0].slice(0, 400);
  }
  const lat = [...result.latencies_ns].sort((a, b) => a - b);
  const median = lat.length ? lat[Math.floor(lat.length / 2)] / 1e6 : NaN;
  return `${result.run_id}: ok, ${result.iterations} iterations, median ${median.toFixed(3)} ms, ` +
    `provider ${result.provider_used}, threads ${result.threads}`;
}

async function commandRun(file) {
  let request;
  try {
    request = readRequest(file);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    fail(`bad request: ${err.message}`);
    const raw = rawRequest(file);
    if (typeof raw.result_path === 'string' && raw.result_path) {
      write(raw.result_path, {...newResult(raw), error: {kind: 'bad-request', message: err.message, traceback: ''}});
    }
    return 2;
  }
  const {execute} = require('./loop');
  const result = await execute(request, PROCESS_START_NS);
  if (!write(request.result_path, result)) return 3;
  process.stderr.write(`${summary(result)}\n`);
  return result.status === 'ok' ? 0 : 1;
}

function commandVersions() {
  const {packageVersion} = require('./ort');
  const versions = {node: process.versions.node, v8: process.versions.v8,
    'onnxruntime-node': packageVersion('onnxruntime-node'), 'onnxruntime-common': packageVersion('onnxruntime-common')};
  process.stdout.write(`${JSON.stringify(versions, Object.keys(versions).sort(), 1)}\n`);
  return 0;
}

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === 'versions' && rest.length === 0) return commandVersions();
  if (command === 'run' && rest.length === 2 && rest[0] === '--request') return commandRun(rest[1]);
  if (command === 'run' && rest.length === 1 && rest[0].startsWith('--request=')) {
    return commandRun(rest[0].slice('--request='.length));
  }
  fail(`${command === undefined ? 'no command' : `bad arguments: ${argv.join(' ')}`}; ${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, (err) => {
  fail(`internal error: ${err && err.stack || err}`);
  process.exitCode = 3;
});
