// The instance's pages: usage (everyone's own; an admin's, everyone's), and for admins the
// setup of a first connection, connections and models, people (approval, roles, bans,
// impersonation, invitations), settings and quotas, the audit log and the mail outbox.

import { $, el, api, within, when, count } from "./ui.js";

const PROVIDER_HINTS = {
  openai: "Your OpenAI key (sk-...)",
  anthropic: "Your Anthropic key (sk-ant-...)",
  google: "Your Gemini API key",
  groq: "Your Groq key",
  openrouter: "Your OpenRouter key",
  ollama: "Not needed for a local Ollama",
  custom: "The server's key, if it needs one",
};

// ---------------------------------------------------------------- usage

/** The usage page: a range, a grouping, the server's chart and the numbers. */
export async function openUsage(user) {
  const admin = user.role.split(",").includes("admin");
  const scope = $("#usage-scope");
  scope.hidden = !admin;
  const draw = async () => {
    const days = Number($("#usage-days").value);
    const to = new Date();
    const from = new Date(to.getTime() - (days - 1) * 86400000);
    const query = new URLSearchParams({
      from: from.toISOString().slice(0, 10),
      to: to.toISOString().slice(0, 10),
      groupBy: $("#usage-group").value,
      scope: admin && $("#usage-all").checked ? "all" : "mine",
    });
    const usage = await api("GET", `/api/v1/usage?${query}`);
    $("#usage-chart").src = `/api/v1/usage/chart.svg?${query}&metric=${$("#usage-metric").value}`;
    $("#usage-chart").alt = `${$("#usage-metric").value} by ${usage.groupBy}`;
    const sum = (key) => usage.groups.reduce((total, g) => total + g[key], 0);
    $("#usage-total").textContent =
      `${usage.groups.length ? "" : "Nothing used in this period. "}${count(sum("requests"), "reply", "replies")}, ` +
      `${count(sum("inputTokens") + sum("outputTokens"), "token", "tokens")}, cost ${sum("cost").toFixed(4)}`;
    $("#usage-table").replaceChildren(
      el("tr", {}, ...["", "Replies", "Input tokens", "Output tokens", "Time (s)", "Cost"].map((h) => el("th", { scope: "col" }, h))),
      ...usage.groups.map((g) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, g.label),
          el("td", {}, String(g.requests)),
          el("td", {}, g.inputTokens.toLocaleString()),
          el("td", {}, g.outputTokens.toLocaleString()),
          el("td", {}, (g.durationMs / 1000).toFixed(1)),
          el("td", {}, g.cost.toFixed(4)),
        ),
      ),
    );
  };
  for (const control of ["#usage-days", "#usage-group", "#usage-metric", "#usage-all"]) $(control).onchange = () => within($("#usage-status"), draw);
  await within($("#usage-status"), async () => {
    await draw();
    return "";
  });
}

// ---------------------------------------------------------------- admin

/** An admin page: `tab` is setup, models, people, settings, audit or mail. */
export async function openAdmin(tab, context) {
  for (const link of document.querySelectorAll("#admin-tabs a")) {
    link.setAttribute("aria-current", link.dataset.tab === tab ? "page" : "false");
  }
  for (const panel of document.querySelectorAll("#admin > .panel")) panel.hidden = panel.id !== `admin-${tab}`;
  const open = { setup: openSetup, models: openModels, people: openPeople, settings: openSettingsPanel, audit: openAudit, mail: openMail }[tab];
  if (!open) {
    location.hash = "#/admin/people";
    return;
  }
  await open(context);
}

async function providers() {
  return api("GET", "/api/v1/providers");
}

/** Fill a provider select, and its key field's hint as the choice changes. */
async function fillProviders(select, keyInput, baseInput, context) {
  const list = await providers();
  select.replaceChildren(...list.map((p) => el("option", { value: p.name }, p.label)));
  const hint = () => {
    keyInput.placeholder = PROVIDER_HINTS[select.value] || "";
    if (select.value === "ollama" && context.instance.detectedOllama && !baseInput.value) baseInput.value = context.instance.detectedOllama;
  };
  select.onchange = hint;
  hint();
}

// ------------------------------------------------ setup: the first connection, then chat

async function openSetup(context) {
  const detected = context.instance.detectedOllama;
  $("#setup-ollama").hidden = !detected;
  if (detected) $("#setup-ollama-url").textContent = detected;
  await fillProviders($("#setup-provider"), $("#setup-key"), $("#setup-base"), context);
  if (detected) {
    $("#setup-provider").value = "ollama";
    $("#setup-base").value = detected;
  }
  $("#setup-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#setup-status"), async () => {
      const body = { provider: $("#setup-provider").value, name: $("#setup-name").value || undefined };
      if (body.provider === "custom" && !$("#setup-base").value) {
        $("#setup-base").focus();
        throw new Error("A custom provider needs its base URL: the address of its OpenAI-compatible API, e.g. http://gpu-box:8000/v1.");
      }
      if ($("#setup-base").value) body.baseUrl = $("#setup-base").value;
      if ($("#setup-key").value) body.key = $("#setup-key").value;
      const connection = await api("POST", "/api/v1/admin/connections", body);
      $("#setup-key").value = "";
      await offerModels(connection, $("#setup-offered"), true);
      return `Connected to ${connection.name}. Pick the models everyone may use.`;
    });
  };
}

/** What a connection offers, as boxes to tick, and a button that adds the ticked ones. */
async function offerModels(connection, into, first) {
  let offered = [];
  // Why the list is empty goes next to the list, not over the connection's own status.
  const listing = el("p", { class: "note" });
  try {
    offered = (await api("GET", `/api/v1/admin/connections/${connection.id}/models`)).models;
    if (!offered.length) listing.textContent = "The provider listed no models: type a model's name below.";
  } catch (error) {
    listing.textContent = `The provider did not list its models (${error.message}): type a model's name below.`;
    listing.classList.add("error");
  }
  const boxes = offered.slice(0, 200).map((id, i) =>
    el("label", { class: "choice" }, el("input", { type: "checkbox", value: id, checked: first && i === 0 }), ` ${id}`),
  );
  const typed = el("input", { placeholder: "or a model's name, e.g. gpt-4o-mini", "aria-label": "Model name" });
  const done = el("p", { role: "status" });
  const add = el(
    "button",
    {
      type: "button",
      onclick: () =>
        within(done, async () => {
          const chosen = [...into.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);
          if (typed.value.trim()) chosen.push(typed.value.trim());
          if (!chosen.length) throw new Error("Tick at least one model, or type its name.");
          const existing = (await api("GET", "/api/v1/admin/models")).items;
          for (const [i, modelId] of chosen.entries()) {
            await api("POST", "/api/v1/admin/models", { connectionId: connection.id, modelId, isDefault: !existing.length && i === 0 });
          }
          // Added once: a second click would add them again.
          add.disabled = true;
          for (const box of into.querySelectorAll("input")) box.disabled = true;
          document.dispatchEvent(new CustomEvent("sambung:models-changed"));
          if (first) {
            $("#setup-skip").hidden = true;
            into.append(el("p", {}, el("a", { href: "#/new", class: "button" }, "Start chatting")));
          }
          return `Added ${chosen.join(", ")}: everyone can chat with ${chosen.length === 1 ? "it" : "them"} now.`;
        }),
    },
    "Add the chosen models",
  );
  into.replaceChildren(el("h3", {}, `Models of ${connection.name}`), listing, el("div", { class: "choices" }, ...boxes), typed, " ", add, done);
  into.hidden = false;
}

// ------------------------------------------------ connections and models

async function openModels(context) {
  await fillProviders($("#connection-provider"), $("#connection-key"), $("#connection-base"), context);
  const teams = (await api("GET", "/api/v1/teams?limit=200")).items;
  const load = async () => {
    const [connections, models] = await Promise.all([api("GET", "/api/v1/admin/connections"), api("GET", "/api/v1/admin/models")]);
    $("#connection-list").replaceChildren(
      ...connections.items.map((c) =>
        el(
          "li",
          { "data-connection": c.id },
          `${c.name} (${c.provider}${c.baseUrl ? `, ${c.baseUrl}` : ""})${c.keyLast4 ? ` key ••••${c.keyLast4}` : ""} `,
          el("button", { class: "link", onclick: () => offerModels(c, $("#connection-offered"), false) }, "Add models"),
          " ",
          el("button", {
            class: "link",
            onclick: () => {
              if (!confirm(`Remove ${c.name} and every model on it?`)) return;
              within($("#connection-status"), async () => {
                await api("DELETE", `/api/v1/admin/connections/${c.id}`);
                await load();
                return `${c.name} removed.`;
              });
            },
          }, "Remove"),
        ),
      ),
    );
    $("#instance-model-list").replaceChildren(
      ...models.items.map((m) => {
        const teamNames = m.teams.map((id) => (teams.find((t) => t.id === id) || { name: "a team" }).name);
        const price = m.inputPrice != null || m.outputPrice != null ? ` · ${m.inputPrice ?? 0}/${m.outputPrice ?? 0} per million tokens` : "";
        return el(
          "li",
          { "data-model": m.id },
          `${m.name} (${m.modelId})${m.isDefault ? " · default" : ""} · ${teamNames.length ? `for ${teamNames.join(", ")}` : "for everyone"}${price} `,
          el("button", { class: "link", onclick: () => editModel(m) }, "Change"),
          " ",
          el("button", {
            class: "link",
            onclick: () =>
              within($("#model-status"), async () => {
                await api("DELETE", `/api/v1/admin/models/${m.id}`);
                await load();
                document.dispatchEvent(new CustomEvent("sambung:models-changed"));
                return `${m.name} removed.`;
              }),
          }, "Remove"),
        );
      }),
    );
    $("#model-edit-teams").replaceChildren(...teams.map((t) => el("option", { value: t.id }, t.name)));
  };
  const editModel = (m) => {
    const form = $("#model-edit");
    form.hidden = false;
    form.dataset.model = m.id;
    form.dataset.connection = m.connectionId;
    $("#model-edit-title").textContent = `Change ${m.name}`;
    $("#model-edit-name").value = m.name;
    $("#model-edit-id").value = m.modelId;
    $("#model-edit-default").checked = m.isDefault;
    $("#model-edit-input").value = m.inputPrice ?? "";
    $("#model-edit-output").value = m.outputPrice ?? "";
    for (const option of $("#model-edit-teams").options) option.selected = m.teams.includes(option.value);
    $("#model-edit-name").focus();
  };
  $("#model-edit-cancel").onclick = () => {
    $("#model-edit").hidden = true;
  };
  $("#model-edit").onsubmit = async (event) => {
    event.preventDefault();
    const form = $("#model-edit");
    const price = (input) => (input.value === "" ? null : Number(input.value));
    await within($("#model-status"), async () => {
      await api("PUT", `/api/v1/admin/models/${form.dataset.model}`, {
        connectionId: form.dataset.connection,
        modelId: $("#model-edit-id").value,
        name: $("#model-edit-name").value,
        isDefault: $("#model-edit-default").checked,
        teams: [...$("#model-edit-teams").selectedOptions].map((o) => o.value),
        inputPrice: price($("#model-edit-input")),
        outputPrice: price($("#model-edit-output")),
      });
      form.hidden = true;
      await load();
      document.dispatchEvent(new CustomEvent("sambung:models-changed"));
      return "Model saved.";
    });
  };
  $("#connection-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#connection-status"), async () => {
      const body = { provider: $("#connection-provider").value };
      if ($("#connection-name").value) body.name = $("#connection-name").value;
      if ($("#connection-base").value) body.baseUrl = $("#connection-base").value;
      if ($("#connection-key").value) body.key = $("#connection-key").value;
      const connection = await api("POST", "/api/v1/admin/connections", body);
      $("#connection-key").value = "";
      $("#connection-name").value = "";
      await load();
      await offerModels(connection, $("#connection-offered"), false);
      return `${connection.name} added.`;
    });
  };
  await load();
}

// ------------------------------------------------ people

async function openPeople(context) {
  const me = context.user;
  const load = async () => {
    const query = new URLSearchParams({ limit: "200", sortBy: "createdAt", sortDirection: "desc" });
    const search = $("#people-search").value.trim();
    if (search) {
      query.set("searchValue", search);
      query.set("searchField", search.includes("@") ? "email" : "name");
    }
    const { users, total } = await api("GET", `/api/auth/admin/list-users?${query}`);
    const waiting = users.filter((u) => !u.approved);
    $("#people-waiting").hidden = !waiting.length;
    $("#people-count").textContent = `${total} ${total === 1 ? "person" : "people"}${waiting.length ? `, ${waiting.length} waiting for approval` : ""}`;
    $("#people-list").replaceChildren(...[...waiting, ...users.filter((u) => u.approved)].map((u) => person(u)));
  };
  const act = (message, action) => within($("#people-status"), async () => {
    await action();
    await load();
    return message;
  });
  const person = (u) => {
    const admin = u.role.split(",").includes("admin");
    const self = u.id === me.id;
    const role = el("select", { "aria-label": `Role of ${u.name}`, disabled: self }, ...["user", "admin"].map((r) => el("option", { value: r, selected: (admin ? "admin" : "user") === r }, r)));
    role.onchange = () => act(`${u.name} is now ${role.value}.`, () => api("POST", "/api/auth/admin/set-role", { userId: u.id, role: role.value }));
    const state = u.banned ? ` · banned${u.banReason ? ` (${u.banReason})` : ""}${u.banExpires ? ` until ${when(u.banExpires)}` : ""}` : "";
    return el(
      "li",
      { "data-user": u.id, class: u.approved ? "" : "waiting" },
      el("span", {}, `${u.name} <${u.email}>${u.approved ? "" : " · waiting for approval"}${state}${self ? " · you" : ""} `),
      role,
      " ",
      u.approved ? null : el("button", { onclick: () => act(`${u.name} can use the instance now.`, () => api("POST", "/api/auth/admin/update-user", { userId: u.id, data: { approved: true } })) }, "Approve"),
      self || admin ? null : u.banned
        ? el("button", { class: "link", onclick: () => act(`${u.name} may sign in again.`, () => api("POST", "/api/auth/admin/unban-user", { userId: u.id })) }, "Lift ban")
        : el("button", {
            class: "link",
            onclick: () => {
              const reason = prompt(`Ban ${u.name}? Their sessions end at once. Reason (optional):`);
              if (reason === null) return;
              act(`${u.name} is banned.`, () => api("POST", "/api/auth/admin/ban-user", { userId: u.id, banReason: reason || undefined }));
            },
          }, "Ban"),
      self || admin ? null : el("button", {
        class: "link",
        onclick: () => act("", async () => {
          await api("POST", "/api/auth/admin/impersonate-user", { userId: u.id });
          location.hash = "#/";
          location.reload();
        }),
      }, "Act as"),
      self ? null : el("button", {
        class: "link",
        onclick: () => {
          const password = prompt(`A new password for ${u.name} (at least 8 characters):`);
          if (password) act(`${u.name}'s password is set; tell them.`, () => api("POST", "/api/auth/admin/set-user-password", { userId: u.id, newPassword: password }));
        },
      }, "Set password"),
      self ? null : el("button", {
        class: "link",
        onclick: () => {
          if (confirm(`Remove ${u.name} and everything they own? This cannot be undone.`)) act(`${u.name} was removed.`, () => api("POST", "/api/auth/admin/remove-user", { userId: u.id }));
        },
      }, "Remove"),
    );
  };
  let searchTimer;
  $("#people-search").oninput = () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => within($("#people-status"), async () => (await load(), "")), 250);
  };
  $("#person-form").onsubmit = async (event) => {
    event.preventDefault();
    const ok = await within($("#person-status"), async () => {
      const body = { email: $("#person-email").value, name: $("#person-name").value || $("#person-email").value.split("@")[0], role: $("#person-role").value };
      if ($("#person-password").value) body.password = $("#person-password").value;
      await api("POST", "/api/auth/admin/create-user", body);
      await load();
      return `${body.email} can sign in now.`;
    });
    if (ok) $("#person-form").reset();
  };
  const loadInvites = async () => {
    const invites = (await api("GET", "/api/v1/admin/invites")).items;
    $("#invite-list").replaceChildren(
      ...invites.map((i) =>
        el("li", {}, `${i.email || "anyone with the link"}, until ${when(i.expiresAt)} `, el("button", {
          class: "link",
          onclick: () => within($("#instance-invite-status"), async () => {
            await api("DELETE", `/api/v1/admin/invites/${i.id}`);
            await loadInvites();
            return "Invitation withdrawn.";
          }),
        }, "Withdraw")),
      ),
    );
  };
  $("#instance-invite-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#instance-invite-status"), async () => {
      const body = {};
      if ($("#instance-invite-email").value) body.email = $("#instance-invite-email").value;
      const invite = await api("POST", "/api/v1/admin/invites", body);
      $("#instance-invite-email").value = "";
      $("#instance-invite-link").replaceChildren(
        invite.mail === "sent" ? "Mailed. The link: " : "Pass this link on: ",
        el("a", { href: invite.link, id: "instance-invite-url" }, invite.link),
      );
      await loadInvites();
      return "";
    });
  };
  await Promise.all([load(), loadInvites()]);
}

// ------------------------------------------------ settings and quotas

const QUOTA_FIELDS = [
  ["userTokensPerDay", "Tokens a day, per person"],
  ["userRequestsPerDay", "Replies a day, per person"],
  ["teamTokensPerDay", "Tokens a day, per team"],
  ["teamRequestsPerDay", "Replies a day, per team"],
  ["runningGenerations", "Replies running at once, per person"],
  ["replyMaxOutputTokens", "Tokens of one reply"],
  ["replyMaxSeconds", "Seconds of one reply"],
  ["replyMaxBytes", "Bytes of one reply"],
];

async function openSettingsPanel() {
  const { settings, signupFromEnvironment, mailConfigured } = await api("GET", "/api/v1/admin/settings");
  $("#setting-signup").value = settings.signup;
  $("#setting-signup").disabled = signupFromEnvironment;
  $("#setting-signup-note").hidden = !signupFromEnvironment;
  $("#setting-domains").value = settings.allowedEmailDomains.join(", ");
  $("#setting-personal-keys").checked = settings.personalKeys;
  $("#setting-verification").checked = settings.emailVerification;
  $("#setting-retention").value = settings.auditRetentionDays;
  $("#setting-mail-note").hidden = mailConfigured;
  $("#quota-defaults").replaceChildren(
    ...QUOTA_FIELDS.map(([key, label]) =>
      el("label", {}, label, el("input", { type: "number", min: "0", step: "1", "data-quota": key, value: settings.quotas[key] ?? "", placeholder: "no limit" })),
    ),
  );
  $("#settings-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#settings-form-status"), async () => {
      const quotas = {};
      for (const input of document.querySelectorAll("#quota-defaults input")) quotas[input.dataset.quota] = input.value === "" ? null : Number(input.value);
      const body = {
        allowedEmailDomains: $("#setting-domains").value.split(",").map((d) => d.trim()).filter(Boolean),
        personalKeys: $("#setting-personal-keys").checked,
        emailVerification: $("#setting-verification").checked,
        auditRetentionDays: Number($("#setting-retention").value),
        quotas,
      };
      if (!signupFromEnvironment) body.signup = $("#setting-signup").value;
      await api("PATCH", "/api/v1/admin/settings", body);
      return "Settings saved.";
    });
  };
  const loadQuotas = async () => {
    const quotas = (await api("GET", "/api/v1/admin/quotas")).items;
    $("#quota-list").replaceChildren(
      ...quotas.map((q) =>
        el("li", {}, `${q.subject}: ${q.tokensPerDay ?? "default"} tokens, ${q.requestsPerDay ?? "default"} ${q.requestsPerDay === 1 ? "reply" : "replies"} a day${q.userId ? `, ${q.runningGenerations ?? "default"} at once` : ""}`),
      ),
    );
  };
  $("#quota-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#quota-status"), async () => {
      const who = $("#quota-who").value.trim();
      const number = (input) => (input.value === "" ? null : Number(input.value));
      const body = { tokensPerDay: number($("#quota-tokens")), requestsPerDay: number($("#quota-requests")) };
      if (who.includes("@")) {
        const found = await api("GET", `/api/auth/admin/list-users?${new URLSearchParams({ filterField: "email", filterValue: who.toLowerCase() })}`);
        if (!found.users.length) throw new Error(`No account has the email ${who}.`);
        body.userId = found.users[0].id;
        body.runningGenerations = number($("#quota-running"));
      } else {
        const team = (await api("GET", "/api/v1/teams?limit=200")).items.find((t) => t.slug === who || t.name === who);
        if (!team) throw new Error(`Give an account's email, or a team you belong to by its name or address.`);
        body.teamId = team.id;
      }
      await api("PUT", "/api/v1/admin/quotas", body);
      await loadQuotas();
      return `Limits of ${who} saved.`;
    });
  };
  await loadQuotas();
}

// ------------------------------------------------ audit and mail

async function openAudit() {
  let cursor = null;
  const row = (e) =>
    el(
      "tr",
      {},
      el("td", {}, when(e.at)),
      el("td", {}, e.actorEmail || "—"),
      el("td", {}, e.action),
      el("td", {}, e.targetType ? `${e.targetType} ${e.targetId}` : ""),
      el("td", {}, e.ipAddress || ""),
      el("td", {}, Object.keys(e.detail).length ? JSON.stringify(e.detail) : ""),
    );
  const load = async (more) => {
    const query = new URLSearchParams({ limit: "100" });
    if ($("#audit-action").value) query.set("action", $("#audit-action").value);
    if (more && cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/v1/admin/audit?${query}`);
    cursor = page.nextCursor;
    const rows = page.items.map(row);
    if (more) $("#audit-table").append(...rows);
    else $("#audit-table").replaceChildren(el("tr", {}, ...["When", "Who", "What", "On", "From", "More"].map((h) => el("th", { scope: "col" }, h))), ...rows);
    $("#audit-more").hidden = !cursor;
    return page.items.length ? "" : "No events.";
  };
  $("#audit-action").onchange = () => within($("#audit-status"), () => load(false));
  $("#audit-more").onclick = () => within($("#audit-status"), () => load(true));
  await within($("#audit-status"), () => load(false));
}

async function openMail() {
  const mail = (await api("GET", "/api/v1/admin/mail")).items;
  $("#mail-list").replaceChildren(
    ...mail.map((m) =>
      el(
        "li",
        {},
        `${when(m.createdAt)} · ${m.kind} to ${m.recipient} · ${m.status}${m.error ? ` (${m.error})` : ""} `,
        m.link ? el("a", { href: m.link }, "the link to pass on") : null,
        m.link ? el("button", { class: "link", onclick: (event) => copyLink(m.link, event.target) }, "Copy") : null,
      ),
    ),
  );
  $("#mail-empty").hidden = mail.length > 0;
}

/** Put a link on the clipboard, and say so on the button that did it. */
async function copyLink(link, button) {
  try {
    await navigator.clipboard.writeText(new URL(link, location.href).href);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select the link and copy it";
  }
}
