// Administration, one tab at a time (#/admin/<tab>): users (list, add, deactivate /
// reactivate, CSV import that shows every bad row), licenses per side, devices and device
// codes, the device and mobile policy, the audit log.  Supervisors get the licenses tab only,
// scoped by the server to their own departments.

import { api, get } from '../api.js';
import { h, openDialog, toast } from '../dom.js';
import { lang, t } from '../i18n.js';
import { AuditTab } from './admin_audit.js';
import { DevicesTab } from './admin_devices.js';
import { LicensesTab } from './admin_licenses.js';
import { PolicyTab } from './admin_policy.js';

const ROLES = ['member', 'supervisor', 'admin'];
const COLUMNS = ['login_id', 'display_name', 'kana', 'department', 'title', 'email', 'role', 'password'];

// Field errors of the user form come in English; the Japanese screen says them in Japanese.
// (CSV row errors carry both languages from the server.)
const ROW_MESSAGES = [
  [/^required column is missing$/, () => t('csv.err.missing_column')],
  [/^more than (\d+) rows$/, (m) => t('csv.err.too_many_rows', { n: m[1] })],
  [/^more cells than header columns$/, () => t('csv.err.too_many_cells')],
  [/^1-64 characters/, () => t('csv.err.login_id')],
  [/^required, at most (\d+) characters$/, (m) => t('csv.err.required_max', { n: m[1] })],
  [/^at most (\d+) characters$/, (m) => t('csv.err.max', { n: m[1] })],
  [/^not an e-mail address$/, () => t('csv.err.email')],
  [/^one of admin, supervisor, member$/, () => t('csv.err.role')],
  [/^unknown department '(.*)'$|^unknown department "(.*)"$/, (m) => t('csv.err.department', { name: m[1] ?? m[2] })],
  [/^several departments are named '(.*)'|^several departments are named "(.*)"/, (m) => t('csv.err.department_ambiguous', { name: m[1] ?? m[2] })],
  [/^already exists$/, () => t('csv.err.exists')],
  [/^duplicate of line (\d+)/, (m) => t('csv.err.duplicate', { n: m[1] })],
  [/^The password needs at least (\d+) characters and (\d+)/, (m) => t('csv.err.password', { len: m[1], classes: m[2] })],
  [/^CSV syntax/, () => t('csv.err.syntax')],
];

export function rowMessage(text) {
  if (lang() !== 'ja') return text;
  for (const [re, fn] of ROW_MESSAGES) {
    const m = String(text).match(re);
    if (m) return fn(m);
  }
  return t('csv.err.other');
}

export function columnName(column) {
  if (!column) return t('csv.col.row');
  return COLUMNS.includes(column) ? t(`csv.col.${column}`) : column;
}

const TABS = [
  ['users', () => UsersTab, true],
  ['licenses', () => LicensesTab, false],
  ['devices', () => DevicesTab, true],
  ['policy', () => PolicyTab, true],
  ['audit', () => AuditTab, true],
];

export class AdminView {
  constructor(app, tab) {
    this.app = app;
    const tabs = TABS.filter(([, , adminOnly]) => app.isAdmin || !adminOnly);
    const current = tabs.find(([name]) => name === tab) || tabs[0];
    this.tab = current[0];
    const Tab = current[1]();
    this.content = new Tab(app);
    this.el = h('section', { class: 'page admin', 'aria-labelledby': 'admin-title' },
      h('header', { class: 'page-header' },
        h('a', { class: 'btn ghost back', href: '#/', 'aria-label': t('room.back') }, '‹'),
        h('h1', { id: 'admin-title' }, t('admin.title'))),
      h('nav', { class: 'tabs', 'aria-label': t('admin.tabs') },
        tabs.map(([name]) => h('a', {
          href: `#/admin/${name}`, class: 'tab', id: `tab-${name}`,
          'aria-current': name === this.tab ? 'page' : undefined,
        }, t(`admin.tab.${name}`)))),
      h('div', { class: 'page-body admin-grid', dataset: { tab: this.tab } }, this.content.el));
  }

  async load() {
    await this.content.load?.();
  }

  destroy() {
    this.content.destroy?.();
  }
}

/** Users: the list, CSV import, add one. */
class UsersTab {
  constructor(app) {
    this.app = app;
    this.users = [];
    this.tableBody = h('tbody');
    this.userCount = h('span', { class: 'hint' });
    this.el = h('div', { class: 'tab-panel' },
      this.buildUsers(),
      this.buildImport(),
      this.buildAddUser());
  }

  async load() {
    await this.loadUsers();
  }

  deptName(id) {
    return this.app.departments.find((d) => d.id === id)?.name || '';
  }

  // -- users list --
  buildUsers() {
    return h('section', { class: 'card users-card', 'aria-labelledby': 'users-title' },
      h('h2', { id: 'users-title' }, t('admin.users'), ' ', this.userCount),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'users-title' },
        h('table', { class: 'table users-table' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('csv.col.login_id')),
            h('th', { scope: 'col' }, t('csv.col.display_name')),
            h('th', { scope: 'col' }, t('csv.col.department')),
            h('th', { scope: 'col' }, t('csv.col.role')),
            h('th', { scope: 'col' }, t('admin.state')),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('admin.actions'))))),
          this.tableBody)));
  }

  async loadUsers() {
    try {
      this.users = (await get('/api/admin/users?include_inactive=true')).users;
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
      return;
    }
    this.userCount.textContent = t('admin.user_count', { n: this.users.length });
    this.tableBody.replaceChildren(...this.users.map((u) => h('tr', { class: u.is_active ? '' : 'inactive', dataset: { login: u.login_id } },
      h('td', { class: 'mono' }, u.login_id),
      h('td', null, u.display_name, u.kana ? h('span', { class: 'kana' }, u.kana) : null),
      h('td', null, this.deptName(u.department_id)),
      h('td', null, t(`role.${u.role}`)),
      h('td', { class: 'state' }, u.is_active ? t('admin.active') : t('admin.inactive')),
      h('td', null, u.id === this.app.me.id ? null : (u.is_active
        ? h('button', { type: 'button', class: 'btn small danger', 'aria-label': t('admin.deactivate_who', { name: u.display_name }), onclick: () => this.deactivate(u) }, t('admin.deactivate'))
        : h('button', { type: 'button', class: 'btn small', 'aria-label': t('admin.reactivate_who', { name: u.display_name }), onclick: () => this.reactivate(u) }, t('admin.reactivate')))))));
  }

  async deactivate(user) {
    const { closed } = openDialog({
      title: t('admin.deactivate_title'),
      body: h('p', null, t('admin.deactivate_confirm', { name: user.display_name })),
      actions: [
        { label: t('common.cancel'), value: 'cancel', autofocus: true },
        { label: t('admin.deactivate'), value: 'ok', danger: true },
      ],
    });
    if ((await closed) !== 'ok') return;
    try {
      await api('POST', `/api/admin/users/${user.id}/deactivate`, { json: {} });
      toast(t('admin.deactivated', { name: user.display_name }));
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    }
    await this.loadUsers();
  }

  async reactivate(user) {
    try {
      await api('POST', `/api/admin/users/${user.id}/reactivate`, { json: {} });
      toast(t('admin.reactivated', { name: user.display_name }));
    } catch (err) {
      toast(err.text || t('error.unknown'), { error: true });
    }
    await this.loadUsers();
  }

  // -- add one user --
  buildAddUser() {
    const field = (name, label, attrs = {}) => h('div', { class: 'field' },
      h('label', { for: `new-${name}` }, label),
      h('input', { id: `new-${name}`, name, autocomplete: 'off', ...attrs }));
    const dept = h('select', { id: 'new-department_id', name: 'department_id' },
      h('option', { value: '' }, t('admin.no_department')),
      this.app.departments.map((d) => h('option', { value: String(d.id) }, d.name)));
    const role = h('select', { id: 'new-role', name: 'role' }, ROLES.map((r) => h('option', { value: r }, t(`role.${r}`))));
    const result = h('div', { class: 'form-result', role: 'status', 'aria-live': 'polite' });
    const form = h('form', {
      class: 'add-user-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const fd = new FormData(form);
        const body = {
          login_id: String(fd.get('login_id')).trim(),
          display_name: String(fd.get('display_name')).trim(),
          kana: String(fd.get('kana')).trim(),
          title: String(fd.get('title')).trim(),
          email: String(fd.get('email')).trim(),
          role: String(fd.get('role')),
          department_id: fd.get('department_id') ? Number(fd.get('department_id')) : null,
          password: String(fd.get('password')) || null,
        };
        result.replaceChildren();
        try {
          const user = await api('POST', '/api/admin/users', { json: body });
          result.append(h('p', { class: 'ok' }, t('admin.created', { name: user.display_name, login: user.login_id })));
          form.reset();
          await this.loadUsers();
          await this.app.loadDirectory();
        } catch (err) {
          const fields = err.details?.fields;
          result.append(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
          if (fields && !Array.isArray(fields)) {
            result.append(h('ul', { class: 'field-errors' }, Object.entries(fields).map(([k, v]) => h('li', null, `${columnName(k)}: ${rowMessage(v)}`))));
          }
        }
      },
    },
    h('div', { class: 'form-grid' },
      field('login_id', t('csv.col.login_id'), { required: true, maxlength: 64, autocapitalize: 'off', spellcheck: 'false' }),
      field('display_name', t('csv.col.display_name'), { required: true, maxlength: 100 }),
      field('kana', t('csv.col.kana'), { maxlength: 100 }),
      h('div', { class: 'field' }, h('label', { for: 'new-department_id' }, t('csv.col.department')), dept),
      field('title', t('csv.col.title'), { maxlength: 100 }),
      field('email', t('csv.col.email'), { type: 'email', maxlength: 254 }),
      h('div', { class: 'field' }, h('label', { for: 'new-role' }, t('csv.col.role')), role),
      field('password', t('csv.col.password'), { type: 'password', autocomplete: 'new-password', 'aria-describedby': 'new-password-hint' })),
    h('p', { id: 'new-password-hint', class: 'hint' }, t('admin.password_hint')),
    h('button', { type: 'submit', class: 'btn primary' }, t('admin.add')),
    result);
    return h('section', { class: 'card', 'aria-labelledby': 'add-user-title' }, h('h2', { id: 'add-user-title' }, t('admin.add_user')), form);
  }

  // -- CSV import --
  buildImport() {
    // The native file button speaks the browser's language; ours speaks the screen's.
    const chosenName = h('span', { class: 'file-name' }, t('csv.no_file'));
    const file = h('input', {
      type: 'file', id: 'csv-file', name: 'csv', accept: '.csv,text/csv', required: true, class: 'file-input', 'aria-labelledby': 'csv-file-label',
      onchange: () => { chosenName.textContent = file.files?.[0]?.name || t('csv.no_file'); },
    });
    const result = h('div', { class: 'import-result', 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: 'btn primary' }, t('csv.import'));
    const form = h('form', {
      class: 'import-form',
      onsubmit: async (e) => {
        e.preventDefault();
        const chosen = file.files && file.files[0];
        if (!chosen) return;
        submit.disabled = true;
        result.replaceChildren(h('p', { class: 'hint' }, t('csv.importing')));
        try {
          const bytes = await chosen.arrayBuffer();
          const data = await api('POST', '/api/admin/users/import', { body: bytes, contentType: 'text/csv' });
          result.replaceChildren(this.renderImported(data.created));
          form.reset();
          await this.loadUsers();
          await this.app.loadDirectory();
        } catch (err) {
          result.replaceChildren(this.renderImportErrors(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('div', { class: 'field' }, h('span', { class: 'label', id: 'csv-file-label' }, t('csv.file')),
      h('div', { class: 'file-pick' }, file,
        h('label', { for: 'csv-file', class: 'btn', 'aria-hidden': 'true' }, t('csv.choose')), chosenName)),
    h('p', { class: 'hint' }, t('csv.help')),
    h('p', { class: 'hint mono' }, 'login_id,display_name,kana,department,title,email,role,password'),
    submit);
    return h('section', { class: 'card', 'aria-labelledby': 'import-title' }, h('h2', { id: 'import-title' }, t('csv.title')), form, result);
  }

  renderImported(created) {
    return h('div', { class: 'import-ok', role: 'status' },
      h('p', { class: 'ok' }, t('csv.done', { n: created.length })),
      created.some((c) => c.initial_password) ? h('p', { class: 'warn' }, t('csv.passwords_once')) : null,
      h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('csv.col.login_id')), h('th', { scope: 'col' }, t('csv.initial_password')))),
        h('tbody', null, created.map((c) => h('tr', null, h('td', { class: 'mono' }, c.login_id), h('td', { class: 'mono' }, c.initial_password || t('csv.password_given'))))))));
  }

  renderImportErrors(err) {
    return csvErrorsBox(err, columnName);
  }
}

/** A refused CSV: the server's sentence, then every bad row by line and column. */
export function csvErrorsBox(err, colName) {
  const rows = err.details?.errors;
  const box = h('div', { class: 'import-errors', role: 'alert' }, h('p', { class: 'form-error' }, err.text || t('error.unknown')));
  if (Array.isArray(rows) && rows.length) {
    box.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table errors-table' },
      h('caption', null, t('csv.errors_caption', { n: rows.length })),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, t('csv.line')), h('th', { scope: 'col' }, t('csv.column')), h('th', { scope: 'col' }, t('csv.problem')))),
      h('tbody', null, rows.map((r) => h('tr', { dataset: { line: String(r.line) } },
        h('td', { class: 'num' }, t('csv.line_n', { n: r.line })),
        h('td', null, colName(r.column)),
        h('td', null, (lang() === 'ja' ? r.message : r.message_en))))))));
  }
  return box;
}
