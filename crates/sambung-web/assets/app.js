// SambungChat's web UI: plain modules on the JSON API, no framework, nothing fetched from
// elsewhere. Text from users and models is only ever set as text; the one exception is a
// message's HTML, which the server renders from Markdown and sanitises (sambung-web).

import { $, el, api, ApiError, within } from "./ui.js";
import { t, bytes, useLocale, preferredLocale, locale, number, when, shortTime } from "./i18n.js";

const state = {
  user: null,
  scope: "", // "" for personal chats, else a team's id
  teams: [],
  folders: [],
  tags: [],
  tagFilter: null,
  chats: [],
  models: [],
  chat: null, // the open chat
  messages: [],
  editing: null, // the id of the user message being edited
  streaming: false,
  instance: null, // GET /api/v1/instance
  session: null,
};

/** The title the server gives a chat not named yet (`sambung_db::chats::NEW_CHAT_TITLE`). */
const NEW_CHAT_TITLE = "New chat";

// ---------------------------------------------------------------- theme

/** The theme the user chose (`system` follows the device): kept on the server, and in this
 * browser so that the next page opens in it at once. */
function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  localStorage.setItem("sambung.theme", theme);
  $("#theme").value = theme;
}
applyTheme(localStorage.getItem("sambung.theme") || "system");

// ---------------------------------------------------------------- language

/** Speak `code` from now on (`""`: this browser's languages): kept for the signed-in user on
 * the server, and in this browser. The page is drawn again in it; nothing typed is lost. */
async function chooseLocale(code) {
  if (code) localStorage.setItem("sambung.locale", code);
  else localStorage.removeItem("sambung.locale");
  await useLocale(code || preferredLocale());
  $("#auth-locale").value = locale;
  relabel();
  if (state.user) {
    await api("PATCH", "/api/v1/me/preferences", { locale: code || null });
    await redraw();
  }
}

$("#auth-locale").addEventListener("change", () => chooseLocale($("#auth-locale").value).catch(toast));
$("#locale").addEventListener("change", () =>
  within($("#theme-status"), async () => {
    await chooseLocale($("#locale").value);
    return t("settings.saved");
  }),
);

$("#theme").addEventListener("change", async () => {
  const theme = $("#theme").value;
  applyTheme(theme);
  await within($("#theme-status"), async () => {
    await api("PATCH", "/api/v1/me/preferences", { theme });
    return t("settings.saved");
  });
});

// ---------------------------------------------------------------- sign-in

let signingUp = false;

/** The query of the page's address after `#/page?` (reset links, invitations). */
function hashQuery() {
  const at = location.hash.indexOf("?");
  return new URLSearchParams(at >= 0 ? location.hash.slice(at + 1) : "");
}

function showAuth() {
  $("#app").hidden = true;
  $("#pending").hidden = true;
  $("#totp-required").hidden = true;
  $("#auth").hidden = false;
  const [, view] = location.hash.split(/[/?]/);
  const query = hashQuery();
  showAuthForm(view === "reset-password" ? "#reset-form" : "#auth-form");
  labelAuth();
  if (view === "reset-password") {
    if (query.get("error")) {
      $("#reset-status").textContent = t("auth.reset.badLink");
      $("#reset-status").classList.add("error");
      showAuthForm("#forgot-form");
      $("#forgot-status").textContent = $("#reset-status").textContent;
      $("#forgot-status").classList.add("error");
    }
    return;
  }
  // Whoever follows an invitation link signs up or in first, then joins.
  if (pendingInvite() || (view === "signup" && query.get("invitation"))) setSigningUp(true);
  if (query.get("verified") === "true") note(t("auth.verified"));
  if (query.get("error") === "invalid_token") $("#auth-error").textContent = t("auth.verify.badLink");
  else if (query.get("error")) $("#auth-error").textContent = ssoError(query.get("error"));
  // Back from an identity provider to an account with a second factor: its code next.
  if (query.get("two_factor")) askForCode(false);
  showProviders().catch(() => {});
  $("#auth-email").focus();
}

/** What each `?error=` of a sign-in through an identity provider says. */
const SSO_ERRORS = {
  state_mismatch: "auth.sso.state_mismatch",
  state_not_found: "auth.sso.state_not_found",
  account_not_linked: "auth.sso.account_not_linked",
  signup_disabled: "auth.sso.signup_disabled",
  email_not_found: "auth.sso.email_not_found",
  email_domain_not_allowed: "auth.sso.email_domain_not_allowed",
  invalid_id_token: "auth.sso.invalid_id_token",
  invalid_code: "auth.sso.invalid_code",
  access_denied: "auth.sso.access_denied",
  provider_unreachable: "auth.sso.provider_unreachable",
  account_already_linked_to_different_user: "auth.sso.account_already_linked_to_different_user",
  email_does_not_match: "auth.sso.email_does_not_match",
  unable_to_link_account: "auth.sso.unable_to_link_account",
  banned: "auth.sso.banned",
  email_not_verified: "auth.sso.email_not_verified",
};

/** What a sign-in through an identity provider that came back with `?error=` says. */
function ssoError(code) {
  return t(Object.hasOwn(SSO_ERRORS, code) ? SSO_ERRORS[code] : "auth.sso.failed");
}

/** A button for each identity provider of the instance. */
async function showProviders() {
  const instance = await api("GET", "/api/v1/instance");
  const providers = instance.identityProviders || [];
  $("#sso-buttons").replaceChildren(
    ...providers.map((provider) =>
      el("button", { type: "button", onclick: () => signInWith(provider.id) }, t("auth.sso.with", { name: provider.name })),
    ),
  );
  $("#sso-buttons").hidden = providers.length === 0;
  // Only the providers' buttons, when passwords are for admins only (a link shows the form).
  const providersOnly = !instance.passwordSignIn && providers.length > 0 && !signingUp;
  $("#auth-form").classList.toggle("providers-only", providersOnly);
  $("#auth-use-password").hidden = !providersOnly;
}

$("#auth-use-password").addEventListener("click", () => {
  $("#auth-form").classList.remove("providers-only");
  $("#auth-use-password").hidden = true;
  $("#auth-email").focus();
});

async function signInWith(provider) {
  $("#auth-error").textContent = "";
  try {
    const answer = await api("POST", "/api/auth/sign-in/social", { provider, callbackURL: "/#/", errorCallbackURL: "/#/" });
    location.href = answer.url;
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
}

/** Show one of the sign-in page's forms. */
function showAuthForm(form) {
  for (const f of ["#auth-form", "#code-form", "#forgot-form", "#reset-form"]) $(f).hidden = f !== form;
}

function note(text) {
  $("#auth-note").textContent = text;
  $("#auth-note").hidden = !text;
}

function setSigningUp(up) {
  signingUp = up;
  $("#name-row").hidden = !up;
  labelAuth();
  $("#auth-password").autocomplete = up ? "new-password" : "current-password";
  // A new password has a minimum; an existing one is whatever it is.
  $("#auth-password").minLength = up ? 8 : -1;
  if (!up) $("#auth-password").removeAttribute("minlength");
  $("#auth-error").textContent = "";
}

/** The sign-in form's title and buttons, for signing in or up. */
function labelAuth() {
  $("#auth-title").textContent = t(signingUp ? "auth.title.signUp" : "auth.title.signIn");
  $("#auth-submit").textContent = t(signingUp ? "auth.submit.signUp" : "auth.submit.signIn");
  $("#auth-switch").textContent = t(signingUp ? "auth.switch.toSignIn" : "auth.switch.toSignUp");
}

$("#auth-switch").addEventListener("click", () => setSigningUp(!signingUp));

$("#auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { email: $("#auth-email").value, password: $("#auth-password").value };
  if (signingUp) {
    body.name = $("#auth-name").value || body.email.split("@")[0];
    const invitation = hashQuery().get("invitation") || pendingInvite();
    if (invitation) body.invitation = invitation;
    body.callbackURL = "/#/?verified=true";
  }
  $("#auth-error").textContent = "";
  $("#auth-resend").hidden = true;
  note("");
  try {
    const answer = await api("POST", signingUp ? "/api/auth/sign-up/email" : "/api/auth/sign-in/email", body);
    if (answer.twoFactorRedirect) {
      // The password stays typed: a sign-in whose code never comes starts again from it.
      askForCode(false);
      return;
    }
    $("#auth-password").value = "";
    if (signingUp && !answer.token) {
      setSigningUp(false);
      note(t("auth.verify.mailed", { email: body.email }));
      return;
    }
    if (location.hash.startsWith("#/signup")) history.replaceState(null, "", "/#/");
    await start();
  } catch (error) {
    // What was typed stays; the error says what to do.
    $("#auth-error").textContent = error.message;
    $("#auth-resend").hidden = error.code !== "EMAIL_NOT_VERIFIED";
  }
});

// ---------------------------------------------------------------- second factor at sign-in

let backupCode = false;

/** Ask for the authenticator app's code (or, `backup`, a backup code). */
function askForCode(backup) {
  backupCode = backup;
  $("#code-about").textContent = t(backup ? "auth.code.aboutBackup" : "auth.code.about");
  $("#code-label").textContent = t(backup ? "auth.code.backupLabel" : "auth.code.label");
  $("#code-backup").textContent = t(backup ? "auth.code.useApp" : "auth.code.useBackup");
  $("#code-value").inputMode = backup ? "text" : "numeric";
  $("#code-value").value = "";
  $("#code-error").textContent = "";
  showAuthForm("#code-form");
  $("#code-value").focus();
}

$("#code-backup").addEventListener("click", () => askForCode(!backupCode));
$("#code-back").addEventListener("click", () => showAuthForm("#auth-form"));

$("#code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("#code-error").textContent = "";
  const body = { code: $("#code-value").value.trim(), trustDevice: $("#code-trust").checked };
  try {
    await api("POST", backupCode ? "/api/auth/two-factor/verify-backup-code" : "/api/auth/two-factor/verify-totp", body);
    $("#auth-password").value = "";
    $("#code-value").value = "";
    showAuthForm("#auth-form");
    await start();
  } catch (error) {
    // A sign-in that ended (too many codes, too long) starts again from the password.
    const ended = ["TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE", "INVALID_TWO_FACTOR_COOKIE"].includes(error.code);
    if (ended) {
      showAuthForm("#auth-form");
      $("#auth-error").textContent = `${error.message} ${t("auth.code.again")}`;
    } else {
      $("#code-error").textContent = error.message;
      $("#code-value").select();
    }
  }
});

$("#auth-resend").addEventListener("click", async () => {
  try {
    await api("POST", "/api/auth/send-verification-email", { email: $("#auth-email").value, callbackURL: "/#/?verified=true" });
    note(t("auth.verify.resent"));
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
});

$("#auth-forgot").addEventListener("click", () => {
  $("#forgot-email").value = $("#auth-email").value;
  showAuthForm("#forgot-form");
  $("#forgot-email").focus();
});
for (const back of ["#forgot-back", "#reset-back"]) {
  $(back).addEventListener("click", () => {
    history.replaceState(null, "", "/#/");
    showAuthForm("#auth-form");
  });
}

$("#forgot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await within($("#forgot-status"), async () => {
    const answer = await api("POST", "/api/auth/request-password-reset", { email: $("#forgot-email").value, redirectTo: "/#/reset-password" });
    return answer.message;
  });
});

$("#reset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const done = await within($("#reset-status"), async () => {
    await api("POST", "/api/auth/reset-password", { newPassword: $("#reset-password").value, token: hashQuery().get("token") });
    return "";
  });
  if (done) {
    $("#reset-password").value = "";
    history.replaceState(null, "", "/#/");
    showAuthForm("#auth-form");
    note(t("auth.reset.done"));
  }
});

$("#pending-check").addEventListener("click", async () => {
  await start().catch(toast);
  if (!$("#pending").hidden) $("#pending-status").textContent += ` ${t("pending.waiting", { time: new Date().toLocaleTimeString(locale) })}`;
});
$("#pending-sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/sign-out", {});
  location.hash = "";
  showAuth();
});

$("#acting-stop").addEventListener("click", guard(async () => {
  await api("POST", "/api/auth/admin/stop-impersonating", {});
  location.hash = "#/admin/people";
  location.reload();
}));

$("#sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/sign-out", {});
  state.user = null;
  location.hash = "";
  showAuth();
});

// ---------------------------------------------------------------- sidebar

const scoped = (path) => (state.scope ? `${path}${path.includes("?") ? "&" : "?"}team=${state.scope}` : path);

/** The chat list's filters as a query: scope, tag, archived, the title searched. */
function chatQuery(extra) {
  let path = scoped(`/api/v1/chats?${extra}`);
  if (state.tagFilter) path += `&tag=${state.tagFilter}`;
  if (state.archived) path += "&archived=true";
  const words = $("#search").value.trim();
  if (words) path += `&q=${encodeURIComponent(words)}`;
  return path;
}

/** The chat list from its top: the pinned chats, then the first page of the rest (more come
 * as the list scrolls to its end). */
async function loadChats() {
  const asked = (loadChats.asked = (loadChats.asked || 0) + 1);
  const [pinned, page] = await Promise.all([
    state.archived ? { items: [] } : api("GET", chatQuery("pinned=true&limit=200")),
    api("GET", chatQuery(state.archived ? "limit=50" : "pinned=false&limit=50")),
  ]);
  if (asked !== loadChats.asked) return; // a newer search or filter answered first
  // Pinned first (most recently pinned on top), then the rest as the server orders them.
  const pins = pinned.items.sort((a, b) => (a.pinnedAt < b.pinnedAt ? 1 : -1));
  state.chats = [...pins, ...page.items];
  state.chatsCursor = page.nextCursor;
  rememberTitles(state.chats);
  renderChats();
}

/** The titles of the chats listed so far, whatever the list shows now (search hits name
 * their chat with it). */
const titles = new Map();
function rememberTitles(chats) {
  for (const chat of chats) titles.set(chat.id, chat.title);
}

/** The next page of the chat list, when its end scrolls into view. */
async function loadMoreChats() {
  const cursor = state.chatsCursor;
  if (!cursor || loadMoreChats.busy) return;
  loadMoreChats.busy = true;
  try {
    const page = await api("GET", chatQuery(`${state.archived ? "" : "pinned=false&"}limit=50&cursor=${encodeURIComponent(cursor)}`));
    if (state.chatsCursor !== cursor) return; // the list was loaded again meanwhile
    state.chats = [...state.chats, ...page.items];
    state.chatsCursor = page.nextCursor;
    rememberTitles(page.items);
    renderChats();
  } finally {
    loadMoreChats.busy = false;
  }
}

const moreChats = new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadMoreChats().catch(toast);
});

$("#show-archived").addEventListener("click", guard(async () => {
  state.archived = !state.archived;
  $("#show-archived").setAttribute("aria-pressed", String(state.archived));
  $("#show-archived").textContent = t(state.archived ? "chats.back" : "chats.archived");
  await loadChats();
}));

async function loadFolders() {
  state.folders = (await api("GET", scoped("/api/v1/folders?limit=200"))).items;
  renderFolderParents();
  renderChats();
}

/** The folder form's choice of where a folder goes. */
function renderFolderParents() {
  const chosen = $("#folder-parent").value;
  $("#folder-parent").replaceChildren(el("option", { value: "" }, t("folders.top")), ...state.folders.map((f) => el("option", { value: f.id }, f.name)));
  $("#folder-parent").value = state.folders.some((f) => f.id === chosen) ? chosen : "";
}

async function loadTags() {
  state.tags = (await api("GET", scoped("/api/v1/tags?limit=200"))).items;
  renderTagFilter();
}

/** The tags above the chat list, to filter it by one. */
function renderTagFilter() {
  $("#tag-filter").replaceChildren(
    ...state.tags.map((tag) =>
      el(
        "span",
        { class: "chip-group" },
        el("button", { class: "chip", type: "button", "aria-pressed": state.tagFilter === tag.id ? "true" : "false", "data-tag": tag.id, onclick: () => filterByTag(tag.id) }, tag.name),
        // A public tag (no owner) is the instance's: it is used here, not changed.
        tag.userId || tag.teamId ? el("button", { class: "link manage", type: "button", "aria-label": t("tags.edit", { name: tag.name }), onclick: () => editTag(tag) }, "✎") : null,
      ),
    ),
  );
}

async function filterByTag(tag) {
  state.tagFilter = state.tagFilter === tag ? null : tag;
  await Promise.all([loadTags(), loadChats()]);
}

/** A chat's title as shown: one not named yet (the server's "New chat") in the UI's language. */
const shownTitle = (title) => (title === NEW_CHAT_TITLE ? t("chat.new") : title);

function chatLink(c) {
  return el(
    "li",
    { class: c.pinnedAt ? "pinned" : null },
    el("a", { href: `#/chat/${c.id}`, "aria-current": state.chat && state.chat.id === c.id ? "page" : null, "data-chat": c.id, draggable: "true" }, shownTitle(c.title)),
  );
}

/** Chats under Today, Yesterday, Previous 7 days and Older (by their last change). */
function byDay(chats) {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const day = 86400000;
  const groups = [
    [t("chats.day.today"), midnight.getTime()],
    [t("chats.day.yesterday"), midnight.getTime() - day],
    [t("chats.day.week"), midnight.getTime() - 7 * day],
    [t("chats.day.older"), -Infinity],
  ];
  const items = [];
  let shown = null;
  for (const chat of chats) {
    const at = new Date(chat.updatedAt).getTime();
    const [label] = groups.find(([, from]) => at >= from);
    if (label !== shown) {
      items.push(el("li", { class: "group" }, el("h3", {}, label)));
      shown = label;
    }
    items.push(chatLink(chat));
  }
  return items;
}

/** Pinned chats first, then the folders as a tree with their chats, then the rest. */
function renderChats() {
  const shown = state.chats;
  const inFolder = (folder) => shown.filter((c) => !c.pinnedAt && c.folderId === folder);
  const known = new Set(state.folders.map((f) => f.id));
  const folderItem = (folder) =>
    el(
      "li",
      { class: "folder", "data-folder": folder.id },
      el(
        "details",
        { open: true },
        el(
          "summary",
          {},
          folder.name,
          el("button", { class: "link manage", type: "button", "aria-label": t("folders.edit", { name: folder.name }), onclick: (event) => editFolder(event, folder) }, "✎"),
        ),
        el("ul", {}, ...state.folders.filter((f) => f.parentId === folder.id).map(folderItem), ...inFolder(folder.id).map(chatLink)),
      ),
    );
  $("#chat-list").replaceChildren(
    ...shown.filter((c) => c.pinnedAt).map(chatLink),
    ...state.folders.filter((f) => !f.parentId || !known.has(f.parentId)).map(folderItem),
    ...byDay(shown.filter((c) => !c.pinnedAt && (!c.folderId || !known.has(c.folderId)))),
  );
  moreChats.disconnect();
  if (state.chatsCursor) {
    const end = el("li", { class: "more", "aria-hidden": "true" }, "…");
    $("#chat-list").append(end);
    moreChats.observe(end);
  }
  if (!state.chats.length && ($("#search").value.trim() || state.archived)) {
    $("#chat-list").append(el("li", { class: "note" }, t(state.archived ? "chats.noArchived" : "chats.noMatch")));
  }
}

// Chats are dragged onto a folder, or onto the list outside any folder to take them out (the
// folder select in the chat's header does the same from the keyboard).
const DRAGGED_CHAT = "application/x-sambung-chat";
$("#chat-list").addEventListener("dragstart", (event) => {
  const link = event.target.closest && event.target.closest("a[data-chat]");
  if (!link) return;
  event.dataTransfer.setData(DRAGGED_CHAT, link.dataset.chat);
  event.dataTransfer.effectAllowed = "move";
});
$("#chat-list").addEventListener("dragover", (event) => {
  if (!event.dataTransfer.types.includes(DRAGGED_CHAT)) return;
  event.preventDefault();
  for (const over of document.querySelectorAll("#chat-list .drop-here")) over.classList.remove("drop-here");
  (event.target.closest("li.folder") || $("#chat-list")).classList.add("drop-here");
});
$("#chat-list").addEventListener("dragleave", (event) => {
  if (!$("#chat-list").contains(event.relatedTarget)) for (const over of document.querySelectorAll(".drop-here")) over.classList.remove("drop-here");
});
$("#chat-list").addEventListener("drop", guard(async (event) => {
  const chat = event.dataTransfer.getData(DRAGGED_CHAT);
  for (const over of document.querySelectorAll(".drop-here")) over.classList.remove("drop-here");
  if (!chat) return;
  event.preventDefault();
  const folder = event.target.closest("li.folder");
  const folderId = folder ? folder.dataset.folder : null;
  const known = state.chats.find((c) => c.id === chat);
  if (known && (known.folderId || null) === folderId) return;
  await api("PATCH", `/api/v1/chats/${chat}`, { folderId });
  if (state.chat && state.chat.id === chat) {
    state.chat.folderId = folderId;
    renderChatTools();
  }
  await loadChats();
}));

$("#scope").addEventListener("change", guard(async () => {
  state.scope = $("#scope").value;
  state.tagFilter = null;
  await Promise.all([loadChats(), loadFolders(), loadTags(), loadUsable()]);
}));

// The folder and tag forms add one, or (opened from one) rename, move or delete it.
let editingFolder = null;
let editingTag = null;

$("#new-folder").addEventListener("click", () => {
  editingFolder = null;
  openForm("#folder-form", "#folder-name", "", false, "#folder-delete");
  $("#folder-parent").value = "";
});
$("#new-tag").addEventListener("click", () => {
  editingTag = null;
  openForm("#tag-form", "#tag-name", "", false, "#tag-delete");
});

/** Open the folder or tag form, to add one or (`editing`) to save one. */
function openForm(form, input, value, editing, remove) {
  $(form).hidden = false;
  $(input).value = value;
  $(`${form} button[type=submit]`).textContent = t(editing ? "sidebar.form.save" : "sidebar.form.add");
  $(remove).hidden = !editing;
  $(input).focus();
}

function editFolder(event, folder) {
  event.preventDefault(); // a click inside <summary> would fold the folder
  editingFolder = folder;
  openForm("#folder-form", "#folder-name", folder.name, true, "#folder-delete");
  $("#folder-parent").value = folder.parentId || "";
}

function editTag(tag) {
  editingTag = tag;
  openForm("#tag-form", "#tag-name", tag.name, true, "#tag-delete");
}

async function formDone(form) {
  $(form).hidden = true;
  await Promise.all([loadFolders(), loadTags(), loadChats()]);
  if (state.chat) renderChatTools();
}

$("#folder-form").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  const parentId = $("#folder-parent").value || null;
  if (editingFolder) {
    await api("PATCH", `/api/v1/folders/${editingFolder.id}`, { name: $("#folder-name").value, parentId });
  } else {
    const body = { name: $("#folder-name").value, parentId };
    if (state.scope) body.team = state.scope;
    await api("POST", "/api/v1/folders", body);
  }
  await formDone("#folder-form");
}));

$("#folder-delete").addEventListener("click", guard(async () => {
  await api("DELETE", `/api/v1/folders/${editingFolder.id}`);
  await formDone("#folder-form");
}));

$("#tag-form").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  if (editingTag) {
    await api("PATCH", `/api/v1/tags/${editingTag.id}`, { name: $("#tag-name").value });
  } else {
    const body = { name: $("#tag-name").value };
    if (state.scope) body.team = state.scope;
    await api("POST", "/api/v1/tags", body);
  }
  await formDone("#tag-form");
}));

$("#tag-delete").addEventListener("click", guard(async () => {
  await api("DELETE", `/api/v1/tags/${editingTag.id}`);
  state.tagFilter = null;
  if (state.chat) state.chat.tags = (state.chat.tags || []).filter((tag) => tag.id !== editingTag.id);
  await formDone("#tag-form");
}));

/** An event handler whose failures are shown, not lost. */
function guard(handler) {
  return async (...args) => {
    try {
      await handler(...args);
    } catch (error) {
      toast(error);
    }
  };
}

function toast(error) {
  if (error instanceof ApiError && error.status === 401) return showAuth();
  const shown = $("#toast");
  shown.textContent = error.message;
  shown.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (shown.hidden = true), 6000);
}

let searchTimer;
$("#search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => Promise.all([loadChats(), searchMessages()]).catch(toast), 200);
});

async function searchMessages() {
  const words = $("#search").value.trim();
  const hits = $("#search-hits");
  if (!words) {
    hits.hidden = true;
    hits.replaceChildren();
    return;
  }
  const found = await api("GET", `/api/v1/search/messages?q=${encodeURIComponent(words)}&limit=10`);
  hits.replaceChildren(
    ...found.items.map((m) => {
      // The title as this page knows it (renamed since?), else as the server found it.
      const title = titles.get(m.chatId) ?? m.chatTitle;
      return el("li", {}, el("a", { href: `#/chat/${m.chatId}`, class: "hit" }, el("strong", {}, title == null ? t("search.aChat") : shownTitle(title)), el("br"), ...marked(context(m.content, words), words)));
    }),
  );
  hits.hidden = found.items.length === 0;
}

/** `text` as text nodes with each of `words` in a <mark> (never as HTML). */
function marked(text, words) {
  const terms = words.toLowerCase().split(/\s+/).filter(Boolean);
  const pieces = [];
  let at = 0;
  const lower = text.toLowerCase();
  while (at < text.length) {
    let next = null;
    for (const term of terms) {
      const found = lower.indexOf(term, at);
      if (found >= 0 && (!next || found < next[0])) next = [found, term.length];
    }
    if (!next) break;
    pieces.push(text.slice(at, next[0]), el("mark", {}, text.slice(next[0], next[0] + next[1])));
    at = next[0] + next[1];
  }
  pieces.push(text.slice(at));
  return pieces.filter((p) => p !== "");
}

/** The words around the first match, as text. */
function context(text, words) {
  const at = text.toLowerCase().indexOf(words.split(/\s+/)[0].toLowerCase());
  const from = Math.max(0, at - 40);
  return (from > 0 ? "…" : "") + text.slice(from, from + 120) + (text.length > from + 120 ? "…" : "");
}

$("#new-chat").addEventListener("click", newChat);

/** "+ New chat": an empty composer; the chat is stored with its first message. */
function newChat() {
  if (location.hash === "#/new") openDraft();
  else location.hash = "#/new";
}

function openDraft() {
  if (state.editing) endEdit(true);
  state.chat = null;
  state.messages = [];
  showSection("#chat");
  $("#chat-title").textContent = t("chat.new");
  $("#share-link").hidden = true;
  // Nothing to file or tag before the first message stores the chat.
  $(".chat-tools").hidden = true;
  renderChatHeader();
  renderModelPicker();
  renderChats();
  renderMessages();
  $("#prompt").value = drafts.get("new") ?? "";
  renderAttachments();
  $("#prompt").focus();
}

/** Store the draft as a chat (in the scope shown), for its first message. */
async function storeDraft() {
  const chat = await api("POST", "/api/v1/chats", state.scope ? { team: state.scope } : {});
  // Unanswered until its first turn begins: a refused first message takes it away again.
  state.chat = { ...chat, tags: [], unanswered: true };
  history.replaceState(null, "", `#/chat/${chat.id}`);
  drafts.delete("new");
  if (pendingFiles.has("new")) {
    pendingFiles.set(chat.id, pendingFiles.get("new"));
    pendingFiles.delete("new");
  }
  renderChatHeader();
  renderChatTools();
  return chat;
}

$("#toggle-sidebar").addEventListener("click", () => document.body.classList.toggle("sidebar-open"));
// On a phone the chats cover the page: choosing one (even the open one) uncovers it.
$("#chat-list").addEventListener("click", (event) => {
  if (event.target.closest("a[data-chat]")) document.body.classList.remove("sidebar-open");
});
$("#empty-new-chat").addEventListener("click", newChat);
// The admin pages changed the instance's models: the picker shows them at once.
document.addEventListener("sambung:models-changed", () => loadUsable().catch(toast));

// ---------------------------------------------------------------- files

/** Files chosen for the next message of each chat (`new` before it is stored), kept like its
 * draft: `{id, name, size, mediaType, hasThumbnail, status: uploading|ready|failed, error}`. */
const pendingFiles = new Map();

function attached() {
  const key = state.chat ? state.chat.id : "new";
  if (!pendingFiles.has(key)) pendingFiles.set(key, []);
  return pendingFiles.get(key);
}

/** Upload each file at once (the server decides what it is, and says why it refuses one). */
async function attachFiles(files) {
  const into = attached();
  await Promise.all(
    [...files].map(async (file) => {
      const item = { name: file.name || t("files.pasted"), size: file.size, status: "uploading" };
      into.push(item);
      renderAttachments();
      const form = new FormData();
      form.append("file", file, item.name);
      try {
        const response = await fetch("/api/v1/files", { method: "POST", body: form, headers: { "accept-language": locale } });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) throw new Error(answer.message || t("error.status", { status: String(response.status) }));
        Object.assign(item, answer, { status: "ready" });
      } catch (error) {
        Object.assign(item, { status: "failed", error: error.message });
      }
      renderAttachments();
    }),
  );
}

function renderAttachments() {
  const files = attached();
  $("#attachments").hidden = files.length === 0;
  $("#attachments").replaceChildren(
    ...files.map((item) =>
      el(
        "li",
        { class: `file ${item.status}` },
        el("span", {}, `${item.name} · ${bytes(item.size)}`),
        item.status === "uploading" ? el("span", { class: "meta" }, t("files.uploading")) : null,
        item.status === "failed" ? el("span", { class: "error", role: "alert" }, item.error) : null,
        el("button", {
          type: "button",
          class: "link",
          "aria-label": t("files.remove", { name: item.name }),
          onclick: () => {
            files.splice(files.indexOf(item), 1);
            renderAttachments();
          },
        }, "✕"),
      ),
    ),
  );
}

/** A file a message carries: an image's thumbnail opening the whole, else a chip to save it. */
function fileItem(file) {
  const url = `/api/v1/files/${file.id}`;
  if (file.hasThumbnail) {
    return el("li", {}, el("a", { href: url, target: "_blank", rel: "noopener" }, el("img", { src: `${url}/thumbnail`, alt: file.name, class: "thumb" })));
  }
  return el("li", { class: "file" }, el("a", { href: url, download: file.name }, `${file.name} · ${bytes(file.size)}`));
}

$("#attach").addEventListener("click", () => $("#attach-input").click());
$("#attach-input").addEventListener("change", () => {
  attachFiles($("#attach-input").files).catch(toast);
  $("#attach-input").value = "";
});
// Files dropped anywhere on the open chat, and images pasted into the composer.
$("#chat").addEventListener("dragover", (event) => {
  if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
});
$("#chat").addEventListener("drop", (event) => {
  if (!event.dataTransfer || !event.dataTransfer.files.length) return;
  event.preventDefault();
  attachFiles(event.dataTransfer.files).catch(toast);
});
$("#prompt").addEventListener("paste", (event) => {
  const files = event.clipboardData ? [...event.clipboardData.files] : [];
  if (!files.length) return;
  event.preventDefault();
  attachFiles(files).catch(toast);
});

// ---------------------------------------------------------------- the chat

/** Which opening of a chat is the latest: an earlier one answered late is not shown over it. */
let openings = 0;

async function openChat(id) {
  const opening = ++openings;
  // An edit belongs to its chat: another chat's composer never resends into this one.
  if (state.editing && (!state.chat || state.chat.id !== id)) endEdit(true);
  const switching = !state.chat || state.chat.id !== id;
  const chat = await api("GET", `/api/v1/chats/${id}`);
  if (opening !== openings) return; // another chat was opened meanwhile
  state.chat = chat;
  showSection("#chat");
  $("#chat-title").textContent = shownTitle(state.chat.title);
  $("#share-link").hidden = true;
  if (switching) $("#prompt").value = drafts.get(id) ?? "";
  renderAttachments();
  // A team chat names who asked each question: its members, once per team.
  if (state.chat.teamId && state.membersOf !== state.chat.teamId) {
    const members = (await api("GET", `/api/v1/teams/${state.chat.teamId}/members?limit=200`)).items;
    if (opening !== openings) return;
    state.members = members;
    state.membersOf = state.chat.teamId;
  }
  renderChatHeader();
  renderModelPicker();
  renderChatTools();
  renderChats();
  await loadMessages();
  const last = state.messages[state.messages.length - 1];
  // A reload in the middle of a reply follows it again from its start.
  if (last && last.role === "assistant" && last.metadata && last.metadata.status === "streaming") {
    const response = await fetch(`/api/v1/chats/${id}/generate/stream`, { headers: { "accept-language": locale } });
    if (response.status === 200) {
      state.messages.pop();
      renderMessages();
      await follow(response);
    }
  }
  $("#prompt").focus();
}

async function loadMessages() {
  // Pages hold at most 500 messages and 4 MiB of text: a long chat comes in several.
  const chat = state.chat.id;
  let messages = [];
  let cursor = null;
  do {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    const page = await api("GET", `/api/v1/chats/${chat}/messages?limit=500&html=true${after}`);
    if (!state.chat || state.chat.id !== chat) return; // another chat was opened meanwhile
    messages = messages.concat(page.items);
    cursor = page.nextCursor;
  } while (cursor);
  state.messages = messages;
  renderMessages();
}

function renderMessages() {
  const list = $("#messages");
  const lastAssistant = state.messages.map((m) => m.role).lastIndexOf("assistant");
  list.replaceChildren(...state.messages.map((m, i) => messageItem(m, i === lastAssistant)));
  list.lastElementChild && list.lastElementChild.scrollIntoView({ block: "end" });
  drawDiagrams(list).catch(toast);
}

// ---------------------------------------------------------------- diagrams

/** Mermaid, loaded the first time a message holds a diagram (the first load stays small). */
function loadMermaid() {
  loadMermaid.loading ??= new Promise((resolve, reject) => {
    const script = el("script", { src: "/assets/mermaid.min.js" });
    script.addEventListener("load", () => {
      const theme = document.documentElement.dataset.theme;
      const dark = theme ? theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
      // Strict: no script, no click handlers, labels as text, whatever the diagram says.
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: dark ? "dark" : "default", flowchart: { htmlLabels: false } });
      resolve(window.mermaid);
    });
    script.addEventListener("error", () => {
      loadMermaid.loading = null;
      reject(new Error(t("diagram.libraryFailed")));
    });
    document.head.append(script);
  });
  return loadMermaid.loading;
}

/** Draw the ```mermaid blocks under `root` as images; one that cannot be drawn keeps its
 * source in view, with the reason. */
async function drawDiagrams(root) {
  const blocks = [...root.querySelectorAll("pre > code.language-mermaid:not([data-drawn])")];
  if (!blocks.length) return;
  const unable = (code, error) => {
    code.dataset.drawn = "failed";
    code.parentElement.after(el("p", { class: "error diagram-error" }, t("diagram.failed", { reason: error.message.split("\n")[0] })));
  };
  let mermaid;
  try {
    mermaid = await loadMermaid();
  } catch (error) {
    return blocks.forEach((code) => unable(code, error));
  }
  for (const code of blocks) {
    if (code.dataset.drawn) continue;
    code.dataset.drawn = "drawing";
    try {
      drawDiagrams.count = (drawDiagrams.count || 0) + 1;
      const { svg } = await mermaid.render(`diagram-${drawDiagrams.count}`, code.textContent);
      // As an image: the drawing runs nothing, and its own styles need no exception to the
      // page's Content Security Policy.
      const image = el("img", { class: "diagram", alt: t("diagram.alt", { source: code.textContent.trim().slice(0, 300) }), src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` });
      // Drawn at its own size (Mermaid's SVG says 100% wide and gives its size as max-width).
      const width = /max-width:\s*([\d.]+)px/.exec(svg);
      if (width) image.width = Math.round(Number(width[1]));
      code.parentElement.hidden = true;
      code.parentElement.after(image);
      code.dataset.drawn = "yes";
    } catch (error) {
      // Mermaid may leave its own error drawing in the page: it goes.
      for (const left of document.querySelectorAll(`#diagram-${drawDiagrams.count}, #ddiagram-${drawDiagrams.count}`)) left.remove();
      unable(code, error);
    }
  }
}

function messageItem(message, lastReply) {
  const body = el("div", { class: "body" });
  if (message.html != null) {
    body.innerHTML = message.html; // rendered and sanitised by the server
    addCopyButtons(body);
  } else {
    body.textContent = message.content;
  }
  const meta = message.metadata || {};
  const label =
    message.role === "assistant"
      ? meta.model
        ? t("message.replyFrom", { model: meta.model })
        : t("message.reply")
      : t(message.role === "user" ? "message.question" : "message.instruction");
  const item = el("li", { class: `message ${message.role}`, "data-id": message.id, "aria-label": label }, body);
  if (message.files && message.files.length) item.append(el("ul", { class: "files" }, ...message.files.map(fileItem)));
  if (message.siblings && message.siblings.length > 1) item.append(versions(message));
  if (message.role === "user") {
    const asker = askedBy(message);
    item.append(el("p", { class: "meta" }, [asker, message.createdAt ? shortTime(message.createdAt) : null].filter(Boolean).join(" · ")));
  }
  if (message.role === "assistant") {
    item.append(replyMeta(meta, message.createdAt));
    if (message.content) {
      const copy = el("button", { class: "link copy-reply", type: "button" }, t("message.copyReply"));
      copy.addEventListener("click", async () => {
        await navigator.clipboard.writeText(message.content);
        copy.textContent = t("message.copied");
      });
      item.append(copy);
    }
    if (meta.error) item.append(el("p", { class: "error", role: "alert" }, meta.error));
    if (lastReply) item.append(el("button", { class: "link regenerate", onclick: regenerate }, t("message.regenerate")));
  }
  if (message.role === "user") {
    item.append(el("button", { class: "link edit", onclick: () => startEdit(message) }, t("message.edit")));
  }
  return item;
}

/** `‹ 2/3 ›`: the versions of a message an edit or a regeneration made, to switch between. */
function versions(message) {
  const all = message.siblings;
  const at = all.indexOf(message.id);
  const kind = message.role === "user" ? "question" : "reply";
  const go = (to) =>
    guard(async () => {
      if (state.streaming) return;
      await api("POST", `/api/v1/chats/${state.chat.id}/messages/${all[to]}/show`, {});
      await loadMessages();
      // The switcher keeps the focus, so the arrows can go on.
      const again = document.querySelector(`#messages li[data-id="${all[to]}"] .versions button:not([disabled])`);
      if (again) again.focus();
    });
  return el(
    "nav",
    { class: "versions", "aria-label": t(`message.versions.${kind}`) },
    el("button", { type: "button", class: "link", "aria-label": t(`message.previous.${kind}`), disabled: at <= 0, onclick: go(at - 1) }, "‹"),
    el("span", {}, `${at + 1}/${all.length}`),
    el("button", { type: "button", class: "link", "aria-label": t(`message.next.${kind}`), disabled: at >= all.length - 1, onclick: go(at + 1) }, "›"),
  );
}

/** In a team chat, who asked a question (the reply that followed it knows). */
function askedBy(question) {
  if (!state.chat || !state.chat.teamId) return null;
  const at = state.messages.indexOf(question);
  const reply = state.messages[at + 1];
  const id = reply && reply.metadata && reply.metadata.askedBy;
  if (!id) return null;
  const member = (state.members || []).find((m) => m.userId === id);
  return member ? member.name : null;
}

/** The statuses of a reply the UI names in its language (another shows as it came). */
const REPLY_STATUSES = ["streaming", "stopped", "error"];

/** Tokens and times of a reply. */
function replyMeta(meta, createdAt) {
  const parts = [];
  if (createdAt) parts.push(shortTime(createdAt));
  if (meta.model) parts.push(meta.model);
  if (meta.inputTokens != null || meta.outputTokens != null) parts.push(t("message.tokens", { input: meta.inputTokens ?? "?", output: meta.outputTokens ?? "?" }));
  if (meta.ttftMs != null) parts.push(t("message.firstToken", { ms: meta.ttftMs }));
  if (meta.durationMs != null) parts.push(t("message.seconds", { s: number(meta.durationMs / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) }));
  if (meta.status && meta.status !== "complete") parts.push(REPLY_STATUSES.includes(meta.status) ? t(`message.status.${meta.status}`) : meta.status);
  return el("p", { class: "meta" }, parts.join(" · "));
}

function addCopyButtons(body) {
  for (const code of body.querySelectorAll("pre > code")) {
    const button = el("button", { class: "copy", type: "button", "aria-label": t("code.copyLabel") }, t("code.copy"));
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = t("message.copied");
    });
    code.parentElement.before(button);
  }
}

function startEdit(message) {
  // What was being typed comes back when the edit is cancelled.
  if (!state.editing) state.draftBeforeEdit = $("#prompt").value;
  state.editing = message.id;
  $("#prompt").value = message.content;
  $("#send").textContent = t("composer.resend");
  $("#cancel-edit").hidden = false;
  $("#prompt").focus();
}

/** Leave edit mode; `restore` puts back what was typed before it began. */
function endEdit(restore) {
  if (restore && state.editing) $("#prompt").value = state.draftBeforeEdit ?? "";
  state.editing = null;
  state.draftBeforeEdit = null;
  $("#send").textContent = t("composer.send");
  $("#cancel-edit").hidden = true;
}

$("#cancel-edit").addEventListener("click", () => {
  endEdit(true);
  $("#prompt").focus();
});

async function regenerate() {
  await generate({ regenerate: true });
}

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = $("#prompt").value;
  if (!content.trim() || state.streaming) return;
  const body = state.editing ? { edit: state.editing, content } : { content };
  if (!state.editing) {
    const files = attached();
    if (files.some((f) => f.status === "uploading")) return notice(t("files.wait"));
    const ready = files.filter((f) => f.status === "ready");
    if (ready.length) body.files = ready.map((f) => f.id);
  }
  try {
    if (!state.chat) await storeDraft();
  } catch (error) {
    return refused(content, error.body || {}, error.status);
  }
  $("#prompt").value = "";
  drafts.delete(state.chat.id);
  endEdit(false);
  await generate(body);
});

// `/` at the start of the composer picks a saved prompt: its text replaces what was typed.
let slashPrompts = null;
let slashChosen = 0;
async function showSlashPrompts() {
  const typed = $("#prompt").value;
  const list = $("#slash-prompts");
  if (!/^\/[^\s]*$/.test(typed)) {
    list.hidden = true;
    return;
  }
  slashPrompts ??= (await api("GET", "/api/v1/prompts?limit=100")).items;
  const word = typed.slice(1).toLowerCase();
  const found = slashPrompts.filter((p) => p.name.toLowerCase().includes(word)).slice(0, 8);
  slashChosen = Math.min(slashChosen, Math.max(found.length - 1, 0));
  list.replaceChildren(
    ...(found.length
      ? found.map((p, i) => el("li", { role: "option", id: `slash-${i}`, "aria-selected": i === slashChosen ? "true" : "false", onmousedown: (event) => { event.preventDefault(); useSlashPrompt(p); } }, p.name))
      : [el("li", { class: "note" }, t(slashPrompts.length ? "slash.noMatch" : "slash.none"))]),
  );
  list.found = found;
  list.hidden = false;
  $("#prompt").setAttribute("aria-activedescendant", found.length ? `slash-${slashChosen}` : "");
}
function useSlashPrompt(prompt) {
  $("#prompt").value = prompt.content;
  $("#slash-prompts").hidden = true;
  $("#prompt").focus();
}
$("#prompt").addEventListener("input", () => showSlashPrompts().catch(toast));
$("#prompt").addEventListener("keydown", (event) => {
  const list = $("#slash-prompts");
  if (list.hidden || !list.found) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const count = list.found.length;
    if (count) slashChosen = (slashChosen + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    showSlashPrompts().catch(toast);
  } else if (event.key === "Enter" && list.found.length) {
    event.preventDefault();
    event.stopImmediatePropagation();
    useSlashPrompt(list.found[slashChosen]);
  } else if (event.key === "Escape") {
    event.preventDefault();
    event.stopImmediatePropagation();
    list.hidden = true;
  }
});

/** What was typed, kept in each chat's composer (and the new chat's) while another is open. */
const drafts = new Map();
$("#prompt").addEventListener("input", () => {
  const key = state.chat ? state.chat.id : "new";
  if ($("#prompt").value) drafts.set(key, $("#prompt").value);
  else drafts.delete(key);
});

$("#prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#composer").requestSubmit();
  } else if (event.key === "Escape" && state.editing) {
    event.preventDefault();
    event.stopPropagation();
    endEdit(true);
  }
});

$("#stop").addEventListener("click", stop);

async function stop() {
  if (state.chat && state.streaming) await api("POST", `/api/v1/chats/${state.chat.id}/generate/stop`, {});
}

async function generate(body) {
  const model = $("#model-picker").value;
  if (model) body.model = model;
  const chat = state.chat;
  if (body.content !== undefined && !body.edit) {
    const files = attached().filter((f) => f.status === "ready");
    state.messages.push({ id: "pending", role: "user", content: body.content, metadata: null, files });
  }
  if (body.regenerate) state.messages = state.messages.slice(0, state.messages.map((m) => m.role).lastIndexOf("user") + 1);
  if (body.edit) {
    const at = state.messages.findIndex((m) => m.id === body.edit);
    state.messages = state.messages.slice(0, at + 1);
    state.messages[at] = { ...state.messages[at], content: body.content, html: null };
  }
  renderMessages();
  const response = await fetch(`/api/v1/chats/${chat.id}/generate`, {
    method: "POST",
    headers: { "content-type": "application/json", "accept-language": locale },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({}));
    // A chat stored for this first message and refused is no chat: nothing empty is left.
    if (chat.unanswered) {
      await api("DELETE", `/api/v1/chats/${chat.id}`).catch(() => {});
      if (state.chat !== chat) return; // another chat was opened meanwhile: it keeps its composer
      state.chat = null;
      history.replaceState(null, "", "#/new");
      state.messages = [];
      renderChatHeader();
      renderMessages();
    } else {
      if (state.chat !== chat) return;
      await loadMessages();
    }
    return refused(body.regenerate ? null : body.content, error, response.status);
  }
  chat.unanswered = false;
  // Sent: the files went with the question (refused, they stay, as its text does).
  pendingFiles.delete(chat.id);
  if (state.chat === chat) renderAttachments();
  await follow(response);
}

/** A send the server refused: the question goes back to the composer, unsent, and the reason
 * shows where the reply would have been, with the way to fix it. */
function refused(content, error, status) {
  if (content && !$("#prompt").value) $("#prompt").value = content;
  const fix = {
    NO_MODEL: ["#/settings", "refused.addModel"],
    PERSONAL_KEYS_DISABLED: ["#/settings", "refused.instanceModel"],
  }[error.code];
  $("#messages").append(
    el(
      "li",
      { class: "message assistant failed" },
      el("p", { class: "error", role: "alert" }, error.message || t("error.status", { status: String(status) })),
      fix ? el("a", { href: fix[0], class: "fix" }, t(fix[1])) : null,
    ),
  );
  $("#messages").lastElementChild.scrollIntoView({ block: "end" });
  $("#prompt").focus();
}

/** Show a reply's UI message stream as it arrives, then the stored, rendered reply. */
async function follow(response) {
  const chat = state.chat;
  const text = el("div", { class: "body streaming" });
  const meta = el("p", { class: "meta" }, "…");
  const item = el("li", { class: "message assistant", "aria-busy": "true" }, text, meta);
  $("#messages").append(item);
  setStreaming(true);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.type === "text-delta") {
            text.textContent += chunk.delta;
            item.scrollIntoView({ block: "end" });
          } else if (chunk.type === "error") {
            item.append(el("p", { class: "error", role: "alert" }, chunk.errorText));
          } else if (chunk.type === "finish" && chunk.messageMetadata) {
            meta.replaceWith(replyMeta(chunk.messageMetadata));
          }
        }
      }
    }
  } finally {
    setStreaming(false);
  }
  // Screen readers hear the reply once, finished, not each streamed piece.
  $("#announce").textContent = t("reply.announce", { text: text.textContent.slice(0, 500) });
  if (state.chat === chat) {
    await loadMessages();
    if (chat.title === NEW_CHAT_TITLE) awaitTitle(chat.id).catch(toast);
    else await loadChats();
  }
}

/** The first reply names its chat in the background (a model may take seconds): the list
 * and the header show the name when it comes. */
async function awaitTitle(id) {
  for (const wait of [0, 500, 1000, 2000, 3000, 5000]) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    await loadChats();
    const fresh = state.chats.find((c) => c.id === id);
    if (fresh && fresh.title !== NEW_CHAT_TITLE) {
      if (state.chat && state.chat.id === id) {
        state.chat.title = fresh.title;
        $("#chat-title").textContent = fresh.title;
      }
      return;
    }
  }
}

function setStreaming(on) {
  state.streaming = on;
  $("#stop").hidden = !on;
  $("#send").hidden = on;
}

// ---------------------------------------------------------------- chat actions

/** What the header offers: a new chat (not stored yet) has no pin, share or menu. */
function renderChatHeader() {
  const chat = state.chat;
  for (const id of ["#pin-chat", "#share-chat", "#chat-menu-button"]) $(id).hidden = !chat;
  $(".chat-tools").hidden = !chat;
  closeChatMenu();
  $("#chat-settings").hidden = true;
  endRename(false);
  if (!chat) return;
  $("#pin-chat").setAttribute("aria-pressed", chat.pinnedAt ? "true" : "false");
  $("#archive-chat").textContent = t(chat.archivedAt ? "chat.unarchive" : "chat.archive");
  $("#export-chat-md").href = `/api/v1/chats/${chat.id}/export?format=md`;
  $("#export-chat-json").href = `/api/v1/chats/${chat.id}/export?format=json`;
}

for (const link of ["#export-chat-md", "#export-chat-json"]) $(link).addEventListener("click", () => closeChatMenu());

function closeChatMenu() {
  $("#chat-menu").hidden = true;
  $("#chat-menu-button").setAttribute("aria-expanded", "false");
}

$("#chat-menu-button").addEventListener("click", () => {
  const open = $("#chat-menu").hidden;
  $("#chat-menu").hidden = !open;
  $("#chat-menu-button").setAttribute("aria-expanded", String(open));
  if (open) $("#chat-menu button").focus();
});
$("#chat-menu").addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.stopPropagation();
    closeChatMenu();
    $("#chat-menu-button").focus();
  }
});
document.addEventListener("click", (event) => {
  if (!event.target.closest(".menu")) closeChatMenu();
});

$("#rename-chat").addEventListener("click", () => {
  closeChatMenu();
  $("#chat-title").hidden = true;
  $("#rename-form").hidden = false;
  $("#rename-title").value = state.chat.title;
  $("#rename-title").select();
  $("#rename-title").focus();
});

/** Leave renaming; `save` keeps the title typed. */
async function endRename(save) {
  if ($("#rename-form").hidden) return;
  const title = $("#rename-title").value.trim();
  $("#rename-form").hidden = true;
  $("#chat-title").hidden = false;
  if (!save || !title || title === state.chat.title) return;
  await changeChat({ title });
  $("#chat-title").textContent = shownTitle(state.chat.title);
  await loadChats();
}

$("#rename-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guard(() => endRename(true))();
});
$("#rename-title").addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    event.stopPropagation();
    endRename(false);
  }
});
// Leaving the field saves what it says; an emptied field stays open to be filled.
$("#rename-title").addEventListener("blur", () => {
  if ($("#rename-title").value.trim()) guard(() => endRename(true))();
});

$("#archive-chat").addEventListener("click", guard(async () => {
  closeChatMenu();
  const chat = state.chat;
  const archived = !chat.archivedAt;
  await changeChat({ archived });
  await loadChats();
  if (archived) {
    notice(t("chat.archivedNotice", { title: shownTitle(chat.title) }), async () => {
      await api("PATCH", `/api/v1/chats/${chat.id}`, { archived: false });
      await loadChats();
    });
    location.hash = "#/";
  } else {
    renderChatHeader();
  }
}));

$("#delete-chat").addEventListener("click", () => {
  closeChatMenu();
  $("#delete-question").textContent = t("chat.deleteQuestion", { title: shownTitle(state.chat.title) });
  $("#delete-dialog").returnValue = "";
  $("#delete-dialog").showModal();
});
$("#delete-dialog").addEventListener("close", guard(async () => {
  if ($("#delete-dialog").returnValue !== "delete" || !state.chat) return;
  const chat = state.chat;
  await api("DELETE", `/api/v1/chats/${chat.id}`);
  drafts.delete(chat.id);
  state.chat = null;
  await loadChats();
  location.hash = "#/";
}));

/** A short message at the foot of the page, with an Undo for what was just done. */
function notice(text, undo) {
  $("#notice-text").textContent = text;
  $("#notice").hidden = false;
  $("#notice-undo").hidden = !undo;
  $("#notice-undo").onclick = guard(async () => {
    $("#notice").hidden = true;
    await undo();
  });
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => ($("#notice").hidden = true), 10000);
}

// A chat's own instructions and parameters, over its model's.
const CHAT_SETTINGS = [["#chat-temperature", "temperature"], ["#chat-max-tokens", "maxTokens"], ["#chat-top-p", "topP"]];

$("#open-chat-settings").addEventListener("click", guard(async () => {
  closeChatMenu();
  const settings = state.chat.settings || {};
  $("#chat-system").value = settings.systemPrompt ?? "";
  for (const [input, key] of CHAT_SETTINGS) $(input).value = settings[key] ?? "";
  $("#chat-settings-status").textContent = "";
  $("#chat-settings").hidden = false;
  $("#chat-system").focus();
  const prompts = (await api("GET", "/api/v1/prompts?limit=100")).items;
  $("#chat-system-prompt").replaceChildren(
    el("option", { value: "" }, t(prompts.length ? "chat.settings.choose" : "chat.settings.noPrompts")),
    ...prompts.map((p) => el("option", { value: p.content }, p.name)),
  );
}));
$("#chat-system-prompt").addEventListener("change", () => {
  if ($("#chat-system-prompt").value) $("#chat-system").value = $("#chat-system-prompt").value;
});
$("#close-chat-settings").addEventListener("click", () => ($("#chat-settings").hidden = true));
$("#chat-settings").addEventListener("submit", async (event) => {
  event.preventDefault();
  const settings = {};
  if ($("#chat-system").value.trim()) settings.systemPrompt = $("#chat-system").value;
  for (const [input, key] of CHAT_SETTINGS) if ($(input).value !== "") settings[key] = Number($(input).value);
  const saved = await within($("#chat-settings-status"), async () => {
    await changeChat({ settings });
  });
  // Saved, the panel gives the chat its room back; a refusal stays in it, beside the fields.
  if (saved) {
    $("#chat-settings").hidden = true;
    notice(t("chat.settings.saved"));
  }
});

/** The open chat's folder and tags. */
function renderChatTools() {
  const chat = state.chat;
  $(".chat-tools").hidden = false;
  $("#chat-folder").replaceChildren(
    el("option", { value: "" }, t("chat.folder.none")),
    ...state.folders.map((f) => el("option", { value: f.id, selected: chat.folderId === f.id }, f.name)),
  );
  const mine = new Set((chat.tags || []).map((tag) => tag.id));
  $("#chat-tags").replaceChildren(
    ...state.tags.map((tag) =>
      el("button", { class: "chip", type: "button", "aria-pressed": mine.has(tag.id) ? "true" : "false", "data-tag": tag.id, onclick: guard(() => toggleTag(tag)) }, tag.name),
    ),
  );
}

/** Change the open chat, keeping what the change's answer does not carry (its tags). */
async function changeChat(changes) {
  const chat = state.chat;
  const changed = await api("PATCH", `/api/v1/chats/${chat.id}`, changes);
  // The answer belongs to the chat it was asked for: another one may be open by now.
  if (state.chat && state.chat.id === chat.id) state.chat = { ...state.chat, ...changed };
  return { ...chat, ...changed };
}

async function toggleTag(tag) {
  const mine = (state.chat.tags || []).map((known) => known.id);
  const next = mine.includes(tag.id) ? mine.filter((id) => id !== tag.id) : [...mine, tag.id];
  await changeChat({ tags: next });
  state.chat.tags = state.tags.filter((known) => next.includes(known.id));
  renderChatTools();
  await loadChats();
}

$("#chat-folder").addEventListener("change", guard(async () => {
  await changeChat({ folderId: $("#chat-folder").value || null });
  await loadChats();
}));

$("#model-picker").addEventListener("change", guard(async () => {
  const model = state.usable.find((m) => m.id === $("#model-picker").value);
  if (model && state.chat) await changeChat({ model: model.id, provider: model.provider });
}));

/** The models one may pick in this scope: the instance's, the team's, one's own. */
async function loadUsable() {
  state.usable = (await api("GET", scoped("/api/v1/models/usable"))).items;
  renderModelPicker();
}

/** The groups of the model picker, in order (their names: `models.scope.…`). */
const SCOPES = ["instance", "team", "personal"];

function renderModelPicker() {
  const picker = $("#model-picker");
  const usable = state.usable || [];
  const defaults = ["team", "personal", "instance"].map((scope) => usable.find((m) => m.scope === scope && m.isDefault));
  const chosen = usable.find((m) => state.chat && m.id === state.chat.model) || defaults.find(Boolean) || usable[0];
  const admin = state.user && state.user.role.split(",").includes("admin");
  picker.replaceChildren(
    ...(usable.length ? [] : [el("option", { value: "" }, t(admin ? "models.none.admin" : "models.none.user"))]),
    ...SCOPES.map((scope) => {
      const models = usable.filter((m) => m.scope === scope);
      return models.length
        ? el("optgroup", { label: t(`models.scope.${scope}`) }, ...models.map((m) => el("option", { value: m.id, selected: chosen && chosen.id === m.id }, m.name)))
        : null;
    }),
  );
}

$("#pin-chat").addEventListener("click", guard(async () => {
  await changeChat({ pinned: !state.chat.pinnedAt });
  $("#pin-chat").setAttribute("aria-pressed", state.chat.pinnedAt ? "true" : "false");
  await loadChats();
}));

$("#share-chat").addEventListener("click", guard(async () => {
  const link = await api("POST", `/api/v1/chats/${state.chat.id}/share`, {});
  const shown = $("#share-link");
  shown.replaceChildren(`${t("share.anyone")} `, el("a", { href: link.url, id: "share-url", target: "_blank", rel: "noopener" }, link.url));
  shown.hidden = false;
}));

// ---------------------------------------------------------------- settings

$("#open-settings").addEventListener("click", () => (location.hash = "#/settings"));
$("#close-settings").addEventListener("click", () => (location.hash = "#/"));

async function openSettings() {
  showSection("#settings");
  $("#profile-name").value = state.user.name;
  const keysOff = state.instance && !state.instance.personalKeys;
  $("#keys-off").hidden = !keysOff;
  $("#key-form").hidden = keysOff;
  const tokensOff = state.instance && state.instance.accessTokens === false;
  $("#tokens-off").hidden = !tokensOff;
  $("#token-form").hidden = tokensOff;
  showTwoFactor();
  await Promise.all([loadProviders(), loadKeys(), loadTokens(), loadModels(), loadSessions(), loadStorage(), loadSignInMethods()]);
  // A link that came back refused says why, where it was asked for.
  const refused = hashQuery().get("error");
  $("#methods-status").textContent = refused ? ssoError(refused) : "";
  $("#methods-status").classList.toggle("error", Boolean(refused));
}

/** The password and the identity providers the user signs in with; link another, unlink one. */
async function loadSignInMethods() {
  const providers = (state.instance && state.instance.identityProviders) || [];
  const accounts = await api("GET", "/api/auth/list-accounts");
  $("#sign-in-methods").hidden = providers.length === 0 && accounts.length <= 1;
  const nameOf = (id) => (id === "credential" ? t("settings.methods.password") : (providers.find((p) => p.id === id) || { name: id }).name);
  $("#method-list").replaceChildren(
    ...accounts.map((account) =>
      el(
        "li",
        {},
        el("span", {}, nameOf(account.providerId)),
        " ",
        accounts.length > 1 && account.providerId !== "credential"
          ? el("button", { type: "button", class: "link", onclick: () => unlink(account) }, t("settings.methods.unlink"))
          : null,
      ),
    ),
  );
  $("#method-links").replaceChildren(
    ...providers
      .filter((p) => !accounts.some((a) => a.providerId === p.id))
      .map((p) => el("button", { type: "button", onclick: () => link(p.id) }, t("settings.methods.link", { name: p.name }))),
  );
}

async function unlink(account) {
  const done = await within($("#methods-status"), async () => {
    await api("POST", "/api/auth/unlink-account", { accountId: account.id });
    return t("settings.methods.unlinked");
  });
  if (done) await loadSignInMethods();
}

async function link(provider) {
  await within($("#methods-status"), async () => {
    const answer = await api("POST", "/api/auth/link-social", { provider, callbackURL: "/#/settings", errorCallbackURL: "/#/settings" });
    location.href = answer.url;
    return "…";
  });
}

// ---------------------------------------------------------------- second factor in settings

/** The two-factor block as the account stands: off (set up), being set up, or on. */
function showTwoFactor() {
  const on = state.user.twoFactorEnabled;
  $("#totp-state").textContent = t(on ? "settings.totp.on" : "settings.totp.off");
  $("#totp-enable").hidden = on;
  $("#totp-codes").hidden = !on;
  $("#totp-disable").hidden = !on;
  $("#totp-password-form").hidden = !$("#totp-setup").hidden;
}

/** Show backup codes, this once. */
function showBackupCodes(codes) {
  $("#totp-backup-list").replaceChildren(...codes.map((code) => el("li", {}, el("code", {}, code))));
  $("#totp-backup").hidden = false;
  $("#totp-backup").dataset.codes = codes.join("\n");
}

$("#totp-backup-save").addEventListener("click", () => {
  const text = `${t("settings.totp.fileHeader", { email: state.user.email })}\n\n${$("#totp-backup").dataset.codes}\n`;
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })), download: "sambungchat-backup-codes.txt" });
  link.click();
  URL.revokeObjectURL(link.href);
});

$("#totp-password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  // Once on, the password is for the buttons beside it.
  if (state.user.twoFactorEnabled) return;
  await within($("#totp-status"), async () => {
    const begun = await api("POST", "/api/auth/two-factor/enable", { password: $("#totp-password").value });
    $("#totp-password").value = "";
    $("#totp-secret").textContent = new URL(begun.totpURI).searchParams.get("secret");
    $("#totp-qr").alt = t("settings.totp.qr");
    $("#totp-qr").src = `/api/v1/me/two-factor/qr?at=${Date.now()}`;
    $("#totp-setup").hidden = false;
    $("#totp-password-form").hidden = true;
    showBackupCodes(begun.backupCodes);
    $("#totp-code").focus();
    return "";
  });
});

$("#totp-confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const done = await within($("#totp-status"), async () => {
    const answer = await api("POST", "/api/auth/two-factor/verify-totp", { code: $("#totp-code").value.trim() });
    state.user = answer.user;
    $("#totp-code").value = "";
    $("#totp-setup").hidden = true;
    showTwoFactor();
    return t("settings.totp.enabled");
  });
  // Required of this account: the rest of the app opens now.
  if (done && !$("#totp-required").hidden) await start();
});

$("#totp-codes").addEventListener("click", async () => {
  if (!$("#totp-password").reportValidity()) return;
  await within($("#totp-status"), async () => {
    const answer = await api("POST", "/api/auth/two-factor/generate-backup-codes", { password: $("#totp-password").value });
    $("#totp-password").value = "";
    showBackupCodes(answer.backupCodes);
    return t("settings.totp.newCodes");
  });
});

$("#totp-disable").addEventListener("click", async () => {
  if (!$("#totp-password").reportValidity()) return;
  await within($("#totp-status"), async () => {
    await api("POST", "/api/auth/two-factor/disable", { password: $("#totp-password").value });
    $("#totp-password").value = "";
    $("#totp-backup").hidden = true;
    state.user = { ...state.user, twoFactorEnabled: false };
    showTwoFactor();
    return t("settings.totp.disabled");
  });
});

$("#totp-required-sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/sign-out", {}).catch(toast);
  await start().catch(toast);
});

// ---------------------------------------------------------------- export and import

/** The account as a zip, saved as it streams in, its size said as it grows. */
$("#export-account").addEventListener("click", async () => {
  const status = $("#export-status");
  status.classList.remove("error");
  $("#export-account").disabled = true;
  try {
    const response = await fetch("/api/v1/me/export", { method: "POST", headers: { "accept-language": locale } });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(response.status, body);
    }
    const parts = [];
    let received = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      received += value.length;
      status.textContent = t("transfer.exporting", { size: bytes(received) });
    }
    const name = /filename=\x22([^\x22]+)\x22/.exec(response.headers.get("content-disposition") || "")?.[1] || "sambung-export.zip";
    const link = el("a", { href: URL.createObjectURL(new Blob(parts, { type: "application/zip" })), download: name });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    status.textContent = t("transfer.exported", { size: bytes(received) });
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
  } finally {
    $("#export-account").disabled = false;
  }
});

/** An export of another service (or ours) sent with its upload's progress, then the
 * server's (how much of the file it has read, what it has written); the summary says what
 * came in and what was left out, and why. The chosen file stays chosen on error. */
$("#import-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("#import-file").files[0];
  if (!file) return;
  const status = $("#import-status");
  const progress = $("#import-progress");
  status.classList.remove("error");
  $("#import-summary").hidden = true;
  $("#import-submit").disabled = true;
  progress.hidden = false;
  progress.value = 0;
  const form = new FormData();
  form.append("file", file);
  const request = new XMLHttpRequest();
  let watching = null;
  const watch = () => {
    progress.removeAttribute("value");
    watching ??= setInterval(async () => {
      const now = await api("GET", "/api/v1/imports/current").catch(() => null);
      if (watching === null || !now?.running || !(now.bytesTotal > 0)) return;
      const read = Math.min(1, now.bytesRead / now.bytesTotal);
      progress.value = read;
      status.textContent = t("transfer.reading", { percent: Math.floor(100 * read), chats: number(now.conversations), messages: number(now.messages) });
    }, 1000);
  };
  request.open("POST", "/api/v1/imports");
  request.setRequestHeader("accept-language", locale);
  request.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    if (e.loaded < e.total) {
      progress.value = e.loaded / e.total;
      status.textContent = t("transfer.uploading", { percent: Math.round((100 * e.loaded) / e.total) });
    } else {
      status.textContent = t("transfer.importing");
      watch();
    }
  });
  request.addEventListener("loadend", async () => {
    clearInterval(watching);
    watching = null;
    $("#import-submit").disabled = false;
    progress.hidden = true;
    let body = {};
    try {
      body = JSON.parse(request.responseText || "{}");
    } catch {
      body = { message: request.statusText };
    }
    if (request.status !== 200) {
      status.textContent = body.message || t("transfer.failed", { status: request.status || "—" });
      status.classList.add("error");
      return;
    }
    status.textContent = "";
    showImportSummary(body);
    await loadChats().catch(toast);
  });
  request.send(form);
  status.textContent = t("transfer.uploading", { percent: 0 });
});

/** The services an import reads, by name. */
const SOURCE_NAMES = { chatgpt: "ChatGPT", claude: "Claude", openwebui: "Open WebUI", sambung: "SambungChat" };

/** What each note of an import's summary says. */
const IMPORT_NOTES = {
  already_imported: "transfer.kind.already_imported",
  attachment_as_text: "transfer.kind.attachment_as_text",
  browsing_result: "transfer.kind.browsing_result",
  code_as_block: "transfer.kind.code_as_block",
  empty_message: "transfer.kind.empty_message",
  error_message: "transfer.kind.error_message",
  file_not_in_export: "transfer.kind.file_not_in_export",
  file_not_kept: "transfer.kind.file_not_kept",
  hidden_system_message: "transfer.kind.hidden_system_message",
  message_cut: "transfer.kind.message_cut",
  no_messages: "transfer.kind.no_messages",
  not_a_conversation: "transfer.kind.not_a_conversation",
  reasoning: "transfer.kind.reasoning",
  repeated_id: "transfer.kind.repeated_id",
  settings_dropped: "transfer.kind.settings_dropped",
  time_missing: "transfer.kind.time_missing",
  time_out_of_order: "transfer.kind.time_out_of_order",
  title_missing: "transfer.kind.title_missing",
  too_many_messages: "transfer.kind.too_many_messages",
  tool_message: "transfer.kind.tool_message",
  tool_output_as_text: "transfer.kind.tool_output_as_text",
  unknown_content: "transfer.kind.unknown_content",
  unreachable: "transfer.kind.unreachable",
};

function showImportSummary(summary) {
  $("#import-summary").hidden = false;
  $("#import-counts").textContent =
    summary.chats === 0 && summary.alreadyImported > 0
      ? t("transfer.nothingNew")
      : t("transfer.imported", {
          source: SOURCE_NAMES[summary.source] || summary.source || "?",
          chats: number(summary.chats),
          messages: number(summary.messages),
          files: number(summary.files),
          again: number(summary.alreadyImported),
        });
  const notes = [...summary.skipped, ...summary.changed];
  const count = summary.skippedCount + summary.changedCount;
  $("#import-skipped-box").hidden = count === 0;
  $("#import-skipped-title").textContent = t("transfer.skippedTitle", { count: number(count) });
  $("#import-skipped").replaceChildren(
    ...notes.map((note) => el("li", {}, `${note.chat ? `${note.chat}: ` : ""}${t(Object.hasOwn(IMPORT_NOTES, note.kind) ? IMPORT_NOTES[note.kind] : "transfer.kind.unknown_content")}`)),
  );
}

/** What the user's files take, of what they may keep. */
async function loadStorage() {
  const storage = await api("GET", "/api/v1/me/storage");
  $("#storage-used").textContent =
    storage.allowed == null
      ? t("settings.storage.unlimited", { used: bytes(storage.used) })
      : t("settings.storage.used", { used: bytes(storage.used), allowed: bytes(storage.allowed) });
}

$("#profile-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await settingsAction(async () => {
    await api("POST", "/api/auth/update-user", { name: $("#profile-name").value });
    state.user.name = $("#profile-name").value;
    $("#me").textContent = state.user.name;
    return t("settings.profile.saved");
  });
});

$("#password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await settingsAction(async () => {
    await api("POST", "/api/auth/change-password", {
      currentPassword: $("#password-current").value,
      newPassword: $("#password-new").value,
      revokeOtherSessions: true,
    });
    $("#password-current").value = "";
    $("#password-new").value = "";
    await loadSessions();
    return t("settings.password.changed");
  });
});

async function loadSessions() {
  const [sessions, current] = await Promise.all([api("GET", "/api/auth/list-sessions"), api("GET", "/api/auth/get-session")]);
  $("#session-list").replaceChildren(
    ...sessions.map((s) => {
      const here = current && current.session.id === s.id;
      return el(
        "li",
        { "data-session": s.id },
        el("span", { title: s.userAgent || "" }, `${t(here ? "settings.sessions.current" : "settings.sessions.since", { device: device(s.userAgent), time: when(s.createdAt) })}${here ? "" : " "}`),
        here ? null : el("button", { class: "link", onclick: () => revokeSession(s) }, t("settings.sessions.signOut")),
      );
    }),
  );
}

/** "Chrome on Linux" from a User-Agent (the raw string stays in the tooltip). */
function device(agent) {
  if (!agent) return t("device.unknown");
  const browser =
    [[/Edg\//, "Edge"], [/OPR\/|Opera/, "Opera"], [/Firefox\//, "Firefox"], [/Chrome\/|Chromium\//, "Chrome"], [/Safari\//, "Safari"], [/curl\//, "curl"], [/node|undici/i, t("device.node")], [/python/i, t("device.python")]].find(([pattern]) => pattern.test(agent))?.[1] ||
    t("device.browser");
  const system = [[/Android/, "Android"], [/iPhone|iPad|iOS/, "iOS"], [/Windows/, "Windows"], [/Mac OS X|Macintosh/, "macOS"], [/CrOS/, "ChromeOS"], [/Linux/, "Linux"]].find(([pattern]) => pattern.test(agent))?.[1];
  return system ? t("device.on", { browser, system }) : browser;
}

async function revokeSession(session) {
  await settingsAction(async () => {
    await api("POST", "/api/auth/revoke-session", { token: session.token });
    await loadSessions();
    return t("settings.sessions.signedOut");
  });
}

let keys = [];

// The providers come from the server, the one list of them (`sambung-providers`).
async function loadProviders() {
  if ($("#key-provider").options.length) return;
  const providers = await api("GET", "/api/v1/providers");
  for (const select of [$("#key-provider"), $("#model-provider")]) {
    select.replaceChildren(...providers.map((p) => el("option", { value: p.name }, p.label)));
  }
}

async function loadKeys() {
  keys = (await api("GET", "/api/v1/api-keys")).items;
  $("#key-list").replaceChildren(
    ...keys.map((k) =>
      el("li", { "data-key": k.id }, `${k.name} (${k.provider}) ••••${k.last4} `, el("button", { class: "link", onclick: () => deleteKey(k) }, t("settings.keys.delete"))),
    ),
  );
  const chosen = $("#model-key").value;
  $("#model-key").replaceChildren(
    el("option", { value: "" }, t("settings.models.keyNone")),
    ...keys.map((k) => el("option", { value: k.id }, `${k.name} ••••${k.last4}`)),
    // With personal keys turned off by the admins, no new one can be stored.
    state.instance && state.instance.personalKeys === false ? null : el("option", { value: "new" }, t("settings.models.keyNew")),
  );
  if ([...$("#model-key").options].some((o) => o.value === chosen)) $("#model-key").value = chosen;
  showNewKey();
}

/** "A new key…": its field shows, and the key is stored with the model (or when the
 * provider's models are listed). */
function showNewKey() {
  $("#model-key-new-row").hidden = $("#model-key").value !== "new";
}
$("#model-key").addEventListener("change", showNewKey);

async function deleteKey(key) {
  if (!confirm(t("settings.keys.confirmDelete", { name: key.name }))) return;
  await api("DELETE", `/api/v1/api-keys/${key.id}`);
  await loadKeys();
}

$("#key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { provider: $("#key-provider").value, key: $("#key-value").value };
  if ($("#key-name").value) body.name = $("#key-name").value;
  await settingsAction(async () => {
    await api("POST", "/api/v1/api-keys", body);
    $("#key-value").value = "";
    $("#key-name").value = "";
    await loadKeys();
    return t("settings.keys.added");
  });
});

// ---------------------------------------------------------------- access tokens

const TOKEN_SCOPES = ["chat", "read", "write"];

/** One's access tokens: what each may do, when it was last used and from where. */
async function loadTokens() {
  const tokens = await api("GET", "/api/v1/tokens");
  const scopeNames = { chat: t("settings.tokens.scope.chat"), read: t("settings.tokens.scope.read"), write: t("settings.tokens.scope.write") };
  $("#token-list").replaceChildren(
    ...tokens.map((token) => {
      const facts = [`${token.name} ••••${token.last4}`, token.scopes.map((s) => scopeNames[s]).join(", ")];
      facts.push(token.lastUsedAt ? t("settings.tokens.used", { when: when(token.lastUsedAt), address: token.lastUsedIp || "?" }) : t("settings.tokens.unused"));
      facts.push(token.expiresAt ? t("settings.tokens.until", { when: when(token.expiresAt) }) : t("settings.tokens.noEnd"));
      return el("li", { "data-token": token.id }, `${facts.join(" · ")} `, el("button", { class: "link", onclick: () => revokeToken(token) }, t("settings.tokens.revoke")));
    }),
  );
}

async function revokeToken(token) {
  if (!confirm(t("settings.tokens.confirmRevoke", { name: token.name }))) return;
  await within($("#token-status"), async () => {
    await api("DELETE", `/api/v1/tokens/${token.id}`);
    $("#token-new").hidden = true;
    await loadTokens();
    return t("settings.tokens.revoked", { name: token.name });
  });
}

$("#token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const scopes = TOKEN_SCOPES.filter((scope) => $(`#token-scope-${scope}`).checked);
  const days = $("#token-expiry").value;
  const body = { name: $("#token-name").value, scopes };
  if (days) body.expiresAt = new Date(Date.now() + Number(days) * 86_400_000).toISOString();
  // What was typed stays when it fails; made, the secret shows once, beside the form.
  await within($("#token-status"), async () => {
    if (!scopes.length) throw new Error(t("settings.tokens.noScope"));
    const made = await api("POST", "/api/v1/tokens", body);
    $("#token-secret").textContent = made.tokenSecret;
    $("#token-new").hidden = false;
    $("#token-name").value = "";
    await loadTokens();
    return t("settings.tokens.made", { name: made.name });
  });
});

$("#token-copy").addEventListener("click", async () => {
  await within($("#token-status"), async () => {
    await navigator.clipboard.writeText($("#token-secret").textContent);
    return t("settings.tokens.copied");
  });
});

async function loadModels() {
  state.models = (await api("GET", "/api/v1/models")).items;
  $("#model-list").replaceChildren(
    ...state.models.map((m) =>
      el(
        "li",
        { "data-model": m.id },
        `${t(m.isDefault ? "settings.models.itemDefault" : "settings.models.item", { name: m.name, provider: m.provider, model: m.modelId })} `,
        el("button", { class: "link", onclick: () => testModel(m) }, t("settings.models.test")),
        " ",
        el("button", { class: "link edit-model", onclick: () => editModel(m) }, t("settings.models.edit")),
        " ",
        el("button", { class: "link", onclick: () => deleteModel(m) }, t("settings.models.delete")),
      ),
    ),
  );
  await loadUsable();
}

async function testModel(model) {
  await settingsAction(async () => {
    const found = await api("GET", `/api/v1/models/${model.id}/available`);
    return t("models.connected", { name: model.name, n: found.models.length });
  });
}

async function deleteModel(model) {
  await api("DELETE", `/api/v1/models/${model.id}`);
  await loadModels();
}

/** The model being edited (its form filled in), or null: the form adds one. */
let editingModel = null;

function labelModelForm() {
  $("#model-submit").textContent = t(editingModel ? "settings.models.save" : "settings.models.add");
  $("#model-cancel").hidden = !editingModel;
}

function editModel(model) {
  editingModel = model;
  $("#model-provider").value = model.provider;
  $("#model-id").value = model.modelId;
  $("#model-name").value = model.name;
  $("#model-base").value = model.baseUrl || "";
  $("#model-key").value = model.apiKeyId || "";
  $("#model-default").checked = model.isDefault;
  showNewKey();
  labelModelForm();
  $("#model-form").scrollIntoView({ block: "nearest" });
  $("#model-id").focus();
}

function endModelEdit() {
  editingModel = null;
  $("#model-form").reset();
  showNewKey();
  labelModelForm();
}
$("#model-cancel").addEventListener("click", endModelEdit);

/** The key the model form names: a stored one, or the new one typed there, stored now (and
 * chosen in the form, so that a retry does not store it twice). */
async function modelFormKey() {
  if ($("#model-key").value !== "new") return $("#model-key").value || null;
  const typed = $("#model-key-new").value.trim();
  if (!typed) throw new Error(t("settings.models.keyMissing"));
  const provider = $("#model-provider").value;
  const stored = await api("POST", "/api/v1/api-keys", { provider, key: typed, name: $("#model-name").value || provider });
  $("#model-key-new").value = "";
  await loadKeys();
  $("#model-key").value = stored.id;
  showNewKey();
  return stored.id;
}

// What the provider offers at that address with that key, before the model is saved.
$("#model-list-offered").addEventListener("click", () =>
  settingsAction(async () => {
    const body = {};
    if ($("#model-base").value) body.baseUrl = $("#model-base").value;
    // A new key is only tried here: it is stored with the model, not before.
    if ($("#model-key").value === "new") {
      body.apiKey = $("#model-key-new").value.trim();
      if (!body.apiKey) throw new Error(t("settings.models.keyMissing"));
    } else if ($("#model-key").value) body.apiKeyId = $("#model-key").value;
    const offered = await api("POST", `/api/v1/providers/${encodeURIComponent($("#model-provider").value)}/models`, body);
    $("#model-offered").replaceChildren(...offered.models.map((id) => el("option", { value: id })));
    $("#model-id").focus();
    return t("settings.models.offered", { n: offered.models.length });
  }),
);

$("#model-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  // One save at a time: a second press would store the new key twice.
  if ($("#model-submit").disabled) return;
  $("#model-submit").disabled = true;
  await settingsAction(async () => {
    const body = {
      provider: $("#model-provider").value,
      modelId: $("#model-id").value,
      isDefault: $("#model-default").checked,
    };
    if ($("#model-name").value) body.name = $("#model-name").value;
    if ($("#model-base").value) body.baseUrl = $("#model-base").value;
    const key = await modelFormKey();
    if (key) body.apiKeyId = key;
    if (editingModel) {
      // The model's own settings (system prompt, temperature) stay as they are.
      body.settings = editingModel.settings;
      await api("PATCH", `/api/v1/models/${editingModel.id}`, body);
    } else {
      await api("POST", "/api/v1/models", body);
    }
    const said = t(editingModel ? "settings.models.saved" : "settings.models.added");
    endModelEdit();
    await loadModels();
    return said;
  });
  $("#model-submit").disabled = false;
});

/** Run a settings action and say how it went. */
async function settingsAction(action) {
  const status = $("#settings-status");
  status.classList.remove("error");
  try {
    status.textContent = await action();
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error");
  }
}

// ---------------------------------------------------------------- prompts

let prompts = [];

async function openPrompts() {
  showSection("#prompts");
  await loadPrompts();
}

async function loadPrompts() {
  const words = $("#prompt-search").value.trim();
  slashPrompts = null; // the composer's `/` list reads them again
  prompts = (await api("GET", `/api/v1/prompts?limit=100${words ? `&q=${encodeURIComponent(words)}` : ""}`)).items;
  $("#prompt-list").replaceChildren(
    ...prompts.map((p) => {
      const mine = p.userId === state.user.id;
      return el(
        "li",
        { "data-prompt": p.id },
        el("strong", {}, p.name),
        ` ${p.isPublic ? t("prompts.public", { category: p.category }) : p.category} `,
        el("button", { class: "link use", onclick: () => choosePrompt(p) }, t("prompts.use")),
        mine ? el("button", { class: "link", onclick: () => editPrompt(p) }, t("prompts.edit")) : null,
        el("button", { class: "link duplicate", onclick: guard(() => duplicatePrompt(p)) }, t("prompts.duplicate")),
        mine ? el("button", { class: "link versions", "aria-expanded": "false", onclick: guard((event) => togglePromptVersions(p, event.currentTarget)) }, t("prompts.versions")) : null,
        mine ? el("button", { class: "link", onclick: guard(() => deletePrompt(p)) }, t("prompts.delete")) : null,
        el("p", { class: "meta" }, p.content),
      );
    }),
  );
}

/** A private copy of a prompt, as one's own, opened for editing. */
async function duplicatePrompt(prompt) {
  const copy = await api("POST", `/api/v1/prompts/${prompt.id}/duplicate`, {});
  await loadPrompts();
  editPrompt(copy);
}

/** The earlier texts of one's own prompt under it, newest first, each restorable. */
async function togglePromptVersions(prompt, button) {
  const item = button.closest("li");
  const shown = item.querySelector("ol.prompt-versions");
  if (shown) {
    shown.remove();
    button.setAttribute("aria-expanded", "false");
    return;
  }
  const versions = (await api("GET", `/api/v1/prompts/${prompt.id}/versions`)).items;
  const list = el(
    "ol",
    { class: "prompt-versions" },
    ...(versions.length
      ? versions.map((v) =>
          el(
            "li",
            { "data-version": v.id },
            el("span", { class: "meta" }, `${t("prompts.until", { time: when(v.createdAt) })} `),
            el("strong", {}, v.name),
            ` ${v.content.slice(0, 200)}${v.content.length > 200 ? "…" : ""} `,
            el("button", { class: "link restore", onclick: guard(async () => {
              await api("POST", `/api/v1/prompts/${prompt.id}/versions/${v.id}/restore`, {});
              await loadPrompts();
            }) }, t("prompts.restore")),
          ),
        )
      : [el("li", { class: "note" }, t("prompts.noVersions"))]),
  );
  item.append(list);
  button.setAttribute("aria-expanded", "true");
}

let promptSearchTimer;
$("#prompt-search").addEventListener("input", () => {
  clearTimeout(promptSearchTimer);
  promptSearchTimer = setTimeout(guard(loadPrompts), 200);
});

let editingPrompt = null;
let editingPromptName = null;

function editPrompt(prompt) {
  editingPrompt = prompt.id;
  editingPromptName = prompt.name;
  $("#prompt-form-title").textContent = t("prompts.editTitle", { name: prompt.name });
  $("#prompt-name").value = prompt.name;
  $("#prompt-content").value = prompt.content;
  $("#prompt-category").value = prompt.category;
  $("#prompt-public").checked = prompt.isPublic;
  $("#prompt-name").focus();
}

async function deletePrompt(prompt) {
  await api("DELETE", `/api/v1/prompts/${prompt.id}`);
  await loadPrompts();
}

$("#prompt-form").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  const body = { name: $("#prompt-name").value, content: $("#prompt-content").value, isPublic: $("#prompt-public").checked };
  if ($("#prompt-category").value) body.category = $("#prompt-category").value;
  if (editingPrompt) await api("PATCH", `/api/v1/prompts/${editingPrompt}`, body);
  else await api("POST", "/api/v1/prompts", body);
  editingPrompt = null;
  $("#prompt-form").reset();
  $("#prompt-form-title").textContent = t("prompts.new");
  await loadPrompts();
}));

let chosenPrompt = null;

/** Ask for the prompt's {variables}, then start a chat with it filled in. */
function choosePrompt(prompt) {
  chosenPrompt = prompt;
  $("#prompt-use-name").textContent = prompt.name;
  $("#prompt-variables").replaceChildren(
    ...prompt.variables.map((name) => el("label", {}, `${name} `, el("input", { "data-variable": name, required: true }))),
  );
  $("#prompt-use").hidden = false;
  const first = $("#prompt-variables input");
  (first || $("#prompt-use button")).focus();
}

$("#prompt-use").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  let text = chosenPrompt.content;
  for (const input of document.querySelectorAll("#prompt-variables input")) {
    text = text.split(`{${input.dataset.variable}}`).join(input.value);
  }
  $("#prompt-use").hidden = true;
  // The new chat's composer opens with the prompt, ready to send.
  drafts.set("new", text);
  newChat();
}));

// ---------------------------------------------------------------- teams

async function loadTeams() {
  state.teams = (await api("GET", "/api/v1/teams?limit=200")).items;
  renderScopes();
}

/** The choice of whose chats the sidebar shows: one's own, or a team's. */
function renderScopes() {
  $("#scope").replaceChildren(
    el("option", { value: "" }, t("teams.personal")),
    ...state.teams.map((team) => el("option", { value: team.id, selected: state.scope === team.id }, team.name)),
  );
}

async function openTeams(id) {
  showSection("#teams");
  await loadTeams();
  $("#team-list").replaceChildren(
    ...state.teams.map((team) => el("li", {}, el("a", { href: `#/teams/${team.id}` }, team.name), ` ${teamRole(team.role)}`)),
  );
  const team = state.teams.find((known) => known.id === id);
  $("#team-detail").hidden = !team;
  if (team) await showTeam(team);
}

/** A role in a team, in the UI's language (`admin`, `member`; another shows as it is). */
const teamRole = (role) => (role === "admin" || role === "member" ? t(`teams.role.${role}`) : role);

async function showTeam(team) {
  $("#team-title").textContent = team.name;
  const admin = team.role === "admin";
  const members = (await api("GET", `/api/v1/teams/${team.id}/members?limit=200`)).items;
  $("#member-list").replaceChildren(
    ...members.map((m) => {
      const role = el("select", { "aria-label": t("teams.roleOf", { name: m.name }), disabled: !admin }, ...["member", "admin"].map((r) => el("option", { value: r, selected: m.role === r }, teamRole(r))));
      role.addEventListener("change", guard(async () => {
        await api("PATCH", `/api/v1/teams/${team.id}/members/${m.userId}`, { role: role.value });
        await showTeam(team);
      }));
      return el(
        "li",
        { "data-member": m.userId },
        `${m.name} <${m.email}> `,
        role,
        admin && m.userId !== state.user.id ? el("button", { class: "link", onclick: guard(async () => { await api("DELETE", `/api/v1/teams/${team.id}/members/${m.userId}`); await showTeam(team); }) }, t("teams.remove")) : null,
      );
    }),
  );
  $("#invite-form").dataset.team = team.id;
  $("#invite-link").replaceChildren();
}

// The address follows the name until it is typed by hand: "Tim Jakarta" → "tim-jakarta".
$("#team-name").addEventListener("input", () => {
  const slug = $("#team-slug");
  if (slug.dataset.typed) return;
  slug.value = $("#team-name")
    .value.normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
});
$("#team-slug").addEventListener("input", () => ($("#team-slug").dataset.typed = "yes"));

$("#team-form").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  const team = await api("POST", "/api/v1/teams", { name: $("#team-name").value, slug: $("#team-slug").value });
  $("#team-form").reset();
  delete $("#team-slug").dataset.typed;
  location.hash = `#/teams/${team.id}`;
}));

$("#invite-form").addEventListener("submit", guard(async (event) => {
  event.preventDefault();
  const invite = await api("POST", `/api/v1/teams/${$("#invite-form").dataset.team}/invites`, {
    email: $("#invite-email").value,
    role: $("#invite-role").value,
  });
  $("#invite-email").value = "";
  $("#invite-link").replaceChildren(`${t("teams.inviteLink")} `, el("a", { id: "invite-url", href: invite.link }, invite.link));
}));

/** An invitation link (`/invites/TOKEN`) opened: offer to join, after signing in. */
function pendingInvite() {
  const match = location.pathname.match(/^\/invites\/([A-Za-z0-9_-]+)$/);
  return match && match[1];
}

/** Say what the invitation is to and who sent it, or why it cannot be accepted. */
async function describeInvite() {
  try {
    const invite = await api("GET", `/api/v1/invites/${pendingInvite()}`);
    $("#invite-about").textContent = t(invite.role === "admin" ? "invite.asAdmin" : "invite.asMember", { inviter: invite.invitedBy || t("invite.someone"), team: invite.teamName });
    $("#accept-invite").textContent = t("invite.join", { team: invite.teamName });
    $("#accept-invite").hidden = false;
  } catch (error) {
    $("#invite-about").textContent =
      error.status === 404 ? t("invite.otherEmail", { email: state.user.email }) : t("invite.cannot", { reason: error.message });
    $("#invite-about").classList.add("error");
    $("#accept-invite").hidden = true;
  }
}

$("#accept-invite").addEventListener("click", guard(async () => {
  const member = await api("POST", `/api/v1/invites/${pendingInvite()}/accept`, {});
  history.replaceState(null, "", `/#/teams/${member.teamId}`);
  $("#invite-accept").hidden = true;
  state.scope = member.teamId;
  await loadTeams();
  await Promise.all([loadChats(), loadFolders(), loadTags()]);
  await route();
}));

// ---------------------------------------------------------------- keyboard and routes

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.streaming) {
    event.preventDefault();
    stop();
  } else if (event.key === "Escape" && document.body.classList.contains("sidebar-open") && state.chat) {
    document.body.classList.remove("sidebar-open");
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    $("#search").focus();
  } else if ((event.ctrlKey || event.metaKey) && event.altKey && event.key.toLowerCase() === "n") {
    event.preventDefault();
    newChat();
  }
});

/** Show one of the main sections. */
function showSection(shown) {
  for (const section of ["#chat", "#settings", "#prompts", "#teams", "#usage", "#admin", "#empty"]) $(section).hidden = section !== shown;
  document.body.classList.remove("sidebar-open");
}

/** The labels this script gave the page's markup, again in the language just chosen (the
 * markup's own text came back in it, whatever the page was showing). */
function relabel() {
  labelAuth();
  labelModelForm();
  $("#send").textContent = t(state.editing ? "composer.resend" : "composer.send");
  $("#show-archived").textContent = t(state.archived ? "chats.back" : "chats.archived");
  $("#folder-form button[type=submit]").textContent = t(editingFolder ? "sidebar.form.save" : "sidebar.form.add");
  $("#tag-form button[type=submit]").textContent = t(editingTag ? "sidebar.form.save" : "sidebar.form.add");
  $("#prompt-form-title").textContent = editingPrompt ? t("prompts.editTitle", { name: editingPromptName }) : t("prompts.new");
}

/** Draw the signed-in page again, in a language just chosen: the list of chats and the page
 * open now (a chat keeps what was being typed in it). */
async function redraw() {
  renderScopes();
  renderFolderParents();
  renderTagFilter();
  renderChats();
  await route();
}

async function route() {
  if (pendingInvite()) {
    showSection("#teams");
    $("#invite-accept").hidden = false;
    await describeInvite();
    return openTeams(null);
  }
  const [, view, id] = location.hash.split("?")[0].split("/");
  // The instance's pages load their script when first opened.
  if (view === "usage") {
    showSection("#usage");
    return (await import("./admin.js")).openUsage(state.user);
  }
  if (view === "admin") {
    showSection("#admin");
    return (await import("./admin.js")).openAdmin(id || "people", { user: state.user, instance: state.instance });
  }
  if (view === "settings") return openSettings();
  if (view === "prompts") return openPrompts();
  if (view === "teams") return openTeams(id);
  if (view === "chat" && id) return openChat(id);
  if (view === "new") return openDraft();
  if (state.chats.length) {
    // Opened here, not by the hash's change: the page is drawn before `start` says so.
    history.replaceState(null, "", `#/chat/${state.chats[0].id}`);
    return openChat(state.chats[0].id);
  }
  showSection("#empty");
  // On a phone, the chats are what shows when there is no chat to show.
  document.body.classList.add("sidebar-open");
}

window.addEventListener("hashchange", () => route().catch(toast));

async function start() {
  await useLocale(preferredLocale());
  $("#auth-locale").value = locale;
  relabel();
  const session = await api("GET", "/api/auth/get-session");
  if (!session) return showAuth();
  state.session = session.session;
  state.user = session.user;
  $("#auth").hidden = true;
  if (!session.user.approved) {
    $("#app").hidden = true;
    $("#pending").hidden = false;
    $("#pending-status").textContent = t("pending.signedInAs", { email: session.user.email });
    return;
  }
  $("#pending").hidden = true;
  const [instance, preferences] = await Promise.all([api("GET", "/api/v1/instance"), api("GET", "/api/v1/me/preferences")]);
  state.instance = instance;
  if (instance.requireTwoFactor && !session.user.twoFactorEnabled && !session.session.impersonatedBy) {
    // Nothing else answers until a second factor is set up: set it up here, then go on.
    applyTheme(preferences.theme);
    $("#app").hidden = true;
    $("#totp-required").hidden = false;
    $("#totp-required-slot").append($("#totp"));
    showTwoFactor();
    return;
  }
  $("#totp-required").hidden = true;
  $("#settings h3[data-i18n='page.settings.appearance']").before($("#totp"));
  applyTheme(preferences.theme);
  // The user's language wins over this browser's; one chosen on the sign-in page becomes
  // theirs when they had none.
  const chosenHere = localStorage.getItem("sambung.locale");
  if (!preferences.locale && chosenHere) {
    preferences.locale = (await api("PATCH", "/api/v1/me/preferences", { locale: chosenHere })).locale;
  }
  $("#locale").value = preferences.locale || "";
  if (preferences.locale) {
    localStorage.setItem("sambung.locale", preferences.locale);
    await useLocale(preferences.locale);
    relabel();
  }
  $("#me").textContent = session.user.name;
  // Busy until the first page is drawn: assistive technology waits for it, and so does a
  // script driving the page before it opens another (the first admin's setup page, opened
  // here, would replace one opened meanwhile).
  $("#app").setAttribute("aria-busy", "true");
  $("#app").hidden = false;
  try {
    const admin = session.user.role.split(",").includes("admin");
    $("#open-admin").hidden = !admin;
    $("#acting-banner").hidden = !session.session.impersonatedBy;
    $("#acting-name").textContent = `${session.user.name} <${session.user.email}>`;
    await loadTeams();
    await Promise.all([loadChats(), loadUsable(), loadFolders(), loadTags()]);
    // A new instance's first admin is offered the setup of a connection.
    const [, view] = location.hash.split("/");
    if (admin && state.instance.needsSetup && !view) location.hash = "#/admin/setup";
    await route();
  } finally {
    $("#app").removeAttribute("aria-busy");
  }
}

start().catch(toast);

// Installable: the service worker keeps the application's shell (never an API answer).
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
