// The kontext-mock dashboard: one page over the mock's documented control plane
// (control.yaml), no library, no build step. It is also an example of driving the mock:
// every request below is one a test or a tool could send.
//
// Live updates: one event stream per tab (/_mock/events, read with fetch so that the
// admin token travels in a header, never in a URL), plus light polls for what publishes
// no event (a clock moved without status changes, a reset, the journal).
'use strict';

(() => {
  const TOKEN_KEY = 'kontext-mock.admin-token';
  const PAGE_SIZE = 100;
  // What a page left open keeps: the latest N events and journal entries, no more.
  const KEEP_EVENTS = 100;
  const KEEP_JOURNAL = 100;
  const POLL_MS = 500; // the clock; the journal every 2nd poll, the rest every 4th
  const RETRY_MS = [250, 500, 1000, 2000, 4000];

  const $ = (id) => document.getElementById(id);
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  };

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    tokenWaiters: [],
    apps: [],
    app: null,
    status: 'active',
    offset: 0,
    pageKey: '',
    sessionsTicket: 0,
    clock: null, // {now: ms, frozen, at: performance.now() when read}
    lastEventId: null,
    events: [],
    journalKey: '',
    journalOpen: new Set(),
    faultsKey: '',
    polls: 0,
    busy: new Set(),
    again: new Map(),
    refreshTimer: null,
    eventsTimer: null,
  };

  // -- talking to the mock ------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, body) {
      super(body && body.message ? `${body.error}: ${body.message}` : `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  function authHeaders() {
    return state.token ? { Authorization: `Bearer ${state.token}` } : {};
  }

  async function api(method, path, body) {
    const init = { method, headers: authHeaders(), cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (response.status === 401) askForToken(state.token ? 'The admin token was not accepted.' : '');
    if (!response.ok) throw new HttpError(response.status, data);
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, v);
    const text = q.toString();
    return text ? `?${text}` : '';
  }

  // Runs at most one request of a kind at a time, so polls never pile up on a slow mock;
  // asked again meanwhile, it runs once more when the first is done (nothing is missed).
  async function once(kind, work) {
    if (state.busy.has(kind)) {
      state.again.set(kind, work);
      return;
    }
    state.busy.add(kind);
    try {
      await work();
    } catch (error) {
      report(error);
    } finally {
      state.busy.delete(kind);
    }
    const next = state.again.get(kind);
    if (next) {
      state.again.delete(kind);
      await once(kind, next);
    }
  }

  function report(error) {
    if (error instanceof HttpError && error.status === 401) return; // the token form says it
    say(error.message || String(error), true);
  }

  function say(text, isError = false) {
    const message = $('message');
    message.textContent = text;
    message.classList.toggle('error', isError);
  }

  // -- the admin token (off loopback) ---------------------------------------------------

  function askForToken(why) {
    $('token-form').hidden = false;
    say(why || 'This mock needs its admin token (printed by kontext-mock serve).', Boolean(why));
    setLive('Waiting for the admin token', 'off');
  }

  function tokenGiven() {
    return state.token && $('token-form').hidden
      ? Promise.resolve()
      : new Promise((resolve) => state.tokenWaiters.push(resolve));
  }

  function useToken(event) {
    event.preventDefault();
    const input = $('token');
    state.token = input.value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    input.value = '';
    $('token-form').hidden = true;
    say('');
    state.tokenWaiters.splice(0).forEach((resolve) => resolve());
    refreshAll();
  }

  // -- time --------------------------------------------------------------------------

  function mockNow() {
    const c = state.clock;
    if (!c) return Date.now();
    return c.frozen ? c.now : c.now + (performance.now() - c.at);
  }

  function iso(ms) {
    return new Date(ms).toISOString(); // 2026-01-01T12:00:00.000Z, as the API writes instants
  }

  function relative(instant, now) {
    if (!instant) return '—';
    const diff = (Date.parse(instant) - now) / 1000;
    const size = Math.abs(diff);
    let text;
    if (size < 1) return 'now';
    if (size < 60) text = `${Math.floor(size)} s`;
    else if (size < 3600) text = `${Math.floor(size / 60)} min`;
    else if (size < 172800) text = `${Math.floor(size / 3600)} h`;
    else text = `${Math.floor(size / 86400)} d`;
    return diff < 0 ? `${text} ago` : `in ${text}`;
  }

  function timeCell(instant) {
    const node = el('time', { className: 'relative' });
    if (instant) {
      node.dateTime = instant;
      node.title = instant;
    }
    node.textContent = relative(instant, mockNow());
    return el('td', {}, node);
  }

  function refreshRelativeTimes() {
    const now = mockNow();
    for (const node of document.querySelectorAll('time.relative')) {
      const text = relative(node.dateTime, now);
      if (node.textContent !== text) node.textContent = text;
    }
  }

  function setClock(data) {
    const previous = state.clock;
    const now = Date.parse(data.now);
    state.clock = { now, frozen: data.frozen, at: performance.now() };
    $('clock-now').textContent = data.frozen ? data.now : iso(now);
    $('clock-now').dateTime = data.now;
    $('clock-state').textContent = data.frozen ? 'frozen' : 'running';
    $('clock-state').className = `badge ${data.frozen ? 'frozen' : 'running'}`;
    $('freeze').disabled = data.frozen;
    $('unfreeze').disabled = !data.frozen;
    refreshRelativeTimes();
    // A move the page did not make (the CLI, a test): derived statuses may have changed.
    const expected = previous && (previous.frozen ? previous.now : previous.now + (performance.now() - previous.at));
    if (previous && (previous.frozen !== data.frozen || Math.abs(now - expected) > 1500)) scheduleSessions();
  }

  async function loadClock() {
    setClock(await api('GET', '/_mock/clock'));
  }

  function clockAction(path, body) {
    return async () => {
      setClock(await api('POST', path, body));
      await loadSessions();
    };
  }

  // -- applications and sessions ---------------------------------------------------------

  async function loadApplications() {
    const { items } = await api('GET', '/_mock/applications');
    const key = JSON.stringify(items.map((a) => [a.id, a.name, a.organizationName]));
    state.apps = items;
    if (!items.some((a) => a.id === state.app)) {
      state.app = items.length ? items[0].id : null;
      state.offset = 0;
    }
    const select = $('application');
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      select.replaceChildren(...items.map((a) => el('option', {
        value: a.id, textContent: `${a.name} — ${a.organizationName}`,
      })));
    }
    select.value = state.app || '';
    showClient();
  }

  function showClient() {
    // The application's public OAuth client: what an MCP client authorizes as.
    const app = state.apps.find((a) => a.id === state.app);
    $('app-client').textContent = app && app.oauthClientId ? `OAuth client ${app.oauthClientId}` : '';
  }

  function appLabel() {
    const app = state.apps.find((a) => a.id === state.app);
    return app ? `${app.name} (${app.organizationName})` : 'this application';
  }

  function sessionsPath(offset, limit) {
    return `/_mock/applications/${state.app}/sessions${query({ status: state.status, offset, limit })}`;
  }

  async function loadSessions() {
    if (!state.app) return;
    // Loads overlap (a poll, an event, a click); only the latest one asked for is drawn.
    const ticket = ++state.sessionsTicket;
    let page = await api('GET', sessionsPath(state.offset, PAGE_SIZE));
    if (page.offset > 0 && page.items.length === 0 && page.total > 0) {
      // the page emptied under us (a revoke, a reset): go to the last one that has rows
      state.offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      page = await api('GET', sessionsPath(state.offset, PAGE_SIZE));
    }
    if (ticket === state.sessionsTicket) renderSessions(page);
  }

  async function loadApplicationsAndSessions() {
    await loadApplications();
    await loadSessions();
  }

  function scheduleSessions() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => once('sessions', loadSessions), 60);
  }

  // Redraws a table body; a live redraw keeps keyboard focus on the same row's button
  // (the one whose data-<key> is the same).
  function replaceRows(body, rows, key) {
    const active = document.activeElement;
    const focused = active && body.contains(active) ? active.dataset[key] : undefined;
    body.replaceChildren(...rows);
    if (focused === undefined) return;
    const again = [...body.querySelectorAll('button')].find((b) => b.dataset[key] === focused);
    if (again) again.focus();
  }

  function clientText(info) {
    if (!info) return '—';
    return info.version ? `${info.name} ${info.version}` : info.name;
  }

  // Long text cut with an ellipsis, whole in its tooltip (a cell never breaks a word).
  function clipped(text, tag = 'span', className = 'clip') {
    return el(tag, { className, textContent: text, title: text });
  }

  function sessionRow(s) {
    const open = el('button', { type: 'button', className: 'link clip name', textContent: s.name, title: s.name });
    open.dataset.session = s.id;
    const derived = el('span', { className: `badge derived-${s.derivedStatus}`, textContent: s.derivedStatus });
    const row = el('tr', {},
      el('th', { scope: 'row' }, open),
      el('td', {}, clipped(s.hostname || '—')),
      el('td', {}, clipped(clientText(s.clientInfo))),
      el('td', { textContent: s.status }),
      el('td', {}, derived),
      timeCell(s.lastActiveAt),
      timeCell(s.tokenExpiresAt));
    row.dataset.session = s.id;
    row.dataset.derived = s.derivedStatus;
    return row;
  }

  function renderSessions(page) {
    const key = JSON.stringify([page.items, page.offset, page.total]);
    const { active, idle, expired, disconnected } = page.counts;
    $('counts').textContent = `active ${active} · idle ${idle} · expired ${expired} · disconnected ${disconnected}`;
    const last = page.offset + page.items.length;
    $('page-info').textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : 'No sessions';
    $('previous-page').disabled = page.offset === 0;
    $('next-page').disabled = last >= page.total;
    if (key === state.pageKey) return refreshRelativeTimes();
    state.pageKey = key;
    const rows = page.items.map(sessionRow);
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 7, className: 'empty', textContent: 'No sessions match the filter.' })));
    replaceRows($('session-rows'), rows, 'session');
    performance.mark('kontext:sessions-rendered');
  }

  async function openSession(id) {
    const detail = await api('GET', `/_mock/sessions/${id}`);
    $('session-dialog-title').textContent = `Session ${detail.session.name}`;
    $('session-json').textContent = JSON.stringify(detail, null, 2);
    const dialog = $('session-dialog');
    if (!dialog.open) dialog.showModal();
  }

  async function confirmRevoke() {
    const { counts } = await api('GET', sessionsPath(0, 1));
    const connected = counts.active + counts.idle + counts.expired;
    const dialog = $('revoke-dialog');
    dialog.dataset.count = String(connected);
    $('revoke-text').textContent = connected
      ? `This disconnects ${connected} connected session${connected === 1 ? '' : 's'} of ${appLabel()}.`
      : `No session of ${appLabel()} is connected: nothing to disconnect.`;
    dialog.showModal();
    $('revoke-confirm').focus();
  }

  async function revoke() {
    $('revoke-dialog').close();
    const result = await api('POST', `/_mock/applications/${state.app}/revoke`);
    say(`Revoked: ${result.disconnectedCount} session${result.disconnectedCount === 1 ? '' : 's'} disconnected.`);
    await loadSessions();
  }

  async function addSession() {
    const wanted = $('new-state').value;
    const detail = await api('POST', '/_mock/sessions', { applicationId: state.app, state: wanted });
    say(`Added ${wanted} session ${detail.session.name}.`);
    await loadSessions();
  }

  // -- scenarios and reset ----------------------------------------------------------------

  async function loadScenarios() {
    const { items } = await api('GET', '/_mock/scenarios');
    // A neutral first choice: loading a scenario replaces everything, so none is offered
    // until the user picks one.
    $('scenario').replaceChildren(el('option', { value: '', textContent: 'choose a scenario…' }),
      ...items.map((s) => el('option', { value: s.name, textContent: s.name, title: s.description })));
    scenarioChosen();
  }

  function scenarioChosen() {
    $('load-scenario').disabled = !$('scenario').value;
  }

  async function loadScenario() {
    const name = $('scenario').value;
    if (!name) return;
    const summary = await api('POST', '/_mock/scenarios/load', { name });
    say(`Loaded ${name}: ${summary.sessions} sessions.`);
    await refreshAll();
  }

  async function reset() {
    const summary = await api('POST', '/_mock/reset', {});
    say(`Reset: ${summary.sessions} sessions.`);
    await refreshAll();
  }

  // -- faults and the rate limit ----------------------------------------------------------

  function effectText(f) {
    const parts = [];
    if (f.latency !== null) parts.push(Array.isArray(f.latency) ? `wait ${f.latency[0]}–${f.latency[1]} s` : `wait ${f.latency} s`);
    if (f.status !== null) parts.push(`answer ${f.status}`);
    if (f.drop) parts.push('drop');
    if (f.remaining !== null) parts.push(`${f.remaining} left`);
    if (f.probability !== null) parts.push(`p=${f.probability}`);
    return parts;
  }

  // The effect's parts may go to separate lines, each whole ("wait 0.25–1.5 s").
  function effectCell(f) {
    const cell = el('td', { className: 'wraps' });
    effectText(f).forEach((part, i) => {
      if (i) cell.append(', ');
      cell.append(el('span', { className: 'part', textContent: part }));
    });
    return cell;
  }

  async function loadFaults() {
    const [{ items }, limit] = await Promise.all([api('GET', '/_mock/faults'), api('GET', '/_mock/rate-limit')]);
    $('rate-limit').checked = limit.perMinute !== null;
    const key = JSON.stringify(items);
    if (key === state.faultsKey) return;
    state.faultsKey = key;
    const rows = items.map((f) => {
      const remove = el('button', { type: 'button', className: 'link', textContent: 'Remove' });
      remove.setAttribute('aria-label', `Remove ${f.id}`);
      remove.dataset.fault = f.id;
      return el('tr', {},
        el('th', { scope: 'row', textContent: f.id }),
        el('td', {}, clipped(`${f.method} ${f.path}`, 'code')),
        effectCell(f),
        el('td', { textContent: String(f.hits) }),
        el('td', {}, remove));
    });
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 5, className: 'empty', textContent: 'No fault rules.' })));
    replaceRows($('fault-rows'), rows, 'fault');
  }

  async function addFault(event) {
    event.preventDefault();
    const effect = $('fault-effect').value;
    const rule = { method: $('fault-method').value, path: $('fault-path').value.trim() };
    if (effect === 'status') rule.status = Number($('fault-status').value);
    if (effect === 'latency') rule.latency = Number($('fault-latency').value);
    if (effect === 'drop') rule.drop = true;
    if ($('fault-times').value) rule.times = Number($('fault-times').value);
    if ($('fault-probability').value) rule.probability = Number($('fault-probability').value);
    const { fault } = await api('POST', '/_mock/faults', rule);
    say(`Added ${fault.id}: ${fault.method} ${fault.path} (${effectText(fault).join(', ')}).`);
    await loadFaults();
  }

  async function clearFaults() {
    const { removed } = await api('DELETE', '/_mock/faults');
    say(`Removed ${removed} fault rule${removed === 1 ? '' : 's'}.`);
    await loadFaults();
  }

  async function removeFault(id) {
    await api('DELETE', `/_mock/faults/${id}`);
    say(`Removed ${id}.`);
    await loadFaults();
  }

  async function switchRateLimit() {
    const on = $('rate-limit').checked;
    const limit = await api('PUT', '/_mock/rate-limit', { perMinute: on ? 120 : null });
    say(limit.perMinute === null ? 'Rate limit off.' : `Rate limit on: ${limit.perMinute} requests a minute.`);
  }

  // -- the journal ----------------------------------------------------------------------

  function journalQuery() {
    let path = $('journal-path').value.trim();
    if (path && !path.includes('*')) path = `*${path}*`; // plain text: a substring
    return query({ limit: KEEP_JOURNAL, method: $('journal-method').value, path });
  }

  async function loadJournal() {
    const { items } = await api('GET', `/_mock/journal${journalQuery()}`);
    items.reverse(); // newest first
    const key = JSON.stringify([journalQuery(), items.length, items.map((e) => e.requestId + e.time)]);
    if (key === state.journalKey) return;
    state.journalKey = key;
    const rows = [];
    for (const entry of items) {
      const id = entry.requestId || `${entry.time} ${entry.method} ${entry.path}`;
      const expanded = state.journalOpen.has(id);
      const toggle = el('button', { type: 'button', className: 'link', textContent: entry.time.slice(11, 23) });
      toggle.setAttribute('aria-expanded', String(expanded));
      toggle.title = entry.time;
      toggle.dataset.entry = id;
      const query = Object.keys(entry.query).length ? `?${new URLSearchParams(entry.query)}` : '';
      const status = entry.status === null ? 'dropped' : String(entry.status);
      rows.push(el('tr', { className: entry.status === null || entry.status >= 400 ? 'failed' : '' },
        el('td', {}, toggle),
        el('td', { textContent: entry.method }),
        el('td', {}, clipped(entry.path + query, 'code', 'clip path')),
        el('td', { textContent: status }),
        el('td', { textContent: `${entry.durationMs.toFixed(1)} ms` }),
        el('td', {}, clipped(entry.headers['user-agent'] || '—'))));
      if (expanded) {
        const detail = { headers: entry.headers, query: entry.query, body: entry.body, requestId: entry.requestId, fault: entry.fault };
        rows.push(el('tr', { className: 'detail' },
          el('td', { colSpan: 6 }, el('pre', { textContent: JSON.stringify(detail, null, 2) }))));
      }
    }
    if (!rows.length) rows.push(el('tr', {}, el('td', { colSpan: 6, className: 'empty', textContent: 'No requests yet.' })));
    replaceRows($('journal-rows'), rows, 'entry');
  }

  function toggleEntry(id) {
    if (state.journalOpen.has(id)) state.journalOpen.delete(id);
    else state.journalOpen.add(id);
    if (state.journalOpen.size > KEEP_JOURNAL) state.journalOpen.delete(state.journalOpen.values().next().value);
    state.journalKey = '';
    once('journal', loadJournal);
  }

  // -- events, live -------------------------------------------------------------------

  function setLive(text, kind) {
    const live = $('live');
    live.textContent = text;
    live.className = `live ${kind}`;
  }

  function onEvent(event) {
    state.lastEventId = event.id;
    state.events.unshift(event);
    if (state.events.length > KEEP_EVENTS) state.events.length = KEEP_EVENTS;
    // A burst (a revoke of 10,000 sessions) is drawn once, not once per event.
    if (!state.eventsTimer) state.eventsTimer = setTimeout(renderEvents, 50);
    if (event.data.applicationId === state.app) scheduleSessions();
  }

  function renderEvents() {
    state.eventsTimer = null;
    $('event-list').replaceChildren(...state.events.map((e) => {
      const kind = e.type.replace('session.', '');
      return el('li', { className: `event ${kind}` },
        el('time', { dateTime: e.time, title: e.time, textContent: e.time.slice(11, 19) }),
        el('span', { className: `badge derived-${kind}`, textContent: e.type }),
        el('code', { textContent: e.data.sessionId, title: `application ${e.data.applicationId}` }),
        e.data.reason ? el('span', { className: 'reason', textContent: e.data.reason }) : null);
    }));
  }

  function handleBlock(block) {
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue; // a comment: subscribed, keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = Number(value);
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    const event = JSON.parse(data.join('\n'));
    if (id !== null) event.id = id;
    onEvent(event);
  }

  async function readStream(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        handleBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  // One stream for the tab's life; after a drop (the mock restarted) it comes back with
  // Last-Event-ID, so the events published meanwhile are replayed, not lost.
  async function follow() {
    let attempt = 0;
    for (;;) {
      const headers = authHeaders();
      if (state.lastEventId !== null) headers['Last-Event-ID'] = String(state.lastEventId);
      try {
        const response = await fetch('/_mock/events', { headers, cache: 'no-store' });
        if (response.status === 401) {
          askForToken(state.token ? 'The admin token was not accepted.' : '');
          await tokenGiven();
          continue;
        }
        if (!response.ok || !response.body) throw new HttpError(response.status, await response.json());
        const reconnected = attempt > 0;
        attempt = 0;
        setLive('Live', 'on');
        if (reconnected) refreshAll();
        await readStream(response.body);
      } catch (error) {
        if (error instanceof HttpError) report(error);
      }
      setLive('Reconnecting', 'off');
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
      attempt += 1;
    }
  }

  // -- refreshing ---------------------------------------------------------------------

  async function refreshAll() {
    await Promise.all([
      once('clock', loadClock),
      once('apps', loadApplicationsAndSessions),
      once('faults', loadFaults),
      once('journal', loadJournal),
      $('scenario').options.length ? null : once('scenarios', loadScenarios),
    ]);
  }

  function poll() {
    if (document.hidden || !$('token-form').hidden) return;
    state.polls += 1;
    once('clock', loadClock);
    if (state.polls % 2 === 0) once('journal', loadJournal);
    if (state.polls % 4 === 0) {
      once('apps', loadApplicationsAndSessions);
      once('faults', loadFaults);
    }
  }

  // -- wiring ---------------------------------------------------------------------------

  function on(id, type, work) {
    $(id).addEventListener(type, (event) => {
      if (type === 'submit') event.preventDefault();
      Promise.resolve().then(() => work(event)).catch(report);
    });
  }

  function start() {
    $('token-form').addEventListener('submit', useToken);
    on('application', 'change', () => {
      state.app = $('application').value;
      state.offset = 0;
      showClient();
      return loadSessions();
    });
    on('status-filter', 'change', () => {
      state.status = $('status-filter').value;
      state.offset = 0;
      return loadSessions();
    });
    on('previous-page', 'click', () => {
      state.offset = Math.max(0, state.offset - PAGE_SIZE);
      return loadSessions();
    });
    on('next-page', 'click', () => {
      state.offset += PAGE_SIZE;
      return loadSessions();
    });
    on('session-rows', 'click', (event) => {
      const row = event.target.closest('tr[data-session]');
      return row ? openSession(row.dataset.session) : undefined;
    });
    on('revoke', 'click', confirmRevoke);
    on('revoke-confirm', 'click', revoke);
    on('add-session', 'click', addSession);
    on('load-scenario', 'click', loadScenario);
    $('scenario').addEventListener('change', scenarioChosen);
    on('reset', 'click', reset);
    for (const button of document.querySelectorAll('button[data-advance]')) {
      button.addEventListener('click', () => clockAction('/_mock/clock/advance', { by: button.dataset.advance })().catch(report));
    }
    on('advance-form', 'submit', () => clockAction('/_mock/clock/advance', { by: $('advance-by').value.trim() })());
    on('freeze', 'click', clockAction('/_mock/clock/freeze'));
    on('unfreeze', 'click', clockAction('/_mock/clock/unfreeze'));
    on('set-form', 'submit', () => clockAction('/_mock/clock/set', { to: $('set-time').value.trim() })());
    on('fault-form', 'submit', addFault);
    on('clear-faults', 'click', clearFaults);
    on('fault-rows', 'click', (event) => {
      const button = event.target.closest('button[data-fault]');
      return button ? removeFault(button.dataset.fault) : undefined;
    });
    on('rate-limit', 'change', switchRateLimit);
    on('journal-filter', 'submit', () => undefined);
    on('journal-method', 'change', () => once('journal', loadJournal));
    on('journal-path', 'input', () => once('journal', loadJournal));
    on('journal-rows', 'click', (event) => {
      const button = event.target.closest('button[data-entry]');
      if (button) toggleEntry(button.dataset.entry);
    });
    for (const dialog of document.querySelectorAll('dialog')) {
      dialog.querySelector('button.close').addEventListener('click', () => dialog.close());
    }
    refreshAll();
    follow();
    setInterval(poll, POLL_MS);
    setInterval(refreshRelativeTimes, 1000);
  }

  start();
})();
