// Token Status Lists written by an implementation independent of ours: npm @sd-jwt/jwt-status-list
// (openwallet-foundation's sd-jwt-js) builds and compresses the list, npm jose signs the Status List
// Token. For tests/revocation/test_status_list_interop.py; none of our Python code is used.
//
//   node encode.mjs < jobs.json
//
// stdin:  {"jwk": {private EC P-256 JWK}, "jobs": [{"bits": 2, "size": 4096, "statuses": {"7": 1},
//          "payload": {"sub": "...", "iat": 1800000000, ...}}, ...],
//          "decode": [{"bits": 1, "lst": "...", "indices": [0, 1993]}, ...]}
// stdout: {"tokens": ["<compact JWS>", ...], "decoded": [[status at each index], ...]}
// Errors: a message on stderr and exit status 1.

import { StatusList, createHeaderAndPayload } from '@sd-jwt/jwt-status-list';
import { CompactSign, importJWK } from 'jose';

function fail(message) {
  process.stderr.write(`encode.mjs: ${message}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function encode(key, kid, { bits, size, statuses, payload }) {
  const entries = new Array(size).fill(0);
  for (const [idx, value] of Object.entries(statuses)) entries[Number(idx)] = value;
  const list = new StatusList(entries, bits);
  const { header, payload: claims } = createHeaderAndPayload(list, { ...payload }, { alg: 'ES256', kid });
  const body = new TextEncoder().encode(JSON.stringify(claims));
  return new CompactSign(body).setProtectedHeader(header).sign(key);
}

function decode({ bits, lst, indices }) {
  const list = StatusList.decompressStatusList(lst, bits);
  return indices.map((idx) => list.getStatus(idx));
}

try {
  const { jwk, jobs = [], decode: lists = [] } = JSON.parse(await readStdin());
  const key = await importJWK(jwk, 'ES256');
  const tokens = [];
  for (const job of jobs) tokens.push(await encode(key, jwk.kid, job));
  const decoded = lists.map(decode);
  process.stdout.write(`${JSON.stringify({ tokens, decoded })}\n`);
} catch (error) {
  fail(error?.stack ?? String(error));
}
