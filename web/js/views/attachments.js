// Attachments: uploading a file (the raw body, with upload progress), and a message's files as
// cards — name, size, state (スキャン中 → 無害化済み / ブロック) live from `attachment` events,
// the sanitisation report in plain words, downloads (sanitised; the original where this side
// may have it), "原本を申請" for an internet-side file on the LGWAN side, thumbnails, and on a
// view-only device the marked preview instead of any download.

import { ApiError, api, csrfToken } from '../api.js';
import { h, openDialog, toast } from '../dom.js';
import { fullWhen, parseDate } from '../format.js';
import { lang, serverText, t } from '../i18n.js';

export const MAX_BYTES = 20 * 1024 * 1024; // 20 MiB, as the server (MAX_ATTACHMENT_BYTES)
export const MAX_FILES = 20; // per message
const RANK = { scanning: 0, ready: 1, blocked: 1 };
const IMAGE_TYPES = /^image\/(jpeg|png|gif|webp|bmp)$/;
const PREVIEW_TYPES = /^(image\/(jpeg|png|gif|webp|bmp|tiff|heic|heif)|application\/pdf)$/;

/** 1.2 MB / 340 KB / 12 バイト */
export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return t('file.bytes', { n });
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Why this file cannot be sent (too large, empty), or null. */
export function fileProblem(file) {
  if (file.size > MAX_BYTES) return t('file.too_large', { name: file.name, size: formatSize(file.size) });
  if (file.size === 0) return t('file.empty', { name: file.name });
  return null;
}

/** The newer of two states of one attachment (the state only moves forward). */
export function newer(a, b) {
  if (!a) return b;
  if (!b) return a;
  return (RANK[b.state] ?? 0) >= (RANK[a.state] ?? 0) ? b : a;
}

/**
 * Upload one file to a room: the body is the file, X-Filename its percent-encoded name.
 * Returns {promise, abort}; onProgress(loaded, total) follows the upload.
 */
export function uploadFile(roomId, file, onProgress = () => {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', `/api/rooms/${roomId}/attachments`);
    xhr.setRequestHeader('X-Filename', encodeURIComponent(file.name));
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('X-CSRF-Token', csrfToken());
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 201 && data) resolve(data);
      else reject(new ApiError(xhr.status, data));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, null)));
    xhr.addEventListener('abort', () => reject(Object.assign(new ApiError(0, null), { code: 'aborted' })));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

function contentUrl(a, variant) {
  return `/api/attachments/${a.id}/content?variant=${variant}`;
}

function previewUrl(a, page = 1) {
  return `/api/attachments/${a.id}/preview?page=${page}`;
}

async function errorOf(response) {
  const body = await response.json().catch(() => null);
  return new ApiError(response.status, body);
}

/** Fetch the bytes and hand them to the browser as a download (errors say why, in words). */
export async function download(a, variant, button) {
  const name = variant === 'sanitized' ? (a.sanitized_filename || a.filename) : a.filename;
  if (button) button.disabled = true;
  try {
    let response;
    try {
      response = await fetch(contentUrl(a, variant), { credentials: 'same-origin', cache: 'no-store' });
    } catch {
      throw new ApiError(0, null);
    }
    if (!response.ok) throw await errorOf(response);
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: name, class: 'sr-only' });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    toast(err.text || t('error.unknown'), { error: true });
  } finally {
    if (button) button.disabled = false;
  }
}

/** A preview page (JPEG marked with the viewer's name) as an object URL, with the page count. */
async function fetchPreview(a, page) {
  let response;
  try {
    response = await fetch(previewUrl(a, page), { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, null);
  }
  if (!response.ok) throw await errorOf(response);
  const pages = Number(response.headers.get('X-Preview-Pages')) || 1;
  return { url: URL.createObjectURL(await response.blob()), pages };
}

/** The view-only preview: one page at a time, paged for a PDF; nothing to save. */
export async function openPreview(a) {
  const img = h('img', { class: 'preview-image', alt: t('file.preview_alt', { name: a.filename }) });
  const status = h('p', { class: 'preview-status', role: 'status', 'aria-live': 'polite' }, t('file.preview_loading'));
  const prev = h('button', { type: 'button', class: 'btn small', disabled: true }, t('file.prev_page'));
  const next = h('button', { type: 'button', class: 'btn small', disabled: true }, t('file.next_page'));
  const pager = h('div', { class: 'row preview-pager', hidden: true }, prev, status, next);
  let page = 1;
  let pages = 1;
  let shown = null;
  const show = async (n) => {
    status.textContent = t('file.preview_loading');
    prev.disabled = true;
    next.disabled = true;
    try {
      const got = await fetchPreview(a, n);
      if (shown) URL.revokeObjectURL(shown);
      shown = got.url;
      page = n;
      pages = got.pages;
      img.src = got.url;
      img.hidden = false;
      status.textContent = t('file.page_of', { page, pages });
      pager.hidden = pages < 2;
      if (pages < 2) status.textContent = '';
    } catch (err) {
      img.hidden = true;
      status.textContent = err.code === 'preview_unavailable' ? t('file.open_on_pc') : (err.text || t('error.unknown'));
      status.classList.add('form-error');
      pager.hidden = false;
      prev.hidden = true;
      next.hidden = true;
    }
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
  };
  prev.addEventListener('click', () => show(page - 1));
  next.addEventListener('click', () => show(page + 1));
  img.hidden = true;
  const { closed } = openDialog({
    title: a.filename,
    className: 'preview-dialog',
    body: h('div', { class: 'preview' }, h('p', { class: 'hint' }, t('file.preview_note')), img, pager),
    actions: [{ label: t('common.close'), value: 'close', primary: true }],
  });
  pager.hidden = false;
  show(1);
  closed.then(() => { if (shown) URL.revokeObjectURL(shown); });
}

/** Ask the supervisor for the original: a reason, then POST; returns the approval or null. */
export async function requestRelease(a) {
  const area = h('textarea', { id: 'release-reason', class: 'release-reason', rows: 3, maxlength: 500 });
  const { closed } = openDialog({
    title: t('release.title'),
    className: 'release-dialog',
    body: h('div', null,
      h('p', null, t('release.explain', { name: a.filename })),
      h('div', { class: 'field' }, h('label', { for: 'release-reason' }, t('release.reason')), area)),
    actions: [
      { label: t('common.cancel'), value: 'cancel' },
      { label: t('release.submit'), value: 'request', primary: true },
    ],
  });
  setTimeout(() => area.focus(), 0);
  if ((await closed) !== 'request') return null;
  const reason = area.value.trim();
  if (!reason) {
    toast(t('release.reason_required'), { error: true });
    return null;
  }
  try {
    const approval = await api('POST', `/api/attachments/${a.id}/release-requests`, { json: { reason } });
    toast(t('release.requested'));
    return approval;
  } catch (err) {
    toast(err.text || t('error.unknown'), { error: true });
    return null;
  }
}

const KNOWN_KINDS = new Set([
  'vba_macro', 'macro', 'macrosheet', 'macro_name', 'activex', 'ole_object', 'dde_field', 'dde_formula',
  'external_reference', 'link', 'unsafe_link', 'embedded_file', 'script', 'open_action', 'launch_action',
  'additional_action', 'xfa_form', 'metadata', 'trailing_data', 'picture', 'html_markup', 'csv_formula',
  'blocked_entry', 'unknown_part', 'encryption', 'foreign_element', 'doctype', 'duplicate_entry', 'unsafe_path',
  'xlm_macro_sheet', 'embedded_package', 'external_template', 'external_link', 'data_connection', 'custom_ui',
  'embedded_document', 'add_in', 'form_control', 'media', 'javascript', 'remote_action', 'submit_action',
  'rich_media', 'form_action',
]);

function kindName(kind) {
  return KNOWN_KINDS.has(kind) ? t(`removed.${kind}`) : kind;
}

/** The sanitiser's report in plain words: why blocked, what was removed, what to expect. */
export function renderReport(a) {
  const r = a.report;
  if (!r) return null;
  const parts = [];
  if (a.state === 'blocked' || r.verdict === 'blocked') {
    const why = (lang() === 'ja' ? r.reason_ja : r.reason_en) || r.reason_ja || r.reason_en || t('report.blocked_generic');
    parts.push(h('p', { class: 'report-reason' }, why));
  } else {
    const removed = r.removed || [];
    if (removed.length) {
      const counts = new Map();
      for (const item of removed) counts.set(item.kind, (counts.get(item.kind) || 0) + 1);
      parts.push(h('p', { class: 'report-head' }, t('report.removed_head')));
      parts.push(h('ul', { class: 'report-removed' }, [...counts].map(([kind, n]) => h('li', { dataset: { kind } },
        kindName(kind), n > 1 ? ` ×${n}` : ''))));
      if (r.removed_not_listed) parts.push(h('p', { class: 'hint' }, t('report.not_listed', { n: r.removed_not_listed })));
    } else {
      parts.push(h('p', { class: 'report-head' }, t('report.nothing_removed')));
    }
    const warnings = r.warnings || [];
    if (warnings.length) {
      parts.push(h('ul', { class: 'report-warnings' }, warnings.map((w) => h('li', { dataset: { code: w.code } },
        (lang() === 'ja' ? w.ja : w.en) || w.ja || w.en || w.code))));
    }
    if (a.sanitized_filename && a.sanitized_filename !== a.filename) {
      parts.push(h('p', { class: 'hint' }, t('report.renamed', { name: a.sanitized_filename })));
    }
  }
  const blocked = a.state === 'blocked';
  return h('details', { class: `report${blocked ? ' blocked' : ''}`, open: blocked },
    h('summary', null, blocked ? t('report.why_blocked') : t('report.title')), parts);
}

/**
 * One attachment card.  ctx: {side, viewOnly, release (my latest release request for it, or
 * null), outbound (the outbound request of a file I sent, or null), onRelease(a),
 * thumb(a) → cached <img> or null}.
 */
export function renderAttachment(a, ctx) {
  const state = a.state || 'scanning';
  const stateText = { scanning: t('file.scanning'), ready: t('file.ready'), blocked: t('file.blocked') }[state] || state;
  const card = h('div', {
    class: `attachment state-${state}`, role: 'group',
    'aria-label': t('file.card_label', { name: a.filename, state: stateText }),
    dataset: { attachmentId: String(a.id), state },
  });
  const thumb = state === 'ready' ? ctx.thumb(a) : null;
  if (thumb) card.append(h('div', { class: 'attachment-thumb' }, thumb));
  const info = h('div', { class: 'attachment-info' },
    h('div', { class: 'attachment-head' },
      h('span', { class: 'attachment-icon', 'aria-hidden': 'true' }, extension(a.filename)),
      h('span', { class: 'attachment-name' }, a.filename),
      h('span', { class: 'attachment-size' }, formatSize(a.size))),
    h('div', { class: 'attachment-state-line' },
      h('span', { class: `file-state ${state}`, role: 'status' }, state === 'scanning' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null, stateText),
      a.side === 'internet' && ctx.side === 'lgwan' ? h('span', { class: 'hint from-side' }, t('file.from_internet')) : null));
  card.append(info);
  if (ctx.outbound) {
    info.append(h('p', { class: `release-state outbound ${ctx.outbound.state}` }, t(`file.outbound_${ctx.outbound.state}`),
      ctx.outbound.note ? ` (${ctx.outbound.note})` : ''));
  }
  const report = renderReport(a);
  if (report) info.append(report);
  if (state !== 'ready') return card;

  const actions = h('div', { class: 'attachment-actions' });
  if (ctx.viewOnly) {
    const type = a.sanitized_type || a.detected_type || '';
    if (PREVIEW_TYPES.test(type)) {
      actions.append(h('button', { type: 'button', class: 'btn small', onclick: () => openPreview(a) }, t('file.view')));
    } else {
      actions.append(h('span', { class: 'hint pc-only' }, t('file.open_on_pc')));
    }
    info.append(actions);
    return card;
  }
  const saveSanitized = h('button', {
    type: 'button', class: 'btn small', 'aria-label': t('file.save_sanitized_label', { name: a.sanitized_filename || a.filename }),
    onclick: () => download(a, 'sanitized', saveSanitized),
  }, t('file.save_sanitized'));
  actions.append(saveSanitized);
  const needsRelease = a.side === 'internet' && ctx.side === 'lgwan';
  const originalButton = () => {
    const b = h('button', {
      type: 'button', class: 'btn small', 'aria-label': t('file.save_original_label', { name: a.filename }),
      onclick: () => download(a, 'original', b),
    }, t('file.save_original'));
    return b;
  };
  if (!needsRelease) {
    actions.append(originalButton());
  } else {
    const rel = ctx.release;
    if (rel && rel.state === 'approved') {
      actions.append(originalButton(), h('span', { class: 'release-state approved' }, t('release.state_approved')));
    } else if (rel && rel.state === 'pending') {
      actions.append(h('span', { class: 'release-state pending' }, t('release.state_pending')));
    } else {
      if (rel && rel.state === 'rejected') {
        actions.append(h('span', { class: 'release-state rejected' },
          t('release.state_rejected'), rel.note ? ` (${rel.note})` : ''));
      }
      actions.append(h('button', { type: 'button', class: 'btn small', onclick: () => ctx.onRelease(a) },
        rel ? t('release.again') : t('release.ask')));
    }
  }
  info.append(actions);
  return card;
}

/** XLSM, PDF, JPG … for the file's badge. */
function extension(name) {
  const dot = String(name || '').lastIndexOf('.');
  const ext = dot > 0 ? name.slice(dot + 1) : '';
  return (ext && ext.length <= 5 ? ext : 'FILE').toUpperCase();
}

/** A thumbnail <img> for an image attachment, or null (kept per id so it loads once). */
export function thumbnailFor(a, viewOnly, cache) {
  const type = a.sanitized_type || '';
  if (!IMAGE_TYPES.test(type)) return null;
  let img = cache.get(a.id);
  if (!img) {
    img = h('img', {
      class: 'thumb', loading: 'lazy', alt: t('file.thumb_alt', { name: a.filename }),
      src: viewOnly ? previewUrl(a, 1) : contentUrl(a, 'sanitized'),
    });
    img.addEventListener('error', () => { img.hidden = true; });
    img.addEventListener('click', () => (viewOnly ? openPreview(a) : null));
    cache.set(a.id, img);
  }
  return img;
}

/** 北緯 35.681100°、東経 139.767000° */
export function coordinates(loc) {
  const lat = Number(loc.lat);
  const lng = Number(loc.lng);
  return t('location.coords', {
    ns: lat >= 0 ? t('location.north') : t('location.south'),
    lat: Math.abs(lat).toFixed(6),
    ew: lng >= 0 ? t('location.east') : t('location.west'),
    lng: Math.abs(lng).toFixed(6),
  });
}

/** The shared location of a field report: coordinates, accuracy, time — no map link (LGWAN). */
export function renderLocation(loc) {
  if (!loc) return null;
  const at = parseDate(loc.taken_at);
  const plain = `${Number(loc.lat).toFixed(6)}, ${Number(loc.lng).toFixed(6)}`;
  const copy = h('button', {
    type: 'button', class: 'btn small copy-coords', 'aria-label': t('location.copy_label'),
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(plain);
        toast(t('location.copied'));
      } catch {
        toast(t('location.copy_failed', { text: plain }));
      }
    },
  }, t('location.copy'));
  return h('div', { class: 'msg-location', role: 'group', 'aria-label': t('location.label') },
    h('p', { class: 'location-title' }, loc.label || t('location.title')),
    h('p', { class: 'location-coords' }, coordinates(loc)),
    h('p', { class: 'location-meta' },
      loc.accuracy_m !== undefined && loc.accuracy_m !== null ? h('span', { class: 'location-accuracy' }, t('location.accuracy', { m: Math.round(Number(loc.accuracy_m)) })) : null,
      at ? h('span', { class: 'location-time' }, t('location.taken_at', { when: fullWhen(at) })) : null),
    h('p', { class: 'location-plain' }, h('span', { class: 'mono coords-text' }, plain), ' ', copy));
}

/** A sentence for an error from the server in this screen's language. */
export function errorText(err) {
  if (!err) return t('error.unknown');
  return err.text || serverText(err.error) || t('error.unknown');
}
