'use strict';
// The request's threads and provider_options as onnxruntime-node's session options, the way the Python client maps
// them (runners/adapters/onnxruntime_session.py for the CPU provider): every graph optimisation (ORT_ENABLE_ALL),
// intra-op threads from request.threads (ORT's default when null), and each `session.*` key of provider_options as
// an ORT session config entry (booleans as "1"/"0"). Pure: the mapping is tested without a session.
const {RunnerError} = require('./protocol');

const SESSION_CONFIG_PREFIX = 'session.';
const DISABLE_CPU_FALLBACK = 'session.disable_cpu_ep_fallback';
const CPU_EP = 'CPUExecutionProvider';

// "onnxruntime/onnx-from-torch/cpu@node" -> {framework, format, provider, client}; bad-request if not that shape.
function parseRuntime(runtime) {
  const match = /^([^/@]+)\/([^/@]+)\/([^/@]+)@([^/@]+)$/.exec(String(runtime));
  if (!match) {
    throw new RunnerError(`runtime ${JSON.stringify(runtime)} is not framework/format/provider@client ` +
      '(this runner: onnxruntime/onnx-from-<framework>/cpu@node)', 'bad-request');
  }
  const [, framework, format, provider, client] = match;
  return {framework, format, provider, client};
}

// What this runner can run; RunnerError (unsupported / bad-request) otherwise.
function checkRuntime(request) {
  const {framework, format, provider, client} = parseRuntime(request.runtime);
  if (client !== 'node') {
    throw new RunnerError(`runtime ${request.runtime}: this is the Node.js runner (client "node"), not "${client}"`,
      'bad-request');
  }
  if (framework !== 'onnxruntime' || !format.startsWith('onnx')) {
    throw new RunnerError(`runtime ${request.runtime}: the Node.js runner runs onnxruntime/onnx-from-*/cpu@node only`,
      'unsupported');
  }
  if (provider !== 'cpu') {
    throw new RunnerError(`runtime ${request.runtime}: provider ${provider} is not available to the Node.js client ` +
      "(valid: cpu; onnxruntime-node's CUDA/TensorRT binaries come from a download its install script makes, " +
      'which this environment skips)', 'unsupported');
  }
  if (request.precision !== 'fp32') {
    throw new RunnerError(`runtime ${request.runtime}: precision ${request.precision} is not supported by the ` +
      'Node.js client yet (valid: fp32)', 'unsupported');
  }
}

// The session config entries of provider_options; the CPU provider takes no other key here.
function sessionConfigEntries(providerOptions) {
  const entries = {};
  const others = [];
  for (const [key, value] of Object.entries(providerOptions || {})) {
    if (key.startsWith(SESSION_CONFIG_PREFIX)) {
      entries[key] = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    } else {
      others.push(key);
    }
  }
  if (others.length) {
    throw new RunnerError(`provider_options ${others.join(', ')}: the Node.js client of the CPU provider takes ` +
      `only ORT session config entries (keys starting with "${SESSION_CONFIG_PREFIX}")`, 'unsupported');
  }
  if (entries[DISABLE_CPU_FALLBACK] === '1') {
    throw new RunnerError(`${DISABLE_CPU_FALLBACK} = 1 refuses every node on the CPU provider, which is all this ` +
      'runtime runs on; it is for cuda, tensorrt and openvino runtimes', 'bad-request');
  }
  return entries;
}

// onnxruntime-node's InferenceSession.SessionOptions for the request.
function sessionOptions(request) {
  const options = {executionProviders: ['cpu'], graphOptimizationLevel: 'all'};
  if (request.threads !== null && request.threads !== undefined) options.intraOpNumThreads = request.threads;
  const entries = sessionConfigEntries(request.provider_options);
  // `extra` keys are joined with "." by onnxruntime-common into config entry names: flat dotted keys work as is.
  if (Object.keys(entries).length) options.extra = entries;
  return options;
}

module.exports = {parseRuntime, checkRuntime, sessionConfigEntries, sessionOptions, CPU_EP};
