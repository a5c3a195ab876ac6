// openstack.js: provision the databases and accounts OpenStack services need, from the
// catalog (the default set preselected, optional services unchecked), optionally rotating
// their passwords; show each service's config lines to view, copy and download; and the
// drift report (what was provisioned but is missing or differs on the server now).

import * as api from './api.js';
import {h, replace, uniqueId, messageArea, busy, copyText} from './dom.js';

function serviceResult(service) {
  const message = messageArea();
  const config = h('pre', {class: 'config'}, service.config || '');
  const copy = h('button', {type: 'button', class: 'secondary', onclick: async () => {
    try {
      await copyText(service.config || '');
      message.ok('Copied.');
    } catch (error) {
      message.error(error);
    }
  }}, 'Copy');
  const download = h('a', {class: 'button secondary', download: `${service.service}.conf`,
    href: `/api/v1/openstack/config?service=${encodeURIComponent(service.service)}`}, 'Download');
  const changes = service.changes && service.changes.length
    ? h('ul', {class: 'changes'}, service.changes.map((change) => h('li', {}, change)))
    : h('p', {class: 'muted'}, 'Nothing to change: already in place.');
  return h('article', {class: 'card service', dataset: {service: service.service}},
    h('header', {}, h('h3', {}, service.service),
      h('span', {class: 'muted'}, `user ${service.user}, databases ${(service.databases || []).join(', ')}`)),
    changes,
    h('details', {},
      h('summary', {}, `Config lines for ${service.service} (contain the password)`),
      config,
      h('div', {class: 'actions'}, copy, download),
      message.element));
}

function driftReport(report) {
  if (report.clean) return h('p', {class: 'message ok'}, 'No drift: every provisioned database, account and grant is in place.');
  const dirty = report.services.filter((service) => service.missing.length || service.differs.length);
  return h('table', {},
    h('caption', {class: 'visually-hidden'}, 'Drift'),
    h('thead', {}, h('tr', {}, ['Service', 'Missing', 'Differs'].map((title) => h('th', {scope: 'col'}, title)))),
    h('tbody', {}, dirty.map((service) => h('tr', {},
      h('th', {scope: 'row'}, service.service),
      h('td', {}, h('ul', {}, service.missing.map((item) => h('li', {}, item)))),
      h('td', {}, h('ul', {}, service.differs.map((item) => h('li', {}, item))))))));
}

export function mountOpenStack(main) {
  const catalogMessage = messageArea();
  const provisionMessage = messageArea();
  const checks = h('div', {class: 'checks services'});
  const rotateId = uniqueId('rotate');
  const rotate = h('input', {type: 'checkbox', id: rotateId, name: 'rotate'});
  const provision = h('button', {type: 'submit'}, 'Provision OpenStack databases');
  const results = h('div', {class: 'services-list'});
  const resultsTitle = h('h2', {id: 'provisioned-title'}, 'Provisioned services');
  const driftMessage = messageArea();
  const driftResult = h('div', {});
  const driftButton = h('button', {type: 'button', class: 'secondary'}, 'Check drift');
  let boxes = [];

  const form = h('form', {class: 'card', 'aria-labelledby': 'provision-title'},
    h('h2', {id: 'provision-title'}, 'Provision OpenStack databases'),
    h('p', {class: 'muted'}, 'Creates each service\'s databases, a same-named user at \'%\' and \'localhost\' with ALL on them, and a generated password. Running it again changes nothing unless you rotate.'),
    h('fieldset', {}, h('legend', {}, 'Services'), checks, catalogMessage.element),
    h('div', {class: 'choice'}, rotate, h('label', {for: rotateId}, 'Rotate the passwords of services already provisioned')),
    h('div', {class: 'actions'}, provision), provisionMessage.element);

  function showResults(services, heading) {
    resultsTitle.textContent = heading;
    replace(results, services.length === 0
      ? h('p', {class: 'empty'}, 'Nothing provisioned yet.')
      : services.map(serviceResult));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    provisionMessage.clear();
    const services = boxes.filter(({box}) => box.checked).map(({box}) => box.value);
    if (services.length === 0) {
      provisionMessage.error('Choose at least one service.');
      return;
    }
    try {
      const answer = await busy(provision, () => api.post('/openstack/provision', {services, rotate: rotate.checked}));
      provisionMessage.ok(answer.changed
        ? `Provisioned ${services.length} services; the changes are listed below.`
        : 'Everything was already in place; nothing changed.');
      rotate.checked = false;
      showResults(answer.services, 'Provisioning result');
    } catch (error) {
      provisionMessage.error(error);
    }
  });

  driftButton.addEventListener('click', async () => {
    driftMessage.clear();
    try {
      const report = await busy(driftButton, () => api.get('/openstack/drift'));
      replace(driftResult, driftReport(report));
    } catch (error) {
      driftMessage.error(error);
    }
  });

  async function load() {
    try {
      const catalog = await api.get('/openstack/catalog');
      boxes = catalog.map((entry) => {
        const id = uniqueId('service');
        const box = h('input', {type: 'checkbox', id, name: 'service', value: entry.service, checked: entry.default});
        const detail = `${(entry.databases || []).join(', ')}${entry.optional ? ' · optional' : ''}`;
        return {box, row: h('label', {for: id, class: 'check'}, box, h('span', {}, h('strong', {}, entry.service), ' ', h('span', {class: 'muted'}, detail)))};
      });
      replace(checks, boxes.map(({row}) => row));
    } catch (error) {
      catalogMessage.error(error);
    }
    try {
      const current = await api.get('/openstack');
      showResults(current.services || [], 'Provisioned services');
    } catch (error) {
      replace(results, h('p', {class: 'message error', role: 'alert'}, error.message));
    }
  }

  replace(main,
    h('div', {class: 'page-title'}, h('h1', {}, 'OpenStack')),
    form,
    h('section', {'aria-labelledby': 'provisioned-title'}, resultsTitle, results),
    h('section', {'aria-labelledby': 'drift-title'},
      h('div', {class: 'section-head'}, h('h2', {id: 'drift-title'}, 'Drift'), driftButton),
      driftMessage.element, driftResult));
  load();
}
