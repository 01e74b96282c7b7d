// Licenses per side: the pools (size / assigned / available, the size editable), who holds
// which license (a toggle per side), moving one license between people, the roster CSV import
// (bad rows by line and column), department quotas and the usage report (with its CSV).
// Supervisors see the holders and the usage report of their own departments, read-only.

import { api, get } from '../api.js';
import { h, openDialog, toast } from '../dom.js';
import { numericWhen, parseDate } from '../format.js';
import { t } from '../i18n.js';
import { csvErrorsBox } from './admin.js';

const SIDES = ['lgwan', 'internet'];
const sideName = (side) => t(`side.${side}`);

function licenseColumn(column) {
  if (!column) return t('csv.col.row');
  if (column === 'login_id') return t('csv.col.login_id');
  if (SIDES.includes(column)) return sideName(column);
  return column;
}

export class LicensesTab {
  constructor(app) {
    this.app = app;
    this.admin = app.isAdmin;
    this.holders = [];
    this.pools = [];
    this.filter = '';
    this.poolsEl = h('div', { class: 'pools' });
    this.holdersBody = h('tbody');
    this.holdersCount = h('span', { class: 'hint' });
    this.usageBody = h('tbody');
    this.el = h('div', { class: 'tab-panel' },
      this.buildPools(),
      this.buildHolders(),
      this.admin ? this.buildMove() : null,
      this.admin ? this.buildImport() : null,
      this.admin ? this.buildQuota() : null,
      this.admin ? this.buildQuotaMove() : null,
      this.buildUsage());
  }

  async load() {
    await Promise.all([this.loadPools(), this.loadHolders(), this.loadUsage()]);
  }

  deptName(id) {
    return this.app.departments.find((d) => d.id === id)?.name || '';
  }

  fail(err) {
    toast(err.text || t('error.unknown'), { error: true });
  }

  // -- pools --
  buildPools() {
    return h('section', { class: 'card', 'aria-labelledby': 'pools-title' },
      h('h2', { id: 'pools-title' }, t('licenses.pools')),
      h('p', { class: 'hint' }, t('licenses.pools_hint')),
      this.poolsEl);
  }

  async loadPools() {
    try {
      this.showPools((await get('/api/admin/licenses/pools')).pools);
    } catch (err) {
      this.poolsEl.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
    }
  }

  showPools(pools) {
    if (!pools) return;
    this.pools = pools;
    this.poolsEl.replaceChildren(...pools.map((p) => {
      const inputId = `pool-size-${p.side}`;
      const size = h('input', { id: inputId, type: 'number', min: 0, max: 1000000, required: true, value: String(p.size), inputmode: 'numeric' });
      const form = this.admin ? h('form', {
        class: 'pool-form row',
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const data = await api('PUT', `/api/admin/licenses/pools/${p.side}`, { json: { size: Number(size.value) } });
            this.showPools(data.pools);
            toast(t('licenses.pool_saved', { side: sideName(p.side) }));
          } catch (err) {
            this.fail(err);
          }
        },
      }, h('label', { for: inputId }, t('licenses.pool_size_of', { side: sideName(p.side) })), size,
      h('button', { type: 'submit', class: 'btn small' }, t('licenses.pool_change'))) : null;
      return h('section', { class: `pool side-${p.side}`, dataset: { side: p.side }, 'aria-labelledby': `pool-${p.side}` },
        h('h3', { id: `pool-${p.side}` }, sideName(p.side)),
        h('meter', { min: 0, max: Math.max(p.size, 1), value: p.assigned, 'aria-label': t('licenses.meter', { side: sideName(p.side) }) }),
        h('dl', { class: 'pool-figures' },
          h('div', null, h('dt', null, t('licenses.size')), h('dd', { class: 'pool-size' }, String(p.size))),
          h('div', null, h('dt', null, t('licenses.assigned')), h('dd', { class: 'pool-assigned' }, String(p.assigned))),
          h('div', null, h('dt', null, t('licenses.available')), h('dd', { class: 'pool-available' }, String(p.available)))),
        form);
    }));
  }

  // -- holders --
  buildHolders() {
    const filter = h('input', {
      type: 'search', id: 'holders-filter', autocomplete: 'off', placeholder: t('directory.filter_placeholder'),
      oninput: (e) => { this.filter = e.target.value.trim().toLowerCase(); this.renderHolders(); },
    });
    return h('section', { class: 'card', 'aria-labelledby': 'holders-title' },
      h('h2', { id: 'holders-title' }, t('licenses.holders'), ' ', this.holdersCount),
      this.admin ? h('p', { class: 'hint' }, t('licenses.holders_hint')) : h('p', { class: 'hint' }, t('licenses.scope_hint')),
      h('div', { class: 'field' }, h('label', { for: 'holders-filter' }, t('licenses.filter')), filter),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'holders-title' },
        h('table', { class: 'table holders-table' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('csv.col.login_id')),
            h('th', { scope: 'col' }, t('csv.col.display_name')),
            h('th', { scope: 'col' }, t('csv.col.department')),
            SIDES.map((s) => h('th', { scope: 'col' }, sideName(s))))),
          this.holdersBody)));
  }

  async loadHolders() {
    try {
      this.holders = (await get('/api/admin/licenses')).users;
    } catch (err) {
      this.holdersBody.replaceChildren(h('tr', null, h('td', { colspan: 5, class: 'form-error', role: 'alert' }, err.text || t('error.unknown'))));
      return;
    }
    this.renderHolders();
    this.renderMoveOptions?.();
  }

  renderHolders() {
    const q = this.filter;
    const shown = this.holders.filter((u) => !q || [u.login_id, u.display_name, this.deptName(u.department_id)].some((v) => (v || '').toLowerCase().includes(q)));
    this.holdersCount.textContent = t('admin.user_count', { n: this.holders.length });
    this.holdersBody.replaceChildren(...shown.map((u) => h('tr', { dataset: { login: u.login_id } },
      h('td', { class: 'mono' }, u.login_id),
      h('td', null, u.display_name),
      h('td', null, this.deptName(u.department_id)),
      SIDES.map((side) => h('td', { class: 'license-cell', dataset: { side } }, this.licenseCell(u, side))))));
    if (!shown.length) this.holdersBody.append(h('tr', null, h('td', { colspan: 5, class: 'hint' }, t('directory.nobody'))));
  }

  licenseCell(user, side) {
    const held = user.licenses?.[side];
    const lastUsed = held?.last_used_at ? numericWhen(parseDate(held.last_used_at)) : '';
    const note = held ? h('span', { class: 'last-used' }, lastUsed ? t('licenses.last_used', { when: lastUsed }) : t('licenses.never_used')) : null;
    if (!this.admin) return [h('span', null, held ? t('licenses.held') : t('licenses.not_held')), note];
    const id = `lic-${user.user_id}-${side}`;
    const box = h('input', {
      type: 'checkbox', id, checked: Boolean(held),
      'aria-label': t('licenses.toggle', { name: user.display_name, side: sideName(side) }),
      onchange: () => this.toggle(user, side, box),
    });
    return [h('span', { class: 'license-toggle' }, box, h('label', { for: id, 'aria-hidden': 'true' }, held ? t('licenses.held') : t('licenses.not_held'))), note];
  }

  async toggle(user, side, box) {
    const on = box.checked;
    if (!on) {
      const { closed } = openDialog({
        title: t('licenses.revoke_title'),
        body: h('p', null, t('licenses.revoke_confirm', { name: user.display_name, side: sideName(side) })),
        actions: [
          { label: t('common.cancel'), value: 'cancel', autofocus: true },
          { label: t('licenses.revoke'), value: 'ok', danger: true },
        ],
      });
      if ((await closed) !== 'ok') {
        box.checked = true;
        box.focus();
        return;
      }
    }
    box.disabled = true;
    try {
      const data = await api('POST', `/api/admin/licenses/${on ? 'assign' : 'revoke'}`, { json: { side, user_ids: [user.user_id] } });
      this.showPools(data.pools);
      toast(t(on ? 'licenses.assigned_to' : 'licenses.revoked_from', { name: user.display_name, side: sideName(side) }));
    } catch (err) {
      this.fail(err);
    }
    await this.loadHolders();
    document.getElementById(`lic-${user.user_id}-${side}`)?.focus();
    this.loadUsage();
  }

  // -- move --
  buildMove() {
    const side = h('select', { id: 'move-side' }, SIDES.map((s) => h('option', { value: s }, sideName(s))));
    const from = h('select', { id: 'move-from', required: true });
    const to = h('select', { id: 'move-to', required: true });
    this.renderMoveOptions = () => {
      const s = side.value;
      const opt = (u) => h('option', { value: String(u.user_id) }, `${u.display_name} (${u.login_id})`);
      from.replaceChildren(h('option', { value: '' }, t('licenses.choose_person')), ...this.holders.filter((u) => u.licenses?.[s]).map(opt));
      to.replaceChildren(h('option', { value: '' }, t('licenses.choose_person')), ...this.holders.filter((u) => !u.licenses?.[s]).map(opt));
    };
    side.addEventListener('change', this.renderMoveOptions);
    const form = h('form', {
      class: 'move-form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const data = await api('POST', '/api/admin/licenses/move', {
            json: { side: side.value, from_user_id: Number(from.value), to_user_id: Number(to.value) },
          });
          this.showPools(data.pools);
          toast(t('licenses.moved'));
          await this.loadHolders();
          this.loadUsage();
        } catch (err) {
          this.fail(err);
        }
      },
    },
    h('p', { class: 'hint' }, t('licenses.move_hint')),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'move-side' }, t('licenses.side')), side),
      h('div', { class: 'field' }, h('label', { for: 'move-from' }, t('licenses.move_from')), from),
      h('div', { class: 'field' }, h('label', { for: 'move-to' }, t('licenses.move_to')), to)),
    h('button', { type: 'submit', class: 'btn primary' }, t('licenses.move')));
    return h('section', { class: 'card', 'aria-labelledby': 'move-title' }, h('h2', { id: 'move-title' }, t('licenses.move_title')), form);
  }

  // -- roster CSV --
  buildImport() {
    const chosenName = h('span', { class: 'file-name' }, t('csv.no_file'));
    const file = h('input', {
      type: 'file', id: 'roster-file', name: 'csv', accept: '.csv,text/csv', required: true, class: 'file-input', 'aria-labelledby': 'roster-file-label',
      onchange: () => { chosenName.textContent = file.files?.[0]?.name || t('csv.no_file'); },
    });
    const result = h('div', { class: 'import-result', 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'btn primary' }, t('licenses.import'));
    const form = h('form', {
      class: 'import-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const chosen = file.files && file.files[0];
        if (!chosen) return;
        submit.disabled = true;
        result.replaceChildren(h('p', { class: 'hint' }, t('csv.importing')));
        try {
          const data = await api('POST', '/api/admin/licenses/import', { body: await chosen.arrayBuffer(), contentType: 'text/csv' });
          this.showPools(data.pools);
          result.replaceChildren(h('div', { class: 'import-ok', role: 'status' },
            h('p', { class: 'ok' }, t('licenses.imported', { assigned: data.assigned.length, revoked: data.revoked.length })),
            data.sessions_ended ? h('p', { class: 'hint' }, t('licenses.sessions_ended', { n: data.sessions_ended })) : null));
          form.reset();
          chosenName.textContent = t('csv.no_file');
          await this.loadHolders();
          this.loadUsage();
        } catch (err) {
          result.replaceChildren(csvErrorsBox(err, licenseColumn));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('div', { class: 'field' }, h('span', { class: 'label', id: 'roster-file-label' }, t('licenses.roster_file')),
      h('div', { class: 'file-pick' }, file,
        h('label', { for: 'roster-file', class: 'btn', 'aria-hidden': 'true' }, t('csv.choose')), chosenName)),
    h('p', { class: 'hint' }, t('licenses.roster_help')),
    h('p', { class: 'hint mono' }, 'login_id,lgwan,internet'),
    submit);
    return h('section', { class: 'card', 'aria-labelledby': 'roster-title' }, h('h2', { id: 'roster-title' }, t('licenses.roster_title')), form, result);
  }

  // -- quotas --
  buildQuota() {
    const dept = h('select', { id: 'quota-dept', required: true },
      h('option', { value: '' }, t('licenses.choose_department')),
      this.app.departments.map((d) => h('option', { value: String(d.id) }, d.name)));
    const side = h('select', { id: 'quota-side' }, SIDES.map((s) => h('option', { value: s }, sideName(s))));
    const size = h('input', { id: 'quota-size', type: 'number', min: 0, max: 1000000, inputmode: 'numeric', 'aria-describedby': 'quota-hint' });
    const form = h('form', {
      class: 'quota-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const value = size.value.trim() === '' ? null : Number(size.value);
        try {
          await api('PUT', `/api/admin/licenses/quotas/${Number(dept.value)}/${side.value}`, { json: { size: value } });
          toast(value === null ? t('licenses.quota_cleared') : t('licenses.quota_saved', { n: value }));
          this.loadUsage();
        } catch (err) {
          this.fail(err);
        }
      },
    },
    h('p', { class: 'hint', id: 'quota-hint' }, t('licenses.quota_hint')),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'quota-dept' }, t('csv.col.department')), dept),
      h('div', { class: 'field' }, h('label', { for: 'quota-side' }, t('licenses.side')), side),
      h('div', { class: 'field' }, h('label', { for: 'quota-size' }, t('licenses.quota')), size)),
    h('button', { type: 'submit', class: 'btn primary' }, t('licenses.quota_set')));
    return h('section', { class: 'card', 'aria-labelledby': 'quota-title' }, h('h2', { id: 'quota-title' }, t('licenses.quota_title')), form);
  }

  buildQuotaMove() {
    const depts = (id) => h('select', { id, required: true },
      h('option', { value: '' }, t('licenses.choose_department')),
      this.app.departments.map((d) => h('option', { value: String(d.id) }, d.name)));
    const side = h('select', { id: 'qmove-side' }, SIDES.map((s) => h('option', { value: s }, sideName(s))));
    const from = depts('qmove-from');
    const to = depts('qmove-to');
    const count = h('input', { id: 'qmove-count', type: 'number', min: 1, max: 1000000, required: true, inputmode: 'numeric' });
    const form = h('form', {
      class: 'quota-move-form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api('POST', '/api/admin/licenses/quotas/move', {
            json: { side: side.value, from_department_id: Number(from.value), to_department_id: Number(to.value), count: Number(count.value) },
          });
          toast(t('licenses.quota_moved', { n: Number(count.value) }));
          this.loadUsage();
        } catch (err) {
          this.fail(err);
        }
      },
    },
    h('p', { class: 'hint' }, t('licenses.quota_move_hint')),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'qmove-side' }, t('licenses.side')), side),
      h('div', { class: 'field' }, h('label', { for: 'qmove-from' }, t('licenses.quota_move_from')), from),
      h('div', { class: 'field' }, h('label', { for: 'qmove-to' }, t('licenses.quota_move_to')), to),
      h('div', { class: 'field' }, h('label', { for: 'qmove-count' }, t('licenses.quota_move_count')), count)),
    h('button', { type: 'submit', class: 'btn primary' }, t('licenses.quota_move')));
    return h('section', { class: 'card', 'aria-labelledby': 'qmove-title' }, h('h2', { id: 'qmove-title' }, t('licenses.quota_move_title')), form);
  }

  // -- usage report --
  buildUsage() {
    return h('section', { class: 'card', 'aria-labelledby': 'usage-title' },
      h('div', { class: 'card-head' },
        h('h2', { id: 'usage-title' }, t('licenses.usage')),
        h('a', { class: 'btn small', href: '/api/admin/licenses/usage?format=csv', download: '', id: 'usage-csv' }, t('licenses.usage_csv'))),
      h('p', { class: 'hint' }, t('licenses.usage_hint')),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'usage-title' },
        h('table', { class: 'table usage-table' },
          h('thead', null, h('tr', null,
            ['licenses.side', 'csv.col.department', 'licenses.quota', 'licenses.assigned', 'licenses.used_30d', 'licenses.never_used_col']
              .map((key) => h('th', { scope: 'col' }, t(key))))),
          this.usageBody)));
  }

  async loadUsage() {
    let data;
    try {
      data = await get('/api/admin/licenses/usage');
    } catch (err) {
      this.usageBody.replaceChildren(h('tr', null, h('td', { colspan: 6, class: 'form-error' }, err.text || t('error.unknown'))));
      return;
    }
    const rows = data.departments || [];
    this.usageBody.replaceChildren(...rows.map((r) => h('tr', { dataset: { side: r.side, department: String(r.department_id ?? '') } },
      h('td', null, sideName(r.side)),
      h('td', null, r.department || t('directory.no_department')),
      h('td', { class: 'num' }, r.quota === null || r.quota === undefined ? '—' : String(r.quota)),
      h('td', { class: 'num' }, String(r.assigned)),
      h('td', { class: 'num' }, String(r.used_30d)),
      h('td', { class: 'num' }, String(r.never_used)))));
    if (!rows.length) this.usageBody.append(h('tr', null, h('td', { colspan: 6, class: 'hint' }, t('licenses.usage_none'))));
  }
}
