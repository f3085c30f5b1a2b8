/*! voxloop feedback widget v1 — plain JavaScript, no build step. Speaks the wire contract only:
 * POST {gateway}/v1/events with a site key. Docs: widgets/README.md.
 *
 * Embed:  <script src="https://GATEWAY/widgets/v1/voxloop.js" data-key="pk_..."
 *                 data-form="checkout" data-metric="nps" async></script>
 * or call voxloop.show({key, form, metric, ...}) once the script has loaded.
 */
(() => {
  'use strict';

  const script = document.currentScript;
  const src = script && script.src ? script.src : `${location.origin}/widgets/v1/voxloop.js`;
  // The gateway serves this file at /widgets/v1/voxloop.js: its base URL (with any path prefix
  // a proxy adds) is two levels up; the stylesheet sits next to the script.
  const scriptGateway = new URL('../..', src).href;
  const cssUrl = new URL('voxloop.css', src).href;
  const STORE = 'voxloop:';
  const QUEUE = STORE + 'queue';
  const DAY = 86400000;
  const MAX_AGE = 7 * DAY; // the gateway's dedup window: past it, a resend could count twice
  const MAX_QUEUE = 50;
  const MAX_BATCH_BYTES = 60000; // under the 64 KiB a keepalive request may carry

  // Scales of the contract: [lowest score, highest score].
  const METRICS = { nps: [0, 10], csat: [1, 5], ces: [1, 7], likert: [1, 5], thumbs: [0, 1] };

  // Strings per language. q: questions; e: scale-end labels (low, high) per metric: the same
  // wording as the email rating links and their page (sdk/voxloop/i18n.py), kept equal
  // by a test.
  const TEXT = {
    en: {
      q: {
        nps: 'How likely are you to recommend us to a friend or colleague?',
        csat: 'How satisfied are you with your experience?',
        ces: 'How easy was it to do what you wanted?',
        likert: 'I got what I needed.',
        thumbs: 'Was this helpful?',
      },
      e: {
        nps: ['Not at all likely', 'Extremely likely'],
        csat: ['Very dissatisfied', 'Very satisfied'],
        ces: ['Very difficult', 'Very easy'],
        likert: ['Strongly disagree', 'Strongly agree'],
        thumbs: ['No', 'Yes'],
      },
      comment: 'Anything you would like to add? (optional)',
      send: 'Send',
      skip: 'Skip',
      close: 'Close',
      open: 'Feedback',
      sending: 'Sending…',
      thanks: 'Thank you for your feedback!',
      retry: 'Sorry, your answer could not be sent. We will try again later.',
      fail: 'Sorry, your answer could not be sent.',
    },
    ar: {
      q: {
        nps: 'ما مدى احتمال أن توصي بنا لصديق أو زميل؟',
        csat: 'ما مدى رضاك عن تجربتك؟',
        ces: 'ما مدى سهولة إنجاز ما أردت؟',
        likert: 'حصلت على ما احتجت إليه.',
        thumbs: 'هل كان هذا مفيدًا؟',
      },
      e: {
        nps: ['غير محتمل إطلاقًا', 'محتمل للغاية'],
        csat: ['غير راضٍ جدًا', 'راضٍ جدًا'],
        ces: ['صعب جدًا', 'سهل جدًا'],
        likert: ['لا أوافق بشدة', 'أوافق بشدة'],
        thumbs: ['لا', 'نعم'],
      },
      comment: 'هل تود إضافة شيء؟ (اختياري)',
      send: 'إرسال',
      skip: 'تخطي',
      close: 'إغلاق',
      open: 'رأيك',
      sending: 'جارٍ الإرسال…',
      thanks: 'شكرًا لك على ملاحظاتك!',
      retry: 'عذرًا، تعذّر إرسال إجابتك. سنحاول مرة أخرى لاحقًا.',
      fail: 'عذرًا، تعذّر إرسال إجابتك.',
    },
    fa: {
      q: {
        nps: 'چقدر احتمال دارد ما را به یک دوست یا همکار توصیه کنید؟',
        csat: 'چقدر از تجربه‌تان راضی هستید؟',
        ces: 'انجام کاری که می‌خواستید چقدر آسان بود؟',
        likert: 'آنچه را نیاز داشتم به دست آوردم.',
        thumbs: 'آیا این مفید بود؟',
      },
      e: {
        nps: ['اصلاً محتمل نیست', 'کاملاً محتمل است'],
        csat: ['بسیار ناراضی', 'بسیار راضی'],
        ces: ['بسیار دشوار', 'بسیار آسان'],
        likert: ['کاملاً مخالفم', 'کاملاً موافقم'],
        thumbs: ['نه', 'بله'],
      },
      comment: 'چیزی می‌خواهید اضافه کنید؟ (اختیاری)',
      send: 'ارسال',
      skip: 'رد شدن',
      close: 'بستن',
      open: 'بازخورد',
      sending: 'در حال ارسال…',
      thanks: 'از بازخورد شما سپاسگزاریم!',
      retry: 'متأسفیم، پاسخ شما ارسال نشد. بعداً دوباره تلاش می‌کنیم.',
      fail: 'متأسفیم، پاسخ شما ارسال نشد.',
    },
    id: {
      q: {
        nps: 'Seberapa besar kemungkinan Anda merekomendasikan kami kepada teman atau kolega?',
        csat: 'Seberapa puas Anda dengan pengalaman Anda?',
        ces: 'Seberapa mudah melakukan apa yang Anda inginkan?',
        likert: 'Saya mendapatkan apa yang saya butuhkan.',
        thumbs: 'Apakah ini membantu?',
      },
      e: {
        nps: ['Sangat tidak mungkin', 'Sangat mungkin'],
        csat: ['Sangat tidak puas', 'Sangat puas'],
        ces: ['Sangat sulit', 'Sangat mudah'],
        likert: ['Sangat tidak setuju', 'Sangat setuju'],
        thumbs: ['Tidak', 'Ya'],
      },
      comment: 'Ada yang ingin Anda tambahkan? (opsional)',
      send: 'Kirim',
      skip: 'Lewati',
      close: 'Tutup',
      open: 'Masukan',
      sending: 'Mengirim…',
      thanks: 'Terima kasih atas masukan Anda!',
      retry: 'Maaf, jawaban Anda gagal dikirim. Kami akan mencoba lagi nanti.',
      fail: 'Maaf, jawaban Anda gagal dikirim.',
    },
  };
  const RTL = { ar: 1, fa: 1 };
  const DIGITS = { ar: '٠١٢٣٤٥٦٧٨٩', fa: '۰۱۲۳۴۵۶۷۸۹' };

  // localStorage can be missing or throw (privacy modes, sandboxed frames): then nothing is kept.
  const load = (name, fallback) => {
    try {
      const raw = localStorage.getItem(STORE + name);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback;
    }
  };
  const save = (name, value) => {
    try {
      localStorage.setItem(STORE + name, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled: the answer is still sent, just not remembered */
    }
  };

  /** A UUIDv7: 48 bits of Unix milliseconds, then random bits (RFC 9562). */
  const uuid7 = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    let t = Date.now();
    for (let i = 5; i >= 0; i--) {
      b[i] = t % 256;
      t = Math.floor(t / 256);
    }
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  /** The language to show ('en' when none of ours) and the tag to send as the event's locale. */
  const pickLocale = (wanted) => {
    const tags = [wanted, document.documentElement.lang, navigator.language];
    for (const tag of tags) {
      const lang = (tag || '').toLowerCase().split(/[-_]/)[0];
      // 'en_US' is how some pages spell 'en-US'; the gateway takes BCP 47 tags only.
      const bcp47 = (tag || '').replace(/_/g, '-').slice(0, 35);
      if (TEXT[lang]) return [lang, /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(bcp47) ? bcp47 : lang];
    }
    return ['en', 'en'];
  };

  const number = (value, fallback) =>
    value === undefined || value === null || value === '' || isNaN(value) ? fallback : Number(value);

  const digits = (n, lang) =>
    DIGITS[lang] ? String(n).replace(/\d/g, (d) => DIGITS[lang][d]) : String(n);

  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const name in attrs || {}) node.setAttribute(name, attrs[name]);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // ---- delivery: a write-ahead queue in localStorage, flushed with fetch(keepalive) ----

  let retryTimer = 0;
  let retryCount = 0;

  /** What became of a POST: 'ok' (202, stored), 'retry' (network, 429, 5xx), 'drop' (4xx). */
  const post = async (gateway, key, events) => {
    try {
      const answer = await fetch(`${gateway}/v1/events`, {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        keepalive: true,
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ events }),
      });
      const s = answer.status;
      // Read the answer to its end: until then the request's body counts against the 64 KiB
      // that keepalive requests may have in flight, and the next batch would be refused.
      await answer.arrayBuffer().catch(() => null);
      if (s === 202) return 'ok';
      return s === 429 || s >= 500 ? 'retry' : 'drop';
    } catch (e) {
      return 'retry';
    }
  };

  const unqueue = (ids) => save('queue', load('queue', []).filter((item) => !ids.has(item.e.id)));

  /** Send one event now; it stays queued until the gateway has given a final answer. */
  const deliver = async (gateway, key, event) => {
    const queue = load('queue', []).concat([{ g: gateway, k: key, t: Date.now(), e: event }]);
    save('queue', queue.slice(-MAX_QUEUE));
    const outcome = await post(gateway, key, [event]);
    if (outcome === 'retry') schedule();
    else unqueue(new Set([event.id]));
    return outcome;
  };

  /** Resend everything queued (same ids: the gateway counts each once), per gateway and key. */
  const flush = async () => {
    const fresh = load('queue', []).filter((item) => Date.now() - item.t < MAX_AGE);
    save('queue', fresh);
    // Per gateway and key, in batches a keepalive request can carry (browsers refuse bodies
    // over 64 KiB in flight).
    const batches = [];
    const open = new Map();
    const encoder = new TextEncoder();
    for (const item of fresh) {
      const name = `${item.g} ${item.k}`;
      const size = encoder.encode(JSON.stringify(item.e)).length + 1;
      let batch = open.get(name);
      if (!batch || batch.size + size > MAX_BATCH_BYTES) {
        batch = { size: 16, items: [] };
        open.set(name, batch);
        batches.push(batch);
      }
      batch.size += size;
      batch.items.push(item);
    }
    let again = false;
    for (const { items } of batches) {
      const outcome = await post(items[0].g, items[0].k, items.map((item) => item.e));
      if (outcome === 'retry') again = true;
      else unqueue(new Set(items.map((item) => item.e.id)));
    }
    if (again) schedule();
    else retryCount = 0;
  };

  // While the page stays open, try again with a growing delay (5 s … 5 min), plus jitter.
  const schedule = () => {
    clearTimeout(retryTimer);
    const wait = Math.min(300000, 5000 * 2 ** retryCount++) * (1 + Math.random() / 2);
    retryTimer = setTimeout(flush, wait);
  };

  // A page being left: fetch(keepalive) outlives it and, unlike navigator.sendBeacon, can send
  // `Content-Type: application/json` cross-origin (sendBeacon would need a credentialed CORS
  // preflight the gateway does not grant), so queued events go out the same way.
  const onHide = (e) => {
    const leaving = e.type === 'pagehide' || document.visibilityState === 'hidden';
    if (leaving && load('queue', []).length) flush();
  };

  // ---- frequency control and sampling ----

  /** Whether `form` may be shown now: not answered or dismissed within `days`, and sampled in. */
  const eligible = (form, days, sample) => {
    const draws = load('draw', {});
    if (draws[form] === undefined) {
      draws[form] = Math.random();
      save('draw', draws);
    }
    if (draws[form] >= sample) return false;
    const seen = load('seen', {})[form];
    return !seen || Date.now() - seen >= days * DAY;
  };

  const markSeen = (form) => {
    const seen = load('seen', {});
    seen[form] = Date.now();
    save('seen', seen);
  };

  /** The visitor's vote key for `form`; a new one when a new round of the form starts. */
  const voteKey = (form, renew) => {
    const keys = load('vote', {});
    if (renew || !keys[form]) {
      keys[form] = uuid7();
      save('vote', keys);
    }
    return keys[form];
  };

  // ---- the form ----

  /**
   * Render a feedback form.
   *
   * Options: key (pk_…, required), form (required), metric (default 'nps'), target (element or
   * selector: inline; none: floating button), gateway (default: this script's origin), locale,
   * question, comment (default true), days (default 90), sample (0…1, default 1), tags (array),
   * meta (flat object). Returns the host element, or null when the form is not to be shown.
   */
  const show = (options) => {
    const o = options || {};
    const metric = o.metric || 'nps';
    const range = METRICS[metric];
    const form = o.form;
    if (!o.key || !form || !range) {
      console.warn('voxloop: show() needs key, form and a metric of', Object.keys(METRICS));
      return null;
    }
    if (/^sk_/.test(o.key)) {
      // Anyone can read a page's source: a server key there gives away the project's stats.
      console.error(
        'voxloop: not started: "sk_…" is a server key, and server keys are secret: never put' +
          ' one in a web page (revoke this one). Use the project\'s site key "pk_…".',
      );
      return null;
    }
    const days = number(o.days, 90);
    const sample = number(o.sample, 1);
    const renew = Boolean(load('seen', {})[form]);
    if (!eligible(form, days, sample)) return null;
    const target = typeof o.target === 'string' ? document.querySelector(o.target) : o.target;
    if (o.target && !target) {
      console.warn('voxloop: no element matches target', o.target);
      return null;
    }

    const gateway = (o.gateway || scriptGateway).replace(/\/+$/, '');
    const [lang, locale] = pickLocale(o.locale);
    const t = TEXT[lang];
    const dir = RTL[lang] ? 'rtl' : 'ltr';
    const vote = voteKey(form, renew);
    let lastTs = 0;
    let score = null;
    let answered = false;

    const host = el('div', { 'data-voxloop': form });
    const root = host.attachShadow({ mode: 'open' });
    // Style only through a stylesheet from the gateway (allowed by `style-src <gateway>`) and
    // CSSOM; hidden until it has loaded so nothing flashes unstyled.
    const wrap = el('div', { class: 'vx', dir, lang });
    wrap.style.visibility = 'hidden';
    const css = el('link', { rel: 'stylesheet', href: cssUrl });
    css.onload = css.onerror = () => (wrap.style.visibility = '');
    root.append(css, wrap);

    const panel = el('section', { class: 'vx-panel', 'aria-labelledby': 'vx-q' });
    const close = el('button', { type: 'button', class: 'vx-close', 'aria-label': t.close }, '×');
    const question = el('p', { id: 'vx-q', class: 'vx-q' }, o.question || t.q[metric]);
    const group = el('div', {
      role: 'radiogroup',
      'aria-labelledby': 'vx-q',
      class: `vx-scale vx-${metric}`,
    });
    const ends = t.e[metric];
    const radios = [];
    for (let n = range[0]; n <= range[1]; n++) {
      const words = metric === 'thumbs' ? ends[n] : '';
      const edge = n === range[0] ? ends[0] : n === range[1] ? ends[1] : '';
      const radio = el(
        'button',
        { type: 'button', role: 'radio', 'aria-checked': 'false', tabindex: '-1', value: n },
        words || digits(n, lang),
      );
      if (!words && edge) radio.setAttribute('aria-label', `${digits(n, lang)}, ${edge}`);
      radios.push(radio);
    }
    radios[0].tabIndex = 0;
    group.append(...radios);
    const endRow = el('div', { class: 'vx-ends', 'aria-hidden': 'true' });
    endRow.append(el('span', {}, ends[0]), el('span', {}, ends[1]));
    if (metric === 'thumbs') endRow.hidden = true;

    const step = el('div', { class: 'vx-comment', hidden: '' });
    const label = el('label', { for: 'vx-c' }, t.comment);
    const box = el('textarea', { id: 'vx-c', rows: '3', maxlength: '4000' });
    const actions = el('div', { class: 'vx-actions' });
    const send = el('button', { type: 'button', class: 'vx-send' }, t.send);
    const skip = el('button', { type: 'button', class: 'vx-skip' }, t.skip);
    actions.append(send, skip);
    step.append(label, box, actions);
    const status = el('p', { class: 'vx-status', role: 'status', 'aria-live': 'polite' });
    panel.append(close, question, group, endRow, status, step);

    let fab = null;
    if (target) {
      wrap.append(panel);
      target.append(host);
    } else {
      wrap.classList.add('vx-float');
      fab = el('button', { type: 'button', class: 'vx-fab', 'aria-expanded': 'false' }, t.open);
      panel.hidden = true;
      fab.onclick = () => toggle(panel.hidden);
      wrap.append(fab, panel);
      document.body.append(host);
    }

    const toggle = (open) => {
      panel.hidden = !open;
      fab.setAttribute('aria-expanded', String(open));
      (open ? radios.find((r) => r.tabIndex === 0) : fab).focus();
    };

    const say = (text, kind) => {
      status.textContent = text;
      status.className = `vx-status ${kind || ''}`;
    };

    const submit = async (comment) => {
      const ts = Math.max(Date.now(), lastTs + 1); // later than the answer it replaces
      lastTs = ts;
      const event = {
        id: uuid7(),
        channel: 'web',
        form,
        metric,
        score,
        ts: new Date(ts).toISOString(),
        locale,
        vote_key: vote,
        meta: Object.assign({}, o.meta, { page: location.pathname }),
      };
      if (comment) event.comment = comment;
      if (o.tags) event.tags = o.tags;
      say(t.sending);
      const outcome = await deliver(gateway, o.key, event);
      if (outcome === 'drop') {
        say(t.fail, 'vx-error');
        return false;
      }
      // Queued for a retry, the answer will arrive: ask no more, and don't ask again for a while.
      markSeen(form);
      answered = true;
      say(outcome === 'ok' ? t.thanks : t.retry, outcome === 'ok' ? 'vx-ok' : 'vx-error');
      return outcome === 'ok';
    };

    const choose = async (radio) => {
      score = Number(radio.value);
      for (const r of radios) {
        const on = r === radio;
        r.setAttribute('aria-checked', String(on));
        r.tabIndex = on ? 0 : -1;
      }
      radio.focus();
      if ((await submit('')) && o.comment !== false && o.comment !== 'false') step.hidden = false;
      else step.hidden = true;
    };

    const finish = () => {
      group.hidden = endRow.hidden = step.hidden = question.hidden = true;
      close.focus();
    };

    group.addEventListener('click', (e) => {
      const radio = e.target.closest('[role=radio]');
      if (radio) choose(radio);
    });
    group.addEventListener('keydown', (e) => {
      const i = radios.indexOf(e.target);
      const back = dir === 'rtl' ? 'ArrowRight' : 'ArrowLeft';
      const fwd = dir === 'rtl' ? 'ArrowLeft' : 'ArrowRight';
      const last = radios.length - 1;
      const moves = { [back]: i - 1, ArrowUp: i - 1, [fwd]: i + 1, ArrowDown: i + 1, Home: 0 };
      moves.End = last;
      if (i < 0 || !(e.key in moves)) return;
      e.preventDefault();
      // Arrows only move the focus; Enter or Space (a button's click) picks and sends.
      const next = radios[(moves[e.key] + radios.length) % radios.length];
      for (const r of radios) r.tabIndex = r === next ? 0 : -1;
      next.focus();
    });
    send.onclick = async () => {
      const comment = box.value.trim();
      if (!comment || (await submit(comment))) finish();
    };
    skip.onclick = finish;
    close.onclick = () => {
      if (!answered) markSeen(form); // dismissed: counts like an answer for frequency control
      host.remove();
    };
    wrap.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && fab && !panel.hidden) toggle(false);
    });
    return host;
  };

  const api = { show, flush, version: '1' };
  window.voxloop = Object.assign(window.voxloop || {}, api);

  addEventListener('online', flush);
  addEventListener('visibilitychange', onHide);
  addEventListener('pagehide', onHide);
  if (load('queue', []).length) flush();

  // The script tag's own data- attributes, if it carries a key.
  const d = script ? script.dataset : {};
  if (d.key) {
    const start = () =>
      show({
        key: d.key,
        form: d.form,
        metric: d.metric,
        target: d.target,
        gateway: d.gateway,
        locale: d.locale,
        question: d.question,
        comment: d.comment,
        days: d.days,
        sample: d.sample,
      });
    if (document.readyState === 'loading') addEventListener('DOMContentLoaded', start);
    else start();
  }
})();
