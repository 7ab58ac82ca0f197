// A real OpenID provider (panva/oidc-provider) for the interop tests, on 127.0.0.1 only.
//
//   node provider.mjs [--port N] [--exit-with-stdin]
//     N = 0 or absent: any free port (also $OP_PORT); --exit-with-stdin: exit when stdin closes
//
// Prints one JSON line on stdout once it accepts connections:
//   {"ready":true,"issuer":"http://127.0.0.1:<port>","port":<port>,"kids":[...]}
// and nothing else on stdout afterwards (diagnostics go to stderr).
//
// Issues RFC 9068 JWT access tokens (typ at+jwt, ES256) through the client_credentials grant,
// for the resource indicators (RFC 8707) https://api.test (default) and https://other.test;
// DPoP (RFC 9449) is on, so a token request with a DPoP proof yields a token with cnf.jkt.
//
// Admin routes (loopback only, outside the provider's own routes):
//   POST /__rotate  a new ES256 key goes first in the JWKS and signs from now on; old keys stay listed
//   POST /__retire  drop every key but the current signing key
//   GET  /__stats   {"jwks_requests": n, "kids": [...]}: how often the JWKS was fetched
// oidc-provider fixes its keystore at construction, so a rotation builds a new Provider with the
// new key set and swaps it in behind the same listening socket (same issuer, same clients;
// the token storage adapter is process-wide, and JWT access tokens need none anyway).

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OP_PORT ?? '0' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

const API = 'https://api.test';
const OTHER = 'https://other.test';
const CLIENT = { id: 'interop-client', secret: 'interop-client-secret-0123456789abcdef' };

const RESOURCES = {
  [API]: { scope: 'read write', audience: API },
  [OTHER]: { scope: 'read', audience: OTHER },
};

let kidCounter = 0;

async function newSigningKey() {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  kidCounter += 1;
  return { ...jwk, kid: `op-es256-${kidCounter}-${Date.now().toString(36)}`, alg: 'ES256', use: 'sig' };
}

function makeProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        scope: 'read write',
      },
    ],
    jwks: { keys },
    scopes: ['read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          const info = RESOURCES[resourceIndicator];
          if (!info) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            ...info,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: 300,
      ClientCredentials: 300,
    },
  });
  // Errors of the provider go to stderr; the test reads only the ready line on stdout.
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  return provider;
}

function isLoopback(address) {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

const state = { keys: [], provider: null, callback: null, jwksRequests: 0, issuer: null };

function install(keys) {
  state.keys = keys;
  state.provider = makeProvider(state.issuer, keys);
  state.callback = state.provider.callback();
}

const publicKids = () => state.keys.map((k) => k.kid);

async function admin(req, res, path) {
  if (!isLoopback(req.socket.remoteAddress)) {
    json(res, 403, { error: 'loopback only' });
    return;
  }
  if (req.method === 'POST' && path === '/__rotate') {
    install([await newSigningKey(), ...state.keys]);
    json(res, 200, { kid: state.keys[0].kid, kids: publicKids() });
  } else if (req.method === 'POST' && path === '/__retire') {
    install(state.keys.slice(0, 1));
    json(res, 200, { kid: state.keys[0].kid, kids: publicKids() });
  } else if (req.method === 'GET' && path === '/__stats') {
    json(res, 200, { jwks_requests: state.jwksRequests, kids: publicKids() });
  } else {
    json(res, 404, { error: 'unknown admin route' });
  }
}

const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  if (path.startsWith('/__')) {
    admin(req, res, path).catch((err) => {
      console.error('admin error', err);
      json(res, 500, { error: String(err) });
    });
    return;
  }
  if (!state.callback) {
    json(res, 503, { error: 'starting' });
    return;
  }
  if (req.method === 'GET' && path === '/jwks') {
    state.jwksRequests += 1;
  }
  state.callback(req, res);
});

server.listen(Number(args.port), '127.0.0.1', async () => {
  const { port } = server.address();
  state.issuer = `http://127.0.0.1:${port}`;
  install([await newSigningKey()]);
  process.stdout.write(`${JSON.stringify({ ready: true, issuer: state.issuer, port, kids: publicKids() })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
// --exit-with-stdin: the test holds our stdin; when it goes away (even killed hard), so do we.
if (args['exit-with-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
