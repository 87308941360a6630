'use strict';
// onnxruntime-node, from the environment's node_modules (NODE_PATH) or beside the runner; its versions.
const fs = require('node:fs');
const path = require('node:path');
const {RunnerError} = require('./protocol');

const PACKAGE = 'onnxruntime-node';

function loadOrt() {
  try {
    return require(PACKAGE);
  } catch (err) {
    throw new RunnerError(`${PACKAGE} cannot be loaded (${err.message.split('\n')[0]}); install the environment's ` +
      'package-lock.json (npm ci) and put its node_modules on NODE_PATH', 'unsupported');
  }
}

// The installed package's version, read from its package.json (nothing is loaded); null when absent.
function packageVersion(name) {
  try {
    let dir = path.dirname(require.resolve(name));
    while (dir !== path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
        if (pkg.name === name) return pkg.version;
      }
      dir = path.dirname(dir);
    }
  } catch (err) {
    return null;
  }
  return null;
}

function ortVersions(ort) {
  // The binding ships its own libonnxruntime of the package's version (env.versions.node).
  return {[PACKAGE]: packageVersion(PACKAGE), onnxruntime: ort.env.versions.node || ort.env.versions.common};
}

module.exports = {loadOrt, packageVersion, ortVersions};
