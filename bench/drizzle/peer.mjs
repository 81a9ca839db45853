#!/usr/bin/env node
// The Drizzle peer of `sambung bench`: the workloads of crates/sambung-bench/src/lib.rs run as
// the original SambungChat (github.com/sambunghub/sambung-chat, TypeScript: Drizzle ORM +
// postgres.js) runs them, against the same seeded database, with the same inputs.
//
//   node bench/drizzle/peer.mjs --url postgres://… --workload NAME --seconds S --concurrency C
//
// prints one JSON line per workload: {"workload","ops","seconds","ops_per_s","p50_ms","p95_ms",
// "p99_ms","errors"}, the fields of `sambung bench --json`. Each query below names the
// upstream file it is taken from; README.md lists where it departs from upstream and why.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { and, asc, desc, eq, ilike, inArray, isNull, or, sql } from 'drizzle-orm';
import { boolean, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';

// ---------------------------------------------------------------------------------------------
// Ids. Upstream gives every row an application-made id (`$defaultFn(() => generateULID())`,
// packages/db/src/schema/chat.ts); our ids are uuids, made time-ordered (v7) by the
// application, as `MessageId::new()` makes them on the Rust side.

function uuidv7() {
  const b = randomBytes(16);
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Tables: upstream's (packages/db/src/schema/{auth,chat,prompt}.ts and the team tables of
// docs/database.md), with our database's names and types (crates/sambung-schema/schema/*.sql).
// Columns only our edition has and upstream's code never reads (messages.content_tsv,
// parent_id, off_path; prompts.search_tsv; chats.archived_at) are left out, so `select()` reads
// what upstream's `select()` reads.

const tstz = (name) => timestamp(name, { withTimezone: true, mode: 'date' });

// Better Auth's `user`, our `users`.
const users = pgTable('users', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  email: text('email').notNull(),
  emailVerified: boolean('email_verified').notNull().default(false),
  image: text('image'),
  createdAt: tstz('created_at').defaultNow().notNull(),
  updatedAt: tstz('updated_at').defaultNow().notNull(),
});

const teamMembers = pgTable('team_members', {
  id: uuid('id').primaryKey().$defaultFn(uuidv7),
  teamId: uuid('team_id').notNull(),
  userId: uuid('user_id').notNull(),
  role: text('role').notNull().default('member'),
  joinedAt: tstz('joined_at').defaultNow().notNull(),
});

const chats = pgTable('chats', {
  id: uuid('id').primaryKey().$defaultFn(uuidv7),
  userId: uuid('user_id').notNull(),
  teamId: uuid('team_id'),
  folderId: uuid('folder_id'),
  title: text('title').notNull(),
  model: text('model').notNull(),
  provider: text('provider').notNull(),
  settings: jsonb('settings').default({}),
  metadata: jsonb('metadata').default({}),
  publicToken: text('public_token'),
  isPublic: boolean('is_public').default(false).notNull(),
  createdAt: tstz('created_at').defaultNow().notNull(),
  updatedAt: tstz('updated_at')
    .defaultNow()
    .$onUpdate(() => new Date())
    .notNull(),
  // Upstream's `pinned` boolean; ours records when.
  pinnedAt: tstz('pinned_at'),
});

const messages = pgTable('messages', {
  id: uuid('id').primaryKey().$defaultFn(uuidv7),
  chatId: uuid('chat_id').notNull(),
  role: text('role').notNull(),
  content: text('content').notNull(),
  metadata: jsonb('metadata'),
  createdAt: tstz('created_at').defaultNow().notNull(),
});

const prompts = pgTable('prompts', {
  id: uuid('id').primaryKey().$defaultFn(uuidv7),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  content: text('content').notNull(),
  variables: jsonb('variables').default([]).notNull(),
  category: text('category').default('general'),
  isPublic: boolean('is_public').default(false).notNull(),
  createdAt: tstz('created_at').defaultNow().notNull(),
  updatedAt: tstz('updated_at')
    .defaultNow()
    .$onUpdate(() => new Date())
    .notNull(),
});

const schema = { users, teamMembers, chats, messages, prompts };

// ---------------------------------------------------------------------------------------------
// The operations, as upstream writes them. `db` is `drizzle(postgres(url, { max }), { schema })`,
// upstream's documented connection (docs/database.md, "Database Connection").

// docs/database.md, "Chat Isolation": upstream's access rule for a chat already read.
async function canAccessChat(db, userId, chat) {
  // Personal chat: only owner
  if (!chat.teamId) {
    return chat.userId === userId;
  }
  // Team chat: check team membership
  const membership = await db.query.teamMembers.findFirst({
    where: and(eq(teamMembers.teamId, chat.teamId), eq(teamMembers.userId, userId)),
  });
  return !!membership;
}

// list-chats, default: docs/database.md, "Common Queries", "Get user's chats with message
// count" (what our list-chats returns: the chats and their counts). Personal chats only, as
// our workload lists (ChatScope::Personal): upstream has no teams in code.
async function listChatsCounted(db, userId) {
  return await db
    .select({
      chat: chats,
      messageCount: sql`count(${messages.id})`,
    })
    .from(chats)
    .leftJoin(messages, eq(chats.id, messages.chatId))
    .where(and(eq(chats.userId, userId), isNull(chats.teamId)))
    .groupBy(chats.id)
    .orderBy(desc(chats.updatedAt));
}

// list-chats with `--list-chats plain`: packages/api/src/routers/chat/crud.ts, `getAll`
// (no counts), personal chats only.
async function listChatsPlain(db, userId) {
  return await db
    .select()
    .from(chats)
    .where(and(eq(chats.userId, userId), isNull(chats.teamId)))
    .orderBy(desc(chats.updatedAt));
}

// chat-messages: packages/api/src/routers/chat/crud.ts, `getById`: the chat, then its
// messages; access decided by docs/database.md's canAccessChat (upstream's code checks the
// owner in the chat's WHERE, which no team member would pass).
async function chatMessages(db, userId, chatId) {
  // Get chat
  const chatResults = await db.select().from(chats).where(eq(chats.id, chatId));
  if (chatResults.length === 0) {
    return null;
  }
  const chat = chatResults[0];
  if (!(await canAccessChat(db, userId, chat))) {
    return null;
  }
  // Get messages for this chat
  const chatMessages = await db
    .select()
    .from(messages)
    .where(eq(messages.chatId, chatId))
    .orderBy(asc(messages.createdAt));
  return { ...chat, messages: chatMessages };
}

// append-message: packages/api/src/routers/message.ts, `create` (the chat, then the insert),
// then the bump of the chat's updatedAt that upstream does after saving messages
// (packages/api/src/lib/ai-complete-handler.ts, saveMessagesToChat; routers/ai.ts). No
// transaction, as upstream.
async function appendMessage(db, userId, chatId) {
  // Verify chat belongs to user (or, for a team chat, to its team)
  const chatResults = await db.select().from(chats).where(eq(chats.id, chatId));
  if (chatResults.length === 0 || !(await canAccessChat(db, userId, chatResults[0]))) {
    throw new Error('Chat not found');
  }
  // Create message
  const [message] = await db
    .insert(messages)
    .values({ chatId, role: 'user', content: 'benchmark message' })
    .returning();
  // Update chat timestamp
  await db.update(chats).set({ updatedAt: new Date() }).where(eq(chats.id, chatId));
  return message;
}

// can-access-chat: the chat as upstream reads it before deciding (crud.ts, message.ts), then
// docs/database.md's canAccessChat; whether the user may also change it (our workload's
// second answer: the chat's creator or a team admin) read off the same membership row.
async function canAccess(db, userId, chatId) {
  const chatResults = await db.select().from(chats).where(eq(chats.id, chatId));
  const chat = chatResults[0];
  if (!chat) {
    return null;
  }
  if (!chat.teamId) {
    return chat.userId === userId ? { read: true, change: true } : null;
  }
  const membership = await db.query.teamMembers.findFirst({
    where: and(eq(teamMembers.teamId, chat.teamId), eq(teamMembers.userId, userId)),
  });
  if (!membership) {
    return null;
  }
  return { read: true, change: membership.role === 'admin' || chat.userId === userId };
}

// search-prompts: the user's own prompts, packages/api/src/routers/prompt.ts `search`, then
// the public ones, the same file's `getPublicTemplates` (limit 20, its default): our workload
// searches both.
async function searchPrompts(db, userId, query) {
  const normalizedQuery = query.trim();
  const own = await db
    .select()
    .from(prompts)
    .where(
      and(
        eq(prompts.userId, userId),
        sql`(${prompts.name} ILIKE ${`%${normalizedQuery}%`} OR ${prompts.content} ILIKE ${`%${normalizedQuery}%`})`
      )
    )
    .orderBy(desc(prompts.updatedAt));
  const marketplace = await db
    .select({
      id: prompts.id,
      name: prompts.name,
      content: prompts.content,
      variables: prompts.variables,
      category: prompts.category,
      isPublic: prompts.isPublic,
      createdAt: prompts.createdAt,
      updatedAt: prompts.updatedAt,
      authorName: users.name,
    })
    .from(prompts)
    .innerJoin(users, eq(prompts.userId, users.id))
    .where(
      and(
        eq(prompts.isPublic, true),
        sql`(${prompts.name} ILIKE ${`%${normalizedQuery}%`} OR ${prompts.content} ILIKE ${`%${normalizedQuery}%`})`
      )
    )
    .orderBy(desc(prompts.createdAt))
    .limit(20)
    .offset(0);
  return { own, marketplace };
}

// search-messages: packages/api/src/routers/chat/search.ts, `search` with a query and
// searchInMessages (what the chat list's search box sends: apps/web/src/lib/components/
// secondary-sidebar/chat-list/useChatListData.ts): the matching chats, then their matching
// messages, at most 3 a chat kept. The chats the user reads: upstream's `eq(chats.userId,
// userId)`, made our rule (personal chats, and those of the user's teams). The user's teams
// are looked up first and passed as a list, as upstream passes the chats' ids to the second
// query: written as an IN (subquery) inside the OR, PostgreSQL misjudges how many chats match
// and scans every message (about 160 ms rather than 5 at scale 1).
async function searchMessages(db, userId, query) {
  const normalizedQuery = query.trim();
  const memberships = await db
    .select({ teamId: teamMembers.teamId })
    .from(teamMembers)
    .where(eq(teamMembers.userId, userId));
  const teamIds = memberships.map((m) => m.teamId);
  const conditions = [
    or(and(eq(chats.userId, userId), isNull(chats.teamId)), inArray(chats.teamId, teamIds)),
    sql`(${chats.title} ILIKE ${`%${normalizedQuery}%`} OR ${messages.content} ILIKE ${`%${normalizedQuery}%`})`,
  ];
  const results = await db
    .selectDistinct({
      id: chats.id,
      userId: chats.userId,
      title: chats.title,
      model: chats.model,
      folderId: chats.folderId,
      pinnedAt: chats.pinnedAt,
      createdAt: chats.createdAt,
      updatedAt: chats.updatedAt,
    })
    .from(chats)
    .innerJoin(messages, eq(chats.id, messages.chatId))
    .where(and(...conditions))
    // upstream: desc(chats.pinned), desc(chats.updatedAt)
    .orderBy(sql`${chats.pinnedAt} desc nulls last`, desc(chats.updatedAt));

  let resultsWithSnippets = results;
  if (results.length > 0) {
    const chatIds = results.map((r) => r.id);
    const matchingMessages = await db
      .select({
        id: messages.id,
        chatId: messages.chatId,
        role: messages.role,
        content: messages.content,
        createdAt: messages.createdAt,
      })
      .from(messages)
      .where(and(inArray(messages.chatId, chatIds), ilike(messages.content, `%${normalizedQuery}%`)))
      .orderBy(asc(messages.createdAt));
    const messagesByChat = new Map();
    for (const msg of matchingMessages) {
      if (!messagesByChat.has(msg.chatId)) {
        messagesByChat.set(msg.chatId, []);
      }
      const chatMessages = messagesByChat.get(msg.chatId);
      if (chatMessages.length < 3) {
        chatMessages.push(msg);
      }
    }
    resultsWithSnippets = results.map((chat) => ({
      ...chat,
      matchingMessages: messagesByChat.get(chat.id) || [],
    }));
  }
  return resultsWithSnippets;
}

// ---------------------------------------------------------------------------------------------
// Search words: sambung_db::seed::vocabulary().band(band, 50), computed as
// crates/sambung-db/src/seed/text.rs computes it.

const VOCABULARY_SIZE = 25_000;
const FREQUENT = [
  'review', 'code', 'essay', 'plan', 'summary', 'translate', 'explain', 'python', 'rust',
  'postgres', 'database', 'query', 'index', 'table', 'column', 'write', 'story', 'poem', 'email',
  'letter', 'report', 'meeting', 'notes', 'agenda', 'bug', 'fix', 'test', 'deploy', 'server',
  'client', 'browser', 'network', 'security', 'password', 'token', 'session', 'user', 'team',
  'chat', 'message', 'prompt', 'model', 'answer', 'question', 'idea', 'draft', 'outline',
  'chapter', 'section', 'paragraph', 'sentence', 'word', 'grammar', 'style', 'tone', 'voice',
  'audience', 'market', 'product', 'price', 'customer', 'support', 'ticket', 'refund', 'order',
  'invoice', 'payment', 'budget', 'forecast', 'sales', 'growth', 'strategy', 'vision', 'mission',
  'goal', 'task', 'project', 'deadline', 'schedule', 'calendar', 'travel', 'hotel', 'flight',
  'recipe', 'cooking', 'garden', 'music', 'movie', 'book', 'game', 'sport', 'health', 'fitness',
  'jakarta', 'bandung', 'nasi', 'goreng', 'kopi', 'selamat', 'pagi', 'terima', 'kasih',
  'belajar', 'bahasa',
];

function vocabulary() {
  const CONSONANTS = 'bdfghjklmnprstw';
  const VOWELS = 'aeiou';
  const syllables = CONSONANTS.length * VOWELS.length;
  const space = syllables ** 3;
  const frequent = new Set(FREQUENT);
  const words = [...FREQUENT];
  for (let n = 0; n < space && words.length < VOCABULARY_SIZE; n++) {
    let k = (n * 7_919) % space;
    let word = '';
    for (let j = 0; j < 3; j++) {
      const s = k % syllables;
      k = Math.floor(k / syllables);
      word += CONSONANTS[Math.floor(s / VOWELS.length)] + VOWELS[s % VOWELS.length];
    }
    if (!frequent.has(word)) {
      words.push(word);
    }
  }
  return words;
}

const BANDS = {
  common: [0, 10],
  middling: [100, 1_000],
  rare: [10_000, VOCABULARY_SIZE],
};

function band(words, name, count) {
  const [start, end] = BANDS[name];
  const step = Math.max(Math.floor((end - start) / Math.max(count, 1)), 1);
  const out = [];
  for (let rank = start; rank < end && out.length < count; rank += step) {
    out.push(words[rank]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Inputs: Inputs::sample's queries, verbatim.

async function sampleInputs(client) {
  const personal = await client.unsafe(
    "SELECT user_id, id FROM chats WHERE team_id IS NULL AND title <> 'Sample Chat' ORDER BY id LIMIT 5000"
  );
  const team = await client.unsafe(
    `SELECT m.user_id, c.id FROM chats c JOIN team_members m ON m.team_id = c.team_id
      WHERE m.user_id <> c.user_id ORDER BY c.id, m.user_id LIMIT 5000`
  );
  if (personal.length < 10 || team.length === 0) {
    throw new Error('no synthetic dataset in this database (load one: `sambung db seed --scale 1`)');
  }
  const personalChats = personal.map((r) => [r.user_id, r.id]);
  const teamChats = team.map((r) => [r.user_id, r.id]);
  // Sorted and deduplicated as the Rust side does (lowercase hex sorts as the uuid's bytes).
  const users = [...new Set(personalChats.map(([u]) => u))].sort();
  const words = vocabulary();
  return {
    users,
    personalChats,
    teamChats,
    words: Object.fromEntries(Object.keys(BANDS).map((b) => [b, band(words, b, 50)])),
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads: the i-th operation draws its inputs as run_once does.

const WORKLOADS = [
  'list-chats',
  'chat-messages',
  'append-message',
  'search-prompts-common',
  'search-prompts-middling',
  'search-prompts-rare',
  'can-access-chat',
  'search-messages-common',
  'search-messages-middling',
  'search-messages-rare',
];

function parseWorkloads(name) {
  if (name === 'all') {
    return WORKLOADS;
  }
  const found = WORKLOADS.filter(
    (w) => w === name || (w.startsWith(`${name}-`) && w.slice(name.length + 1) in BANDS)
  );
  if (found.length === 0) {
    throw new Error(`unknown workload ${JSON.stringify(name)} (one of: ${WORKLOADS.join(', ')}, all)`);
  }
  return found;
}

function operation(workload, options) {
  const listChats = options.listChats === 'plain' ? listChatsPlain : listChatsCounted;
  const pick = (list, i) => list[i % list.length];
  const search = workload.match(/^search-(prompts|messages)-(\w+)$/);
  if (search) {
    const fn = search[1] === 'prompts' ? searchPrompts : searchMessages;
    const bandName = search[2];
    return (db, inputs, i) => fn(db, pick(inputs.users, i), pick(inputs.words[bandName], i));
  }
  switch (workload) {
    case 'list-chats':
      return (db, inputs, i) => listChats(db, pick(inputs.users, i));
    case 'chat-messages':
      return (db, inputs, i) => {
        const [owner, chat] = pick(inputs.personalChats, i);
        return chatMessages(db, owner, chat);
      };
    case 'append-message':
      return (db, inputs, i) => {
        const [owner, chat] = pick(inputs.personalChats, i);
        return appendMessage(db, owner, chat);
      };
    case 'can-access-chat':
      return (db, inputs, i) => {
        const [member, chat] = pick(inputs.teamChats, i);
        return canAccess(db, member, chat);
      };
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring, as `sample` in lib.rs: `concurrency` loops share one counter (across the warm-up
// and the measured part), each records the latency of its successful operations.

async function part(db, inputs, op, concurrency, seconds, counter, errorsSeen) {
  const loops = Array.from({ length: Math.max(concurrency, 1) }, async () => {
    const deadline = performance.now() + seconds * 1000;
    const latencies = [];
    let errors = 0;
    while (performance.now() < deadline) {
      const i = counter.next++;
      const started = performance.now();
      try {
        await op(db, inputs, i);
        latencies.push(performance.now() - started);
      } catch (error) {
        errors += 1;
        if (errorsSeen.size < 3 && !errorsSeen.has(String(error))) {
          errorsSeen.add(String(error));
          console.error(`error: ${error?.stack ?? error}`);
        }
      }
    }
    return { latencies, errors };
  });
  const done = await Promise.all(loops);
  return {
    latencies: done.flatMap((d) => d.latencies),
    errors: done.reduce((n, d) => n + d.errors, 0),
  };
}

// The nearest-rank percentile (lib.rs `percentile`), in milliseconds; 0 of none.
function percentile(sorted, p) {
  if (sorted.length === 0) {
    return 0;
  }
  const index = Math.min(Math.max(Math.ceil(sorted.length * p), 1), sorted.length) - 1;
  return sorted[index];
}

async function measure(db, inputs, workload, options) {
  const op = operation(workload, options);
  const counter = { next: 0 };
  const errorsSeen = new Set();
  await part(db, inputs, op, options.concurrency, options.warmup, counter, errorsSeen);
  const started = performance.now();
  const { latencies, errors } = await part(
    db,
    inputs,
    op,
    options.concurrency,
    options.seconds,
    counter,
    errorsSeen
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    workload,
    ops: latencies.length,
    seconds,
    ops_per_s: latencies.length / seconds,
    p50_ms: percentile(latencies, 0.5),
    p95_ms: percentile(latencies, 0.95),
    p99_ms: percentile(latencies, 0.99),
    errors,
  };
}

// `--show`: what one operation of each workload returns (its first input), to check that the
// queries find what they should.
function summary(result) {
  if (result === null || result === undefined) {
    return result;
  }
  if (Array.isArray(result)) {
    return { rows: result.length };
  }
  if (result.messages) {
    return { chat: result.id, messages: result.messages.length };
  }
  if (result.own) {
    return { own: result.own.length, marketplace: result.marketplace.length };
  }
  if (result.chatId) {
    return { message: result.id, chat: result.chatId };
  }
  return result;
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.DATABASE_URL },
      workload: { type: 'string', default: 'all' },
      seconds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '0.5' },
      'list-chats': { type: 'string', default: 'counted' },
      show: { type: 'boolean', default: false },
      log: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.url) {
    console.error(
      'usage: node peer.mjs --url postgres://… [--workload NAME|all] [--seconds S] [--concurrency C]\n' +
        '                     [--warmup S] [--list-chats counted|plain] [--show] [--log]'
    );
    process.exit(values.help ? 0 : 2);
  }
  const options = {
    seconds: Number(values.seconds),
    concurrency: Number.parseInt(values.concurrency, 10),
    warmup: Number(values.warmup),
    listChats: values['list-chats'],
  };
  if (
    !(options.seconds > 0) ||
    !(options.concurrency >= 1) ||
    !(options.warmup >= 0) ||
    !['counted', 'plain'].includes(options.listChats)
  ) {
    throw new Error('--seconds > 0, --concurrency >= 1, --warmup >= 0, --list-chats counted|plain');
  }
  const workloads = parseWorkloads(values.workload);

  // One postgres.js client of `concurrency` connections, shared by every loop.
  const client = postgres(values.url, { max: options.concurrency, onnotice: () => {} });
  const db = drizzle(client, { schema, logger: values.log });
  try {
    const inputs = await sampleInputs(client);
    for (const workload of workloads) {
      if (values.show) {
        const result = await operation(workload, options)(db, inputs, 0);
        console.log(JSON.stringify({ workload, result: summary(result) }));
        continue;
      }
      console.log(JSON.stringify(await measure(db, inputs, workload, options)));
    }
  } finally {
    await client.end({ timeout: 5 });
  }
}

main().catch((error) => {
  console.error(`error: ${error?.message ?? error}`);
  process.exit(1);
});
