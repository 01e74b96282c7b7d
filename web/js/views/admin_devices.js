// Devices (端末認証): issue a one-time device code (shown once, large, with its expiry), the
// unused codes (withdraw), the registered devices (rename, revoke: its sessions end at once).

import { api, get } from '../api.js';
import { h, openDialog, toast } from '../dom.js';
import { numericWhen, parseDate } from '../format.js';
import { t } from '../i18n.js';

const TTL_HOURS = [1, 24, 24 * 7, 24 * 30];
const when = (iso) => (iso ? numericWhen(parseDate(iso)) : '');

export class DevicesTab {
  constructor(app) {
    this.app = app;
    this.issued = h('div', { class: 'issued-code', 'aria-live': 'polite' });
    this.codesBody = h('tbody');
    this.devicesBody = h('tbody');
    this.el = h('div', { class: 'tab-panel' }, this.buildIssue(), this.buildCodes(), this.buildDevices());
  }

  async load() {
    await Promise.all([this.loadCodes(), this.loadDevices()]);
  }

  userName(id) {
    if (id === null || id === undefined) return t('devices.anyone');
    return this.app.users.get(id)?.display_name || `#${id}`;
  }

  fail(err) {
    toast(err.text || t('error.unknown'), { error: true });
  }

  // -- issue a code --
  buildIssue() {
    const label = h('input', { id: 'code-label', maxlength: 100, autocomplete: 'off', placeholder: t('devices.label_placeholder') });
    const user = h('select', { id: 'code-user' },
      h('option', { value: '' }, t('devices.anyone')),
      [...this.app.users.values()].filter((u) => u.is_active !== false)
        .map((u) => h('option', { value: String(u.id) }, `${u.display_name} (${u.login_id})`)));
    const ttl = h('select', { id: 'code-ttl' }, TTL_HOURS.map((n) => h('option', { value: String(n), selected: n === 24 }, t(`devices.ttl_${n}`))));
    const form = h('form', {
      class: 'issue-form',
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const data = await api('POST', '/api/admin/device-codes', {
            json: { label: label.value.trim(), user_id: user.value ? Number(user.value) : null, ttl_hours: Number(ttl.value) },
          });
          this.showIssued(data);
          label.value = '';
          this.loadCodes();
        } catch (err) {
          this.fail(err);
        }
      },
    },
    h('p', { class: 'hint' }, t('devices.issue_hint')),
    h('div', { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'code-label' }, t('devices.label')), label),
      h('div', { class: 'field' }, h('label', { for: 'code-user' }, t('devices.for_user')), user),
      h('div', { class: 'field' }, h('label', { for: 'code-ttl' }, t('devices.ttl')), ttl)),
    h('button', { type: 'submit', class: 'btn primary' }, t('devices.issue')));
    return h('section', { class: 'card', 'aria-labelledby': 'issue-title' }, h('h2', { id: 'issue-title' }, t('devices.issue_title')), form, this.issued);
  }

  showIssued(data) {
    const codeId = 'issued-code-value';
    this.issued.replaceChildren(h('div', { class: 'code-box', role: 'group', 'aria-labelledby': 'issued-code-caption' },
      h('p', { id: 'issued-code-caption', class: 'code-caption' }, t('devices.code_issued')),
      h('p', { class: 'code-value mono', id: codeId }, data.code),
      h('p', { class: 'code-expiry' }, t('devices.expires', { when: when(data.expires_at) })),
      data.user_id ? h('p', { class: 'hint' }, t('devices.only_for', { name: this.userName(data.user_id) })) : null,
      h('p', { class: 'warn' }, t('devices.shown_once')),
      h('button', {
        type: 'button', class: 'btn small',
        onclick: async () => {
          try {
            await navigator.clipboard.writeText(data.code);
            toast(t('devices.copied'));
          } catch {
            toast(t('devices.copy_failed'), { error: true });
          }
        },
      }, t('devices.copy'))));
    this.issued.querySelector('.code-box').scrollIntoView({ block: 'nearest' });
  }

  // -- unused codes --
  buildCodes() {
    return h('section', { class: 'card', 'aria-labelledby': 'codes-title' },
      h('h2', { id: 'codes-title' }, t('devices.codes')),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'codes-title' },
        h('table', { class: 'table codes-table' },
          h('thead', null, h('tr', null,
            ['devices.label', 'devices.for_user', 'devices.issued_at', 'devices.expires_at'].map((k) => h('th', { scope: 'col' }, t(k))),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('admin.actions'))))),
          this.codesBody)));
  }

  async loadCodes() {
    let codes;
    try {
      codes = (await get('/api/admin/device-codes')).codes;
    } catch (err) {
      this.fail(err);
      return;
    }
    const now = Date.now();
    this.codesBody.replaceChildren(...codes.map((c) => {
      const expired = parseDate(c.expires_at).getTime() <= now;
      const name = c.label || t('devices.no_label');
      return h('tr', { class: expired ? 'inactive' : '', dataset: { codeId: String(c.id) } },
        h('td', null, name),
        h('td', null, this.userName(c.user_id)),
        h('td', { class: 'num' }, when(c.created_at)),
        h('td', { class: 'num' }, when(c.expires_at), expired ? h('span', { class: 'tag' }, t('devices.expired')) : null),
        h('td', null, h('button', {
          type: 'button', class: 'btn small danger', 'aria-label': t('devices.withdraw_which', { name }),
          onclick: async () => {
            try {
              await api('DELETE', `/api/admin/device-codes/${c.id}`);
              toast(t('devices.withdrawn'));
            } catch (err) {
              this.fail(err);
            }
            this.loadCodes();
          },
        }, t('devices.withdraw'))));
    }));
    if (!codes.length) this.codesBody.append(h('tr', null, h('td', { colspan: 5, class: 'hint' }, t('devices.no_codes'))));
  }

  // -- devices --
  buildDevices() {
    return h('section', { class: 'card', 'aria-labelledby': 'devices-title' },
      h('h2', { id: 'devices-title' }, t('devices.devices')),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-labelledby': 'devices-title' },
        h('table', { class: 'table devices-table' },
          h('thead', null, h('tr', null,
            ['devices.name', 'devices.platform', 'devices.capabilities', 'devices.for_user', 'devices.registered_at', 'devices.last_seen', 'admin.state']
              .map((k) => h('th', { scope: 'col' }, t(k))),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('admin.actions'))))),
          this.devicesBody)));
  }

  async loadDevices() {
    let devices;
    try {
      devices = (await get('/api/admin/devices')).devices;
    } catch (err) {
      this.fail(err);
      return;
    }
    this.devicesBody.replaceChildren(...devices.map((d) => h('tr', { class: d.revoked_at ? 'inactive' : '', dataset: { deviceId: String(d.id) } },
      h('td', null, d.name),
      h('td', null, t(`platform.${d.platform}`)),
      h('td', null, d.capabilities.length ? d.capabilities.map((c) => t(`capability.${c}`)).join('、') : t('devices.no_capabilities')),
      h('td', null, this.userName(d.user_id)),
      h('td', { class: 'num' }, when(d.created_at)),
      h('td', { class: 'num' }, when(d.last_seen_at) || '—'),
      h('td', { class: 'state' }, d.revoked_at ? t('devices.revoked_on', { when: when(d.revoked_at) }) : t('admin.active')),
      h('td', null, d.revoked_at ? null : h('div', { class: 'row' },
        h('button', { type: 'button', class: 'btn small', 'aria-label': t('devices.rename_which', { name: d.name }), onclick: () => this.rename(d) }, t('devices.rename')),
        h('button', { type: 'button', class: 'btn small danger', 'aria-label': t('devices.revoke_which', { name: d.name }), onclick: () => this.revoke(d) }, t('devices.revoke')))))));
    if (!devices.length) this.devicesBody.append(h('tr', null, h('td', { colspan: 8, class: 'hint' }, t('devices.no_devices'))));
  }

  async rename(device) {
    const input = h('input', { id: 'rename-device', maxlength: 100, required: true, value: device.name, autocomplete: 'off' });
    const { closed } = openDialog({
      title: t('devices.rename_title'),
      body: h('div', { class: 'field' }, h('label', { for: 'rename-device' }, t('devices.name')), input),
      // Save first: Enter in the field submits with the first button.
      actions: [
        { label: t('common.save'), value: 'ok', primary: true },
        { label: t('common.cancel'), value: 'cancel' },
      ],
    });
    input.select();
    if ((await closed) !== 'ok') return;
    const name = input.value.trim();
    if (!name || name === device.name) return;
    try {
      await api('PATCH', `/api/admin/devices/${device.id}`, { json: { name } });
      toast(t('devices.renamed', { name }));
    } catch (err) {
      this.fail(err);
    }
    this.loadDevices();
  }

  async revoke(device) {
    const { closed } = openDialog({
      title: t('devices.revoke_title'),
      body: h('p', null, t('devices.revoke_confirm', { name: device.name })),
      actions: [
        { label: t('common.cancel'), value: 'cancel', autofocus: true },
        { label: t('devices.revoke'), value: 'ok', danger: true },
      ],
    });
    if ((await closed) !== 'ok') return;
    try {
      const data = await api('POST', `/api/admin/devices/${device.id}/revoke`, { json: {} });
      toast(t('devices.revoked', { name: device.name, n: data.sessions_ended || 0 }));
    } catch (err) {
      this.fail(err);
    }
    this.loadDevices();
  }
}
