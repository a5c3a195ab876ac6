// schemas.js: the databases on the cluster, with their size; create one (name, character
// set, collation) and drop one after typing its name, so that a click alone never drops
// data.

import * as api from './api.js';
import {h, replace, field, selectField, messageArea, busy} from './dom.js';
import * as format from './format.js';

/** The server refuses to drop these; the console offers no button for them. */
export const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

const CHARSETS = [['utf8mb4', 'utf8mb4 (recommended)'], ['utf8mb3', 'utf8mb3'], ['latin1', 'latin1'], ['ascii', 'ascii'], ['binary', 'binary']];

function dropRow(database, columns, onDropped) {
  const message = messageArea();
  const confirm = field(`Type ${database.name} to confirm`, {name: 'confirm', autocomplete: 'off', spellcheck: 'false'});
  const drop = h('button', {type: 'submit', class: 'danger', disabled: true}, `Drop ${database.name}`);
  const cancel = h('button', {type: 'button', class: 'secondary'}, 'Cancel');
  confirm.input.addEventListener('input', () => { drop.disabled = confirm.input.value !== database.name; });
  const form = h('form', {class: 'inline-confirm', 'aria-label': `Drop database ${database.name}`},
    h('p', {}, `Dropping ${database.name} deletes its ${database.tables ?? ''} tables and data on every node. This cannot be undone.`),
    confirm.row, h('div', {class: 'actions'}, drop, cancel), message.element);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    try {
      await busy(drop, () => api.del(`/databases/${api.segment(database.name)}?confirm=${encodeURIComponent(confirm.input.value)}`));
      onDropped();
    } catch (error) {
      message.error(error);
    }
  });
  const row = h('tr', {class: 'confirm-row'}, h('td', {colspan: columns}, form));
  cancel.addEventListener('click', () => row.remove());
  setTimeout(() => confirm.input.focus());
  return row;
}

export function mountSchemas(main) {
  const listMessage = messageArea();
  const list = h('div', {});
  const createMessage = messageArea();
  const name = field('Name', {name: 'name', required: true, autocomplete: 'off', spellcheck: 'false', pattern: '[A-Za-z0-9_$]{1,64}',
    title: 'Letters, digits, _ and $; at most 64 characters'});
  const charset = selectField('Character set', 'charset', CHARSETS, 'utf8mb4');
  const collation = field('Collation (optional)', {name: 'collation', autocomplete: 'off', placeholder: 'the character set\'s default', spellcheck: 'false'});
  const create = h('button', {type: 'submit'}, 'Create database');
  const form = h('form', {class: 'card form-grid', 'aria-labelledby': 'create-db-title'},
    h('h2', {id: 'create-db-title'}, 'Create a database'),
    name.row, charset.row, collation.row, h('div', {class: 'actions'}, create), createMessage.element);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    createMessage.clear();
    const body = {name: name.input.value.trim(), charset: charset.input.value};
    if (collation.input.value.trim()) body.collation = collation.input.value.trim();
    try {
      const created = await busy(create, () => api.post('/databases', body));
      createMessage.ok(`Created database ${created.name || body.name}.`);
      form.reset();
      await load();
    } catch (error) {
      createMessage.error(error);
    }
  });

  async function load() {
    try {
      const databases = await api.get('/databases');
      const columns = 6;
      const rows = databases.map((database) => {
        const system = SYSTEM_SCHEMAS.has(database.name);
        const row = h('tr', {dataset: {database: database.name}},
          h('th', {scope: 'row'}, database.name, system ? h('span', {class: 'badge neutral'}, 'system') : null),
          h('td', {class: 'number'}, format.bytes(database.size_bytes)),
          h('td', {class: 'number'}, database.tables ?? '—'),
          h('td', {}, database.charset || '—'),
          h('td', {}, database.collation || '—'),
          h('td', {class: 'row-actions'}, system ? null : h('button', {type: 'button', class: 'danger secondary',
            'aria-label': `Drop database ${database.name}`,
            onclick: () => {
              if (row.nextSibling && row.nextSibling.classList.contains('confirm-row')) return;
              row.after(dropRow(database, columns, async () => {
                listMessage.ok(`Dropped database ${database.name}.`);
                await load();
              }));
            }}, 'Drop…')));
        return row;
      });
      replace(list, databases.length === 0 ? h('p', {class: 'empty'}, 'No databases.') : h('table', {},
        h('caption', {class: 'visually-hidden'}, 'Databases'),
        h('thead', {}, h('tr', {}, ['Name', 'Size', 'Tables', 'Character set', 'Collation', ''].map((title) =>
          h('th', {scope: 'col'}, title)))),
        h('tbody', {}, rows)));
    } catch (error) {
      listMessage.error(error);
    }
  }

  replace(main,
    h('div', {class: 'page-title'}, h('h1', {}, 'Schemas')),
    form,
    h('section', {'aria-labelledby': 'db-list-title'}, h('h2', {id: 'db-list-title'}, 'Databases'), listMessage.element, list));
  load();
}
