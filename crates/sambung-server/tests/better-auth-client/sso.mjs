// Better Auth's own client (`signIn.social`, `linkSocial`, `listAccounts`, `unlinkAccount`),
// unchanged, against `sambung serve` at process.argv[2], whose provider "op" is a real
// OpenID Provider (npm oidc-provider, started by the test). The browser's part (following
// redirects, filling the provider's login and consent forms) is done here with fetch and a
// cookie jar per host, as a browser would.
import assert from "node:assert/strict";
import { createAuthClient } from "better-auth/client";

const base = process.argv[2];
const jars = new Map(); // host → Map(name → value)

function cookiesFor(url) {
  const jar = jars.get(new URL(url).host) ?? new Map();
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}

function keep(url, response) {
  const host = new URL(url).host;
  const jar = jars.get(host) ?? new Map();
  for (const set of response.headers.getSetCookie()) {
    const [pair] = set.split(";");
    const at = pair.indexOf("=");
    const name = pair.slice(0, at);
    if (/max-age=0/i.test(set) || /expires=thu, 01 jan 1970/i.test(set)) jar.delete(name);
    else jar.set(name, pair.slice(at + 1));
  }
  jars.set(host, jar);
}

async function request(url, init = {}) {
  const headers = { ...(init.headers ?? {}), cookie: cookiesFor(url) };
  if (url.startsWith(base)) headers.origin = base;
  const response = await fetch(url, { ...init, headers, redirect: "manual" });
  keep(url, response);
  return response;
}

/** Follow the sign-in from the provider's URL: log in as `login`, consent, and come back.
 * Returns where the server finally sends the browser. */
async function drive(start, login) {
  // A new person at the provider: none of the last one's session there.
  jars.delete(new URL(start).host);
  let url = start;
  let init = {};
  for (let hop = 0; hop < 20; hop++) {
    const response = await request(url, init);
    init = {};
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get("location"), url).toString();
      // Back in the app (not its callback): the sign-in is over.
      if (next.startsWith(base) && !new URL(next).pathname.startsWith("/api/auth/callback")) return next;
      url = next;
      continue;
    }
    const html = await response.text();
    assert.equal(response.status, 200, html.slice(0, 300));
    const action = html.match(/<form[^>]*action="([^"]+)"/)[1].replaceAll("&amp;", "&");
    const prompt = html.match(/name="prompt" value="([^"]+)"/)[1];
    const form = new URLSearchParams({ prompt });
    if (prompt === "login") {
      form.set("login", login);
      form.set("password", "anything");
    }
    url = new URL(action, url).toString();
    init = { method: "POST", body: form, headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  throw new Error("the sign-in never came back");
}

const client = createAuthClient({
  baseURL: base,
  fetchOptions: {
    onRequest(ctx) {
      ctx.headers.set("cookie", cookiesFor(base));
      ctx.headers.set("origin", base);
    },
    onResponse(ctx) {
      keep(base, ctx.response);
    },
  },
});

// A new person signs in through the provider: an account, a session, the account listed.
let r = await client.signIn.social({ provider: "op", callbackURL: "/#/chats", newUserCallbackURL: "/#/welcome", disableRedirect: true });
assert.equal(r.error, null, JSON.stringify(r.error));
assert.ok(r.data.url.includes("code_challenge_method=S256"), r.data.url);
let landed = await drive(r.data.url, "rina");
assert.equal(landed, `${base}/#/welcome`);
r = await client.getSession();
assert.equal(r.data.user.email, "rina@idp.example");
assert.equal(r.data.user.emailVerified, true);
assert.equal(r.data.user.name, "Rina Wijaya");
r = await client.listAccounts();
assert.equal(r.error, null);
assert.deepEqual(r.data.map((a) => [a.providerId, a.accountId]), [["op", "rina"]]);
assert.ok(Array.isArray(r.data[0].scopes));
r = await client.unlinkAccount({ accountId: r.data[0].id });
assert.equal(r.error.code, "FAILED_TO_UNLINK_LAST_ACCOUNT");

// Signed out, the same person again: the same user, to the callback.
await client.signOut();
r = await client.signIn.social({ provider: "op", callbackURL: "/#/chats" });
landed = await drive(r.data.url, "rina");
assert.equal(landed, `${base}/#/chats`);
r = await client.getSession();
assert.equal(r.data.user.email, "rina@idp.example");

// An unverified email at the provider for a password account here: refused, in words.
await client.signOut();
r = await client.signUp.email({ name: "Budi", email: "budi@idp.example", password: "password123" });
assert.equal(r.error, null);
await client.signOut();
r = await client.signIn.social({ provider: "op", callbackURL: "/#/chats", errorCallbackURL: "/#/sign-in" });
landed = await drive(r.data.url, "budi");
assert.equal(landed, `${base}/#/sign-in?error=account_not_linked`);
r = await client.getSession();
assert.equal(r.data, null);

// Budi, signed in with his password, cannot link an identity whose email the provider does
// not vouch for.
r = await client.signIn.email({ email: "budi@idp.example", password: "password123" });
assert.equal(r.error, null);
r = await client.linkSocial({ provider: "op", callbackURL: "/#/settings", errorCallbackURL: "/#/settings" });
landed = await drive(r.data.url, "budi");
assert.equal(landed, `${base}/#/settings?error=unable_to_link_account`);

// Ana, signed in with her password, links the provider (the same, verified email): then both
// ways work, and either may go while the other stays.
await client.signOut();
r = await client.signUp.email({ name: "Ana", email: "ana@idp.example", password: "password123" });
assert.equal(r.error, null);
r = await client.linkSocial({ provider: "op", callbackURL: "/#/settings" });
assert.equal(r.error, null, JSON.stringify(r.error));
landed = await drive(r.data.url, "ana");
assert.equal(landed, `${base}/#/settings`);
r = await client.listAccounts();
assert.deepEqual(r.data.map((a) => a.providerId).sort(), ["credential", "op"]);
const linked = r.data.find((a) => a.providerId === "op");
assert.deepEqual(linked.scopes, ["openid", "email", "profile"]);
r = await client.unlinkAccount({ accountId: linked.id });
assert.equal(r.error, null, JSON.stringify(r.error));
assert.equal(r.data.status, true);
r = await client.unlinkAccount({ accountId: linked.id });
assert.equal(r.error.code, "FAILED_TO_UNLINK_LAST_ACCOUNT");

console.log("sso: every step as expected");
