// Building DOM nodes without HTML strings: every piece of text becomes a text node, so nothing a
// user typed can ever become markup.  There is no innerHTML anywhere in this client.

const FORBIDDEN = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

/** h('button', {class: 'x', onclick: fn, 'aria-label': '…'}, 'text', childNode, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (FORBIDDEN.has(key)) throw new Error(`h(): ${key} is not allowed`);
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') {
        el.addEventListener(key.slice(2), value);
      } else if (typeof value === 'boolean' || key === 'value') el[key] = value;
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/** A link that leaves the app: new tab, no opener, no referrer. Only http(s) URLs. */
export function externalLink(url, text) {
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, text ?? url);
}

let uniq = 0;
export function uid(prefix = 'k') {
  uniq += 1;
  return `${prefix}-${uniq}`;
}

/** A modal dialog built on <dialog>: focus trap, Esc and backdrop closing come with it. */
export function openDialog({ title, body, actions = [], className = '' }) {
  const titleId = uid('dlg');
  const dialog = h('dialog', { class: `dialog ${className}`, 'aria-labelledby': titleId });
  const form = h('form', { method: 'dialog', class: 'dialog-form' });
  append(form, [
    h('h2', { id: titleId, class: 'dialog-title' }, title),
    h('div', { class: 'dialog-body' }, body),
    h('div', { class: 'dialog-actions' }, actions.map((a) => h('button', {
      value: a.value, class: a.primary ? 'btn primary' : (a.danger ? 'btn danger' : 'btn'),
      type: 'submit', autofocus: Boolean(a.autofocus),
    }, a.label))),
  ]);
  dialog.append(form);
  document.body.append(dialog);
  const closed = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue);
      dialog.remove();
    });
  });
  dialog.addEventListener('click', (event) => {
    if (event.target === dialog) dialog.close('');
  });
  dialog.showModal();
  return { dialog, closed };
}

let toastBox = null;
/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text, { error = false } = {}) {
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastBox);
  }
  const item = h('div', { class: error ? 'toast error' : 'toast' }, text);
  toastBox.append(item);
  setTimeout(() => item.remove(), 5000);
}
