#!/usr/bin/env node
// Runs an ONNX model once in ONNX Runtime (onnxruntime-node, CPU) on a raw float32 input.
// Usage: node run_onnx.js MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin
//   INPUT.bin   raw little-endian float32, the product of the dimensions in values, row-major
//   OUTPUT.bin  the model's (single) output as raw little-endian float32
// Prints {"input": name, "output": name, "shape": [...]} as one JSON line on stdout.
// Exit 2 on a usage error, 1 when the model cannot be loaded or run.
// Needs `npm ci --ignore-scripts` in this folder (scripts/setup.sh runs it).
'use strict';

const fs = require('fs');

function fail(message, code = 1) {
  process.stderr.write(`run_onnx: ${message}\n`);
  process.exit(code);
}

function readFloat32LE(path, count) {
  const bytes = fs.readFileSync(path);
  if (bytes.length !== 4 * count) {
    fail(`${path} holds ${bytes.length} bytes, expected ${count} float32 values = ${4 * count} bytes`);
  }
  const values = new Float32Array(count);
  for (let i = 0; i < count; ++i) values[i] = bytes.readFloatLE(4 * i);
  return values;
}

function writeFloat32LE(path, values) {
  const bytes = Buffer.alloc(4 * values.length);
  for (let i = 0; i < values.length; ++i) bytes.writeFloatLE(values[i], 4 * i);
  fs.writeFileSync(path, bytes);
}

async function main(argv) {
  if (argv.length !== 4) {
    fail('usage: node run_onnx.js MODEL.onnx INPUT.bin N,C,H,W OUTPUT.bin', 2);
  }
  const [modelPath, inputPath, shapeText, outputPath] = argv;
  const shape = shapeText.split(',').map(Number);
  if (shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    fail(`bad shape '${shapeText}': expected positive integers separated by commas, e.g. 2,1,64,80`, 2);
  }
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch (e) {
    fail(`cannot load onnxruntime-node (${e.message}); run: cd tests/node && npm ci --ignore-scripts`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const input = new ort.Tensor('float32', readFloat32LE(inputPath, count), shape);

  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    fail(`${modelPath}: expected one input and one output, got inputs [${session.inputNames}] ` +
         `and outputs [${session.outputNames}]`);
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const results = await session.run({ [inputName]: input });
  const output = results[outputName];
  if (output.type !== 'float32') fail(`output '${outputName}' is ${output.type}, expected float32`);
  writeFloat32LE(outputPath, output.data);
  process.stdout.write(JSON.stringify({ input: inputName, output: outputName, shape: output.dims }) + '\n');
}

main(process.argv.slice(2)).catch((e) => fail(e.message || String(e)));
