// SambungChat's web UI: plain modules on the JSON API, no framework, nothing fetched from
// elsewhere. Text from users and models is only ever set as text; the one exception is a
// message's HTML, which the server renders from Markdown and sanitises (sambung-web).

const $ = (css) => document.querySelector(css);

/** Build an element: `el("li", {class: "x"}, "text", child)`; strings become text nodes. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const state = {
  user: null,
  chats: [],
  models: [],
  chat: null, // the open chat
  messages: [],
  editing: null, // the id of the user message being edited
  streaming: false,
};

// ---------------------------------------------------------------- sign-in

let signingUp = false;

function showAuth() {
  $("#app").hidden = true;
  $("#auth").hidden = false;
  $("#auth-email").focus();
}

function setSigningUp(up) {
  signingUp = up;
  $("#name-row").hidden = !up;
  $("#auth-title").textContent = up ? "Create your SambungChat account" : "Sign in to SambungChat";
  $("#auth-submit").textContent = up ? "Create account" : "Sign in";
  $("#auth-switch").textContent = up ? "Have an account? Sign in" : "New here? Create an account";
  $("#auth-password").autocomplete = up ? "new-password" : "current-password";
  $("#auth-error").textContent = "";
}

$("#auth-switch").addEventListener("click", () => setSigningUp(!signingUp));

$("#auth-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { email: $("#auth-email").value, password: $("#auth-password").value };
  if (signingUp) body.name = $("#auth-name").value || body.email.split("@")[0];
  try {
    await api("POST", signingUp ? "/api/auth/sign-up/email" : "/api/auth/sign-in/email", body);
    $("#auth-password").value = "";
    await start();
  } catch (error) {
    $("#auth-error").textContent = error.message;
  }
});

$("#sign-out").addEventListener("click", async () => {
  await api("POST", "/api/auth/sign-out", {});
  state.user = null;
  location.hash = "";
  showAuth();
});

// ---------------------------------------------------------------- sidebar

async function loadChats() {
  const page = await api("GET", "/api/v1/chats?limit=200");
  // Pinned first (most recently pinned on top), then the rest as the server orders them.
  const pinned = page.items.filter((c) => c.pinnedAt).sort((a, b) => (a.pinnedAt < b.pinnedAt ? 1 : -1));
  state.chats = [...pinned, ...page.items.filter((c) => !c.pinnedAt)];
  renderChats();
}

function renderChats() {
  const filter = $("#search").value.trim().toLowerCase();
  const list = $("#chat-list");
  list.replaceChildren(
    ...state.chats
      .filter((c) => !filter || c.title.toLowerCase().includes(filter))
      .map((c) =>
        el(
          "li",
          { class: c.pinnedAt ? "pinned" : null },
          el(
            "a",
            { href: `#/chat/${c.id}`, "aria-current": state.chat && state.chat.id === c.id ? "page" : null, "data-chat": c.id },
            c.title,
          ),
        ),
      ),
  );
}

let searchTimer;
$("#search").addEventListener("input", () => {
  renderChats();
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchMessages, 200);
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
    ...found.items.map((m) => el("li", {}, el("a", { href: `#/chat/${m.chatId}`, class: "hit" }, context(m.content, words)))),
  );
  hits.hidden = found.items.length === 0;
}

/** The words around the first match, as text. */
function context(text, words) {
  const at = text.toLowerCase().indexOf(words.split(/\s+/)[0].toLowerCase());
  const from = Math.max(0, at - 40);
  return (from > 0 ? "…" : "") + text.slice(from, from + 120) + (text.length > from + 120 ? "…" : "");
}

$("#new-chat").addEventListener("click", newChat);

async function newChat() {
  const chat = await api("POST", "/api/v1/chats", {});
  await loadChats();
  location.hash = `#/chat/${chat.id}`;
}

$("#toggle-sidebar").addEventListener("click", () => document.body.classList.toggle("sidebar-open"));

// ---------------------------------------------------------------- the chat

async function openChat(id) {
  state.chat = await api("GET", `/api/v1/chats/${id}`);
  $("#settings").hidden = true;
  $("#chat").hidden = false;
  document.body.classList.remove("sidebar-open");
  $("#chat-title").textContent = state.chat.title;
  $("#pin-chat").setAttribute("aria-pressed", state.chat.pinnedAt ? "true" : "false");
  $("#share-link").hidden = true;
  renderModelPicker();
  renderChats();
  await loadMessages();
  const last = state.messages[state.messages.length - 1];
  // A reload in the middle of a reply follows it again from its start.
  if (last && last.role === "assistant" && last.metadata && last.metadata.status === "streaming") {
    const response = await fetch(`/api/v1/chats/${id}/generate/stream`);
    if (response.status === 200) {
      state.messages.pop();
      renderMessages();
      await follow(response);
    }
  }
  $("#prompt").focus();
}

async function loadMessages() {
  const page = await api("GET", `/api/v1/chats/${state.chat.id}/messages?limit=500&html=true`);
  state.messages = page.items;
  renderMessages();
}

function renderMessages() {
  const list = $("#messages");
  const lastAssistant = state.messages.map((m) => m.role).lastIndexOf("assistant");
  list.replaceChildren(...state.messages.map((m, i) => messageItem(m, i === lastAssistant)));
  list.lastElementChild && list.lastElementChild.scrollIntoView({ block: "end" });
}

function messageItem(message, lastReply) {
  const body = el("div", { class: "body" });
  if (message.html != null) {
    body.innerHTML = message.html; // rendered and sanitised by the server
    addCopyButtons(body);
  } else {
    body.textContent = message.content;
  }
  const item = el("li", { class: `message ${message.role}`, "data-id": message.id }, body);
  const meta = message.metadata || {};
  if (message.role === "assistant") {
    item.append(replyMeta(meta));
    if (meta.error) item.append(el("p", { class: "error", role: "alert" }, meta.error));
    if (lastReply) item.append(el("button", { class: "link regenerate", onclick: regenerate }, "Regenerate"));
  }
  if (message.role === "user") {
    item.append(el("button", { class: "link edit", onclick: () => startEdit(message) }, "Edit"));
  }
  return item;
}

/** Tokens and times of a reply. */
function replyMeta(meta) {
  const parts = [];
  if (meta.model) parts.push(meta.model);
  if (meta.inputTokens != null || meta.outputTokens != null) parts.push(`${meta.inputTokens ?? "?"} → ${meta.outputTokens ?? "?"} tokens`);
  if (meta.ttftMs != null) parts.push(`first token ${meta.ttftMs} ms`);
  if (meta.durationMs != null) parts.push(`${(meta.durationMs / 1000).toFixed(1)} s`);
  if (meta.status && meta.status !== "complete") parts.push(meta.status);
  return el("p", { class: "meta" }, parts.join(" · "));
}

function addCopyButtons(body) {
  for (const code of body.querySelectorAll("pre > code")) {
    const button = el("button", { class: "copy", type: "button", "aria-label": "Copy code" }, "Copy");
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = "Copied";
    });
    code.parentElement.before(button);
  }
}

function startEdit(message) {
  state.editing = message.id;
  $("#prompt").value = message.content;
  $("#send").textContent = "Resend";
  $("#prompt").focus();
}

async function regenerate() {
  await generate({ regenerate: true });
}

$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = $("#prompt").value;
  if (!content.trim() || state.streaming) return;
  const body = state.editing ? { edit: state.editing, content } : { content };
  $("#prompt").value = "";
  state.editing = null;
  $("#send").textContent = "Send";
  await generate(body);
});

$("#prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#composer").requestSubmit();
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
    state.messages.push({ id: "pending", role: "user", content: body.content, metadata: null });
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
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({}));
    $("#messages").append(el("li", { class: "message assistant failed" }, el("p", { class: "error", role: "alert" }, error.message || `the server answered ${response.status}`)));
    await loadMessages();
    return;
  }
  await follow(response);
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
  if (state.chat === chat) {
    await loadMessages();
    await loadChats(); // the first reply titles the chat
    const fresh = state.chats.find((c) => c.id === chat.id);
    if (fresh) $("#chat-title").textContent = fresh.title;
  }
}

function setStreaming(on) {
  state.streaming = on;
  $("#stop").hidden = !on;
  $("#send").hidden = on;
}

// ---------------------------------------------------------------- chat actions

$("#model-picker").addEventListener("change", async () => {
  const model = state.models.find((m) => m.id === $("#model-picker").value);
  if (model && state.chat) state.chat = await api("PATCH", `/api/v1/chats/${state.chat.id}`, { model: model.id, provider: model.provider });
});

function renderModelPicker() {
  const picker = $("#model-picker");
  const chosen = state.models.find((m) => state.chat && m.id === state.chat.model) || state.models.find((m) => m.isDefault);
  picker.replaceChildren(
    ...(state.models.length ? [] : [el("option", { value: "" }, "No model: add one in Settings")]),
    ...state.models.map((m) => el("option", { value: m.id, selected: chosen && chosen.id === m.id }, m.name)),
  );
}

$("#pin-chat").addEventListener("click", async () => {
  state.chat = await api("PATCH", `/api/v1/chats/${state.chat.id}`, { pinned: !state.chat.pinnedAt });
  $("#pin-chat").setAttribute("aria-pressed", state.chat.pinnedAt ? "true" : "false");
  await loadChats();
});

$("#share-chat").addEventListener("click", async () => {
  const link = await api("POST", `/api/v1/chats/${state.chat.id}/share`, {});
  const shown = $("#share-link");
  shown.replaceChildren("Anyone with this link can read the chat: ", el("a", { href: link.url, id: "share-url", target: "_blank", rel: "noopener" }, link.url));
  shown.hidden = false;
});

// ---------------------------------------------------------------- settings

$("#open-settings").addEventListener("click", () => (location.hash = "#/settings"));
$("#close-settings").addEventListener("click", () => history.back());

async function openSettings() {
  $("#chat").hidden = true;
  $("#settings").hidden = false;
  await Promise.all([loadKeys(), loadModels()]);
}

let keys = [];

async function loadKeys() {
  keys = (await api("GET", "/api/v1/api-keys")).items;
  $("#key-list").replaceChildren(
    ...keys.map((k) =>
      el("li", { "data-key": k.id }, `${k.name} (${k.provider}) ••••${k.last4} `, el("button", { class: "link", onclick: () => deleteKey(k) }, "Delete")),
    ),
  );
  $("#model-key").replaceChildren(el("option", { value: "" }, "none"), ...keys.map((k) => el("option", { value: k.id }, `${k.name} ••••${k.last4}`)));
}

async function deleteKey(key) {
  if (!confirm(`Delete the key ${key.name}? Models using it lose it.`)) return;
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
    return "Key added.";
  });
});

async function loadModels() {
  state.models = (await api("GET", "/api/v1/models")).items;
  $("#model-list").replaceChildren(
    ...state.models.map((m) =>
      el(
        "li",
        { "data-model": m.id },
        `${m.name} (${m.provider}: ${m.modelId})${m.isDefault ? " · default" : ""} `,
        el("button", { class: "link", onclick: () => testModel(m) }, "Test connection"),
        " ",
        el("button", { class: "link", onclick: () => deleteModel(m) }, "Delete"),
      ),
    ),
  );
  renderModelPicker();
}

async function testModel(model) {
  await settingsAction(async () => {
    const found = await api("GET", `/api/v1/models/${model.id}/available`);
    return `${model.name}: connected, ${found.models.length} models offered.`;
  });
}

async function deleteModel(model) {
  await api("DELETE", `/api/v1/models/${model.id}`);
  await loadModels();
}

$("#model-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    provider: $("#model-provider").value,
    modelId: $("#model-id").value,
    isDefault: $("#model-default").checked,
  };
  if ($("#model-name").value) body.name = $("#model-name").value;
  if ($("#model-base").value) body.baseUrl = $("#model-base").value;
  if ($("#model-key").value) body.apiKeyId = $("#model-key").value;
  await settingsAction(async () => {
    await api("POST", "/api/v1/models", body);
    await loadModels();
    return "Model added.";
  });
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

// ---------------------------------------------------------------- keyboard and routes

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.streaming) {
    event.preventDefault();
    stop();
  } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    $("#search").focus();
  } else if ((event.ctrlKey || event.metaKey) && event.altKey && event.key.toLowerCase() === "n") {
    event.preventDefault();
    newChat();
  }
});

async function route() {
  const [, view, id] = location.hash.split("/");
  if (view === "settings") return openSettings();
  if (view === "chat" && id) return openChat(id);
  $("#chat").hidden = true;
  $("#settings").hidden = true;
  if (state.chats.length) location.hash = `#/chat/${state.chats[0].id}`;
}

window.addEventListener("hashchange", () => route().catch(showError));

function showError(error) {
  if (error instanceof ApiError && error.status === 401) return showAuth();
  console.error(error);
}

async function start() {
  const session = await api("GET", "/api/auth/get-session");
  if (!session) return showAuth();
  state.user = session.user;
  $("#me").textContent = session.user.name;
  $("#auth").hidden = true;
  $("#app").hidden = false;
  await Promise.all([loadChats(), loadModels()]);
  await route();
}

start().catch(showError);
