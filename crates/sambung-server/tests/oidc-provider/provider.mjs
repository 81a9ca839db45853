// A real OpenID Provider (npm `oidc-provider`, an OpenID Foundation certified implementation)
// on 127.0.0.1:PORT for the single sign-on tests, with one client whose redirect URI is
// REDIRECT_URI: `node provider.mjs PORT REDIRECT_URI`. Its development login form takes any
// password; who signs in is the login typed (rina, ana: verified emails; budi: unverified).
// Prints "listening" once it answers.
import Provider from "oidc-provider";

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const people = {
  rina: { email: "rina@idp.example", email_verified: true, name: "Rina Wijaya", groups: ["staff"] },
  budi: { email: "budi@idp.example", email_verified: false, name: "Budi Santoso", groups: [] },
  ana: { email: "ana@idp.example", email_verified: true, name: "Ana", groups: [] },
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "sambung",
      client_secret: "the-test-client-secret-of-sambungchat",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  scopes: ["openid", "email", "profile", "groups"],
  async findAccount(ctx, id) {
    if (!people[id]) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...people[id] }) };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["a-cookie-key-for-the-test-provider"] },
  // ID tokens carry the claims, as most providers' do.
  conformIdTokenClaims: false,
});

provider.listen(Number(port), "127.0.0.1", () => console.log("listening"));
