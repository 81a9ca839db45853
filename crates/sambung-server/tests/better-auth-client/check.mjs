// Better Auth's own client, unchanged, against `sambung serve` at process.argv[2]. A
// browser-like cookie jar and Origin header; every step asserts what the client returns.
import assert from "node:assert/strict";
import { createAuthClient } from "better-auth/client";
import { browserJar } from "./jar.mjs";

const base = process.argv[2];
const { jar, fetchOptions } = browserJar(base);
const client = createAuthClient({ baseURL: base, fetchOptions });

const email = `client-${Date.now()}@example.com`;
let r = await client.signUp.email({ name: "Node", email, password: "password123" });
assert.equal(r.error, null);
assert.equal(r.data.user.email, email);
assert.ok(r.data.user.createdAt instanceof Date, "dates parse as dates");
assert.ok(jar.has("sambungchat-auth.session_token"));

r = await client.getSession();
assert.equal(r.error, null);
assert.equal(r.data.user.email, email);
assert.ok(r.data.session.expiresAt instanceof Date);

r = await client.signUp.email({ name: "Node", email, password: "password123" });
assert.equal(r.error.status, 422);
assert.equal(r.error.code, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");

r = await client.listSessions();
assert.equal(r.error, null);
assert.equal(r.data.length, 1);

r = await client.changePassword({ currentPassword: "wrongwrong", newPassword: "password456" });
assert.equal(r.error.status, 400);
assert.equal(r.error.code, "INVALID_PASSWORD");
r = await client.changePassword({ currentPassword: "password123", newPassword: "password456", revokeOtherSessions: true });
assert.equal(r.error, null);
assert.equal(typeof r.data.token, "string");

r = await client.updateUser({ name: "Renamed" });
assert.deepEqual(r.data, { status: true });

r = await client.signOut();
assert.deepEqual(r.data, { success: true });
assert.ok(!jar.has("sambungchat-auth.session_token"));
r = await client.getSession();
assert.equal(r.error, null);
assert.equal(r.data, null);

r = await client.signIn.email({ email, password: "password123" });
assert.equal(r.error.status, 401);
assert.equal(r.error.code, "INVALID_EMAIL_OR_PASSWORD");
r = await client.signIn.email({ email: "nobody@example.com", password: "password456" });
assert.equal(r.error.code, "INVALID_EMAIL_OR_PASSWORD");
r = await client.signUp.email({ name: "x", email: "short@example.com", password: "short" });
assert.equal(r.error.code, "PASSWORD_TOO_SHORT");

r = await client.signIn.email({ email, password: "password456", rememberMe: false });
assert.equal(r.error, null);
assert.equal(r.data.user.name, "Renamed");
assert.ok(jar.has("sambungchat-auth.dont_remember"));

r = await client.revokeOtherSessions();
assert.deepEqual(r.data, { status: true });
r = await client.deleteUser({ password: "password456" });
assert.deepEqual(r.data, { success: true, message: "User deleted" });
r = await client.getSession();
assert.equal(r.data, null);
// A client without cookies, as Better Auth's bearer plugin documents it: the token each
// answer says in `set-auth-token`, sent back as `Authorization: Bearer`.
let bearerToken = "";
const bearer = createAuthClient({
  baseURL: base,
  fetchOptions: {
    headers: { origin: base },
    auth: { type: "Bearer", token: () => bearerToken },
    onSuccess(ctx) {
      const said = ctx.response.headers.get("set-auth-token");
      if (said) bearerToken = said;
    },
  },
});
const bearerEmail = `bearer-${Date.now()}@example.com`;
r = await bearer.signUp.email({ name: "Bearer", email: bearerEmail, password: "password123" });
assert.equal(r.error, null);
assert.ok(bearerToken.startsWith(`${r.data.token}.`), "set-auth-token is the signed token");
r = await bearer.getSession();
assert.equal(r.error, null);
assert.equal(r.data.user.email, bearerEmail);
r = await bearer.signOut();
assert.deepEqual(r.data, { success: true });
r = await bearer.getSession();
assert.equal(r.data, null, "signed out, the token is dead");
console.log("better-auth client: every step as expected");
