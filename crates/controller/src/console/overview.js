// overview.js: the cluster at a glance, refreshed every 2 s by polling: each node's Galera
// state and counters, the proxy's writer, recent events, the controller's decisions with
// their reasons, and charts of the history over a chosen window. When a refresh fails the
// last data stays on screen, marked stale, with the time it was taken.

import * as api from './api.js';
import {h, replace} from './dom.js';
import {lineChart} from './chart.js';
import * as format from './format.js';

const REFRESH_MS = 2000;
/** Data older than this is marked stale (a refresh or two failed). */
const STALE_AFTER_MS = 6000;
const WINDOWS = ['5m', '1h', '6h', '24h', '7d'];
const WINDOW_MS = {'5m': 3e5, '1h': 36e5, '6h': 216e5, '24h': 864e5, '7d': 6048e5};
/** Long windows change slowly: their history is fetched less often than every tick. */
const HISTORY_EVERY_MS = {'5m': 2000, '1h': 10000, '6h': 30000, '24h': 60000, '7d': 120000};
const CHARTS = [
  // `minimum` is the least top of the value axis, so that a quiet cluster's flat line
  // sits at the bottom of a sensible scale instead of filling a scale of fractions.
  {metric: 'qps', title: 'Queries per second', format: format.number, minimum: 10},
  {metric: 'flow_control_paused', title: 'Flow control paused (fraction of time)', format: format.percent, minimum: 0.1},
  {metric: 'recv_queue', title: 'Receive queue (write-sets)', format: format.number, minimum: 4},
  {metric: 'replication_bytes_per_s', title: 'Replication rate', format: format.rate, minimum: 1000},
];

/** How a node's state reads: a CSS tone and a label that does not rely on colour. The
 *  states are the agent's labels (Galera's Synced, Donor/Desynced, Joiner, Joined, and
 *  starting, non-Primary, stopped) and the controller's (agent down, unknown). */
export function nodeTone(node) {
  const state = String(node.state || 'unknown');
  const lower = state.toLowerCase();
  if (lower === 'unknown') return {tone: 'neutral', label: 'unknown (not observed yet)'};
  if (!node.reachable) return {tone: 'down', label: lower.includes('down') ? state : `down (${state})`};
  if (lower === 'synced') return {tone: node.desync ? 'warn' : 'ok', label: node.desync ? 'Synced (desynced)' : 'Synced'};
  if (lower.startsWith('donor') || lower.includes('desync')) return {tone: 'warn', label: state};
  if (lower === 'joiner' || lower === 'joined' || lower === 'starting') return {tone: 'info', label: state};
  if (lower.includes('down') || lower === 'stopped' || lower === 'non-primary') return {tone: 'down', label: state};
  return {tone: 'neutral', label: state};
}

function stat(label, value, extraClass) {
  return h('div', {class: `stat ${extraClass || ''}`}, h('dt', {}, label), h('dd', {}, value));
}

function nodeCard(node, writer) {
  const {tone, label} = nodeTone(node);
  const isWriter = writer && writer === node.name;
  return h('article', {class: `node tone-${tone}`, 'aria-label': `Node ${node.name}: ${label}`, dataset: {node: node.name, state: label}},
    h('header', {},
      h('h3', {}, node.name),
      h('span', {class: `badge tone-${tone}`}, label),
      isWriter ? h('span', {class: 'badge writer', title: 'The proxy sends writes here'}, 'writer') : null),
    h('p', {class: 'address'}, `${node.address}:${node.client_port}`),
    h('dl', {class: 'stats'},
      stat('Cluster', node.cluster_size === null || node.cluster_size === undefined ? '—'
        : `${node.cluster_size} nodes, ${node.cluster_status || '?'}`),
      stat('Last committed', format.integer(node.last_committed)),
      stat('Flow control paused', format.percent(node.flow_control_paused), node.flow_control_paused > 0.1 ? 'alert' : ''),
      stat('Recv queue', format.number(node.recv_queue), node.recv_queue > 10 ? 'alert' : ''),
      stat('Send queue', format.number(node.send_queue), node.send_queue > 10 ? 'alert' : ''),
      stat('Cert failures', format.number(node.cert_failures)),
      stat('Ready', node.ready === null || node.ready === undefined ? '—' : node.ready ? 'yes' : 'no'),
      stat('Read only', node.read_only ? 'yes' : 'no')));
}

function clusterSummary(cluster) {
  const summary = cluster.cluster || {};
  const proxy = cluster.proxy;
  const controller = cluster.controller || {};
  const primary = String(summary.status || '').toLowerCase() === 'primary';
  return h('dl', {class: 'summary'},
    stat('Cluster', cluster.name || '—'),
    stat('Status', h('span', {class: `badge tone-${primary ? 'ok' : 'down'}`}, summary.status || 'unknown')),
    stat('Size', summary.size === null || summary.size === undefined ? '—' : String(summary.size)),
    stat('Proxy writer', proxy ? (proxy.writer ? `${proxy.writer}${proxy.writer_address ? ` (${proxy.writer_address})` : ''}` : 'none') : 'no proxy'),
    stat('Healthy behind proxy', proxy && proxy.healthy ? (proxy.healthy.join(', ') || 'none') : '—'),
    stat('Auto-recovery', `nodes ${controller.auto_recover_nodes ? 'on' : 'off'}, cluster ${controller.auto_recover_cluster ? 'on' : 'off'}`));
}

function table(caption, columns, rows, emptyText) {
  if (rows.length === 0) return h('p', {class: 'empty'}, emptyText);
  return h('table', {},
    h('caption', {class: 'visually-hidden'}, caption),
    h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', {scope: 'col'}, title)))),
    h('tbody', {}, rows.map((row) => h('tr', {class: row.severity ? `severity-${row.severity}` : ''},
      columns.map(([, cell]) => h('td', {}, cell(row)))))));
}

function eventsTable(events) {
  return table('Recent events', [
    ['Time', (event) => format.time(event.at_ms)],
    ['Severity', (event) => h('span', {class: `badge severity-${event.severity}`}, event.severity)],
    ['Node', (event) => event.node || '—'],
    ['Kind', (event) => event.kind],
    ['Message', (event) => event.message],
  ], events, 'No events yet.');
}

function decisionsTable(decisions) {
  return table('Controller decisions', [
    ['Time', (decision) => format.time(decision.at_ms)],
    ['Situation', (decision) => decision.situation],
    ['Action', (decision) => `${decision.action}${decision.node ? ` ${decision.node}` : ''}`],
    ['Rule', (decision) => decision.rule],
    ['Reason', (decision) => decision.reason],
    ['Outcome', (decision) => decision.outcome || '—'],
  ], decisions, 'The controller has not had to decide anything yet.');
}

function newestFirst(list) {
  return [...(list || [])].sort((a, b) => b.at_ms - a.at_ms);
}

/** Groups "<metric>:<node>" series by metric; a bare "<metric>" is the whole cluster's
 *  (sum or maximum over the nodes), drawn first as "all nodes". */
export function seriesFor(history, metric) {
  const result = [];
  for (const [key, points] of Object.entries((history && history.series) || {})) {
    if (key === metric) result.push({name: 'all nodes', points});
    else if (key.startsWith(`${metric}:`)) result.push({name: key.slice(metric.length + 1), points});
  }
  return result.sort((a, b) => (a.name === 'all nodes' ? -1 : b.name === 'all nodes' ? 1 : a.name.localeCompare(b.name)));
}

export function mountOverview(main) {
  let windowName = sessionStorage.getItem('galley.window') || '5m';
  let timer = null;
  let stopped = false;
  let lastSuccess = 0;
  let lastHistoryFetch = 0;
  let history = null;

  const freshness = h('p', {class: 'freshness', role: 'status', 'aria-live': 'polite'}, 'Loading…');
  const summary = h('section', {'aria-labelledby': 'cluster-title'}, h('h2', {id: 'cluster-title'}, 'Cluster'), h('div', {}));
  const nodes = h('div', {class: 'nodes'});
  const windowButtons = WINDOWS.map((name) => h('button', {
    type: 'button', class: 'segment', 'aria-pressed': String(name === windowName),
    onclick: () => {
      windowName = name;
      sessionStorage.setItem('galley.window', name);
      for (const button of windowButtons) button.setAttribute('aria-pressed', String(button.textContent === name));
      lastHistoryFetch = 0;
      refresh();
    },
  }, name));
  const charts = h('div', {class: 'charts'});
  const events = h('div', {});
  const decisions = h('div', {});

  replace(main,
    h('div', {class: 'page-title'}, h('h1', {}, 'Overview'), freshness),
    summary,
    h('section', {'aria-labelledby': 'nodes-title'}, h('h2', {id: 'nodes-title'}, 'Nodes'), nodes),
    h('section', {'aria-labelledby': 'history-title'},
      h('div', {class: 'section-head'}, h('h2', {id: 'history-title'}, 'History'),
        h('div', {class: 'segments', role: 'group', 'aria-label': 'Time window'}, windowButtons)),
      charts),
    h('section', {'aria-labelledby': 'decisions-title'}, h('h2', {id: 'decisions-title'}, 'Controller decisions'), decisions),
    h('section', {'aria-labelledby': 'events-title'}, h('h2', {id: 'events-title'}, 'Recent events'), events));

  function drawCharts() {
    const to = Date.now();
    const from = to - WINDOW_MS[windowName];
    replace(charts, CHARTS.map((chart) => lineChart({
      title: chart.title, series: seriesFor(history, chart.metric), from, to, format: chart.format, minimum: chart.minimum,
    })));
  }

  function showFreshness(error) {
    const age = Date.now() - lastSuccess;
    // Old numbers stay readable but fade, so that nobody takes them for the present.
    const stale = Boolean(error) || age > STALE_AFTER_MS;
    for (const element of [summary, nodes]) element.classList.toggle('is-stale', stale);
    if (lastSuccess === 0 && error) {
      freshness.className = 'freshness stale';
      replace(freshness, `No data: ${error.message}`);
    } else if (error || age > STALE_AFTER_MS) {
      freshness.className = 'freshness stale';
      replace(freshness, `Stale: last update at ${format.time(lastSuccess)} (${format.ago(lastSuccess)})${error ? ` — ${error.message}` : ''}`);
    } else {
      freshness.className = 'freshness live';
      replace(freshness, `Live, updated ${format.time(lastSuccess)}`);
    }
  }

  async function refresh() {
    clearTimeout(timer);
    const wantHistory = Date.now() - lastHistoryFetch >= HISTORY_EVERY_MS[windowName];
    try {
      const [cluster, eventList, decisionList, newHistory] = await Promise.all([
        api.get('/cluster'),
        api.get('/events?limit=15'),
        api.get('/decisions?limit=10'),
        wantHistory ? api.get(`/history?window=${windowName}`) : Promise.resolve(null),
      ]);
      if (stopped) return;
      lastSuccess = Date.now();
      const writer = cluster.proxy ? cluster.proxy.writer : null;
      replace(summary.lastChild, clusterSummary(cluster));
      replace(nodes, (cluster.nodes || []).map((node) => nodeCard(node, writer)));
      replace(events, eventsTable(newestFirst(eventList)));
      replace(decisions, decisionsTable(newestFirst(decisionList)));
      if (newHistory) {
        history = newHistory;
        lastHistoryFetch = lastSuccess;
      }
      drawCharts();
      showFreshness(null);
    } catch (error) {
      if (stopped) return;
      showFreshness(error);
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
