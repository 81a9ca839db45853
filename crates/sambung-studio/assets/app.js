// SambungChat Studio: one page, no framework, nothing fetched but Studio's own API.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  schema: null,
  counts: [],
  table: null, // the introspected table being viewed
  view: { sort: null, filters: [] },
  cursors: [null], // the cursor each visited page starts after
  pageIndex: 0,
  page: null,
  selected: new Set(), // row indexes of the current page
};

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const isJson = (response.headers.get('content-type') || '').includes('json');
  const data = isJson ? await response.json() : { error: await response.text() };
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.info = data;
    error.status = response.status;
    throw error;
  }
  return data;
}

// An error as the user reads it: the explanation, then PostgreSQL's own words.
function errorBox(error, extra) {
  const info = (error && error.info) || { error: String(error && error.message || error) };
  const box = el('div', { className: 'error', role: 'alert' }, el('strong', {}, info.error));
  if (info.message && info.message !== info.error) box.append(el('span', { className: 'pg' }, 'PostgreSQL: ' + info.message));
  if (info.detail) box.append(el('span', { className: 'pg' }, info.detail));
  if (info.hint) box.append(el('span', { className: 'pg' }, 'Hint: ' + info.hint));
  if (extra) box.append(extra);
  return box;
}

function showMessage(node) {
  const message = $('message');
  message.replaceChildren();
  if (node) message.append(node);
}

function isJsonType(type) {
  return type === 'json' || type === 'jsonb';
}

// A cell's content: NULL apart from '', JSON pretty-printed.
function renderValue(value, column) {
  if (value === null) return el('span', { className: 'null' }, 'NULL');
  if (column && isJsonType(column.data_type)) {
    try {
      return el('pre', { className: 'json' }, JSON.stringify(JSON.parse(value), null, 2));
    } catch (_) {
      return value;
    }
  }
  return value;
}

function formatCount(entry) {
  if (!entry) return '';
  const n = entry.rows.toLocaleString('en');
  return entry.exact ? n : '≈ ' + n;
}

// ---------------------------------------------------------------- tabs

function showTab(name) {
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.dataset.tab === name);
  $('data-view').hidden = name !== 'data';
  $('sql-view').hidden = name !== 'sql';
  $('schema-view').hidden = name !== 'schema';
  if (name === 'schema') renderSchema();
  if (name === 'sql') $('sql-input').focus();
}

// ---------------------------------------------------------------- tables

async function loadTables() {
  state.counts = await api('GET', '/api/tables');
  const list = $('table-list');
  list.replaceChildren(el('h3', {}, 'Tables'));
  for (const entry of state.counts) {
    list.append(el('a', {
      href: '#' + entry.name,
      'data-table': entry.name,
      className: state.table && state.table.name === entry.name ? 'active' : null,
      onclick: (event) => { event.preventDefault(); openTable(entry.name, []); },
    }, el('span', {}, entry.name), el('span', { className: 'count' }, formatCount(entry))));
  }
}

async function loadSchema() {
  state.schema = await api('GET', '/api/schema');
}

function tableByName(name) {
  return state.schema.tables.find((t) => t.name === name);
}

async function openTable(name, filters) {
  if (!state.schema || !tableByName(name)) await loadSchema();
  const table = tableByName(name);
  if (!table) {
    showMessage(errorBox('There is no table named ' + name));
    return;
  }
  showTab('data');
  state.table = table;
  state.view = { sort: null, filters: filters || [] };
  for (const link of document.querySelectorAll('#table-list a')) link.classList.toggle('active', link.dataset.table === name);
  $('table-title').textContent = name;
  $('table-count').textContent = formatCount(state.counts.find((c) => c.name === name)) + ' rows';
  $('toolbar').hidden = false;
  $('insert-form').hidden = true;
  $('confirm').hidden = true;
  const columnSelect = $('filter-column');
  columnSelect.replaceChildren(...table.columns.map((c) => el('option', { value: c.name }, c.name)));
  showMessage(null);
  await reload();
}

function resetPaging() {
  state.cursors = [null];
  state.pageIndex = 0;
}

async function reload() {
  resetPaging();
  await loadPage();
}

function viewFor(after) {
  const view = { filters: state.view.filters };
  if (state.view.sort) view.sort = state.view.sort;
  if (after) view.after = after;
  return view;
}

function viewQuery(view) {
  return 'view=' + encodeURIComponent(JSON.stringify(view));
}

async function countRows() {
  $('row-count').textContent = 'Counting…';
  try {
    const counted = await api('GET', `/api/tables/${encodeURIComponent(state.table.name)}/count?${viewQuery(viewFor(null))}`);
    const matching = state.view.filters.length ? ' match the filters' : ' in all';
    $('row-count').textContent = counted.rows.toLocaleString('en') + (counted.rows === 1 ? ' row' : ' rows') + matching;
  } catch (error) {
    $('row-count').textContent = '';
    showMessage(errorBox(error));
  }
}

async function loadPage() {
  const table = state.table;
  $('row-count').textContent = '';
  renderFilters();
  updateExportLinks();
  const after = state.cursors[state.pageIndex];
  try {
    state.page = await api('GET', `/api/tables/${encodeURIComponent(table.name)}/rows?${viewQuery(viewFor(after))}`);
  } catch (error) {
    state.page = null;
    $('grid').replaceChildren();
    $('pager').hidden = true;
    showMessage(errorBox(error));
    return;
  }
  state.selected.clear();
  renderGrid();
}

function updateExportLinks() {
  const base = `/api/tables/${encodeURIComponent(state.table.name)}/export?${viewQuery(viewFor(null))}`;
  $('export-csv').href = base + '&format=csv';
  $('export-json').href = base + '&format=json';
}

// ---------------------------------------------------------------- filters and sort

const OPS = { eq: '=', ne: '≠', lt: '<', gt: '>', contains: 'contains', is_null: 'is NULL', not_null: 'is not NULL' };

function renderFilters() {
  const box = $('filters');
  box.replaceChildren();
  state.view.filters.forEach((filter, index) => {
    const text = `${filter.column} ${OPS[filter.op]}` + (filter.value === undefined || filter.value === null ? '' : ` ${JSON.stringify(filter.value)}`);
    box.append(el('span', { className: 'chip' }, text, el('button', {
      type: 'button', title: 'Remove this filter', 'aria-label': 'Remove filter ' + text,
      onclick: () => { state.view.filters.splice(index, 1); reload(); },
    }, '×')));
  });
}

function addFilter() {
  const op = $('filter-op').value;
  const filter = { column: $('filter-column').value, op };
  if (op !== 'is_null' && op !== 'not_null') filter.value = $('filter-value').value;
  state.view.filters.push(filter);
  $('filter-value').value = '';
  reload();
}

function cycleSort(column) {
  const sort = state.view.sort;
  if (!sort || sort.column !== column) state.view.sort = { column, descending: false };
  else if (!sort.descending) state.view.sort = { column, descending: true };
  else state.view.sort = null;
  reload();
}

// ---------------------------------------------------------------- the grid

// The single-column foreign key a column belongs to, if any.
function foreignKeyOf(table, column) {
  return table.foreign_keys.find((fk) => fk.columns.length === 1 && fk.columns[0] === column);
}

function renderGrid() {
  const table = state.table;
  const page = state.page;
  const grid = $('grid');
  const head = el('tr', {}, el('th', {}, el('input', {
    type: 'checkbox', 'aria-label': 'Select all rows',
    onchange: (event) => {
      for (const box of grid.querySelectorAll('tbody input[type=checkbox]')) {
        box.checked = event.target.checked;
        box.dispatchEvent(new Event('change'));
      }
    },
  })));
  for (const column of table.columns) {
    const sort = state.view.sort;
    const arrow = sort && sort.column === column.name ? (sort.descending ? ' ▼' : ' ▲') : '';
    const pk = table.primary_key && table.primary_key.columns.includes(column.name)
      ? el('span', { className: 'pk-badge', title: 'Primary key' }, 'PK') : null;
    head.append(el('th', {
      className: 'sortable', 'data-column': column.name, title: 'Sort by ' + column.name,
      onclick: () => cycleSort(column.name),
    }, column.name, pk, arrow, el('span', { className: 'type' }, column.data_type + (column.nullable ? '' : ' not null'))));
  }
  const body = el('tbody');
  page.rows.forEach((values, rowIndex) => {
    const tr = el('tr', { 'data-row': rowIndex }, el('td', {}, el('input', {
      type: 'checkbox', 'aria-label': 'Select row',
      onchange: (event) => {
        if (event.target.checked) state.selected.add(rowIndex); else state.selected.delete(rowIndex);
        $('delete-selected').disabled = state.selected.size === 0;
      },
    })));
    table.columns.forEach((column, columnIndex) => tr.append(renderCell(rowIndex, column, values[columnIndex])));
    body.append(tr);
  });
  grid.replaceChildren(el('thead', {}, head), body);
  $('delete-selected').disabled = true;

  const first = state.pageIndex * 50 + 1; // pages hold 50 rows
  $('pager').hidden = false;
  $('page-info').textContent = page.rows.length === 0
    ? 'No rows' + (state.view.filters.length ? ' match the filters' : '')
    : `Rows ${first.toLocaleString('en')}–${(first + page.rows.length - 1).toLocaleString('en')} · ${page.elapsed_ms.toFixed(1)} ms`;
  $('page-prev').disabled = state.pageIndex === 0;
  $('page-next').disabled = !page.next;
}

function isTruncated(rowIndex, column) {
  const cut = state.page.truncated[rowIndex] || [];
  return cut.includes(state.table.columns.indexOf(column));
}

function renderCell(rowIndex, column, value) {
  const table = state.table;
  const editable = !state.info.read_only && table.primary_key && !column.generated;
  const td = el('td', {
    'data-column': column.name,
    className: editable ? 'editable' : null,
    title: value === null ? 'NULL' : (value.length > 40 ? value : null),
    ondblclick: editable ? () => openEditor(td, rowIndex, column) : null,
  });
  const fk = foreignKeyOf(table, column.name);
  if (fk && value !== null) {
    td.append(el('a', {
      className: 'fk', href: '#' + fk.referenced_table, title: `Open the ${fk.referenced_table} row`,
      onclick: (event) => {
        event.preventDefault();
        openTable(fk.referenced_table, [{ column: fk.referenced_columns[0], op: 'eq', value }]);
      },
    }, value));
  } else {
    td.append(renderValue(value, column));
  }
  if (isTruncated(rowIndex, column)) {
    td.append(el('span', { className: 'truncated', title: 'Only the start is shown: open the cell for all of it' }, '…'));
  }
  return td;
}

// ---------------------------------------------------------------- editing

async function openEditor(td, rowIndex, column) {
  if (td.classList.contains('editing')) return;
  const columnIndex = state.table.columns.indexOf(column);
  if (isTruncated(rowIndex, column)) {
    // The page holds the start of a long value: edit the whole of it.
    try {
      const query = `key=${encodeURIComponent(JSON.stringify(state.page.keys[rowIndex]))}&column=${encodeURIComponent(column.name)}`;
      const full = await api('GET', `/api/tables/${encodeURIComponent(state.table.name)}/cell?${query}`);
      state.page.rows[rowIndex][columnIndex] = full.value;
      state.page.truncated[rowIndex] = state.page.truncated[rowIndex].filter((i) => i !== columnIndex);
    } catch (error) {
      showMessage(errorBox(error));
      return;
    }
  }
  const seen = state.page.rows[rowIndex][columnIndex];
  const input = el('textarea', { 'aria-label': 'New value of ' + column.name });
  input.value = seen === null ? '' : (isJsonType(column.data_type) ? prettyJson(seen) : seen);
  const problem = el('div');
  const close = () => td.replaceWith(renderCell(rowIndex, column, seen));
  const save = async (value) => {
    try {
      const stored = await api('PATCH', `/api/tables/${encodeURIComponent(state.table.name)}/rows`, {
        key: state.page.keys[rowIndex], column: column.name, seen, value,
      });
      state.page.rows[rowIndex] = stored.values;
      state.page.keys[rowIndex] = stored.key;
      state.page.truncated[rowIndex] = [];
      const tr = td.parentElement;
      const fresh = renderCell(rowIndex, column, stored.values[state.table.columns.indexOf(column)]);
      tr.replaceChild(fresh, td);
      showMessage(el('p', { className: 'ok' }, `Saved ${column.name}.`));
    } catch (error) {
      const extra = error.info && 'current' in error.info
        ? el('span', { className: 'pg' }, 'It now holds: ', error.info.current === null ? 'NULL' : error.info.current)
        : null;
      problem.replaceChildren(errorBox(error, extra));
    }
  };
  const editor = el('div', { className: 'editor' }, input, el('div', { className: 'row' },
    el('button', { type: 'button', className: 'save', onclick: () => save(input.value) }, 'Save'),
    column.nullable ? el('button', { type: 'button', className: 'set-null', onclick: () => save(null) }, 'Set NULL') : null,
    el('button', { type: 'button', className: 'cancel', onclick: close }, 'Cancel')), problem);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) save(input.value);
    if (event.key === 'Escape') close();
  });
  td.classList.add('editing');
  td.replaceChildren(editor);
  input.focus();
}

function prettyJson(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return text; }
}

function openInsertForm() {
  const form = $('insert-form');
  const table = state.table;
  form.replaceChildren(el('h3', {}, 'New row in ' + table.name),
    el('p', { className: 'muted' }, 'Columns left on "default" take their default value.'));
  for (const column of table.columns.filter((c) => !c.generated)) {
    const mode = el('select', { name: 'mode-' + column.name, 'aria-label': 'How to set ' + column.name },
      el('option', { value: 'default' }, 'default'),
      el('option', { value: 'value' }, 'value'),
      column.nullable ? el('option', { value: 'null' }, 'NULL') : null);
    const input = el('input', { name: column.name, 'aria-label': 'Value of ' + column.name, placeholder: column.default || (column.nullable ? 'NULL' : '') });
    input.addEventListener('input', () => { mode.value = 'value'; });
    form.append(el('div', { className: 'field', 'data-column': column.name },
      el('label', {}, column.name, el('span', { className: 'muted' }, ' ' + column.data_type)), mode, input,
      el('div', { className: 'hint' })));
  }
  const problem = el('div', { id: 'insert-problem' });
  form.append(problem, el('div', { className: 'row' },
    el('button', { type: 'submit', id: 'insert-save' }, 'Insert'),
    el('button', { type: 'button', onclick: () => { form.hidden = true; } }, 'Cancel')));
  form.onsubmit = async (event) => {
    event.preventDefault();
    const values = {};
    for (const field of form.querySelectorAll('.field')) {
      const name = field.dataset.column;
      const mode = field.querySelector('select').value;
      if (mode === 'value') values[name] = field.querySelector('input').value;
      if (mode === 'null') values[name] = null;
      field.querySelector('.hint').replaceChildren();
    }
    problem.replaceChildren();
    try {
      await api('POST', `/api/tables/${encodeURIComponent(table.name)}/rows`, { values });
      form.hidden = true;
      showMessage(el('p', { className: 'ok' }, 'Row inserted.'));
      await loadTables();
      await reload();
    } catch (error) {
      const field = error.info && error.info.column && form.querySelector(`.field[data-column="${CSS.escape(error.info.column)}"] .hint`);
      (field || problem).replaceChildren(errorBox(error));
    }
  };
  form.hidden = false;
  $('confirm').hidden = true;
}

function askDelete() {
  const count = state.selected.size;
  $('confirm-text').textContent = `Delete ${count} row${count === 1 ? '' : 's'} from ${state.table.name}? This cannot be undone.`;
  $('confirm').hidden = false;
}

async function deleteSelected() {
  const keys = [...state.selected].map((index) => state.page.keys[index]);
  $('confirm').hidden = true;
  try {
    const done = await api('DELETE', `/api/tables/${encodeURIComponent(state.table.name)}/rows`, { keys });
    showMessage(el('p', { className: 'ok' }, `Deleted ${done.deleted} row${done.deleted === 1 ? '' : 's'}.`));
    await loadTables();
    await reload();
  } catch (error) {
    showMessage(errorBox(error));
  }
}

// ---------------------------------------------------------------- SQL console

const HISTORY_KEY = 'sambung-studio-history';

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY)) || []; } catch (_) { return []; }
}

function renderHistory() {
  $('history-list').replaceChildren(...history().map((entry) => el('li', {
    className: entry.ok ? null : 'failed', title: 'Put this back in the editor',
    onclick: () => { $('sql-input').value = entry.sql; },
  }, entry.sql)));
}

function resultGrid(columns, rows) {
  return el('table', { className: 'grid' },
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c)))),
    el('tbody', {}, rows.map((row) => el('tr', {}, row.map((v) => el('td', {}, renderValue(v)))))));
}

async function runSql() {
  const sql = $('sql-input').value;
  if (!sql.trim()) return;
  const output = $('sql-output');
  output.replaceChildren(el('p', { className: 'muted' }, 'Running…'));
  let run;
  try {
    run = await api('POST', '/api/sql', { sql });
  } catch (error) {
    output.replaceChildren(errorBox(error));
    return;
  }
  output.replaceChildren();
  run.results.forEach((result, index) => {
    const summary = result.columns.length
      ? (result.more_rows
        ? `more than ${result.rows.length} rows (the first ${result.rows.length} shown; add a LIMIT or a WHERE to see others)`
        : `${result.row_count} row${result.row_count === 1 ? '' : 's'}` + (result.rows.length < result.row_count ? ` (first ${result.rows.length} shown)` : ''))
      : `${result.rows_affected} row${result.rows_affected === 1 ? '' : 's'} affected`;
    const box = el('div', { className: 'result', 'data-index': index },
      el('h4', {}, el('code', {}, firstLine(result.statement)), ' — ', el('span', { className: 'summary' }, summary), ` · ${result.elapsed_ms.toFixed(1)} ms`));
    if (result.columns.length) box.append(resultGrid(result.columns, result.rows));
    output.append(box);
  });
  if (run.error) {
    const where = `Line ${run.error.at_line}` + (run.error.at_column ? `, column ${run.error.at_column}` : '');
    const lines = sql.split('\n');
    const caret = run.error.at_column
      ? el('span', { className: 'caret' }, lines[run.error.at_line - 1] + '\n' + ' '.repeat(run.error.at_column - 1) + '^')
      : el('code', { className: 'caret' }, firstLine(run.error.statement));
    output.append(errorBox({ info: run.error }, el('span', { className: 'pg where' }, where, caret)));
  }
  if (run.notice) output.append(el('p', { className: 'muted notice' }, run.notice));
  const entries = history();
  entries.unshift({ sql, ok: !run.error });
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(entries.slice(0, 50)));
  renderHistory();
  await loadTables();
}

function firstLine(text) {
  const line = text.split('\n').find((l) => l.trim() && !l.trim().startsWith('--')) || text;
  return line.length > 80 ? line.slice(0, 77) + '…' : line;
}

// ---------------------------------------------------------------- schema view

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Tables that reference nothing stand left; each other one right of what it references.
function ranks(tables) {
  const rank = new Map();
  const visit = (name, path) => {
    if (rank.has(name)) return rank.get(name);
    if (path.has(name)) return 0; // a cycle: break it here
    path.add(name);
    const table = tables.find((t) => t.name === name);
    let r = 0;
    for (const fk of table ? table.foreign_keys : []) {
      if (fk.referenced_table !== name) r = Math.max(r, visit(fk.referenced_table, path) + 1);
    }
    path.delete(name);
    rank.set(name, r);
    return r;
  };
  for (const t of tables) visit(t.name, new Set());
  return rank;
}

function drawDiagram(schema) {
  const BOX_W = 260, HEAD = 24, ROW = 17, GAP_X = 80, GAP_Y = 26, PAD = 20;
  const rank = ranks(schema.tables);
  const columnsX = [];
  const place = new Map();
  const heights = [];
  for (const table of schema.tables) {
    const r = rank.get(table.name);
    heights[r] = heights[r] || PAD;
    const height = HEAD + ROW * table.columns.length + 6;
    place.set(table.name, { x: PAD + r * (BOX_W + GAP_X), y: heights[r], height });
    heights[r] += height + GAP_Y;
    columnsX[r] = true;
  }
  const width = PAD * 2 + columnsX.length * (BOX_W + GAP_X);
  const height = Math.max(...heights) + PAD;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Entity relationship diagram', id: 'er-diagram' });
  const rowY = (name, column) => {
    const table = schema.tables.find((t) => t.name === name);
    const index = Math.max(0, table.columns.findIndex((c) => c.name === column));
    return place.get(name).y + HEAD + ROW * index + ROW / 2 + 3;
  };
  const edges = svg('g', {});
  for (const table of schema.tables) {
    for (const fk of table.foreign_keys) {
      const from = place.get(table.name), to = place.get(fk.referenced_table);
      if (!to) continue;
      const y1 = rowY(table.name, fk.columns[0]), y2 = rowY(fk.referenced_table, fk.referenced_columns[0]);
      let d;
      if (fk.referenced_table === table.name) {
        const x = from.x + BOX_W;
        d = `M${x},${y1} C${x + 40},${y1} ${x + 40},${y2} ${x},${y2}`;
      } else if (to.x < from.x) {
        const x1 = from.x, x2 = to.x + BOX_W, mid = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      } else {
        const x1 = from.x + BOX_W, x2 = to.x, mid = Math.max(x1, x2) + 40;
        d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
      }
      edges.append(svg('path', { d, class: 'edge', 'data-from': table.name, 'data-to': fk.referenced_table }, undefined));
      edges.lastChild.append(svg('title', {}, `${table.name}.${fk.columns.join(', ')} → ${fk.referenced_table}.${fk.referenced_columns.join(', ')} (on delete ${fk.on_delete})`));
    }
  }
  for (const table of schema.tables) {
    const { x, y, height: h } = place.get(table.name);
    const group = svg('g', { class: 'entity', 'data-table': table.name });
    group.append(svg('rect', { x, y, width: BOX_W, height: h, rx: 4, class: 'box' }));
    group.append(svg('rect', { x, y, width: BOX_W, height: HEAD, rx: 4, class: 'box-head' }));
    const title = svg('text', { x: x + 8, y: y + 16, class: 'box-title' }, table.name);
    title.addEventListener('click', () => openTable(table.name, []));
    group.append(title);
    const pk = table.primary_key ? table.primary_key.columns : [];
    table.columns.forEach((column, index) => {
      const cy = y + HEAD + ROW * index + ROW - 2;
      const role = pk.includes(column.name) ? 'pk' : (table.foreign_keys.some((fk) => fk.columns.includes(column.name)) ? 'fkcol' : '');
      group.append(svg('text', { x: x + 8, y: cy, class: role }, column.name));
      group.append(svg('text', { x: x + BOX_W - 8, y: cy, 'text-anchor': 'end', fill: '#6b7485' }, shortType(column.data_type)));
    });
    root.append(group);
  }
  // Edges first: boxes are drawn over them, so lines never cross a table's text.
  root.prepend(edges);
  return root;
}

function shortType(type) {
  return type.replace('timestamp with time zone', 'timestamptz').replace('character varying', 'varchar');
}

async function renderSchema() {
  try {
    await loadSchema();
  } catch (error) {
    $('diagram').replaceChildren(errorBox(error));
    return;
  }
  const schema = state.schema;
  $('diagram').replaceChildren(drawDiagram(schema));
  $('schema-details').replaceChildren(...schema.tables.map((table) => {
    const constraints = [];
    if (table.primary_key) constraints.push(`${table.primary_key.name}: ${table.primary_key.definition}`);
    for (const c of [...table.uniques, ...table.checks, ...table.foreign_keys]) constraints.push(`${c.name}: ${c.definition}`);
    return el('div', { className: 'schema-table', id: 'schema-' + table.name },
      el('h3', {}, table.name),
      resultGrid(['column', 'type', 'nullable', 'default'], table.columns.map((c) => [
        c.name, c.data_type, c.nullable ? 'yes' : 'no', c.generated ? 'generated: ' + c.generated : c.default,
      ])),
      el('h4', {}, 'Indexes'), el('ul', {}, table.indexes.map((i) => el('li', {}, i.definition))),
      el('h4', {}, 'Constraints'), el('ul', {}, constraints.map((c) => el('li', {}, c))));
  }));
}

// ---------------------------------------------------------------- start

async function start() {
  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showTab(tab.dataset.tab));
  $('filter-add').addEventListener('click', addFilter);
  $('filter-value').addEventListener('keydown', (event) => { if (event.key === 'Enter') addFilter(); });
  $('filter-op').addEventListener('change', () => {
    const op = $('filter-op').value;
    $('filter-value').disabled = op === 'is_null' || op === 'not_null';
  });
  $('page-next').addEventListener('click', () => {
    if (!state.page || !state.page.next) return;
    state.cursors[state.pageIndex + 1] = state.page.next;
    state.pageIndex += 1;
    loadPage();
  });
  $('page-prev').addEventListener('click', () => {
    if (state.pageIndex === 0) return;
    state.pageIndex -= 1;
    loadPage();
  });
  $('count-rows').addEventListener('click', countRows);
  $('reload').addEventListener('click', loadPage);
  $('insert-open').addEventListener('click', openInsertForm);
  $('delete-selected').addEventListener('click', askDelete);
  $('confirm-yes').addEventListener('click', deleteSelected);
  $('confirm-no').addEventListener('click', () => { $('confirm').hidden = true; });
  $('sql-run').addEventListener('click', runSql);
  $('sql-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); runSql(); }
  });
  renderHistory();
  try {
    state.info = await api('GET', '/api/info');
    $('db-info').textContent = `${state.info.database} · PostgreSQL ${state.info.server_version}`;
    $('read-only-badge').hidden = !state.info.read_only;
    $('insert-open').hidden = state.info.read_only;
    $('delete-selected').hidden = state.info.read_only;
    $('sql-timeout').textContent = `Statement timeout: ${state.info.statement_timeout_ms / 1000} s.`;
    await Promise.all([loadTables(), loadSchema()]);
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted && tableByName(wanted)) await openTable(wanted, []);
  } catch (error) {
    $('table-list').replaceChildren(errorBox(error));
  }
  document.body.dataset.ready = 'true';
}

start();
