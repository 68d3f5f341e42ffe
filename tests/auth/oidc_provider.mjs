// A real OAuth 2.1 / OpenID authorization server for the tests: npm `oidc-provider` (9.x, Node 22).
//
// Environment: OIDC_MODULE (the oidc-provider package folder), OIDC_PORT, OIDC_KEYS (a JSON file
// {"keys": [private JWKs]}), OIDC_CLIENTS (JSON list of client metadata), OIDC_ISSUER (optional;
// default http://127.0.0.1:PORT). Access tokens are RFC 9068 JWTs (at+jwt) for the RFC 8707
// resource the client asks for; a client whose id starts with "short" gets 1-second tokens.
// Prints "READY <issuer>" when listening and "REQ <method> <path>" for every request it serves.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = process.env;
const port = Number(env.OIDC_PORT);
const issuer = env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
const { default: Provider } = await import(pathToFileURL(join(env.OIDC_MODULE, 'lib', 'index.js')).href);
const jwks = JSON.parse(readFileSync(env.OIDC_KEYS, 'utf8'));
const clients = JSON.parse(env.OIDC_CLIENTS || '[]');
const SCOPES = 'mugpos:read mugpos:write';

const provider = new Provider(issuer, {
  clients,
  jwks,
  scopes: ['openid', 'offline_access', 'mugpos:read', 'mugpos:write'],
  features: {
    devInteractions: { enabled: true },  // the stock login/consent pages: any username logs in
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => env.OIDC_DEFAULT_RESOURCE || undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: SCOPES,
        audience: resource,
        accessTokenTTL: client.clientId.startsWith('short') ? 1 : 600,
        accessTokenFormat: 'jwt',
      }),
    },
  },
  pkce: { required: () => true },
});
provider.proxy = false;
provider.use(async (ctx, next) => {
  console.log(`REQ ${ctx.method} ${ctx.path}`);
  await next();
});
provider.listen(port, '127.0.0.1', () => console.log(`READY ${issuer}`));
