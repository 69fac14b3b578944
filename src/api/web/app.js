// kiln's web page: a bake list, a bake page with its live log, a form that starts a bake, and a
// health/instances/metrics panel. Hand-written, no framework, no build step.
//
// Everything a request or a log carries is attacker-controlled (a package name, a log line): the
// page builds every node through el()/text nodes (textContent), never from HTML strings, and puts
// request data into URLs only through encodeURIComponent.
'use strict';

const PHASES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const FINISHED = new Set(['succeeded', 'failed', 'canceled']);

// What the current view must undo when the page moves on (timers, the log stream).
let cleanups = [];
function onLeave(fn) { cleanups.push(fn); }

// ---- DOM helpers: the only way this script makes nodes --------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  const list = Array.isArray(children) ? children.flat(Infinity) : [children];
  for (const c of list) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return parent;
}

function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

function main() { return document.getElementById('main'); }

function when(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
}

function seconds(s) {
  if (s === null || s === undefined) return '—';
  if (s < 60) return s.toFixed(1) + ' s';
  return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
}

function badge(phase) { return el('span', { class: 'badge ' + phase, 'data-phase': phase }, phase); }

function facts(pairs) {
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    append(dl, [el('dt', {}, k), el('dd', {}, v === null || v === '' ? '—' : v)]);
  }
  return dl;
}

function card(title, ...children) {
  return el('section', { class: 'card' }, title ? el('h2', {}, title) : null, children);
}

function json(value) { return el('pre', {}, JSON.stringify(value, null, 2)); }

function errorBox(err) { return el('div', { class: 'error', role: 'alert' }, String(err.message || err)); }

// ---- the API -----------------------------------------------------------------------------------

// Fetches JSON; an error carries kiln's message (which says what to fix).
async function api(path, options) {
  const r = await fetch(path, Object.assign({ headers: { Accept: 'application/json' } }, options));
  const type = r.headers.get('content-type') || '';
  const body = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) {
    const msg = (body && (body.message || (body.messages && body.messages.join('; ')))) || r.statusText;
    throw new Error(r.status + ': ' + msg);
  }
  return body;
}

function seg(s) { return encodeURIComponent(s); }

function packageOf(b) { return (b.request && typeof b.request.package === 'string') ? b.request.package : ''; }
function baseOsOf(b) { return (b.request && typeof b.request.base_os === 'string') ? b.request.base_os : ''; }

// The images a bake made: AMI ids per region, or the local image's path.
function imagesOf(b) {
  const out = [];
  const d = b.details;
  if (d && Array.isArray(d.artifacts) && d.artifacts.length) {
    for (const a of d.artifacts) out.push((a.location ? a.location + ': ' : '') + (a.reference || ''));
  } else if (d && d.ami) {
    out.push(d.ami);
  }
  if (b.image && b.image.image) out.push(b.image.image);
  return out;
}

// ---- routing -----------------------------------------------------------------------------------

function route() {
  for (const fn of cleanups) { try { fn(); } catch (_) { /* a view's cleanup must not stop the next */ } }
  cleanups = [];
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('nav a')) a.classList.remove('current');
  if (path.startsWith('/bake/')) return bakePage(decodeURIComponent(path.slice('/bake/'.length)));
  if (path === '/new') return newBakePage();
  if (path === '/system') return systemPage();
  return listPage(params);
}

// ---- the bake list -----------------------------------------------------------------------------

function listPage(params) {
  const view = el('div', { id: 'list-view' });
  const state = el('select', { name: 'state', id: 'filter-state' },
    el('option', { value: '' }, 'any state'), PHASES.map((p) => el('option', { value: p }, p)));
  state.value = params.get('state') || '';
  const input = (name, placeholder) =>
    el('input', { name, id: 'filter-' + name, placeholder, value: params.get(name) || '', size: 14 });
  const inputs = [input('package', 'nginx'), input('region', 'us-east-1'), input('provider', 'aws')];
  const form = el('form', {
    class: 'filters', id: 'filters',
    onsubmit: (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const f of [state, ...inputs]) if (f.value.trim()) q.set(f.name, f.value.trim());
      location.hash = '#/?' + q.toString();
    },
  },
  el('label', {}, 'State', state),
  inputs.map((i) => el('label', {}, i.name, i)),
  el('button', { type: 'submit', class: 'primary' }, 'Filter'),
  el('a', { href: '#/' }, 'clear'));
  const body = el('div', { id: 'bake-list' }, el('p', { class: 'muted' }, 'loading…'));
  replace(main(), append(view, [el('h1', {}, 'Bakes'), form, body]));

  const query = new URLSearchParams();
  for (const k of ['state', 'package', 'region', 'provider', 'cursor', 'limit']) {
    if (params.get(k)) query.set(k, params.get(k));
  }
  const load = async () => {
    try {
      const page = await api('/api/kiln/v1/bakes?' + query.toString());
      replace(body, bakeTable(page.bakes), paging(params, page.next_cursor, page.bakes.length));
    } catch (err) {
      replace(body, errorBox(err));
    }
  };
  load();
  // The first page follows new bakes; later pages stay put (their cursor fixes them).
  if (!params.get('cursor')) {
    const timer = setInterval(load, 5000);
    onLeave(() => clearInterval(timer));
  }
}

function bakeTable(bakes) {
  if (!bakes.length) return el('p', { class: 'muted', id: 'no-bakes' }, 'No bakes here.');
  return el('table', { id: 'bakes' },
    el('thead', {}, el('tr', {}, ['Bake', 'State', 'Package', 'Base OS', 'Provider', 'Region', 'Created', 'Image']
      .map((h) => el('th', {}, h)))),
    el('tbody', {}, bakes.map((b) => el('tr', { 'data-id': b.id },
      el('td', { class: 'mono' }, el('a', { href: '#/bake/' + seg(b.id) }, b.id.slice(0, 13))),
      el('td', {}, badge(b.phase), b.queue_position !== null && b.queue_position !== undefined
        ? el('span', { class: 'muted' }, ' #' + b.queue_position) : null),
      el('td', { class: 'package' }, packageOf(b)),
      el('td', {}, baseOsOf(b)),
      el('td', {}, b.provider),
      el('td', {}, b.region),
      el('td', {}, when(b.created_ms)),
      el('td', { class: 'mono' }, imagesOf(b).join(', '))))));
}

function paging(params, next, shown) {
  const bar = el('div', { class: 'paging' });
  if (params.get('cursor')) {
    const q = new URLSearchParams(params);
    q.delete('cursor');
    append(bar, el('a', { href: '#/?' + q.toString(), id: 'newest' }, '← newest'));
  }
  if (next) {
    const q = new URLSearchParams(params);
    q.set('cursor', next);
    append(bar, el('a', { href: '#/?' + q.toString(), id: 'older' }, 'older →'));
    if (!shown) append(bar, el('span', { class: 'muted' }, 'nothing matched in this stretch; older bakes may'));
  }
  return bar;
}

// ---- one bake ------------------------------------------------------------------------------------

function bakePage(id) {
  const summary = el('div', { id: 'bake-summary' }, el('p', { class: 'muted' }, 'loading…'));
  const log = el('pre', { class: 'log', id: 'log', 'data-events': '0' });
  const logState = el('span', { class: 'muted', id: 'log-state' }, 'connecting…');
  let following = true;
  const follow = el('button', {
    type: 'button', id: 'follow',
    onclick: () => {
      following = !following;
      follow.textContent = following ? 'Stop following' : 'Follow';
      if (following) log.scrollTop = log.scrollHeight;
    },
  }, 'Stop following');
  // Outside the summary, which is redrawn every poll: the answer to a cancel stays visible.
  const result = el('span', { id: 'cancel-result', class: 'muted' });
  const cancel = el('button', {
    type: 'button', class: 'danger', id: 'cancel', hidden: true,
    onclick: async () => {
      const ok = window.confirm('Cancel bake ' + id + '? Packer is stopped and the bake ends as canceled.');
      if (!ok) { result.textContent = 'not canceled'; return; }
      cancel.disabled = true;
      try {
        result.textContent = String(await api('/api/v1/' + seg(region) + '/cancel/' + seg(id)));
        load();
      } catch (err) {
        result.textContent = String(err.message || err);
        cancel.disabled = false;
      }
    },
  }, 'Cancel bake');
  let region = '';
  const actions = el('div', { class: 'row', id: 'bake-actions' }, cancel, result);
  const more = el('div', { id: 'bake-more' });
  replace(main(), el('div', { id: 'bake-view', 'data-id': id }, summary, actions,
    card('Log', el('div', { class: 'row' }, follow, logState), el('div', {}, ' '), log), more));

  // The live log: kiln's SSE stream, resumed by the browser from the last event id.
  const stream = new EventSource('/api/kiln/v1/bakes/' + seg(id) + '/logs/stream');
  onLeave(() => stream.close());
  let events = 0;
  stream.onopen = () => { logState.textContent = 'live'; };
  stream.onmessage = (e) => {
    log.append(document.createTextNode(e.data.endsWith('\n') ? e.data : e.data + '\n'));
    events += 1;
    log.setAttribute('data-events', String(events));
    if (following) log.scrollTop = log.scrollHeight;
  };
  stream.addEventListener('end', () => { logState.textContent = 'complete: the bake has finished'; stream.close(); });
  stream.addEventListener('stopping', () => {
    logState.textContent = 'kiln is stopping; reload later to resume';
    stream.close();
  });
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) logState.textContent = 'disconnected';
    else logState.textContent = 'reconnecting…';
  };

  let timer = null;
  const load = async () => {
    try {
      const b = await api('/api/kiln/v1/bakes/' + seg(id));
      region = b.region;
      cancel.hidden = FINISHED.has(b.phase);
      const [top, below] = bakeSummary(b);
      replace(summary, top);
      replace(more, below);
      if (FINISHED.has(b.phase) && timer) { clearInterval(timer); timer = null; }
    } catch (err) {
      replace(summary, errorBox(err));
    }
  };
  load();
  timer = setInterval(load, 2000);
  onLeave(() => timer && clearInterval(timer));
}

function bakeSummary(b) {
  const finished = FINISHED.has(b.phase);
  const head = el('h1', {}, 'Bake ', el('span', { class: 'mono', id: 'bake-id' }, b.id), badge(b.phase),
    b.cause ? el('span', { class: 'muted' }, '(' + b.cause + ')') : null);
  const state = facts([
    ['State', b.phase],
    ['Queue position', b.phase === 'queued' ? (b.queue_position ?? 'on another instance') : undefined],
    ['Why it ended', finished ? b.cause : undefined],
    ['Error', b.error || undefined],
    ['Provider', b.provider],
    ['Region', b.region],
    ['Package', packageOf(b)],
    ['Base OS', baseOsOf(b)],
    ['Created', when(b.created_ms)],
    ['Started', when(b.started_ms)],
    ['Updated', when(b.updated_ms)],
  ]);

  const images = imagesOf(b);
  const imageCard = card('Image', images.length
    ? el('ul', { id: 'images' }, images.map((i) => el('li', { class: 'mono' }, i)))
    : el('p', { class: 'muted' }, finished ? 'No image.' : 'Not made yet.'),
  b.image && b.image.boot_command ? [el('p', { class: 'muted' }, 'Boot it with:'), el('pre', {}, b.image.boot_command)] : null,
  b.details && b.details.image_name ? facts([['Image name', b.details.image_name]]) : null);

  const reason = sessionStorage.getItem('kiln.reused.' + b.id);
  const identity = card('Identity and reuse',
    facts([['Identity', b.identity], ['Rosco key', b.rosco_key]]),
    el('p', { class: 'note', id: 'reuse' }, reason
      ? 'Your request was answered by this existing bake: ' + reason + '.'
      : 'An identical request (same identity: every input that changes the image) gets this bake back ' +
        'while it is queued, running or succeeded, instead of baking again; ask for a rebake to bake anew.'),
    el('h2', {}, 'Inputs'), json(b.inputs));

  const r = b.recipe || {};
  const vars = Object.entries(r.variables || {});
  const recipe = card('Recipe',
    facts([['Image name', r.name], ['Version', r.version], ['Template', r.template],
      ['Source image', r.source_image ? r.source_image.name + ' → ' + r.source_image.id + ' (via ' + r.source_image.via + ')' : undefined]]),
    el('h2', {}, 'Command'), el('pre', { id: 'command' }, (r.command || []).join(' ')),
    el('h2', {}, 'Variables (secrets masked)'),
    vars.length ? el('table', { id: 'variables' }, el('tbody', {}, vars.map(([k, v]) =>
      el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v))))) : el('p', { class: 'muted' }, 'none'));

  // Above the log: what a reader wants first; below it: how the bake came to be.
  return [[head,
    b.diagnosis ? el('section', { class: 'card diagnosis', id: 'diagnosis' },
      el('h2', {}, 'Why it failed: ' + b.diagnosis.summary),
      el('p', {}, b.diagnosis.hint), el('p', { class: 'muted mono' }, b.diagnosis.code)) : null,
    el('div', { class: 'grid' }, card('State', state), imageCard, timeline(b))],
  el('div', { class: 'grid' }, identity, recipe)];
}

function timeline(b) {
  const rows = Array.isArray(b.timeline) ? b.timeline : [];
  if (!rows.length) return card('Timeline', el('p', { class: 'muted', id: 'timeline' }, 'No per-phase timings for this bake.'));
  const longest = Math.max(1, ...rows.map((t) => t.seconds || 0));
  return card('Timeline', el('table', { id: 'timeline' }, el('tbody', {}, rows.map((t) => el('tr', {},
    el('td', {}, t.phase),
    el('td', {}, seconds(t.seconds)),
    el('td', { class: 'barcell' }, barOf(t.seconds, longest)))))));
}

function barOf(s, longest) {
  const bar = el('div', { class: 'bar' });
  // CSSOM, not a style attribute: the Content-Security-Policy allows no inline styles.
  bar.style.width = Math.round(100 * (s || 0) / longest) + '%';
  return bar;
}

// ---- a new bake ----------------------------------------------------------------------------------

async function newBakePage() {
  const view = el('div', { id: 'new-view' }, el('h1', {}, 'New bake'), el('p', { class: 'muted' }, 'loading base images…'));
  replace(main(), view);
  let options;
  try {
    options = await api('/bakeOptions');
  } catch (err) {
    replace(view, el('h1', {}, 'New bake'), errorBox(err));
    return;
  }
  if (!options.length) {
    replace(view, el('h1', {}, 'New bake'), el('p', { class: 'muted' }, 'No provider is enabled in kiln\'s config.'));
    return;
  }
  const provider = el('select', { name: 'provider', id: 'new-provider' },
    options.map((o) => el('option', { value: o.cloudProvider }, o.cloudProvider)));
  const base = el('select', { name: 'base_os', id: 'new-base-os' });
  const region = el('input', { name: 'region', id: 'new-region', required: true, size: 16 });
  const pkg = el('input', { name: 'package', id: 'new-package', required: true, placeholder: 'nginx', size: 30 });
  const rebake = el('input', { type: 'checkbox', name: 'rebake', id: 'new-rebake' });
  const outcome = el('div', { id: 'new-outcome' });
  const fill = () => {
    const o = options.find((x) => x.cloudProvider === provider.value) || options[0];
    replace(base, o.baseImages.map((b) => el('option', { value: b.id },
      b.id + (b.shortDescription ? ' — ' + b.shortDescription : ''))));
    region.value = o.cloudProvider === 'qemu' ? 'local' : 'us-east-1';
  };
  provider.addEventListener('change', fill);
  fill();
  const form = el('form', {
    class: 'stack card', id: 'new-bake',
    onsubmit: async (e) => {
      e.preventDefault();
      const submit = form.querySelector('button');
      submit.disabled = true;
      replace(outcome, el('p', { class: 'muted' }, 'asking kiln…'));
      const body = { package: pkg.value.trim(), base_os: base.value, cloud_provider_type: provider.value };
      try {
        const r = await api('/api/kiln/v1/' + seg(region.value.trim()) + '/bakes' + (rebake.checked ? '?rebake=1' : ''), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify(body),
        });
        if (r.reused && r.reason) sessionStorage.setItem('kiln.reused.' + r.bake.id, r.reason);
        location.hash = '#/bake/' + seg(r.bake.id);
      } catch (err) {
        replace(outcome, errorBox(err));
        submit.disabled = false;
      }
    },
  },
  el('label', {}, 'Provider', provider),
  el('label', {}, 'Base image (from /bakeOptions)', base),
  el('label', {}, 'Region', region),
  el('label', {}, 'Packages (space-separated)', pkg),
  el('label', { class: 'inline' }, rebake, 'Bake again even if an identical bake exists'),
  el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Start bake')));
  replace(view, el('h1', {}, 'New bake'), form, outcome);
}

// ---- health, instances, metrics ------------------------------------------------------------------

function systemPage() {
  const health = el('div', { id: 'system-health' }, 'loading…');
  const instances = el('div', { id: 'system-instances' }, 'loading…');
  const metrics = el('div', { id: 'system-metrics' }, 'loading…');
  replace(main(), el('div', { id: 'system-view' }, el('h1', {}, 'System'),
    el('div', { class: 'grid' }, card('Health', health), card('Instances', instances)),
    card('Metrics', metrics)));
  const load = async () => {
    try {
      const h = await fetch('/health').then((r) => r.json());
      replace(health, el('span', { class: 'pill ' + (h.status === 'UP' ? 'up' : 'down') }, h.status),
        h.details ? facts(Object.entries(h.details)) : null);
    } catch (err) { replace(health, errorBox(err)); }
    try {
      const all = await api('/status/all');
      replace(instances, el('table', {}, el('thead', {}, el('tr', {}, ['Instance', 'Status', 'Unfinished bakes'].map((t) => el('th', {}, t)))),
        el('tbody', {}, Object.entries(all.instances).map(([name, s]) => el('tr', {},
          el('td', { class: 'mono' }, name + (name === all.instance ? ' (this one)' : '')),
          el('td', {}, s.status),
          el('td', { class: 'mono' }, s.bakes.map((b) => el('a', { href: '#/bake/' + seg(b.id) }, b.id + ' ')),
            s.bakes.length ? null : '—'))))));
    } catch (err) { replace(instances, errorBox(err)); }
    try {
      const text = await fetch('/metrics').then((r) => r.text());
      const lines = text.split('\n').filter((l) => l.startsWith('kiln_') && !l.includes('_bucket{'));
      replace(metrics, el('pre', { id: 'metrics' }, lines.slice(0, 300).join('\n')));
    } catch (err) { replace(metrics, errorBox(err)); }
  };
  load();
  const timer = setInterval(load, 5000);
  onLeave(() => clearInterval(timer));
}

// The header's health pill, on every view.
async function healthPill() {
  const pill = document.getElementById('health');
  try {
    const h = await fetch('/health').then((r) => r.json());
    pill.textContent = 'store ' + h.status;
    pill.className = 'pill ' + (h.status === 'UP' ? 'up' : 'down');
  } catch (_) {
    pill.textContent = 'kiln unreachable';
    pill.className = 'pill down';
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  route();
  healthPill();
  setInterval(healthPill, 10000);
});
