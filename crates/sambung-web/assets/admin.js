// The instance's pages: usage (everyone's own; an admin's, everyone's), and for admins the
// setup of a first connection, connections and models, people (approval, roles, bans,
// impersonation, invitations), settings and quotas, the audit log and the mail outbox.

import { $, el, api, within } from "./ui.js";
import { t, plural, number, when } from "./i18n.js";

/** What a provider's key field says it wants, in the reader's language. */
function providerHint(provider) {
  const hints = {
    openai: t("admin.providerHint.openai"),
    anthropic: t("admin.providerHint.anthropic"),
    google: t("admin.providerHint.google"),
    groq: t("admin.providerHint.groq"),
    openrouter: t("admin.providerHint.openrouter"),
    ollama: t("admin.providerHint.ollama"),
    custom: t("admin.providerHint.custom"),
  };
  return hints[provider] || "";
}

/** A cost (or a price) as the language writes it, to four decimals at most. */
const money = (x) => number(x, { maximumFractionDigits: 4 });

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
    // The chart is an image: it is told the theme the user chose (its own media query sees
    // only the device's).
    const theme = document.documentElement.dataset.theme || "system";
    $("#usage-chart").src = `/api/v1/usage/chart.svg?${query}&metric=${$("#usage-metric").value}&theme=${theme}`;
    const metric = $("#usage-metric").value;
    const metrics = { tokens: t("usage.chart.tokens"), requests: t("usage.chart.replies"), cost: t("usage.chart.cost") };
    const groups = { day: t("usage.chart.byDay"), model: t("usage.chart.byModel"), team: t("usage.chart.byTeam"), user: t("usage.chart.byPerson") };
    $("#usage-chart").alt = t("usage.chart.alt", { metric: metrics[metric] || metric, group: groups[usage.groupBy] || usage.groupBy });
    const sum = (key) => usage.groups.reduce((total, g) => total + g[key], 0);
    const total = t("usage.total", {
      replies: plural("usage.total.replies", sum("requests")),
      tokens: plural("usage.total.tokens", sum("inputTokens") + sum("outputTokens")),
      cost: money(sum("cost")),
    });
    $("#usage-total").textContent = usage.groups.length ? total : `${t("usage.total.nothing")} ${total}`;
    const headings = ["", t("usage.table.replies"), t("usage.table.inputTokens"), t("usage.table.outputTokens"), t("usage.table.seconds"), t("usage.table.cost")];
    $("#usage-table").replaceChildren(
      el("tr", {}, ...headings.map((h) => el("th", { scope: "col" }, h))),
      ...usage.groups.map((g) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, g.label),
          el("td", {}, number(g.requests)),
          el("td", {}, number(g.inputTokens)),
          el("td", {}, number(g.outputTokens)),
          el("td", {}, number(g.durationMs / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 })),
          el("td", {}, money(g.cost)),
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
    keyInput.placeholder = providerHint(select.value);
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
        throw new Error(t("admin.setup.needsBaseUrl"));
      }
      if ($("#setup-base").value) body.baseUrl = $("#setup-base").value;
      if ($("#setup-key").value) body.key = $("#setup-key").value;
      const connection = await api("POST", "/api/v1/admin/connections", body);
      $("#setup-key").value = "";
      await offerModels(connection, $("#setup-offered"), true);
      return t("admin.setup.connected", { name: connection.name });
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
    if (!offered.length) listing.textContent = t("admin.offer.noneListed");
  } catch (error) {
    listing.textContent = t("admin.offer.notListed", { error: error.message });
    listing.classList.add("error");
  }
  const boxes = offered.slice(0, 200).map((id, i) =>
    el("label", { class: "choice" }, el("input", { type: "checkbox", value: id, checked: first && i === 0 }), ` ${id}`),
  );
  const typed = el("input", { placeholder: t("admin.offer.typedPlaceholder"), "aria-label": t("admin.offer.typedLabel") });
  const done = el("p", { role: "status" });
  const add = el(
    "button",
    {
      type: "button",
      onclick: () =>
        within(done, async () => {
          const chosen = [...into.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.value);
          if (typed.value.trim()) chosen.push(typed.value.trim());
          if (!chosen.length) throw new Error(t("admin.offer.noneChosen"));
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
            into.append(el("p", {}, el("a", { href: "#/new", class: "button" }, t("admin.offer.startChatting"))));
          }
          return plural("admin.offer.added", chosen.length, { models: chosen.join(", ") });
        }),
    },
    t("admin.offer.add"),
  );
  into.replaceChildren(el("h3", {}, t("admin.offer.title", { name: connection.name })), listing, el("div", { class: "choices" }, ...boxes), typed, " ", add, done);
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
          `${c.name} (${c.provider}${c.baseUrl ? `, ${c.baseUrl}` : ""})${c.keyLast4 ? ` ${t("admin.connections.key", { last4: c.keyLast4 })}` : ""} `,
          el("button", { class: "link", onclick: () => offerModels(c, $("#connection-offered"), false) }, t("admin.connections.addModels")),
          " ",
          el("button", {
            class: "link",
            onclick: () => {
              if (!confirm(t("admin.connections.confirmRemove", { name: c.name }))) return;
              within($("#connection-status"), async () => {
                await api("DELETE", `/api/v1/admin/connections/${c.id}`);
                await load();
                return t("admin.removed", { name: c.name });
              });
            },
          }, t("admin.remove")),
        ),
      ),
    );
    $("#instance-model-list").replaceChildren(
      ...models.items.map((m) => {
        const teamNames = m.teams.map((id) => (teams.find((team) => team.id === id) || { name: t("admin.models.someTeam") }).name);
        const facts = [`${m.name} (${m.modelId})`];
        if (m.isDefault) facts.push(t("admin.models.default"));
        facts.push(teamNames.length ? t("admin.models.forTeams", { teams: teamNames.join(", ") }) : t("admin.models.forEveryone"));
        if (m.inputPrice != null || m.outputPrice != null) {
          facts.push(t("admin.models.price", { input: money(m.inputPrice ?? 0), output: money(m.outputPrice ?? 0) }));
        }
        return el(
          "li",
          { "data-model": m.id },
          `${facts.join(" · ")} `,
          el("button", { class: "link", onclick: () => editModel(m) }, t("admin.models.change")),
          " ",
          el("button", {
            class: "link",
            onclick: () =>
              within($("#model-status"), async () => {
                await api("DELETE", `/api/v1/admin/models/${m.id}`);
                await load();
                document.dispatchEvent(new CustomEvent("sambung:models-changed"));
                return t("admin.removed", { name: m.name });
              }),
          }, t("admin.remove")),
        );
      }),
    );
    $("#model-edit-teams").replaceChildren(...teams.map((team) => el("option", { value: team.id }, team.name)));
  };
  const editModel = (m) => {
    const form = $("#model-edit");
    form.hidden = false;
    form.dataset.model = m.id;
    form.dataset.connection = m.connectionId;
    $("#model-edit-title").textContent = t("admin.models.editTitle", { name: m.name });
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
      return t("admin.models.saved");
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
      return t("admin.connections.added", { name: connection.name });
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
    $("#people-count").textContent = waiting.length
      ? plural("admin.people.countWaiting", total, { waiting: waiting.length })
      : plural("admin.people.count", total);
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
    const roles = { user: t("admin.role.user"), admin: t("admin.role.admin") };
    const role = el(
      "select",
      { "aria-label": t("admin.people.roleOf", { name: u.name }), disabled: self },
      ...["user", "admin"].map((r) => el("option", { value: r, selected: (admin ? "admin" : "user") === r }, roles[r])),
    );
    role.onchange = () =>
      act(t(role.value === "admin" ? "admin.people.nowAdmin" : "admin.people.nowUser", { name: u.name }), () =>
        api("POST", "/api/auth/admin/set-role", { userId: u.id, role: role.value }),
      );
    const facts = [`${u.name} <${u.email}>`];
    if (!u.approved) facts.push(t("admin.people.waiting"));
    if (u.banned) {
      const ban = { reason: u.banReason, until: when(u.banExpires) };
      facts.push(
        u.banReason
          ? t(u.banExpires ? "admin.people.bannedBecauseUntil" : "admin.people.bannedBecause", ban)
          : t(u.banExpires ? "admin.people.bannedUntil" : "admin.people.banned", ban),
      );
    }
    if (self) facts.push(t("admin.people.you"));
    return el(
      "li",
      { "data-user": u.id, class: u.approved ? "" : "waiting" },
      el("span", {}, `${facts.join(" · ")} `),
      role,
      " ",
      u.approved ? null : el("button", { onclick: () => act(t("admin.people.approved", { name: u.name }), () => api("POST", "/api/auth/admin/update-user", { userId: u.id, data: { approved: true } })) }, t("admin.people.approve")),
      self || admin ? null : u.banned
        ? el("button", { class: "link", onclick: () => act(t("admin.people.unbanned", { name: u.name }), () => api("POST", "/api/auth/admin/unban-user", { userId: u.id })) }, t("admin.people.unban"))
        : el("button", {
            class: "link",
            onclick: () => {
              const reason = prompt(t("admin.people.banPrompt", { name: u.name }));
              if (reason === null) return;
              act(t("admin.people.bannedDone", { name: u.name }), () => api("POST", "/api/auth/admin/ban-user", { userId: u.id, banReason: reason || undefined }));
            },
          }, t("admin.people.ban")),
      self || admin ? null : el("button", {
        class: "link",
        onclick: () => act("", async () => {
          await api("POST", "/api/auth/admin/impersonate-user", { userId: u.id });
          location.hash = "#/";
          location.reload();
        }),
      }, t("admin.people.actAs")),
      self ? null : el("button", {
        class: "link",
        onclick: () => {
          const password = prompt(t("admin.people.passwordPrompt", { name: u.name }));
          if (password) act(t("admin.people.passwordSet", { name: u.name }), () => api("POST", "/api/auth/admin/set-user-password", { userId: u.id, newPassword: password }));
        },
      }, t("admin.people.setPassword")),
      self ? null : el("button", {
        class: "link",
        onclick: () => {
          if (confirm(t("admin.people.confirmRemove", { name: u.name }))) act(t("admin.people.removed", { name: u.name }), () => api("POST", "/api/auth/admin/remove-user", { userId: u.id }));
        },
      }, t("admin.remove")),
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
      return t("admin.people.added", { email: body.email });
    });
    if (ok) $("#person-form").reset();
  };
  const loadInvites = async () => {
    const invites = (await api("GET", "/api/v1/admin/invites")).items;
    $("#invite-list").replaceChildren(
      ...invites.map((i) =>
        el("li", {}, `${i.email ? t("admin.invites.forEmail", { email: i.email, until: when(i.expiresAt) }) : t("admin.invites.forAnyone", { until: when(i.expiresAt) })} `, el("button", {
          class: "link",
          onclick: () => within($("#instance-invite-status"), async () => {
            await api("DELETE", `/api/v1/admin/invites/${i.id}`);
            await loadInvites();
            return t("admin.invites.withdrawn");
          }),
        }, t("admin.invites.withdraw"))),
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
        `${t(invite.mail === "sent" ? "admin.invites.mailed" : "admin.invites.passOn")} `,
        el("a", { href: invite.link, id: "instance-invite-url" }, invite.link),
      );
      await loadInvites();
      return "";
    });
  };
  await Promise.all([load(), loadInvites()]);
}

// ------------------------------------------------ settings and quotas

/** A mebibyte, the unit the file limits are set in. */
const MIB = 1 << 20;

/** The instance's default limits, and the catalogue key of each one's label. */
const QUOTA_FIELDS = [
  ["userTokensPerDay", "admin.quota.userTokensPerDay"],
  ["userRequestsPerDay", "admin.quota.userRequestsPerDay"],
  ["teamTokensPerDay", "admin.quota.teamTokensPerDay"],
  ["teamRequestsPerDay", "admin.quota.teamRequestsPerDay"],
  ["runningGenerations", "admin.quota.runningGenerations"],
  ["replyMaxOutputTokens", "admin.quota.replyMaxOutputTokens"],
  ["replyMaxSeconds", "admin.quota.replyMaxSeconds"],
  ["replyMaxBytes", "admin.quota.replyMaxBytes"],
];

/** The identity providers: the list (the environment's marked), and the form to add or change one. */
async function loadIdentityProviders() {
  const { providers, presets } = await api("GET", "/api/v1/admin/identity-providers");
  const preset = $("#idp-preset");
  if (preset.options.length === 1) for (const p of presets) preset.append(el("option", { value: p.id }, p.name));
  $("#idp-list").replaceChildren(
    ...providers.map((p) =>
      el(
        "li",
        {},
        el("strong", {}, p.name),
        ` (${p.config.id}) `,
        el("code", {}, p.redirectURI),
        " ",
        p.fromEnvironment
          ? el("span", { class: "note" }, t("admin.idp.fromEnvironment"))
          : el("button", { type: "button", class: "link", onclick: () => editProvider(p) }, t("admin.idp.edit")),
        p.fromEnvironment ? null : el("button", { type: "button", class: "link", onclick: () => removeProvider(p.config.id) }, t("admin.idp.remove")),
      ),
    ),
  );
}

function editProvider(p) {
  $("#idp-preset").value = p.config.preset || "";
  $("#idp-id").value = p.config.id;
  $("#idp-name").value = p.config.name || "";
  $("#idp-issuer").value = p.config.issuer || "";
  $("#idp-client-id").value = p.config.clientId;
  $("#idp-client-secret").value = "";
  $("#idp-domains").value = (p.config.allowedEmailDomains || []).join(", ");
  $("#idp-admin-claim").value = p.config.adminClaim ? `${p.config.adminClaim.claim}=${p.config.adminClaim.value}` : "";
  $("#idp-id").focus();
}

async function removeProvider(id) {
  const done = await within($("#idp-status"), async () => {
    await api("DELETE", `/api/v1/admin/identity-providers/${encodeURIComponent(id)}`);
    return t("admin.idp.removed");
  });
  if (done) await loadIdentityProviders();
}

$("#idp-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const claim = $("#idp-admin-claim").value.trim();
  const [claimName, ...claimValue] = claim.split("=");
  const body = {
    name: $("#idp-name").value.trim() || null,
    preset: $("#idp-preset").value || null,
    issuer: $("#idp-issuer").value.trim() || null,
    clientId: $("#idp-client-id").value.trim(),
    clientSecret: $("#idp-client-secret").value,
    allowedEmailDomains: $("#idp-domains").value.split(",").map((d) => d.trim()).filter(Boolean),
    adminClaim: claim ? { claim: claimName.trim(), value: claimValue.join("=").trim() } : null,
  };
  const done = await within($("#idp-status"), async () => {
    const saved = await api("PUT", `/api/v1/admin/identity-providers/${encodeURIComponent($("#idp-id").value.trim())}`, body);
    return t("admin.idp.saved", { uri: saved.redirectURI });
  });
  // What was typed stays when it fails; saved, the secret leaves the form.
  if (done) {
    $("#idp-client-secret").value = "";
    await loadIdentityProviders();
  }
});

/** Every person's access tokens, newest first; any can be revoked here. */
async function loadAllTokens() {
  const tokens = await api("GET", "/api/v1/admin/tokens");
  $("#admin-token-list").replaceChildren(
    ...(tokens.length ? tokens : [null]).map((token) =>
      token
        ? el("li", { "data-token": token.id }, `${token.userEmail}: ${token.name} ••••${token.last4} · ${token.lastUsedAt ? t("admin.tokens.used", { when: when(token.lastUsedAt) }) : t("admin.tokens.unused")} `,
            el("button", { class: "link", onclick: () => within($("#admin-token-status"), async () => {
              if (!confirm(t("admin.tokens.confirmRevoke", { name: token.name, email: token.userEmail }))) return "";
              await api("DELETE", `/api/v1/admin/tokens/${token.id}`);
              await loadAllTokens();
              return t("admin.tokens.revoked", { name: token.name });
            }) }, t("admin.tokens.revoke")))
        : el("li", { class: "note" }, t("admin.tokens.none")),
    ),
  );
}

async function openSettingsPanel() {
  loadIdentityProviders().catch((error) => ($("#idp-status").textContent = error.message));
  const { settings, signupFromEnvironment, mailConfigured } = await api("GET", "/api/v1/admin/settings");
  $("#setting-signup").value = settings.signup;
  $("#setting-signup").disabled = signupFromEnvironment;
  $("#setting-signup-note").hidden = !signupFromEnvironment;
  $("#setting-domains").value = settings.allowedEmailDomains.join(", ");
  $("#setting-personal-keys").checked = settings.personalKeys;
  $("#setting-access-tokens").checked = settings.accessTokens;
  loadAllTokens().catch((error) => ($("#admin-token-status").textContent = error.message));
  $("#setting-verification").checked = settings.emailVerification;
  $("#setting-two-factor").checked = settings.requireTwoFactor;
  $("#setting-password-sign-in").checked = settings.passwordSignIn;
  $("#setting-retention").value = settings.auditRetentionDays;
  $("#setting-mail-note").hidden = mailConfigured;
  const mebibytes = (n) => (n == null ? "" : String(Math.round(n / MIB)));
  $("#quota-defaults").replaceChildren(
    ...QUOTA_FIELDS.map(([key, label]) =>
      el("label", {}, t(label), el("input", { type: "number", min: "0", step: "1", "data-quota": key, value: settings.quotas[key] ?? "", placeholder: t("admin.quota.noLimit") })),
    ),
    // What people may attach: in MiB here, bytes in the API.
    el("label", {}, t("admin.files.maxFile"), el("input", { type: "number", min: "1", max: "100", step: "1", id: "files-max-file", required: true, value: mebibytes(settings.files.maxFileBytes) })),
    el("label", {}, t("admin.files.perMessage"), el("input", { type: "number", min: "1", max: "100", step: "1", id: "files-per-message", required: true, value: settings.files.maxFilesPerMessage })),
    el("label", {}, t("admin.files.storage"), el("input", { type: "number", min: "0", step: "1", id: "files-storage", value: mebibytes(settings.files.userStorageBytes), placeholder: t("admin.quota.noLimit") })),
  );
  $("#settings-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#settings-form-status"), async () => {
      const quotas = {};
      for (const input of document.querySelectorAll("#quota-defaults input[data-quota]")) quotas[input.dataset.quota] = input.value === "" ? null : Number(input.value);
      const body = {
        allowedEmailDomains: $("#setting-domains").value.split(",").map((d) => d.trim()).filter(Boolean),
        personalKeys: $("#setting-personal-keys").checked,
        accessTokens: $("#setting-access-tokens").checked,
        emailVerification: $("#setting-verification").checked,
        requireTwoFactor: $("#setting-two-factor").checked,
        passwordSignIn: $("#setting-password-sign-in").checked,
        auditRetentionDays: Number($("#setting-retention").value),
        quotas,
        files: {
          maxFileBytes: Number($("#files-max-file").value) * MIB,
          maxFilesPerMessage: Number($("#files-per-message").value),
          userStorageBytes: $("#files-storage").value === "" ? null : Number($("#files-storage").value) * MIB,
        },
      };
      if (!signupFromEnvironment) body.signup = $("#setting-signup").value;
      await api("PATCH", "/api/v1/admin/settings", body);
      return t("admin.settings.saved");
    });
  };
  const loadQuotas = async () => {
    const quotas = (await api("GET", "/api/v1/admin/quotas")).items;
    $("#quota-list").replaceChildren(
      ...quotas.map((q) => {
        const limits = {
          subject: q.subject,
          tokens: q.tokensPerDay == null ? t("admin.quotas.defaultTokens") : plural("admin.quotas.tokens", q.tokensPerDay),
          replies: q.requestsPerDay == null ? t("admin.quotas.defaultReplies") : plural("admin.quotas.replies", q.requestsPerDay),
          running: q.runningGenerations == null ? t("admin.quotas.default") : number(q.runningGenerations),
        };
        return el("li", {}, t(q.userId ? "admin.quotas.personLimits" : "admin.quotas.teamLimits", limits));
      }),
    );
  };
  $("#quota-form").onsubmit = async (event) => {
    event.preventDefault();
    await within($("#quota-status"), async () => {
      const who = $("#quota-who").value.trim();
      const limit = (input) => (input.value === "" ? null : Number(input.value));
      const body = { tokensPerDay: limit($("#quota-tokens")), requestsPerDay: limit($("#quota-requests")) };
      if (who.includes("@")) {
        const found = await api("GET", `/api/auth/admin/list-users?${new URLSearchParams({ filterField: "email", filterValue: who.toLowerCase() })}`);
        if (!found.users.length) throw new Error(t("admin.quotas.noAccount", { email: who }));
        body.userId = found.users[0].id;
        body.runningGenerations = limit($("#quota-running"));
      } else {
        const team = (await api("GET", "/api/v1/teams?limit=200")).items.find((candidate) => candidate.slug === who || candidate.name === who);
        if (!team) throw new Error(t("admin.quotas.unknownSubject"));
        body.teamId = team.id;
      }
      await api("PUT", "/api/v1/admin/quotas", body);
      await loadQuotas();
      return t("admin.quotas.saved", { who });
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
    else {
      const headings = [t("admin.audit.when"), t("admin.audit.who"), t("admin.audit.what"), t("admin.audit.on"), t("admin.audit.from"), t("admin.audit.more")];
      $("#audit-table").replaceChildren(el("tr", {}, ...headings.map((h) => el("th", { scope: "col" }, h))), ...rows);
    }
    $("#audit-more").hidden = !cursor;
    return page.items.length ? "" : t("admin.audit.none");
  };
  $("#audit-action").onchange = () => within($("#audit-status"), () => load(false));
  $("#audit-more").onclick = () => within($("#audit-status"), () => load(true));
  await within($("#audit-status"), () => load(false));
}

async function openMail() {
  const mail = (await api("GET", "/api/v1/admin/mail")).items;
  const kinds = {
    "reset-password": t("admin.mail.kind.resetPassword"),
    "verify-email": t("admin.mail.kind.verifyEmail"),
    "team-invite": t("admin.mail.kind.teamInvite"),
    "instance-invite": t("admin.mail.kind.instanceInvite"),
  };
  const statuses = { sent: t("admin.mail.status.sent"), failed: t("admin.mail.status.failed"), unsent: t("admin.mail.status.unsent") };
  $("#mail-list").replaceChildren(
    ...mail.map((m) => {
      const line = { when: when(m.createdAt), kind: kinds[m.kind] || m.kind, recipient: m.recipient, status: statuses[m.status] || m.status, error: m.error };
      return el(
        "li",
        {},
        `${t(m.error ? "admin.mail.lineError" : "admin.mail.line", line)} `,
        m.link ? el("a", { href: m.link }, t("admin.mail.link")) : null,
        m.link ? el("button", { class: "link", onclick: (event) => copyLink(m.link, event.target) }, t("admin.mail.copy")) : null,
      );
    }),
  );
  $("#mail-empty").hidden = mail.length > 0;
}

/** Put a link on the clipboard, and say so on the button that did it. */
async function copyLink(link, button) {
  try {
    await navigator.clipboard.writeText(new URL(link, location.href).href);
    button.textContent = t("admin.mail.copied");
  } catch {
    button.textContent = t("admin.mail.copyByHand");
  }
}
