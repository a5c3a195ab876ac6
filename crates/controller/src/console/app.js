// app.js: the console's shell. Signs in (or resumes the session the cookie carries), draws
// the header and navigation, and mounts one page per location hash (#/overview,
// #/schemas, ...). Each page's mount function returns a function that stops it (its
// polling timers), called when the operator goes elsewhere.

import * as api from './api.js';
import {h, replace, field, messageArea, busy} from './dom.js';
import {mountOverview} from './overview.js';
import {mountSchemas} from './schemas.js';
import {mountUsers} from './users.js';
import {mountOpenStack} from './openstack.js';
import {mountTokens} from './tokens.js';

const PAGES = [
  {hash: 'overview', title: 'Overview', mount: mountOverview},
  {hash: 'schemas', title: 'Schemas', mount: mountSchemas},
  {hash: 'users', title: 'Users', mount: mountUsers},
  {hash: 'openstack', title: 'OpenStack', mount: mountOpenStack},
  {hash: 'tokens', title: 'Tokens', mount: mountTokens},
];

const root = document.getElementById('app');
let session = null;
let stopPage = () => {};

function currentPage() {
  const name = location.hash.replace(/^#\/?/, '');
  return PAGES.find((page) => page.hash === name) || PAGES[0];
}

function showLogin(notice) {
  stopPage();
  stopPage = () => {};
  session = null;
  document.title = 'Sign in — galley console';
  const message = messageArea();
  if (notice) message.error(notice);
  const user = field('User name', {name: 'username', autocomplete: 'username', required: true, maxlength: 64, value: 'admin'});
  const password = field('Password', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const submit = h('button', {type: 'submit'}, 'Sign in');
  const form = h('form', {class: 'login-form', 'aria-labelledby': 'login-title'},
    h('div', {class: 'brand'}, h('img', {src: '/assets/logo.svg', alt: '', width: 40, height: 40}),
      h('h1', {id: 'login-title'}, 'galley console')),
    user.row, password.row, submit, message.element);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.clear();
    try {
      session = await busy(submit, () => api.login(user.input.value.trim(), password.input.value));
      password.input.value = '';
      showConsole();
    } catch (error) {
      message.error(error);
      password.input.select();
    }
  });
  replace(root, h('main', {class: 'login'}, form));
  (user.input.value ? password.input : user.input).focus();
}

function showConsole() {
  const nav = h('nav', {'aria-label': 'Pages'}, h('ul', {}, PAGES.map((page) =>
    h('li', {}, h('a', {href: `#/${page.hash}`, dataset: {page: page.hash}}, page.title)))));
  const signOut = h('button', {type: 'button', class: 'secondary', onclick: async () => {
    try {
      await api.logout();
    } finally {
      showLogin();
    }
  }}, 'Sign out');
  const header = h('header', {class: 'top'},
    h('a', {class: 'brand', href: '#/overview'}, h('img', {src: '/assets/logo.svg', alt: '', width: 28, height: 28}),
      h('span', {}, 'galley')),
    nav,
    h('div', {class: 'who'}, h('span', {}, `Signed in as ${session.username}`), signOut));
  const main = h('main', {id: 'page', tabindex: '-1'});
  replace(root, header, main);
  route();
}

function route() {
  if (session === null) return;
  const page = currentPage();
  stopPage();
  for (const link of root.querySelectorAll('nav a')) {
    if (link.dataset.page === page.hash) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} — galley console`;
  const main = document.getElementById('page');
  main.replaceChildren();
  stopPage = page.mount(main) || (() => {});
}

window.addEventListener('hashchange', () => {
  route();
  const main = document.getElementById('page');
  if (main) main.focus({preventScroll: true});
});

api.whenSessionLost(() => showLogin('Your session ended; sign in again.'));

async function start() {
  try {
    session = await api.resumeSession();
  } catch (error) {
    showLogin(error.message);
    return;
  }
  if (session) showConsole();
  else showLogin();
}

start();
