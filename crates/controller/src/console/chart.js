// chart.js: a small line chart drawn as inline SVG, one line per series, with a time axis,
// three value ticks and a legend. No library: the history endpoint gives [at_ms, value]
// pairs and this draws them.

import {h, svg} from './dom.js';

const WIDTH = 560;
const HEIGHT = 180;
const MARGIN = {top: 10, right: 12, bottom: 24, left: 56};
/** Colours that stay apart for the usual 3 to 5 nodes, also for colour-blind readers. */
const PALETTE = ['#1f77b4', '#d95f02', '#1b9e77', '#7570b3', '#e7298a', '#66a61e', '#a6761d'];

export function colourFor(index) {
  return PALETTE[index % PALETTE.length];
}

/** The tick values for an axis from 0 to `max`: 0, max/2, max, rounded to a nice step. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (max <= step * magnitude) return step * magnitude;
  }
  return 10 * magnitude;
}

function timeLabel(ms, spanMs) {
  const date = new Date(ms);
  if (spanMs > 36 * 3600 * 1000) {
    return `${date.getMonth() + 1}/${date.getDate()} ${String(date.getHours()).padStart(2, '0')}h`;
  }
  return date.toLocaleTimeString([], {hour: '2-digit', minute: '2-digit', hour12: false});
}

/**
 * series: [{name, points: [[at_ms, value], ...]}]; from/to: the window in ms;
 * format: value -> text; minimum: the least top of the value axis. Returns a <figure> holding the SVG and its legend.
 */
export function lineChart({title, series, from, to, format, minimum = 0}) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const span = Math.max(1, to - from);
  let max = minimum;
  for (const {points} of series) {
    for (const [, value] of points) max = Math.max(max, Number(value) || 0);
  }
  const top = niceMax(max);
  const x = (ms) => MARGIN.left + ((ms - from) / span) * plotWidth;
  const y = (value) => MARGIN.top + plotHeight - (Math.max(0, Number(value) || 0) / top) * plotHeight;

  const grid = [0, 0.5, 1].map((fraction) => {
    const value = top * fraction;
    return svg('g', {class: 'tick'},
      svg('line', {x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value)}),
      svg('text', {x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end'}, format(value)));
  });
  const timeTicks = [from, from + span / 2, to].map((ms, index) =>
    svg('text', {
      class: 'tick', x: x(ms), y: HEIGHT - 6,
      'text-anchor': ['start', 'middle', 'end'][index],
    }, timeLabel(ms, span)));

  const lines = series.map(({points}, index) => {
    const inside = points.filter(([at]) => at >= from && at <= to);
    if (inside.length === 0) return null;
    if (inside.length === 1) {
      const [at, value] = inside[0];
      return svg('circle', {cx: x(at), cy: y(value), r: 2.5, fill: colourFor(index)});
    }
    const path = inside.map(([at, value]) => `${x(at).toFixed(1)},${y(value).toFixed(1)}`).join(' ');
    return svg('polyline', {points: path, fill: 'none', stroke: colourFor(index), 'stroke-width': 1.5,
      'stroke-linejoin': 'round'});
  });
  const empty = lines.every((line) => line === null);
  const latest = series.map(({name, points}) => {
    const last = points.length ? points[points.length - 1][1] : null;
    return `${name} ${last === null ? 'no data' : format(last)}`;
  }).join(', ');

  const picture = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'chart', role: 'img',
    'aria-label': `${title}: ${empty ? 'no data in this window' : `latest ${latest}`}`,
  },
  svg('title', {}, title),
  grid,
  svg('line', {class: 'axis', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(0), y2: y(0)}),
  timeTicks,
  lines,
  empty ? svg('text', {class: 'empty', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle'},
    'no data in this window') : null);

  const legend = h('ul', {class: 'legend'}, series.map(({name, points}, index) =>
    h('li', {},
      svg('svg', {class: 'swatch', viewBox: '0 0 12 12', 'aria-hidden': 'true'},
        svg('rect', {width: 12, height: 12, rx: 2, fill: colourFor(index)})),
      `${name}${points.length ? ` (${format(points[points.length - 1][1])})` : ''}`)));
  return h('figure', {class: 'chart-box'}, h('figcaption', {}, title), picture, legend);
}
