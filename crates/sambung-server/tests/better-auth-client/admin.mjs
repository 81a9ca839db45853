// Better Auth's own client with its admin plugin (`adminClient()`), unchanged, against
// `sambung serve` at process.argv[2] on a fresh instance: the first account is its admin.
// Every step asserts what the client returns; the password reset reads its link from the
// admin's outbox (no mail server here).
import assert from "node:assert/strict";
import { createAuthClient } from "better-auth/client";
import { adminClient } from "better-auth/client/plugins";
import { browserJar } from "./jar.mjs";

const base = process.argv[2];

/** A client with a browser-like cookie jar of its own. */
function person() {
  const { jar, cookieHeader, fetchOptions } = browserJar(base);
  const client = createAuthClient({ baseURL: base, plugins: [adminClient()], fetchOptions });
  const api = async (method, path, body) => {
    const cookies = cookieHeader();
    const response = await fetch(base + path, {
      method,
      headers: { cookie: cookies, origin: base, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  };
  return { client, jar, api };
}

const stamp = Date.now();
const admin = person();
const adminEmail = `admin-${stamp}@example.com`;
let r = await admin.client.signUp.email({ name: "Admin", email: adminEmail, password: "password123" });
assert.equal(r.error, null);
assert.equal(r.data.user.role, "admin", "the first account is the instance's admin");

const ana = person();
const anaEmail = `ana-${stamp}@example.com`;
r = await ana.client.signUp.email({ name: "Ana", email: anaEmail, password: "password123" });
assert.equal(r.error, null);
assert.equal(r.data.user.role, "user");
const anaId = r.data.user.id;

// An ordinary user may administer nothing.
r = await ana.client.admin.listUsers({ query: {} });
assert.equal(r.error.status, 403);
assert.equal(r.error.code, "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS");
r = await ana.client.admin.hasPermission({ permissions: { user: ["list"] } });
assert.deepEqual(r.data, { error: null, success: false });
r = await admin.client.admin.hasPermission({ permissions: { user: ["list", "ban"], session: ["revoke"] } });
assert.deepEqual(r.data, { error: null, success: true });
r = await admin.client.admin.hasPermission({ permissions: { user: ["impersonate-admins"] } });
assert.equal(r.data.success, false, "admins may not impersonate admins");

// Create, find, list.
r = await admin.client.admin.createUser({ email: `bob-${stamp}@example.com`, password: "password123", name: "Bob", role: "user" });
assert.equal(r.error, null);
const bobId = r.data.user.id;
assert.equal(r.data.user.banned, false);
r = await admin.client.admin.createUser({ email: `bob-${stamp}@example.com`, password: "password123", name: "Bob" });
assert.equal(r.error.code, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL");
r = await admin.client.admin.createUser({ email: `carol-${stamp}@example.com`, name: "Carol", role: "wizard" });
assert.equal(r.error.status, 400);
assert.equal(r.error.code, "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE");

r = await admin.client.admin.listUsers({ query: { searchValue: "bob", searchField: "name", searchOperator: "contains" } });
assert.equal(r.error, null);
assert.equal(r.data.total, 1);
assert.equal(r.data.users[0].id, bobId);
r = await admin.client.admin.listUsers({ query: { limit: 2, offset: 1, sortBy: "email", sortDirection: "desc" } });
assert.equal(r.data.users.length, 2);
assert.equal(r.data.total, 3);
assert.equal(r.data.limit, 2);
assert.equal(r.data.offset, 1);
r = await admin.client.admin.listUsers({ query: { filterField: "role", filterValue: "admin", filterOperator: "eq" } });
assert.deepEqual(r.data.users.map((u) => u.email), [adminEmail]);
r = await admin.client.admin.listUsers({ query: { filterField: "noSuchField", filterValue: "x" } });
assert.deepEqual(r.data, { users: [], total: 0 }, "an unknown field matches nothing");
r = await admin.client.admin.listUsers({ query: { filterField: "_id", filterValue: bobId, filterOperator: "ne" } });
assert.equal(r.data.total, 2, "`_id` is the id, as the plugin's adapters read it");
assert.ok(r.data.users.every((u) => u.id !== bobId));

// The top-level fields win over `data`'s; `data` refused leaves no account behind.
const daveEmail = `dave-${stamp}@example.com`;
r = await admin.client.admin.createUser({ email: daveEmail, name: "Dave", data: { emailVerified: "yes" } });
assert.equal(r.error.status, 400);
r = await admin.client.admin.createUser({ email: daveEmail, name: "Dave", data: { image: "data:text/html;base64,PGI+" } });
assert.equal(r.error.status, 400, "an image that is no image");
r = await admin.client.admin.createUser({
  email: daveEmail,
  name: "Dave",
  role: "user",
  data: { role: "admin", name: "Mallory", email: `mallory-${stamp}@example.com`, emailVerified: true },
});
assert.equal(r.error, null, "the refused one made nothing");
assert.equal(r.data.user.role, "user");
assert.equal(r.data.user.name, "Dave");
assert.equal(r.data.user.email, daveEmail);
assert.equal(r.data.user.emailVerified, true);
r = await admin.client.admin.removeUser({ userId: r.data.user.id });
assert.deepEqual(r.data, { success: true });

r = await admin.client.admin.getUser({ query: { id: anaId } });
assert.equal(r.data.email, anaEmail, "get-user answers the bare user");
r = await admin.client.admin.updateUser({ userId: bobId, data: { name: "Robert" } });
assert.equal(r.data.name, "Robert", "update-user answers the bare user");
r = await admin.client.admin.updateUser({ userId: bobId, data: {} });
assert.equal(r.error.code, "NO_DATA_TO_UPDATE");
r = await admin.client.admin.updateUser({ userId: bobId, data: { password: "x" } });
assert.equal(r.error.code, "PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER");

// Roles; the last admin stays one.
r = await admin.client.admin.setRole({ userId: bobId, role: "admin" });
assert.equal(r.data.user.role, "admin");
r = await admin.client.admin.setRole({ userId: bobId, role: ["user"] });
assert.equal(r.data.user.role, "user");
const me = (await admin.client.getSession()).data.user.id;
r = await admin.client.admin.setRole({ userId: me, role: "user" });
assert.equal(r.error.status, 409);
assert.equal(r.error.code, "LAST_ADMIN");

// Bans end sessions at once and refuse sign-in.
r = await admin.client.admin.banUser({ userId: me });
assert.equal(r.error.code, "YOU_CANNOT_BAN_YOURSELF");
r = await admin.client.admin.banUser({ userId: anaId, banReason: "spam", banExpiresIn: 3600 });
assert.equal(r.data.user.banned, true);
assert.equal(r.data.user.banReason, "spam");
assert.ok(r.data.user.banExpires instanceof Date);
r = await ana.client.getSession();
assert.equal(r.data, null, "a banned user's session ended");
r = await ana.client.signIn.email({ email: anaEmail, password: "password123" });
assert.equal(r.error.status, 403);
assert.equal(r.error.code, "BANNED_USER");
r = await admin.client.admin.unbanUser({ userId: anaId });
assert.equal(r.data.user.banned, false);
assert.equal(r.data.user.banReason, null);
assert.equal(r.data.user.banExpires, null);
r = await ana.client.signIn.email({ email: anaEmail, password: "password123" });
assert.equal(r.error, null);

// Sessions.
r = await admin.client.admin.listUserSessions({ userId: anaId });
assert.equal(r.data.sessions.length, 1);
assert.equal(r.data.sessions[0].impersonatedBy, null);
r = await admin.client.admin.revokeUserSession({ sessionToken: r.data.sessions[0].token });
assert.deepEqual(r.data, { success: true });
assert.equal((await ana.client.getSession()).data, null);
await ana.client.signIn.email({ email: anaEmail, password: "password123" });
r = await admin.client.admin.revokeUserSessions({ userId: anaId });
assert.deepEqual(r.data, { success: true });
assert.equal((await ana.client.getSession()).data, null);

r = await admin.client.admin.setUserPassword({ userId: "", newPassword: "newPassword" });
assert.equal(r.error.status, 400, "an empty userId is a bad request, as the plugin's schema has it");
r = await admin.client.admin.setUserPassword({ userId: anaId, newPassword: "short" });
assert.equal(r.error.code, "PASSWORD_TOO_SHORT");
r = await admin.client.admin.setUserPassword({ userId: anaId, newPassword: "another-password" });
assert.deepEqual(r.data, { status: true });
r = await ana.client.signIn.email({ email: anaEmail, password: "another-password" });
assert.equal(r.error, null);

// Impersonation: marked, hidden from the user's own list, never of an admin, undone.
r = await admin.client.admin.impersonateUser({ userId: me });
assert.equal(r.error.code, "YOU_CANNOT_IMPERSONATE_ADMINS");
r = await admin.client.admin.impersonateUser({ userId: anaId });
assert.equal(r.error, null);
assert.equal(r.data.user.id, anaId);
assert.equal(r.data.session.impersonatedBy, me);
r = await admin.client.getSession();
assert.equal(r.data.user.id, anaId);
assert.equal(r.data.session.impersonatedBy, me);
r = await admin.client.admin.listUsers({ query: {} });
assert.equal(r.error.status, 403, "acting as Ana, the admin is Ana");
r = await ana.client.listSessions();
assert.equal(r.data.length, 1, "Ana does not see the admin's session as hers");
r = await admin.client.admin.stopImpersonating();
assert.equal(r.error, null);
assert.equal(r.data.user.id, me);
r = await admin.client.getSession();
assert.equal(r.data.user.id, me);
r = await admin.client.admin.stopImpersonating();
assert.equal(r.error.status, 400, "not impersonating anyone");
// An admin acting as someone waiting for approval can always come back.
r = await admin.client.admin.updateUser({ userId: bobId, data: { approved: false } });
assert.equal(r.error, null);
r = await admin.client.admin.impersonateUser({ userId: bobId });
assert.equal(r.error, null);
r = await admin.client.admin.listUsers({ query: {} });
assert.equal(r.error.status, 403);
r = await admin.client.admin.stopImpersonating();
assert.equal(r.error, null, "back from acting as someone waiting for approval");
assert.equal(r.data.user.id, me);

// A forgotten password, without a mail server: the link waits in the admin's outbox.
r = await ana.client.requestPasswordReset({ email: anaEmail, redirectTo: "/#/reset-password" });
assert.equal(r.data.status, true);
let link;
for (let i = 0; i < 50 && !link; i++) {
  const mail = await admin.api("GET", "/api/v1/admin/mail");
  link = mail.body.items.find((m) => m.recipient === anaEmail && m.kind === "reset-password")?.link;
  if (!link) await new Promise((resolve) => setTimeout(resolve, 100));
}
assert.ok(link, "the reset link is in the outbox");
const followed = await fetch(link, { redirect: "manual" });
assert.equal(followed.status, 302);
const token = new URL(followed.headers.get("location").replace("#/reset-password?", "reset-password?")).searchParams.get("token");
assert.ok(token);
r = await ana.client.resetPassword({ newPassword: "reset-password-1", token });
assert.deepEqual(r.data, { status: true });
r = await ana.client.resetPassword({ newPassword: "reset-password-2", token });
assert.equal(r.error.code, "INVALID_TOKEN", "a reset link works once");
r = await ana.client.signIn.email({ email: anaEmail, password: "reset-password-1" });
assert.equal(r.error, null);

// Removal.
r = await admin.client.admin.removeUser({ userId: me });
assert.equal(r.error.code, "YOU_CANNOT_REMOVE_YOURSELF");
r = await admin.client.admin.removeUser({ userId: bobId });
assert.deepEqual(r.data, { success: true });
r = await admin.client.admin.getUser({ query: { id: bobId } });
assert.equal(r.error.status, 404);
assert.equal(r.error.code, "USER_NOT_FOUND");

// All of it is in the audit log.
const audit = await admin.api("GET", "/api/v1/admin/audit?limit=500");
assert.equal(audit.status, 200, JSON.stringify(audit.body));
const actions = new Set(audit.body.items.map((e) => e.action));
for (const action of ["user.sign-up", "admin.user-created", "admin.role-changed", "admin.user-banned", "admin.user-unbanned",
  "admin.impersonation-started", "admin.impersonation-stopped", "admin.password-set", "admin.user-removed", "user.password-reset"]) {
  assert.ok(actions.has(action), `${action} is in the audit log`);
}
console.log("admin: every step as expected");
