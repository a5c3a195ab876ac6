// dom.js: builds elements from plain values. Text always goes in as text nodes, never
// as HTML, so nothing the API returns can inject markup or script.

const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';

function fill(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('button', {type: 'submit', onclick: f}, 'Save'). */
export function h(tag, attributes, ...children) {
  return fill(document.createElement(tag), attributes, children);
}

/** An SVG element, the same way. */
export function svg(tag, attributes, ...children) {
  return fill(document.createElementNS(SVG_NAMESPACE, tag), attributes, children);
}

/** Replaces every child of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

let nextId = 0;
/** A unique id, to tie a label to its input. */
export function uniqueId(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled input: returns {row, input}. */
export function field(label, attributes) {
  const id = uniqueId(attributes.name || 'field');
  const input = h('input', {id, ...attributes});
  const row = h('div', {class: 'field'}, h('label', {for: id}, label), input);
  return {row, input};
}

/** A labelled select with [value, text] options. */
export function selectField(label, name, options, selected) {
  const id = uniqueId(name);
  const select = h('select', {id, name},
    options.map(([value, text]) => h('option', {value, selected: value === selected}, text)));
  const row = h('div', {class: 'field'}, h('label', {for: id}, label), select);
  return {row, input: select};
}

/** The place next to a form where its errors and results are said. */
export function messageArea() {
  const area = h('div', {class: 'message', role: 'status', 'aria-live': 'polite'});
  return {
    element: area,
    clear() { area.className = 'message'; area.replaceChildren(); },
    error(error) {
      area.className = 'message error';
      area.setAttribute('role', 'alert');
      replace(area, error && error.message ? error.message : String(error));
    },
    ok(...content) {
      area.className = 'message ok';
      area.setAttribute('role', 'status');
      replace(area, ...content);
    },
  };
}

/** Runs `action` with `button` disabled, so that a slow request is not sent twice. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

/** Copies text to the clipboard; falls back to a selection copy where the Clipboard API is
 *  not offered (plain http on a host other than localhost is not a secure context). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h('textarea', {class: 'offscreen', readonly: true, 'aria-hidden': 'true'});
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand('copy');
  area.remove();
  if (!copied) throw new Error('The browser refused to copy; select the text and copy it by hand.');
}

/** A secret shown once: the value, a copy button and the reminder that it is not shown again. */
export function secretBox(label, value) {
  const message = messageArea();
  const code = h('code', {class: 'secret-value'}, value);
  const button = h('button', {type: 'button', class: 'secondary', onclick: async () => {
    try { await copyText(value); message.ok('Copied.'); } catch (error) { message.error(error); }
  }}, 'Copy');
  return h('div', {class: 'secret', role: 'region', 'aria-label': label},
    h('p', {}, h('strong', {}, label), ' — shown only this once: copy it now.'),
    h('div', {class: 'secret-line'}, code, button),
    message.element);
}
