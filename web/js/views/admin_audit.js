// The audit log (監査ログ): search by actor, action, side and dates, newest first with "more";
// verify the hash chain; export the chosen period as CSV (for Excel) or JSON Lines.

import { get } from '../api.js';
import { h } from '../dom.js';
import { numericWhen, parseDate } from '../format.js';
import { lang, serverText, t } from '../i18n.js';

const PAGE = 50;
const GROUPS = ['auth.', 'license.', 'user.', 'department.', 'device.', 'policy.', 'attachment.', 'audit.'];
// The actions of docs/audit.md (chat/audit.py ACTION_LABELS); others show by their name.
export const ACTIONS = [
  'auth.sign_in', 'auth.sign_in_failed', 'auth.sign_out', 'auth.sign_out_everywhere',
  'license.pool', 'license.quota', 'license.assign', 'license.revoke',
  'user.create', 'user.update', 'user.role_change', 'user.password_reset', 'user.password_change',
  'user.deactivate', 'user.reactivate', 'user.import',
  'department.create', 'department.rename', 'policy.password', 'policy.update',
  'attachment.upload', 'attachment.download', 'attachment.download_refused',
  'device.code_issue', 'device.code_revoke', 'device.register', 'device.rename', 'device.revoke',
  'audit.export', 'audit.verify',
];

export function actionLabel(action) {
  return ACTIONS.includes(action) ? t(`audit.action.${action}`) : action;
}

export class AuditTab {
  constructor(app) {
    this.app = app;
    this.next = null;
    this.query = new URLSearchParams();
    this.body = h('tbody');
    this.summary = h('p', { class: 'hint', role: 'status', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => this.loadMore() }, t('audit.more'));
    this.verifyResult = h('div', { class: 'verify-result', 'aria-live': 'polite' });
    this.csvLink = h('a', { class: 'btn small', id: 'audit-csv', download: '' }, t('audit.export_csv'));
    this.jsonlLink = h('a', { class: 'btn small', id: 'audit-jsonl', download: '' }, t('audit.export_jsonl'));
    this.el = h('div', { class: 'tab-panel' }, this.buildFilters(), this.buildList(), this.buildVerify());
    this.updateExport();
  }

  async load() {
    await this.search();
  }

  // -- filters --
  buildFilters() {
    const field = (id, label, control) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
    this.actor = h('input', { id: 'audit-actor', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', placeholder: t('audit.actor_placeholder') });
    this.action = h('select', { id: 'audit-action' },
      h('option', { value: '' }, t('audit.all')),
      h('optgroup', { label: t('audit.groups') }, GROUPS.map((g) => h('option', { value: g }, t(`audit.group.${g.slice(0, -1)}`)))),
      h('optgroup', { label: t('audit.actions') }, ACTIONS.map((a) => h('option', { value: a }, actionLabel(a)))));
    this.side = h('select', { id: 'audit-side' },
      h('option', { value: '' }, t('audit.all')),
      ['lgwan', 'internet'].map((s) => h('option', { value: s }, t(`side.${s}`))));
    this.since = h('input', { id: 'audit-since', type: 'date', onchange: () => this.updateExport() });
    this.until = h('input', { id: 'audit-until', type: 'date', onchange: () => this.updateExport() });
    const form = h('form', {
      class: 'audit-filters', role: 'search', 'aria-label': t('audit.filters'),
      onsubmit: (e) => { e.preventDefault(); this.search(); },
    },
    h('div', { class: 'form-grid' },
      field('audit-actor', t('audit.actor'), this.actor),
      field('audit-action', t('audit.action'), this.action),
      field('audit-side', t('audit.side'), this.side),
      field('audit-since', t('audit.since'), this.since),
      field('audit-until', t('audit.until'), this.until)),
    h('div', { class: 'row' },
      h('button', { type: 'submit', class: 'btn primary' }, t('audit.search')),
      h('button', { type: 'reset', class: 'btn', onclick: () => setTimeout(() => { this.updateExport(); this.search(); }, 0) }, t('audit.reset'))));
    return h('section', { class: 'card', 'aria-labelledby': 'audit-title' },
      h('h2', { id: 'audit-title' }, t('audit.title')),
      h('p', { class: 'hint' }, t('audit.intro')),
      form,
      h('div', { class: 'export-links' },
        h('span', { class: 'label', id: 'audit-export-label' }, t('audit.export')),
        h('div', { class: 'row', role: 'group', 'aria-labelledby': 'audit-export-label' }, this.csvLink, this.jsonlLink),
        h('p', { class: 'hint' }, t('audit.export_hint'))));
  }

  range() {
    const params = new URLSearchParams();
    if (this.since.value) params.set('since', this.since.value);
    if (this.until.value) params.set('until', this.until.value);
    return params;
  }

  updateExport() {
    for (const [link, format] of [[this.csvLink, 'csv'], [this.jsonlLink, 'jsonl']]) {
      const params = this.range();
      params.set('format', format);
      if (format === 'csv') params.set('lang', lang() === 'ja' ? 'ja' : 'en');
      link.href = `/api/admin/audit/export?${params}`;
    }
  }

  // -- the list --
  buildList() {
    return h('section', { class: 'card', 'aria-labelledby': 'audit-list-title' },
      h('h2', { id: 'audit-list-title' }, t('audit.entries')),
      this.summary,
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'audit-list-title' },
        h('table', { class: 'table audit-table' },
          h('thead', null, h('tr', null,
            ['audit.seq', 'audit.at', 'audit.action', 'audit.actor', 'audit.side', 'audit.address', 'audit.target', 'audit.details']
              .map((k) => h('th', { scope: 'col' }, t(k))))),
          this.body)),
      this.more);
  }

  async search() {
    const params = this.range();
    const actor = this.actor.value.trim();
    if (actor) params.set('actor', actor);
    if (this.action.value) params.set('action', this.action.value);
    if (this.side.value) params.set('side', this.side.value);
    params.set('limit', String(PAGE));
    this.query = params;
    this.body.replaceChildren();
    this.shown = 0;
    this.summary.textContent = t('room.loading');
    await this.fetchPage(null);
  }

  async loadMore() {
    if (this.next) await this.fetchPage(this.next);
  }

  async fetchPage(beforeSeq) {
    const params = new URLSearchParams(this.query);
    if (beforeSeq) params.set('before_seq', String(beforeSeq));
    this.more.disabled = true;
    let data;
    try {
      data = await get(`/api/admin/audit?${params}`);
    } catch (err) {
      this.summary.replaceChildren(h('span', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
      this.more.hidden = true;
      return;
    } finally {
      this.more.disabled = false;
    }
    this.body.append(...data.entries.map((e) => this.row(e)));
    this.shown += data.entries.length;
    this.next = data.next_before_seq;
    this.more.hidden = !this.next;
    this.summary.textContent = this.shown ? t('audit.count', { n: this.shown }) : t('audit.none');
  }

  row(e) {
    const target = e.target_type ? `${e.target_type}${e.target_id !== null && e.target_id !== undefined && e.target_id !== '' ? ` ${e.target_id}` : ''}` : '';
    const details = e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : '';
    return h('tr', { dataset: { seq: String(e.seq), action: e.action } },
      h('td', { class: 'num' }, String(e.seq)),
      h('td', { class: 'num' }, numericWhen(parseDate(e.at), { seconds: true })),
      h('td', null, actionLabel(e.action), h('span', { class: 'code-name' }, e.action)),
      h('td', { class: 'mono' }, e.actor_login || ''),
      h('td', null, e.side ? t(`side.${e.side}`) : ''),
      h('td', { class: 'mono' }, e.address || ''),
      h('td', { class: 'mono' }, target),
      h('td', { class: 'details mono' }, details));
  }

  // -- verify --
  buildVerify() {
    const button = h('button', {
      type: 'button', class: 'btn',
      onclick: async () => {
        button.disabled = true;
        this.verifyResult.replaceChildren(h('p', { class: 'hint' }, t('audit.verifying')));
        try {
          this.showVerify(await get('/api/admin/audit/verify', { timeout: 0 }));  // the whole log
        } catch (err) {
          this.verifyResult.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.text || t('error.unknown')));
        } finally {
          button.disabled = false;
        }
      },
    }, t('audit.verify'));
    return h('section', { class: 'card', 'aria-labelledby': 'verify-title' },
      h('h2', { id: 'verify-title' }, t('audit.verify_title')),
      h('p', { class: 'hint' }, t('audit.verify_hint')),
      button, this.verifyResult);
  }

  showVerify(result) {
    if (result.ok) {
      this.verifyResult.replaceChildren(h('div', { class: 'verify-ok', role: 'status' },
        h('p', { class: 'ok' }, t('audit.verify_ok', { n: result.count })),
        result.head_seq ? h('p', { class: 'hint mono' }, t('audit.verify_head', { seq: result.head_seq, hash: result.head_hash || '' })) : null));
      return;
    }
    this.verifyResult.replaceChildren(h('div', { class: 'verify-bad', role: 'alert' },
      h('p', { class: 'form-error' }, t('audit.verify_bad', { n: result.problem_count })),
      h('ul', null, (result.problems || []).map((p) => h('li', null, serverText(p))))));
  }
}
