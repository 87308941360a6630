'use strict';
// Reads the inputs file that runners/inputs_file.py writes (its inputs.json index and one raw little-endian .bin
// per input), checking each file's size and sha256 against the index.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const {RunnerError} = require('./protocol');

const FORMAT = 'greenrt-inputs';
const VERSION = 1;
const TYPED_ARRAYS = {float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array,
  int16: Int16Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array,
  uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array};

// [{name, dtype, shape, data (a typed array of the dtype)}] in the index's order; bad-request if unreadable.
function readInputs(indexPath) {
  const bad = (message) => new RunnerError(`inputs file ${indexPath}: ${message}`, 'bad-request');
  let index;
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (err) {
    throw bad(`not a readable index (${err.message})`);
  }
  if (!index || index.format !== FORMAT || index.version !== VERSION || !Array.isArray(index.inputs)) {
    throw bad(`not a ${FORMAT} index of version ${VERSION}`);
  }
  return index.inputs.map((entry) => {
    const Typed = TYPED_ARRAYS[entry.dtype];
    if (!Typed) throw bad(`input ${entry.name}: dtype ${entry.dtype}; valid: ${Object.keys(TYPED_ARRAYS).join(', ')}`);
    let bytes;
    try {
      bytes = fs.readFileSync(path.join(path.dirname(indexPath), entry.file));
    } catch (err) {
      throw bad(`input ${entry.name}: ${err.message}`);
    }
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    if (bytes.length !== entry.bytes || digest !== entry.sha256) {
      throw bad(`input ${entry.name}: ${entry.file} does not match its size or sha256 in the index`);
    }
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (count * Typed.BYTES_PER_ELEMENT !== bytes.length) {
      throw bad(`input ${entry.name}: ${bytes.length} bytes do not hold shape [${entry.shape}] of ${entry.dtype}`);
    }
    // A copy into an aligned buffer of its own (the file's Buffer may share a pool at any offset).
    const data = new Typed(count);
    new Uint8Array(data.buffer).set(bytes);
    return {name: entry.name, dtype: entry.dtype, shape: entry.shape, data};
  });
}

module.exports = {readInputs, TYPED_ARRAYS};
