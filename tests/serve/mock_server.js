#!/usr/bin/env node
// A stand-in for `wristssl serve`, for working on the page (src/wristssl/serve/page.html), browser_test.js and
// bench/load_serve.py without LibTorch. It speaks the same API with fixed answers; nothing is scored.
//
// Usage: node mock_server.js [--port N] [--image PNG] [--probability P] [--token T] [--delay-ms N]
//                             [--max-requests-per-socket N] [--tls-cert PEM --tls-key PEM]
//   --port 0 (the default) takes a free port; the first line on stdout is "listening on http://127.0.0.1:PORT".
//   --image: the PNG returned as image_png_base64 (default: a GRAZPEDWRI-DX sample from samples/).
//   --token: when set, /info and /v1/predict answer 401 without "Authorization: Bearer <token>".
//   --delay-ms: added to every /v1/predict, to imitate scoring time.
//   --max-requests-per-socket: close kept-alive connections after N requests (cpp-httplib's default is 5).
//   --tls-cert, --tls-key: serve https, as `wristssl serve --tls-cert --tls-key` does.
// The heatmap is a synthetic gradient with a colour bar at the right, so that toggling visibly changes #view.
// A body that is not PNG, JPEG or DICOM (by its signature) gets 400 {"error": ...}, as the real server does.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const zlib = require('zlib');

const root = path.resolve(__dirname, '..', '..');
const opts = {port: 0, image: path.join(root, 'samples/grazpedwri-dx/images/1068_1253423501_03_WRI-L2_F010.png'),
              probability: 0.8123456789012345, token: '', delayMs: 0, maxRequestsPerSocket: 0,
              tlsCert: '', tlsKey: ''};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) { console.error(`mock_server: ${k} needs a value`); process.exit(2); }
  if (k === '--port') opts.port = Number(v);
  else if (k === '--image') opts.image = v;
  else if (k === '--probability') opts.probability = Number(v);
  else if (k === '--token') opts.token = v;
  else if (k === '--delay-ms') opts.delayMs = Number(v);
  else if (k === '--max-requests-per-socket') opts.maxRequestsPerSocket = Number(v);
  else if (k === '--tls-cert') opts.tlsCert = v;
  else if (k === '--tls-key') opts.tlsKey = v;
  else { console.error(`mock_server: unknown option ${k}`); process.exit(2); }
}

const page = fs.readFileSync(path.join(root, 'src/wristssl/serve/page.html'));
const image = fs.readFileSync(opts.image);
if (image.length < 24 || image.toString('latin1', 1, 4) !== 'PNG') {
  console.error(`mock_server: ${opts.image} is not a PNG`); process.exit(2);
}

// An 8-bit RGB PNG: chunks are length, type, data, CRC-32 over type and data.
function encodePng(w, h, rgb) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2;  // 8-bit, truecolour
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; ++y) rgb.copy(raw, y * (1 + 3 * w) + 1, y * 3 * w, (y + 1) * 3 * w);  // filter 0
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
                        chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// Blue -> green -> red, roughly Turbo's ends, enough for a stand-in.
const ramp = (t) => [Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 3)))),
                     Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 2)))),
                     Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * t - 1))))];

function makeHeatmap(imgW, imgH) {
  const scale = 512 / Math.max(imgW, imgH);
  const w = Math.max(1, Math.round(imgW * scale)), h = Math.max(1, Math.round(imgH * scale));
  const bar = 40, W = w + bar, rgb = Buffer.alloc(W * h * 3, 255);
  for (let y = 0; y < h; ++y) {
    for (let x = 0; x < W; ++x) {
      const t = x < w ? Math.exp(-(((x - 0.55 * w) / (0.2 * w)) ** 2 + ((y - 0.6 * h) / (0.15 * h)) ** 2))
                      : (x > w + 10 && x < W - 10 ? 1 - y / (h - 1) : -1);
      if (t >= 0) rgb.set(ramp(t), (y * W + x) * 3);
    }
  }
  return encodePng(W, h, rgb);
}

const heatmap = makeHeatmap(image.readUInt32BE(16), image.readUInt32BE(20));
const info = {model: 'mock-demo@0123456789ab', name: 'mock-demo', sha256: '0123456789ab'.padEnd(64, '0'), threshold: 0.51,
              refer_band: [0.48, 0.55], input_size: 512,
              intended_use: 'Research use only. Mock server: the numbers are fixed, nothing was scored.'};
const decide = (p) => (p >= info.refer_band[0] && p < info.refer_band[1]) ? 'refer'
                    : (p >= info.threshold ? 'fracture' : 'no_fracture');
const prediction = Buffer.from(JSON.stringify(Object.assign({}, info, {
  probability: opts.probability, margin: 1.2345, decision: decide(opts.probability),
  heatmap_png_base64: heatmap.toString('base64'), image_png_base64: image.toString('base64')})));

function send(res, status, type, body) {
  res.writeHead(status, {'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store'});
  res.end(body);
}
const sendError = (res, status, reason) => send(res, status, 'application/json', JSON.stringify({error: reason}));

function looksLikeImage(b) {
  return (b.length >= 8 && b.toString('latin1', 1, 4) === 'PNG') || (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8) ||
         (b.length >= 132 && b.toString('latin1', 128, 132) === 'DICM') ||
         (b.length >= 8 && b[0] === 0x08 && b[1] === 0x00);  // DICOM without a preamble starts at group 0008
}

const tls = opts.tlsCert && opts.tlsKey ? {cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey)} : null;
const handler = (req, res) => {
  const url = new URL(req.url, 'http://x');
  const authorised = !opts.token || req.headers['authorization'] === `Bearer ${opts.token}`;
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', page);
    if (url.pathname !== '/info' && url.pathname !== '/v1/predict') return sendError(res, 404, `no route ${url.pathname}`);
    if (!authorised) return sendError(res, 401, 'unauthorised: a valid bearer token is required');
    if (url.pathname === '/info') {
      return req.method === 'GET' ? send(res, 200, 'application/json', JSON.stringify(info)) : sendError(res, 405, 'use GET');
    }
    if (req.method !== 'POST') return sendError(res, 405, 'use POST');
    const body = Buffer.concat(chunks);
    if (body.length === 0) return sendError(res, 400, 'empty body: send the image file as the request body');
    if (!looksLikeImage(body)) return sendError(res, 400, 'unsupported: the body is not a PNG, JPEG or DICOM file');
    setTimeout(() => send(res, 200, 'application/json', prediction), opts.delayMs);
  });
};
const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
server.keepAliveTimeout = 30000;
server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
let connections = 0;
server.on(tls ? 'secureConnection' : 'connection', () => { ++connections; });
server.listen(opts.port, '127.0.0.1', () => {
  console.log(`listening on ${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => {
  console.log(`connections accepted: ${connections}`); server.close(() => process.exit(0)); server.closeAllConnections(); });
