// Compact JWS signing with panva's jose (npm), an implementation independent of ours, for the
// algorithm interop matrix (tests/interop/test_algorithm_matrix.py). None of our Python code is used.
//
//   node sign.mjs < jobs.json
//
// stdin:  {"jobs": [{"alg": "ES512", "jwk": {private JWK}, "header": {...}, "payload": {...}}, ...]}
// stdout: {"tokens": ["<compact JWS>", ...]}, one per job, in order; the protected header is
//         exactly the job's header (it must name the same alg).
// Errors: a message on stderr and exit status 1.

import { CompactSign, importJWK } from 'jose';

function fail(message) {
  process.stderr.write(`sign.mjs: ${message}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function sign({ alg, jwk, header, payload }) {
  if (header.alg !== alg) fail(`header alg ${header.alg} differs from job alg ${alg}`);
  const key = await importJWK(jwk, alg);
  const body = new TextEncoder().encode(JSON.stringify(payload));
  return new CompactSign(body).setProtectedHeader(header).sign(key);
}

try {
  const { jobs } = JSON.parse(await readStdin());
  const tokens = [];
  for (const job of jobs) tokens.push(await sign(job));
  process.stdout.write(`${JSON.stringify({ tokens })}\n`);
} catch (error) {
  fail(error?.stack ?? String(error));
}
