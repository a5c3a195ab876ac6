// console.mjs: the browser test of the galley web console. Drives Debian's Chromium
// (headless, through playwright-core, no bundled browser) against a running controller:
// signs in, sees every node Synced, provisions OpenStack, creates a database and a user,
// grants privileges, creates and revokes a token, and checks each result on the page.
// Screenshots of every page go to GALLEY_SCREENSHOTS_DIR.
//
// Environment:
//   GALLEY_CONSOLE_URL      the console, e.g. http://127.0.0.1:4600/ (required)
//   GALLEY_CONSOLE_PASSWORD the admin password; when unset it is read from standard input
//                           (never from the command line, where `ps` would show it)
//   GALLEY_SCREENSHOTS_DIR  where the PNGs go (default: a new temporary directory)
//   GALLEY_TEST_SUFFIX      makes the names this test creates unique (default: random)
//   GALLEY_EXPECT_NODES     how many Synced nodes to wait for (default 3)
//   CHROMIUM                the browser (default /usr/bin/chromium)
// Exits 0 when every step passed; otherwise names the failed step and keeps a screenshot
// of the page as it was.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const consoleUrl = process.env.GALLEY_CONSOLE_URL;
if (!consoleUrl) {
  console.error('error: set GALLEY_CONSOLE_URL to the console address, e.g. http://127.0.0.1:4600/');
  process.exit(2);
}
const password = process.env.GALLEY_CONSOLE_PASSWORD ?? (await readStandardInput()).trim();
if (!password) {
  console.error('error: no password: set GALLEY_CONSOLE_PASSWORD or pass it on standard input');
  process.exit(2);
}
const screenshots = process.env.GALLEY_SCREENSHOTS_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'galley-console-shots-'));
fs.mkdirSync(screenshots, {recursive: true});
const suffix = process.env.GALLEY_TEST_SUFFIX || Math.random().toString(36).slice(2, 8);
const expectNodes = Number(process.env.GALLEY_EXPECT_NODES || 3);
const names = {
  database: `console_db_${suffix}`,
  dropped: `console_drop_${suffix}`,
  user: `console_user_${suffix}`,
  token: `console-token-${suffix}`,
};

async function readStandardInput() {
  if (process.stdin.isTTY) return '';
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'galley-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Without the background-networking flags this Chromium's own connections (updates,
  // sync, QUIC probes) are refused here and slow every start.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: {width: 1280, height: 900},
  acceptDownloads: true,
  timeout: 60_000,
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(20_000);

// Every console error is a failure, except the 401s the page expects while signed out
// (GET /session before sign-in, the deliberately wrong password).
const browserErrors = [];
let simulatingOutage = false;
page.on('console', (message) => {
  if (message.type() !== 'error') return;
  const text = message.text();
  if (simulatingOutage && /ERR_CONNECTION_REFUSED/.test(text)) return;
  if (/status of 401/.test(text)) return;
  if (/status of 409/.test(text)) return; // the duplicate database this test creates on purpose
  browserErrors.push(text);
});
page.on('pageerror', (error) => browserErrors.push(`uncaught: ${error.message}`));

let shot = 0;
async function screenshot(name) {
  shot += 1;
  const file = path.join(screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({path: file, fullPage: true});
  return file;
}

let failed = false;
async function step(name, action) {
  try {
    await action();
    console.log(`ok - ${name}`);
  } catch (error) {
    failed = true;
    console.log(`not ok - ${name}: ${error.message.split('\n').slice(0, 6).join('\n    ')}`);
    try {
      console.log(`    page ${page.url()}; screenshot ${await screenshot(`failed-${name.replace(/\W+/g, '-')}`)}`);
    } catch {
      // The page itself is gone; the message above is all there is.
    }
    throw error;
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function textOf(selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function go(pageName) {
  await page.getByRole('navigation', {name: 'Pages'}).getByRole('link', {name: pageName}).click();
  await page.getByRole('heading', {level: 1, name: pageName}).waitFor();
}

async function run() {
  await step('the login page shows, with the admin user prefilled', async () => {
    await page.goto(consoleUrl);
    await page.getByRole('heading', {name: 'galley console'}).waitFor();
    check(await page.getByLabel('User name').inputValue() === 'admin', 'user name not prefilled with admin');
    await screenshot('login');
  });

  await step('a wrong password is refused with a readable message', async () => {
    await page.getByLabel('Password').fill(`${password}-wrong`);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByRole('alert').filter({hasText: 'Wrong user name or password'}).waitFor();
  });

  await step('signing in opens the overview', async () => {
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByRole('heading', {level: 1, name: 'Overview'}).waitFor();
    check((await page.getByText('Signed in as admin').count()) === 1, 'no "Signed in as admin"');
  });

  await step(`the overview shows ${expectNodes} Synced nodes, the writer and live data`, async () => {
    await page.waitForFunction((count) =>
      document.querySelectorAll('article.node[data-state="Synced"]').length === count,
    expectNodes, {timeout: 90_000});
    const clusterText = await textOf('dl.summary');
    check(clusterText.includes('Primary'), `cluster summary without Primary: ${clusterText}`);
    check(clusterText.includes(String(expectNodes)), `cluster summary without size ${expectNodes}: ${clusterText}`);
    await page.locator('.freshness.live').waitFor();
    check((await page.locator('article.node .badge.writer').count()) === 1, 'not exactly one writer badge');
    check((await page.locator('figure.chart-box svg.chart').count()) === 4, 'not 4 charts');
    const nodeText = await textOf('article.node');
    check(/Last committed\s*\d+/.test(nodeText), `no last committed seqno: ${nodeText}`);
    await screenshot('overview');
  });

  await step('the history window selector switches to 1h and keeps polling', async () => {
    await page.getByRole('group', {name: 'Time window'}).getByRole('button', {name: '1h'}).click();
    const pressed = await page.getByRole('button', {name: '1h'}).getAttribute('aria-pressed');
    check(pressed === 'true', `1h not pressed (${pressed})`);
    const before = await textOf('.freshness');
    await page.waitForFunction((text) => {
      const element = document.querySelector('.freshness.live');
      return element && element.textContent !== text;
    }, before, {timeout: 15_000});
    await page.getByRole('button', {name: '5m'}).click();
  });

  await step('when the controller cannot be reached the overview says its data is stale, then recovers', async () => {
    // The browser's requests to /cluster fail as they would with the controller down;
    // the page must keep the last data, say it is stale, and go live again afterwards.
    simulatingOutage = true;
    await page.route('**/api/v1/cluster', (route) => route.abort('connectionrefused'));
    await page.locator('.freshness.stale').waitFor({timeout: 20_000});
    check((await page.locator('article.node').count()) === expectNodes, 'the last node data was not kept');
    await screenshot('overview-stale');
    await page.unroute('**/api/v1/cluster');
    await page.locator('.freshness.live').waitFor({timeout: 20_000});
    simulatingOutage = false;
  });

  let provisionedServices = [];
  await step('OpenStack: the catalog preselects the default set, optional services unchecked', async () => {
    await go('OpenStack');
    const keystone = page.getByRole('checkbox', {name: /^keystone\b/});
    await keystone.waitFor();
    check(await keystone.isChecked(), 'keystone (default) is not preselected');
    check(await page.getByRole('checkbox', {name: /^nova\b/}).isChecked(), 'nova (default) is not preselected');
    check(!(await page.getByRole('checkbox', {name: /^barbican\b/}).isChecked()), 'barbican (optional) is preselected');
  });

  await step('OpenStack: provisioning shows each service with its changes and config lines', async () => {
    await page.getByRole('button', {name: 'Provision OpenStack databases'}).click();
    await page.locator('form .message.ok').filter({hasText: /Provisioned|already in place/}).waitFor({timeout: 60_000});
    provisionedServices = await page.locator('article.service').evaluateAll((articles) => articles.map((a) => a.dataset.service));
    for (const service of ['keystone', 'nova', 'neutron', 'glance']) {
      check(provisionedServices.includes(service), `${service} missing from the result: ${provisionedServices}`);
    }
    check(!provisionedServices.includes('barbican'), 'barbican provisioned without being chosen');
    const nova = page.locator('article.service[data-service="nova"]');
    await nova.locator('summary').click();
    const config = await nova.locator('pre.config').textContent();
    check(/connection = mysql\+pymysql:\/\/nova:[^@\s]+@[^/\s]+\/nova/.test(config), `nova config lines unexpected: ${config.replace(/:[^:@\s]+@/g, ':***@')}`);
    await screenshot('openstack-provisioned');
  });

  await step('OpenStack: the config download is the service\'s lines', async () => {
    const nova = page.locator('article.service[data-service="nova"]');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      nova.getByRole('link', {name: 'Download'}).click(),
    ]);
    check(download.suggestedFilename() === 'nova.conf', `download named ${download.suggestedFilename()}`);
    const text = fs.readFileSync(await download.path(), 'utf8');
    check(text.includes('connection = mysql+pymysql://nova:'), 'downloaded nova.conf lacks its connection line');
  });

  await step('OpenStack: no drift, and a second provision changes nothing', async () => {
    await page.getByRole('button', {name: 'Check drift'}).click();
    await page.getByText('No drift').waitFor({timeout: 30_000});
    await page.getByRole('button', {name: 'Provision OpenStack databases'}).click();
    await page.locator('form .message.ok').filter({hasText: 'Everything was already in place'}).waitFor({timeout: 60_000});
  });

  await step(`Schemas: create ${names.database}; a duplicate is refused next to the form`, async () => {
    await go('Schemas');
    await page.getByLabel('Name').fill(names.database);
    check(await page.getByLabel('Character set').inputValue() === 'utf8mb4', 'charset does not default to utf8mb4');
    await page.getByRole('button', {name: 'Create database'}).click();
    await page.locator(`tr[data-database="${names.database}"]`).waitFor();
    await page.getByLabel('Name').fill(names.database);
    await page.getByRole('button', {name: 'Create database'}).click();
    const error = page.locator('form .message.error');
    await error.waitFor();
    check(/exist/i.test(await error.textContent()), `duplicate database error: ${await error.textContent()}`);
    for (const service of ['keystone', 'nova_api', 'nova_cell0']) {
      await page.locator(`tr[data-database="${service}"]`).waitFor();
    }
    await screenshot('schemas');
  });

  await step('Schemas: dropping needs the name typed', async () => {
    await page.getByLabel('Name').fill(names.dropped);
    await page.getByRole('button', {name: 'Create database'}).click();
    await page.locator(`tr[data-database="${names.dropped}"]`).waitFor();
    await page.getByRole('button', {name: `Drop database ${names.dropped}`}).click();
    const confirm = page.getByLabel(`Type ${names.dropped} to confirm`);
    const drop = page.getByRole('button', {name: `Drop ${names.dropped}`, exact: true});
    await confirm.fill(names.database);
    check(await drop.isDisabled(), 'drop enabled with the wrong name typed');
    await confirm.fill(names.dropped);
    check(await drop.isEnabled(), 'drop disabled with the right name typed');
    await drop.click();
    await page.locator(`tr[data-database="${names.dropped}"]`).waitFor({state: 'detached'});
    await page.getByText(`Dropped database ${names.dropped}.`).waitFor();
  });

  await step(`Users: create ${names.user}@% with a generated password shown once`, async () => {
    await go('Users');
    await page.getByLabel('User', {exact: true}).fill(names.user);
    check(await page.getByLabel('Host', {exact: true}).inputValue() === '%', 'host does not default to %');
    await page.getByRole('button', {name: 'Create user'}).click();
    const secret = page.getByRole('region', {name: `Generated password for ${names.user}@%`});
    await secret.waitFor();
    const generated = (await secret.locator('.secret-value').textContent()).trim();
    check(generated.length >= 12, `generated password too short (${generated.length} characters)`);
    await page.locator(`tr[data-account="${names.user}@%"]`).waitFor();
    const ownAccounts = page.locator('tr[data-account^="galley_"]');
    check(await ownAccounts.count() > 0, 'galley\'s own accounts are not listed');
    check(await ownAccounts.getByRole('button').count() === 0, 'galley\'s own accounts offer password or drop buttons');
  });

  await step(`Users: grant SELECT, INSERT on ${names.database}.* and see it listed`, async () => {
    await page.getByLabel('Account', {exact: true}).selectOption({label: `${names.user}@%`});
    await page.getByLabel('Database', {exact: true}).fill(names.database);
    await page.getByLabel('These privileges:').check();
    await page.getByRole('checkbox', {name: 'SELECT', exact: true}).check();
    await page.getByRole('checkbox', {name: 'INSERT', exact: true}).check();
    await page.getByRole('button', {name: 'Grant', exact: true}).click();
    await page.getByText(`Granted SELECT, INSERT on ${names.database}.*`).waitFor();
    const row = page.locator(`tr[data-account="${names.user}@%"]`);
    await page.waitForFunction(([selector, database]) => {
      // SHOW GRANTS escapes the wildcard _ in a database name: console\_db\_1.
      const text = (document.querySelector(selector)?.textContent || '').replaceAll('\\_', '_');
      return /SELECT, INSERT/.test(text) && text.includes(database);
    }, [`tr[data-account="${names.user}@%"]`, names.database]);
    check((await row.textContent()).includes('GRANT'), 'no GRANT listed for the new user');
    await screenshot('users');
  });

  await step('Users: revoke INSERT leaves SELECT', async () => {
    await page.getByRole('checkbox', {name: 'SELECT', exact: true}).uncheck();
    await page.getByRole('button', {name: 'Revoke', exact: true}).click();
    await page.getByText(`Revoked INSERT on ${names.database}.*`).waitFor();
    await page.waitForFunction((selector) => {
      const text = document.querySelector(selector)?.textContent || '';
      return /GRANT SELECT ON/.test(text) && !/INSERT/.test(text);
    }, `tr[data-account="${names.user}@%"]`);
  });

  await step('Users: rotating a password shows the generated one once', async () => {
    await page.getByRole('button', {name: `Set the password of ${names.user}@%`}).click();
    await page.getByRole('button', {name: 'Set password', exact: true}).click();
    const panel = page.locator('tr.confirm-row:not([hidden])');
    await panel.getByRole('region', {name: `Generated password for ${names.user}@%`}).waitFor();
    await panel.getByText('Password rotated.').waitFor();
  });

  await step('Users: a grant with no privilege chosen is refused next to the form', async () => {
    await page.getByRole('checkbox', {name: 'INSERT', exact: true}).uncheck();
    await page.getByRole('button', {name: 'Grant', exact: true}).click();
    await page.getByText('Choose at least one privilege').waitFor();
  });

  await step(`Tokens: create ${names.token} (shown once), list it, revoke it`, async () => {
    // By keyboard: the navigation link takes Enter, and so does the form.
    await page.getByRole('navigation', {name: 'Pages'}).getByRole('link', {name: 'Tokens'}).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', {level: 1, name: 'Tokens'}).waitFor();
    await page.getByLabel('Name').fill(names.token);
    await page.getByLabel('Name').press('Enter');
    const secret = page.getByRole('region', {name: `Token ${names.token}`});
    await secret.waitFor();
    check((await secret.locator('.secret-value').textContent()).trim().length >= 20, 'token too short');
    const row = page.locator(`tr[data-token="${names.token}"]`);
    await row.waitFor();
    await screenshot('tokens');
    await page.getByRole('button', {name: `Revoke token ${names.token}`}).click();
    await row.getByRole('button', {name: 'Revoke', exact: true}).click();
    await row.waitFor({state: 'detached'});
  });

  await step('signing out returns to the login page, and the API refuses the old session', async () => {
    await page.getByRole('button', {name: 'Sign out'}).click();
    await page.getByRole('button', {name: 'Sign in'}).waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/cluster')).status);
    check(status === 401, `GET /api/v1/cluster after sign-out answered ${status}`);
  });

  await step('no errors in the browser console (script errors, CSP violations)', async () => {
    check(browserErrors.length === 0, browserErrors.join('\n'));
  });
}

try {
  await run();
} catch {
  failed = true;
} finally {
  await context.close();
  fs.rmSync(userDataDir, {recursive: true, force: true});
}
console.log(`screenshots: ${screenshots}`);
process.exit(failed ? 1 : 0);
