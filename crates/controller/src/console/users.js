// users.js: accounts (user@host) and their grants. Create one (the host defaults to '%';
// without a password the API generates one, shown here once), drop one, set or rotate a
// password, and grant or revoke privileges on one database (db.*): ALL, or a chosen set.

import * as api from './api.js';
import {h, replace, field, uniqueId, messageArea, busy, secretBox} from './dom.js';

/** Database-level privileges MariaDB accepts on db.*, in the order its manual lists them. */
export const PRIVILEGES = [
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'INDEX', 'REFERENCES',
  'CREATE VIEW', 'SHOW VIEW', 'TRIGGER', 'EXECUTE', 'CREATE ROUTINE', 'ALTER ROUTINE',
  'LOCK TABLES', 'CREATE TEMPORARY TABLES', 'EVENT',
];

const accountPath = (account) => `/users/${api.segment(account.user)}/${api.segment(account.host)}`;
const accountName = (account) => `${account.user}@${account.host}`;

function passwordForm(account, done) {
  const message = messageArea();
  const password = field(`New password for ${accountName(account)}`, {name: 'password', type: 'password',
    autocomplete: 'new-password', placeholder: 'leave empty to generate one'});
  const save = h('button', {type: 'submit'}, 'Set password');
  const cancel = h('button', {type: 'button', class: 'secondary', onclick: () => done()}, 'Cancel');
  const result = h('div', {});
  const form = h('form', {class: 'inline-confirm', 'aria-label': `Set the password of ${accountName(account)}`},
    password.row, h('div', {class: 'actions'}, save, cancel), message.element, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    const body = password.input.value ? {password: password.input.value} : {};
    try {
      const answer = await busy(save, () => api.post(`${accountPath(account)}/password`, body));
      password.input.value = '';
      if (answer && answer.password) {
        replace(result, secretBox(`Generated password for ${accountName(account)}`, answer.password));
        message.ok('Password rotated.');
      } else {
        message.ok('Password set.');
      }
      cancel.textContent = 'Close';
    } catch (error) {
      message.error(error);
    }
  });
  setTimeout(() => password.input.focus());
  return form;
}

function dropForm(account, done, dropped) {
  const message = messageArea();
  const drop = h('button', {type: 'submit', class: 'danger'}, `Drop ${accountName(account)}`);
  const cancel = h('button', {type: 'button', class: 'secondary', onclick: () => done()}, 'Cancel');
  const form = h('form', {class: 'inline-confirm', 'aria-label': `Drop ${accountName(account)}`},
    h('p', {}, `Drop the account ${accountName(account)}? Applications using it lose access at once.`),
    h('div', {class: 'actions'}, drop, cancel), message.element);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await busy(drop, () => api.del(accountPath(account)));
      dropped();
    } catch (error) {
      message.error(error);
    }
  });
  setTimeout(() => cancel.focus());
  return form;
}

function grantForm(accounts, databases, onChanged) {
  const message = messageArea();
  const accountId = uniqueId('account');
  const account = h('select', {id: accountId, name: 'account', required: true},
    accounts.map((entry, index) => h('option', {value: String(index)}, accountName(entry))));
  const listId = uniqueId('databases');
  const database = field('Database', {name: 'database', required: true, list: listId, autocomplete: 'off', spellcheck: 'false'});
  const allId = uniqueId('all');
  const someId = uniqueId('some');
  const all = h('input', {type: 'radio', name: 'scope', id: allId, value: 'all', checked: true});
  const some = h('input', {type: 'radio', name: 'scope', id: someId, value: 'some'});
  const boxes = PRIVILEGES.map((privilege) => {
    const id = uniqueId('privilege');
    const box = h('input', {type: 'checkbox', id, value: privilege, name: 'privilege', disabled: true});
    return {box, row: h('label', {for: id, class: 'check'}, box, privilege)};
  });
  const syncBoxes = () => { for (const {box} of boxes) box.disabled = !some.checked; };
  all.addEventListener('change', syncBoxes);
  some.addEventListener('change', syncBoxes);
  const grant = h('button', {type: 'submit', value: 'grant'}, 'Grant');
  const revoke = h('button', {type: 'submit', value: 'revoke', class: 'secondary'}, 'Revoke');
  const form = h('form', {class: 'card', 'aria-labelledby': 'grant-title'},
    h('h2', {id: 'grant-title'}, 'Grant or revoke privileges'),
    h('div', {class: 'form-grid'},
      h('div', {class: 'field'}, h('label', {for: accountId}, 'Account'), account),
      database.row,
      h('datalist', {id: listId}, databases.map((name) => h('option', {value: name})))),
    h('fieldset', {},
      h('legend', {}, 'Privileges on the database (db.*)'),
      h('div', {class: 'choice'}, all, h('label', {for: allId}, 'ALL PRIVILEGES')),
      h('div', {class: 'choice'}, some, h('label', {for: someId}, 'These privileges:')),
      h('div', {class: 'checks'}, boxes.map(({row}) => row))),
    h('div', {class: 'actions'}, grant, revoke), message.element);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    const button = event.submitter || grant;
    const chosen = accounts[Number(account.value)];
    if (!chosen) {
      message.error('Create an account first.');
      return;
    }
    const privileges = all.checked ? ['ALL'] : boxes.filter(({box}) => box.checked).map(({box}) => box.value);
    if (privileges.length === 0) {
      message.error('Choose at least one privilege, or ALL PRIVILEGES.');
      return;
    }
    const body = {user: chosen.user, host: chosen.host, database: database.input.value.trim(), privileges};
    const verb = button.value === 'revoke' ? 'revokes' : 'grants';
    try {
      const answer = await busy(button, () => api.post(`/${verb}`, body));
      message.ok(`${verb === 'grants' ? 'Granted' : 'Revoked'} ${privileges.join(', ')} on ${body.database}.* ${verb === 'grants' ? 'to' : 'from'} ${accountName(chosen)}. Grants now: `,
        h('ul', {class: 'grants'}, ((answer && answer.grants) || []).map((text) => h('li', {}, h('code', {}, text)))));
      await onChanged();
    } catch (error) {
      message.error(error);
    }
  });
  return form;
}

export function mountUsers(main) {
  const listMessage = messageArea();
  const list = h('div', {});
  const grantSlot = h('div', {});
  const createMessage = messageArea();
  const createResult = h('div', {});
  const user = field('User', {name: 'user', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: 80});
  const host = field('Host', {name: 'host', required: true, value: '%', autocomplete: 'off', spellcheck: 'false',
    title: "A host name, an IP address, or a pattern such as '%' (any host) or '10.0.%'"});
  const password = field('Password (optional)', {name: 'password', type: 'password', autocomplete: 'new-password',
    placeholder: 'leave empty to generate one'});
  const create = h('button', {type: 'submit'}, 'Create user');
  const form = h('form', {class: 'card form-grid', 'aria-labelledby': 'create-user-title'},
    h('h2', {id: 'create-user-title'}, 'Create a user'),
    user.row, host.row, password.row, h('div', {class: 'actions'}, create), createMessage.element, createResult);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    createMessage.clear();
    replace(createResult);
    const body = {user: user.input.value.trim(), host: host.input.value.trim() || '%'};
    if (password.input.value) body.password = password.input.value;
    try {
      const created = await busy(create, () => api.post('/users', body));
      createMessage.ok(`Created ${accountName(body)}.`);
      if (created && created.password) {
        replace(createResult, secretBox(`Generated password for ${accountName(body)}`, created.password));
      }
      form.reset();
      await load();
    } catch (error) {
      createMessage.error(error);
    }
  });

  async function load() {
    let accounts;
    let databases = [];
    try {
      [accounts, databases] = await Promise.all([
        api.get('/users'),
        api.get('/databases').then((list) => list.map((entry) => entry.name)).catch(() => []),
      ]);
    } catch (error) {
      listMessage.error(error);
      return;
    }
    listMessage.clear();
    // The accounts an operator manages first; the server's and galley's own after them.
    accounts.sort((a, b) => Number(Boolean(a.system)) - Number(Boolean(b.system)));
    const rows = accounts.map((account) => {
      const panel = h('td', {colspan: 3});
      const panelRow = h('tr', {class: 'confirm-row', hidden: true}, panel);
      const close = () => { panelRow.hidden = true; panel.replaceChildren(); };
      const open = (content) => { replace(panel, content); panelRow.hidden = false; };
      const row = h('tr', {dataset: {account: accountName(account)}},
        h('th', {scope: 'row'}, h('code', {}, accountName(account)),
          account.system ? h('span', {class: 'badge neutral', title: 'The server\'s or galley\'s own account: not changed from here'}, 'system') : null),
        h('td', {}, h('ul', {class: 'grants'}, account.grants.map((text) => h('li', {}, h('code', {}, text))))),
        h('td', {class: 'row-actions'}, account.system ? null : [
          h('button', {type: 'button', class: 'secondary', 'aria-label': `Set the password of ${accountName(account)}`,
            onclick: () => open(passwordForm(account, close))}, 'Password…'),
          h('button', {type: 'button', class: 'danger secondary', 'aria-label': `Drop ${accountName(account)}`,
            onclick: () => open(dropForm(account, close, async () => {
              listMessage.ok(`Dropped ${accountName(account)}.`);
              await load();
            }))}, 'Drop…')]));
      return [row, panelRow];
    });
    replace(list, accounts.length === 0 ? h('p', {class: 'empty'}, 'No users.') : h('table', {},
      h('caption', {class: 'visually-hidden'}, 'Users and their grants'),
      h('thead', {}, h('tr', {}, ['Account', 'Grants', ''].map((title) => h('th', {scope: 'col'}, title)))),
      h('tbody', {}, rows)));
    // Keep the grant form's state (what was typed) unless the list of accounts changed.
    const key = accounts.filter((account) => !account.system).map(accountName).join('\n');
    if (grantSlot.dataset.accounts !== key) {
      grantSlot.dataset.accounts = key;
      replace(grantSlot, grantForm(accounts.filter((account) => !account.system), databases, load));
    }
  }

  replace(main,
    h('div', {class: 'page-title'}, h('h1', {}, 'Users')),
    form,
    grantSlot,
    h('section', {'aria-labelledby': 'user-list-title'}, h('h2', {id: 'user-list-title'}, 'Users and grants'), listMessage.element, list));
  load();
}
