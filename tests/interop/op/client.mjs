// An independent OAuth 2.0 / DPoP client for the interop tests: panva's oauth4webapi does the
// discovery and the client_credentials grant (with its own DPoP proof at the token endpoint),
// panva's dpop package signs the proofs for resource requests. None of our Python code is used.
//
//   node client.mjs --issuer http://127.0.0.1:<port> --client-id ID --client-secret SECRET
//                   [--resource https://api.test] [--scope "read write"]
//                   [--dpop] [--request "GET http://127.0.0.1:<p>/me"]... [--nonce VALUE]
//
// Prints one JSON object on stdout:
//   {"token": ..., "token_type": "Bearer"|"DPoP", "expires_in": n, "scope": ...,
//    "jkt": <JWK SHA-256 thumbprint of the DPoP key, or null>,
//    "proof": <proof for the first --request, or null>,
//    "proofs": [{"htm": ..., "htu": ..., "proof": ...}, ...]}
// Each proof is fresh (own jti, iat now), carries ath = the token's hash and, with --nonce, that
// nonce. Without --dpop the token is a plain bearer token and no proofs are made.
// Errors: a message on stderr and exit status 1.

import { parseArgs } from 'node:util';

import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';
import * as oauth from 'oauth4webapi';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    resource: { type: 'string' },
    scope: { type: 'string', default: 'read' },
    dpop: { type: 'boolean', default: false },
    request: { type: 'string', multiple: true, default: [] },
    nonce: { type: 'string' },
  },
});

function fail(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(1);
}

if (!args.issuer || !args['client-id'] || !args['client-secret']) {
  fail('--issuer, --client-id and --client-secret are required');
}
const requests = args.request.map((text) => {
  const match = /^([A-Za-z]+)\s+(\S+)$/.exec(text.trim());
  if (!match) {
    fail(`--request wants "METHOD URL", got ${JSON.stringify(text)}`);
  }
  return { htm: match[1].toUpperCase(), htu: match[2] };
});
if (requests.length && !args.dpop) {
  fail('--request makes DPoP proofs: add --dpop');
}

// Plain http is the test provider on loopback; oauth4webapi refuses it unless told.
const insecure = new URL(args.issuer).protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {};

async function main() {
  const issuer = new URL(args.issuer);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
  const client = { client_id: args['client-id'] };
  const auth = oauth.ClientSecretBasic(args['client-secret']);
  const params = new URLSearchParams({ scope: args.scope });
  if (args.resource) {
    params.set('resource', args.resource);
  }

  const keyPair = args.dpop ? await generateKeyPair('ES256') : undefined;
  const options = { ...insecure, ...(keyPair ? { DPoP: oauth.DPoP(client, keyPair) } : {}) };

  const grant = () => oauth.clientCredentialsGrantRequest(as, client, auth, params, options)
    .then((response) => oauth.processClientCredentialsResponse(as, client, response));
  let result;
  try {
    result = await grant();
  } catch (err) {
    // RFC 9449 §8: the handle has remembered the server's nonce; one retry carries it.
    if (!oauth.isDPoPNonceError(err)) {
      throw err;
    }
    result = await grant();
  }

  const token = result.access_token;
  const proofs = [];
  for (const { htm, htu } of requests) {
    proofs.push({ htm, htu, proof: await generateProof(keyPair, htu, htm, args.nonce, token) });
  }
  const out = {
    token,
    token_type: result.token_type,
    expires_in: result.expires_in ?? null,
    scope: result.scope ?? null,
    jkt: keyPair ? await calculateThumbprint(keyPair.publicKey) : null,
    proof: proofs[0]?.proof ?? null,
    proofs,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => fail(err?.stack ?? String(err)));
