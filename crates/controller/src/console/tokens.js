// tokens.js: API tokens for scripts and the CLI on other hosts. A new token is shown once
// (the controller keeps only its hash); each has a scope (read, manage, admin) and an
// expiry, and ends early when its creator's console password changes. Tokens are listed
// with both and revoked by id.

import * as api from './api.js';
import {h, replace, field, selectField, messageArea, busy, secretBox} from './dom.js';
import * as format from './format.js';

export function mountTokens(main) {
  const listMessage = messageArea();
  const list = h('div', {});
  const createMessage = messageArea();
  const createResult = h('div', {});
  const name = field('Name', {name: 'name', required: true, autocomplete: 'off', placeholder: 'e.g. deploy-pipeline', maxlength: 64});
  const scope = selectField('Scope', 'scope', [
    ['read', 'read: state, history, databases, accounts'],
    ['manage', 'manage: also change them, and read OpenStack passwords'],
    ['admin', 'admin: also manage tokens'],
  ], 'read');
  const lifetime = field('Lifetime in days', {name: 'lifetime_days', type: 'number', min: 1, max: 365, value: 90, required: true});
  const create = h('button', {type: 'submit'}, 'Create token');
  const form = h('form', {class: 'card form-grid', 'aria-labelledby': 'create-token-title'},
    h('h2', {id: 'create-token-title'}, 'Create an API token'),
    name.row, scope.row, lifetime.row, h('div', {class: 'actions'}, create), createMessage.element, createResult);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    createMessage.clear();
    replace(createResult);
    try {
      const body = {name: name.input.value.trim(), scope: scope.input.value, lifetime_days: Number(lifetime.input.value)};
      const created = await busy(create, () => api.post('/tokens', body));
      createMessage.ok(`Created token ${created.name} (${created.scope}, expires ${format.dateTime(created.expires_ms)}). Use it as: Authorization: Bearer <token>`);
      replace(createResult, secretBox(`Token ${created.name}`, created.token));
      form.reset();
      await load();
    } catch (error) {
      createMessage.error(error);
    }
  });

  async function load() {
    try {
      const tokens = await api.get('/tokens');
      listMessage.clear();
      replace(list, tokens.length === 0 ? h('p', {class: 'empty'}, 'No API tokens.') : h('table', {},
        h('caption', {class: 'visually-hidden'}, 'API tokens'),
        h('thead', {}, h('tr', {}, ['Name', 'Id', 'Scope', 'Owner', 'Created', 'Expires', 'Last used', ''].map((title) => h('th', {scope: 'col'}, title)))),
        h('tbody', {}, tokens.map((token) => {
          const revoke = h('button', {type: 'button', class: 'danger secondary', 'aria-label': `Revoke token ${token.name}`}, 'Revoke…');
          const cell = h('td', {class: 'row-actions'}, revoke);
          revoke.addEventListener('click', () => {
            const message = messageArea();
            const yes = h('button', {type: 'button', class: 'danger'}, 'Revoke');
            const no = h('button', {type: 'button', class: 'secondary'}, 'Keep');
            no.addEventListener('click', () => replace(cell, revoke));
            yes.addEventListener('click', async () => {
              try {
                await busy(yes, () => api.del(`/tokens/${api.segment(String(token.id))}`));
                listMessage.ok(`Revoked token ${token.name}.`);
                await load();
              } catch (error) {
                message.error(error);
              }
            });
            replace(cell, h('span', {}, 'Revoke? '), yes, no, message.element);
            no.focus();
          });
          return h('tr', {dataset: {token: token.name}},
            h('th', {scope: 'row'}, token.name),
            h('td', {}, h('code', {}, String(token.id))),
            h('td', {}, token.scope),
            h('td', {}, token.owner || '—'),
            h('td', {}, format.dateTime(token.created_ms)),
            h('td', {}, token.expired ? h('span', {class: 'badge'}, 'expired') : null, format.dateTime(token.expires_ms)),
            h('td', {}, token.last_used_ms ? format.ago(token.last_used_ms) : 'never'),
            cell);
        }))));
    } catch (error) {
      listMessage.error(error);
    }
  }

  replace(main,
    h('div', {class: 'page-title'}, h('h1', {}, 'Tokens')),
    form,
    h('section', {'aria-labelledby': 'token-list-title'}, h('h2', {id: 'token-list-title'}, 'Tokens'), listMessage.element, list));
  load();
}
