'use strict';
// The output digest exactly as runners/loop.py's output_digest computes it: sha256 over each output's canonical
// bytes (floats -> little-endian float32, integers and bools -> little-endian int64) in sorted name order, with
// per-output shape, dtype, sha256, mean, std (numpy's pairwise summation, so the figures match to the bit),
// the first four values and the count of non-finite values.
const crypto = require('node:crypto');

const FLOAT_TYPES = ['float32', 'float64', 'float16'];

// IEEE half (stored as uint16, as onnxruntime-node returns float16 on Node without Float16Array) -> number.
function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

// The output's canonical array: Float32Array for floats, BigInt64Array for integers and bools.
function canonical(tensor) {
  const {type, data} = tensor;
  if (type === 'float32') return data;
  if (type === 'float64') return Float32Array.from(data);
  if (type === 'float16') return Float32Array.from(data, halfToNumber);
  if (type === 'int64') return data;
  if (type === 'uint64') return new BigInt64Array(data.buffer, data.byteOffset, data.length);
  if (type === 'bool' || type.startsWith('int') || type.startsWith('uint')) {
    return BigInt64Array.from(data, (v) => BigInt(v));
  }
  throw new Error(`output of type ${type}: no canonical form (valid: floats, integers, bool)`);
}

// numpy's pairwise summation of float64 values (numpy/_core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128).
function pairwiseSum(a, start, n) {
  if (n < 8) {
    let res = -0.0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

// numpy's float64 sum: the reduction's initial value, then the pairwise sum of every element.
function npSum(a) {
  return -0.0 + pairwiseSum(a, 0, a.length);
}

function stats(values) {
  if (!values.length) return {mean: null, std: null};
  const mean = npSum(values) / values.length;
  const squares = Float64Array.from(values, (v) => (v - mean) * (v - mean));
  return {mean, std: Math.sqrt(npSum(squares) / values.length)};
}

function pythonFloat(v) {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
}

function bytesOf(typed) {
  return Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
}

// outputs: {name: ort.Tensor}. Returns the digest object of runners/loop.py.
function outputDigest(outputs) {
  const total = crypto.createHash('sha256');
  const perOutput = {};
  for (const name of Object.keys(outputs).sort(pythonOrder)) {
    const tensor = outputs[name];
    const canon = canonical(tensor);
    const data = bytesOf(canon);
    total.update(data);
    const asFloat = Float64Array.from(canon, Number);
    const finite = asFloat.filter(Number.isFinite);
    const nonfinite = asFloat.length - finite.length;
    const {mean, std} = stats(nonfinite ? finite : asFloat);
    perOutput[name] = {
      shape: tensor.dims.map(Number), dtype: tensor.type,
      sha256: crypto.createHash('sha256').update(data).digest('hex'),
      mean, std, first: Array.from(asFloat.subarray(0, 4), pythonFloat), nonfinite,
    };
  }
  return {algorithm: 'sha256(float32|int64 little-endian, outputs in sorted name order)',
    sha256: total.digest('hex'), outputs: perOutput};
}

// Python's sorted() on str: by code point (JavaScript's default sort compares UTF-16 units).
function pythonOrder(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// Why the outputs cannot stand as a result (non-finite float values, per output), or null.
function nonfiniteProblem(outputs) {
  const found = [];
  for (const name of Object.keys(outputs).sort(pythonOrder)) {
    const tensor = outputs[name];
    if (!FLOAT_TYPES.includes(tensor.type)) continue;
    const values = tensor.type === 'float16' ? Array.from(tensor.data, halfToNumber) : tensor.data;
    let nan = 0;
    let inf = 0;
    for (const v of values) {
      if (Number.isNaN(v)) nan++;
      else if (!Number.isFinite(v)) inf++;
    }
    if (nan || inf) {
      found.push(`${name}: ${nan + inf} of ${values.length} (${nan} NaN, ${inf} inf; dtype ${tensor.type})`);
    }
  }
  if (!found.length) return null;
  return 'non-finite output values, so the run measured no usable inference (an overflow, e.g. in fp16): ' +
    found.join('; ');
}

module.exports = {outputDigest, nonfiniteProblem, canonical, halfToNumber, pythonOrder, npSum};
