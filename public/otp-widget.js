/*
 * OTP widget: confirms a customer's mobile number by SMS inside any checkout page.
 *
 *   <div data-otp-widget data-api-base="https://otp.example.com"></div>
 *   <script src="/otp-widget.js" defer></script>
 *
 * Attributes on the element: data-api-base (the service's URL; default: this page's origin), data-lang
 * (en | hi), data-countries (allowed calling codes, default "91"), data-challenge-provider (turnstile |
 * hcaptcha | recaptcha) and data-challenge-site-key; data-challenge-script overrides the provider's script
 * URL (the local stand-in of `npm start`). On success the element fires `otp-verified` (bubbling
 * CustomEvent) with detail { phoneNumber, token, tokenExpiresAt }: send the token to your back end, which
 * checks it against the service's JWKS. The token is never shown or stored.
 *
 * Plain script, no dependencies, no inline code or styles: works under a strict Content-Security-Policy.
 * It adds otp-widget.css (next to this script) to the page once. `?api=` in the page URL overrides the API
 * base only when both the page and that API are on this machine (local development).
 */
(function () {
  'use strict';

  var script = document.currentScript;
  var scriptSrc = script && script.src ? script.src : '';
  var REQUEST_TIMEOUT_MS = 35000; // a send may take up to 3 provider attempts + backoff
  var LOOPBACK = /^(localhost|127\.0\.0\.1|\[::1\])$/;

  /* ---------------------------------------------------------------- strings */

  var STRINGS = {
    en: {
      title: 'Confirm your mobile number',
      lead: 'We will text you a one-time code.',
      phoneLabel: 'Mobile number',
      phoneHintIndia: '10 digits, e.g. 98765 43210. +91 is added for you.',
      phoneHintIntl: 'With the country code, e.g. +91 98765 43210.',
      send: 'Send code',
      sending: 'Sending…',
      sentInfo: 'Code sent to {phone}. It expires at {time}.',
      otpLabel: 'Code from the SMS',
      verify: 'Verify',
      checking: 'Checking…',
      resend: 'Resend code',
      countdown: '{label} in {n} s',
      change: 'Use a different number',
      verified: '{phone} is verified.',
      sentAgain: 'A new code was sent to {phone}.',
      samePending: 'Enter the code we already sent to {phone}.',
      challengeLabel: 'Security check',
      challengeNeeded: 'Please complete the security check first.',
      phoneInvalidIndia: 'Enter a 10-digit Indian mobile number, e.g. 98765 43210.',
      phoneInvalidIntl: 'Enter your mobile number with the country code, e.g. +91 98765 43210.',
      countryNotAllowed: 'Sorry, we cannot send codes to numbers in that country. Please use another mobile number.',
      codeFormat: 'Enter the code from the SMS: 4 to 8 digits.',
      network: 'Could not reach the service. If this keeps happening, the site may be set up wrongly. Please try again.',
      timeout: 'The service did not answer in time. Check your connection and try again.',
      invalidRequestSend: 'That request was not accepted. Check the number and try again.',
      invalidRequestVerify: 'That code could not be checked. Enter the digits from the SMS and try again.',
      invalidPhone: 'That does not look like a mobile number. Check it and try again.',
      challengeFailed: 'The security check did not pass. Please complete it again.',
      tooLarge: 'What you entered is too long. Please check it and try again.',
      mediaType: 'The request was sent in a format the service does not accept. Please reload the page and try again.',
      conflict: 'That request clashed with an earlier one. Please press the button again.',
      rateLimited: 'Too many codes were requested.',
      tryIn: 'Try again in {n} s.',
      tryLater: 'Please try again later.',
      wrongCode: 'That code is not correct.',
      attemptsLeft1: '1 attempt remaining.',
      attemptsLeftN: '{n} attempts remaining.',
      tryAgain: 'Please try again.',
      tooMany: 'Too many wrong codes: this code no longer works. Request a new code.',
      expired: 'This code has expired or was already used. Request a new code.',
      upstream: 'We could not send the SMS right now. Please try again in a moment.',
      unavailable: 'The service is temporarily unavailable.',
      tryMinutes: 'Please try again in a few minutes.',
      upstreamTimeout: 'The SMS service took too long to answer. If no code arrives, try again in a moment.',
      internal: 'Something went wrong on our side. Please try again.',
      unexpected: 'Unexpected answer from the service (HTTP {n}). Please try again.',
      misconfigured: 'This page is misconfigured: the API address must be an http(s) URL.',
    },
    hi: {
      title: 'अपने मोबाइल नंबर की पुष्टि करें',
      lead: 'हम आपको SMS से एक बार इस्तेमाल होने वाला कोड भेजेंगे।',
      phoneLabel: 'मोबाइल नंबर',
      phoneHintIndia: '10 अंक, जैसे 98765 43210। +91 अपने-आप जुड़ जाएगा।',
      phoneHintIntl: 'देश कोड के साथ, जैसे +91 98765 43210।',
      send: 'कोड भेजें',
      sending: 'भेजा जा रहा है…',
      sentInfo: 'कोड {phone} पर भेजा गया। यह {time} पर समाप्त होगा।',
      otpLabel: 'SMS में आया कोड',
      verify: 'पुष्टि करें',
      checking: 'जाँच हो रही है…',
      resend: 'कोड फिर से भेजें',
      countdown: '{label} ({n} सेकंड में)',
      change: 'दूसरा नंबर इस्तेमाल करें',
      verified: '{phone} की पुष्टि हो गई।',
      sentAgain: 'नया कोड {phone} पर भेजा गया।',
      samePending: '{phone} पर पहले भेजा गया कोड दर्ज करें।',
      challengeLabel: 'सुरक्षा जाँच',
      challengeNeeded: 'कृपया पहले सुरक्षा जाँच पूरी करें।',
      phoneInvalidIndia: '10 अंकों का भारतीय मोबाइल नंबर दर्ज करें, जैसे 98765 43210।',
      phoneInvalidIntl: 'देश कोड के साथ अपना मोबाइल नंबर दर्ज करें, जैसे +91 98765 43210।',
      countryNotAllowed: 'क्षमा करें, हम उस देश के नंबरों पर कोड नहीं भेज सकते। कृपया कोई दूसरा मोबाइल नंबर इस्तेमाल करें।',
      codeFormat: 'SMS में आया कोड दर्ज करें: 4 से 8 अंक।',
      network: 'सेवा से संपर्क नहीं हो सका। अगर ऐसा बार-बार हो, तो साइट की सेटिंग में गड़बड़ी हो सकती है। कृपया फिर से कोशिश करें।',
      timeout: 'सेवा ने समय पर जवाब नहीं दिया। अपना कनेक्शन जाँचें और फिर से कोशिश करें।',
      invalidRequestSend: 'यह अनुरोध स्वीकार नहीं हुआ। नंबर जाँचें और फिर से कोशिश करें।',
      invalidRequestVerify: 'यह कोड जाँचा नहीं जा सका। SMS के अंक दर्ज करें और फिर से कोशिश करें।',
      invalidPhone: 'यह मोबाइल नंबर नहीं लगता। जाँचें और फिर से कोशिश करें।',
      challengeFailed: 'सुरक्षा जाँच सफल नहीं हुई। कृपया इसे फिर से पूरा करें।',
      tooLarge: 'आपने जो दर्ज किया वह बहुत लंबा है। कृपया जाँचें और फिर से कोशिश करें।',
      mediaType: 'अनुरोध ऐसे रूप में भेजा गया जिसे सेवा स्वीकार नहीं करती। कृपया पेज फिर से लोड करें।',
      conflict: 'यह अनुरोध पिछले अनुरोध से टकरा गया। कृपया बटन फिर से दबाएँ।',
      rateLimited: 'बहुत सारे कोड माँगे गए।',
      tryIn: '{n} सेकंड बाद फिर से कोशिश करें।',
      tryLater: 'कृपया बाद में कोशिश करें।',
      wrongCode: 'यह कोड सही नहीं है।',
      attemptsLeft1: '1 कोशिश बाकी है।',
      attemptsLeftN: '{n} कोशिशें बाकी हैं।',
      tryAgain: 'कृपया फिर से कोशिश करें।',
      tooMany: 'बहुत सारे गलत कोड: यह कोड अब काम नहीं करेगा। नया कोड माँगें।',
      expired: 'यह कोड समाप्त हो गया है या पहले ही इस्तेमाल हो चुका है। नया कोड माँगें।',
      upstream: 'अभी SMS नहीं भेजा जा सका। कृपया थोड़ी देर में फिर से कोशिश करें।',
      unavailable: 'सेवा अभी उपलब्ध नहीं है।',
      tryMinutes: 'कृपया कुछ मिनट बाद फिर से कोशिश करें।',
      upstreamTimeout: 'SMS सेवा ने जवाब देने में बहुत देर लगाई। अगर कोड न आए, तो थोड़ी देर में फिर से कोशिश करें।',
      internal: 'हमारी ओर से कुछ गड़बड़ हुई। कृपया फिर से कोशिश करें।',
      unexpected: 'सेवा से अनपेक्षित जवाब (HTTP {n})। कृपया फिर से कोशिश करें।',
      misconfigured: 'यह पेज गलत तरीके से सेट है: API का पता http(s) URL होना चाहिए।',
    },
  };

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, k) { return values && values[k] !== undefined ? String(values[k]) : ''; });
  }

  /* ---------------------------------------------------------------- numbers */

  /** Digits and a leading + only; 00 → +. */
  function compact(value) {
    var v = String(value || '').replace(/[\s\-().\u00a0]/g, '');
    if (v.indexOf('00') === 0) v = '+' + v.slice(2);
    return v;
  }

  /** How an Indian customer types a number → E.164, or '' when it is not one. */
  function indianE164(value) {
    var v = compact(value);
    if (/^\+91\d{10}$/.test(v)) v = v.slice(3);
    else if (/^91\d{10}$/.test(v)) v = v.slice(2);
    else if (/^0\d{10}$/.test(v)) v = v.slice(1);
    return /^[6-9]\d{9}$/.test(v) ? '+91' + v : '';
  }

  /** The E.164 number for what was typed, or '' (countries: allowed calling codes). */
  function toE164(value, countries) {
    var india = indianE164(value);
    if (india && countries.indexOf('91') !== -1) return india;
    var v = compact(value);
    if (countries.length === 1 && countries[0] === '91') return '';
    return /^\+[1-9]\d{6,14}$/.test(v) ? v : '';
  }

  /** +919876543210 → "+91 98765 43210"; other numbers keep their E.164 form. */
  function display(e164) {
    var m = /^\+91(\d{5})(\d{5})$/.exec(e164);
    return m ? '+91 ' + m[1] + ' ' + m[2] : e164;
  }

  /* ---------------------------------------------------------------- small DOM helpers */

  var instances = 0;

  function make(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === false || attrs[k] === undefined || attrs[k] === null) return;
      node.setAttribute(k, attrs[k] === true ? '' : String(attrs[k]));
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }

  function ensureStylesheet() {
    if (document.querySelector('link[data-otp-widget-css]') || !scriptSrc) return;
    var href = new URL('otp-widget.css', scriptSrc).href;
    document.head.appendChild(make('link', { rel: 'stylesheet', href: href, 'data-otp-widget-css': true }));
  }

  function randomKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    // Outside a secure context randomUUID is missing; getRandomValues still works.
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join('');
  }

  /* ---------------------------------------------------------------- API base */

  function apiBaseFor(root) {
    var raw = (root.getAttribute('data-api-base') || (script && script.getAttribute('data-api-base')) || '').trim();
    // ?api= only from a page on this machine to a service on this machine: a link must never point a hosted
    // checkout at someone else's server to collect numbers and codes.
    if (LOOPBACK.test(window.location.hostname)) {
      var fromQuery = new URLSearchParams(window.location.search).get('api');
      if (fromQuery) {
        try {
          var q = new URL(fromQuery, window.location.href);
          if (LOOPBACK.test(q.hostname)) raw = fromQuery;
          else return null;
        } catch (e) {
          return null;
        }
      }
    }
    if (!raw) return '';
    try {
      var url = new URL(raw, window.location.href);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
      url.search = '';
      url.hash = '';
      return url.href.replace(/\/+$/, '');
    } catch (e) {
      return null;
    }
  }

  /* ---------------------------------------------------------------- HTTP */

  /** Resolves to { ok, status, data, retryAfter } or { network: true, timeout }. Never rejects. */
  function post(url, body, extraHeaders) {
    var headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    Object.keys(extraHeaders || {}).forEach(function (k) { headers[k] = extraHeaders[k]; });
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    return fetch(url, {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      redirect: 'error',
      signal: controller ? controller.signal : undefined,
    }).then(
      function (res) {
        return res.text().then(
          function (text) {
            var data = null;
            try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
            return { ok: res.ok, status: res.status, data: data, retryAfter: res.headers.get('Retry-After') };
          },
          function () { return { network: true, timeout: false }; }
        );
      },
      function (err) { return { network: true, timeout: !!(err && err.name === 'AbortError') }; }
    ).then(function (result) {
      if (timer) window.clearTimeout(timer);
      return result;
    });
  }

  function retrySeconds(result) {
    var fromBody = result.data && Number(result.data.retryAfterSeconds);
    if (fromBody && fromBody > 0) return Math.ceil(fromBody);
    var fromHeader = Number(result.retryAfter);
    if (fromHeader && fromHeader > 0) return Math.ceil(fromHeader);
    return 0;
  }

  /* ---------------------------------------------------------------- bot challenge */

  var PROVIDERS = {
    turnstile: { global: 'turnstile', src: 'https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit' },
    hcaptcha: { global: 'hcaptcha', src: 'https://js.hcaptcha.com/1/api.js?render=explicit' },
    recaptcha: { global: 'grecaptcha', src: 'https://www.google.com/recaptcha/api.js?render=explicit' },
  };
  var scriptLoads = {};

  function loadScript(src) {
    if (!scriptLoads[src]) {
      scriptLoads[src] = new Promise(function (resolve, reject) {
        var s = make('script', { src: src, async: true });
        s.onload = function () { resolve(); };
        s.onerror = function () { reject(new Error('could not load ' + src)); };
        document.head.appendChild(s);
      });
    }
    return scriptLoads[src];
  }

  /** Renders the provider's widget into `container`; onToken(token | '') on every change. */
  function Challenge(provider, siteKey, scriptUrl, container, lang, onToken) {
    var spec = PROVIDERS[provider];
    var self = this;
    this.id = null;
    this.api = null;
    loadScript(scriptUrl || (provider === 'recaptcha' ? spec.src + '&hl=' + lang : spec.src)).then(function () {
      var api = window[spec.global];
      var render = function () {
        self.api = api;
        var options = {
          sitekey: siteKey,
          callback: function (token) { onToken(String(token || '')); },
          'expired-callback': function () { onToken(''); },
          'error-callback': function () { onToken(''); },
        };
        // Each provider names the widget's language its own way (reCAPTCHA only in the script URL).
        if (provider === 'turnstile') options.language = lang;
        if (provider === 'hcaptcha') options.hl = lang;
        self.id = api.render(container, options);
      };
      if (api && typeof api.ready === 'function' && provider === 'recaptcha') api.ready(render);
      else if (api) render();
    }, function () { onToken(''); });
  }
  /** Tokens are single-use: after each send the customer solves a fresh one. */
  Challenge.prototype.reset = function () {
    if (this.api && typeof this.api.reset === 'function') this.api.reset(this.id === null ? undefined : this.id);
  };

  /* ---------------------------------------------------------------- a button with busy state and countdown */

  function Control(button, label, t) {
    this.button = button;
    this.label = label;
    this.busyLabel = label;
    this.t = t;
    this.busy = false;
    this.blocked = false;
    this.deadline = 0;
    this.timer = 0;
  }
  Control.prototype.secondsLeft = function () {
    return Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
  };
  Control.prototype.render = function () {
    var left = this.secondsLeft();
    if (left === 0 && this.timer) {
      window.clearInterval(this.timer);
      this.timer = 0;
    }
    this.button.disabled = this.busy || this.blocked || left > 0;
    if (this.busy) this.button.setAttribute('aria-busy', 'true');
    else this.button.removeAttribute('aria-busy');
    var text = this.busy ? this.busyLabel : left > 0 ? fill(this.t.countdown, { label: this.label, n: left }) : this.label;
    if (this.button.textContent !== text) this.button.textContent = text;
    this.button.setAttribute('data-countdown', String(left));
  };
  /** Counts down to an absolute deadline (ms since epoch; 0 = none). */
  Control.prototype.until = function (deadline) {
    this.deadline = deadline > Date.now() ? deadline : 0;
    if (this.timer) window.clearInterval(this.timer);
    this.timer = this.deadline ? window.setInterval(this.render.bind(this), 250) : 0;
    this.render();
  };
  Control.prototype.setBusy = function (busy, busyLabel) {
    this.busy = busy;
    if (busyLabel) this.busyLabel = busyLabel;
    this.render();
  };
  Control.prototype.setBlocked = function (blocked) {
    this.blocked = blocked;
    this.render();
  };

  /* ---------------------------------------------------------------- one widget */

  function mount(root) {
    if (root.getAttribute('data-ready') === 'true') return;
    var n = ++instances;
    var id = function (name) { return 'otpw' + n + '-' + name; };
    var lang = root.getAttribute('data-lang') === 'hi' ? 'hi' : 'en';
    var t = STRINGS[lang];
    var countries = (root.getAttribute('data-countries') || '91').split(',').map(function (s) { return s.trim().replace(/^\+/, ''); }).filter(Boolean);
    var indiaOnly = countries.length === 1 && countries[0] === '91';
    var provider = (root.getAttribute('data-challenge-provider') || '').trim().toLowerCase();
    if (!PROVIDERS[provider]) provider = '';
    var apiBase = apiBaseFor(root);

    /* --- the DOM */
    var el = {};
    el.title = make('h2', { id: id('title'), class: 'otpw-title' }, [t.title]);
    el.lead = make('p', { class: 'otpw-lead' }, [t.lead]);

    el.phone = make('input', {
      id: id('phone'), 'data-testid': 'phone', name: 'phoneNumber', type: 'tel',
      inputmode: indiaOnly ? 'numeric' : 'tel', autocomplete: indiaOnly ? 'tel-national' : 'tel',
      placeholder: indiaOnly ? '98765 43210' : '+91 98765 43210', maxlength: 20, spellcheck: 'false', required: true,
      'aria-describedby': id('phone-hint') + ' ' + id('phone-error'),
    });
    el.phoneHint = make('p', { id: id('phone-hint'), class: 'otpw-hint' }, [indiaOnly ? t.phoneHintIndia : t.phoneHintIntl]);
    el.phoneError = make('p', { id: id('phone-error'), class: 'otpw-error', 'data-testid': 'phone-error' });
    el.send = make('button', { type: 'submit', class: 'otpw-primary', 'data-testid': 'send-button' }, [t.send]);
    var field = indiaOnly
      ? make('div', { class: 'otpw-phone-row' }, [make('span', { class: 'otpw-prefix', 'aria-hidden': 'true' }, ['+91']), el.phone])
      : el.phone;
    el.sendForm = make('form', { class: 'otpw-form', 'data-testid': 'send-form', novalidate: true }, [
      make('label', { for: id('phone') }, [t.phoneLabel]), field, el.phoneHint, el.phoneError, el.send,
    ]);

    el.sentNumber = make('strong', { 'data-testid': 'sent-number' });
    el.codeExpiry = make('time', { 'data-testid': 'code-expiry' });
    el.sentInfo = make('p', { id: id('sent-info'), class: 'otpw-hint', 'data-testid': 'sent-info' });
    el.otp = make('input', {
      id: id('otp'), 'data-testid': 'otp', name: 'otp', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code',
      pattern: '[0-9]*', maxlength: 8, spellcheck: 'false', required: true,
      'aria-describedby': id('sent-info') + ' ' + id('otp-error'),
    });
    el.otpError = make('p', { id: id('otp-error'), class: 'otpw-error', 'data-testid': 'otp-error' });
    el.verify = make('button', { type: 'submit', class: 'otpw-primary', 'data-testid': 'verify-button' }, [t.verify]);
    el.resend = make('button', { type: 'button', class: 'otpw-secondary', 'data-testid': 'resend-button', disabled: true }, [t.resend]);
    el.change = make('button', { type: 'button', class: 'otpw-link', 'data-testid': 'change-number' }, [t.change]);
    el.verifyForm = make('form', { class: 'otpw-form', 'data-testid': 'verify-form', novalidate: true, hidden: true }, [
      el.sentInfo, make('label', { for: id('otp') }, [t.otpLabel]), el.otp, el.otpError, el.verify,
      make('div', { class: 'otpw-actions' }, [el.resend, el.change]),
    ]);

    el.challenge = make('div', { class: 'otpw-challenge', 'data-testid': 'challenge', role: 'group', 'aria-label': t.challengeLabel, tabindex: '-1' });
    el.verifiedNumber = make('strong', { 'data-testid': 'verified-number' });
    el.restart = make('button', { type: 'button', class: 'otpw-link', 'data-testid': 'restart-button' }, [t.change]);
    el.done = make('div', { class: 'otpw-done', 'data-testid': 'success', tabindex: '-1', hidden: true }, [
      make('p', {}, [make('span', { class: 'otpw-tick', 'aria-hidden': 'true' }, ['✓']), ' ', el.verifiedNumber]),
      el.restart,
    ]);
    el.status = make('p', { class: 'otpw-status', 'data-testid': 'status', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });

    var card = make('section', { class: 'otpw', 'aria-labelledby': id('title'), lang: lang }, [
      el.title, el.lead, el.sendForm, el.verifyForm, el.challenge, el.done, el.status,
    ]);
    while (root.firstChild) root.removeChild(root.firstChild);
    root.appendChild(card);

    /* --- state */
    var state = { phone: '', otpRequestId: '', token: '' };
    var pending = {}; // e164 → { otpRequestId, expiresAt, dead }: a code sent and still enterable
    var sendDeadlines = {}; // e164 → ms: when a send to that number may be tried again
    var sendCtl = new Control(el.send, t.send, t);
    var verifyCtl = new Control(el.verify, t.verify, t);
    var resendCtl = new Control(el.resend, t.resend, t);
    var challenge = null;

    /* --- messages: a field's own error next to it, everything else in the status region */
    function message(node, kind, text, code) {
      node.textContent = text || '';
      if (kind && text) node.setAttribute('data-kind', kind);
      else node.removeAttribute('data-kind');
      if (code && text) node.setAttribute('data-error-code', code);
      else node.removeAttribute('data-error-code');
    }
    function say(kind, text, code) { message(el.status, kind, text, code); }
    function fieldError(input, node, text, code) {
      message(node, text ? 'error' : '', text, code);
      if (text) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
    function clearMessages() {
      say('', '');
      fieldError(el.phone, el.phoneError, '');
      fieldError(el.otp, el.otpError, '');
    }

    function formatTime(iso) {
      var date = new Date(iso);
      if (isNaN(date.getTime())) return String(iso || '');
      return date.toLocaleTimeString(lang === 'hi' ? 'hi-IN' : 'en-IN', { hour: 'numeric', minute: '2-digit' });
    }

    function describeError(result, context) {
      if (result.network) return result.timeout ? t.timeout : t.network;
      var data = result.data || {};
      var wait = retrySeconds(result);
      switch (typeof data.error === 'string' ? data.error : '') {
        case 'invalid_request': return context === 'verify' ? t.invalidRequestVerify : t.invalidRequestSend;
        case 'invalid_phone_number': return t.invalidPhone;
        case 'country_not_allowed': return t.countryNotAllowed;
        case 'challenge_failed': return t.challengeFailed;
        case 'payload_too_large': return t.tooLarge;
        case 'unsupported_media_type': return t.mediaType;
        case 'idempotency_conflict': return t.conflict;
        case 'rate_limited': return t.rateLimited + ' ' + (wait ? fill(t.tryIn, { n: wait }) : t.tryLater);
        case 'invalid_code': {
          var left = Number(data.attemptsRemaining);
          return t.wrongCode + ' ' + (left === 1 ? t.attemptsLeft1 : left > 1 ? fill(t.attemptsLeftN, { n: left }) : t.tryAgain);
        }
        case 'too_many_attempts': return t.tooMany;
        case 'otp_expired': return t.expired;
        case 'upstream_error': return t.upstream;
        case 'service_unavailable': return t.unavailable + ' ' + (wait ? fill(t.tryIn, { n: wait }) : t.tryMinutes);
        case 'upstream_timeout': return t.upstreamTimeout;
        case 'internal_error': return t.internal;
        default: return fill(t.unexpected, { n: result.status });
      }
    }
    function errorCode(result) {
      return result.network ? 'network_error' : (result.data && typeof result.data.error === 'string' && result.data.error) || 'http_' + result.status;
    }

    function showStep(step) {
      el.sendForm.hidden = step !== 'phone';
      el.verifyForm.hidden = step !== 'code';
      el.challenge.hidden = !provider || step === 'done';
      el.done.hidden = step !== 'done';
      root.setAttribute('data-step', step);
    }

    /** The send button counts down for the number now typed, not for the one last refused. */
    function refreshSendCountdown() {
      var e164 = toE164(el.phone.value, countries);
      // A number whose code still works: the button leads back to that code, so it does not wait.
      sendCtl.until(e164 && !livePending(e164) ? sendDeadlines[e164] || 0 : 0);
    }

    function livePending(e164) {
      var p = pending[e164];
      return p && !p.dead && Date.parse(p.expiresAt) > Date.now() ? p : null;
    }

    function showCodeStep(e164) {
      var p = pending[e164];
      state.phone = e164;
      state.otpRequestId = p.otpRequestId;
      el.sentNumber.textContent = display(e164);
      el.codeExpiry.setAttribute('datetime', p.expiresAt);
      el.codeExpiry.textContent = formatTime(p.expiresAt);
      while (el.sentInfo.firstChild) el.sentInfo.removeChild(el.sentInfo.firstChild);
      var parts = t.sentInfo.split(/(\{phone\}|\{time\})/);
      parts.forEach(function (part) {
        if (part === '{phone}') el.sentInfo.appendChild(el.sentNumber);
        else if (part === '{time}') el.sentInfo.appendChild(el.codeExpiry);
        else if (part) el.sentInfo.appendChild(document.createTextNode(part));
      });
      resendCtl.until(sendDeadlines[e164] || 0);
      verifyCtl.setBlocked(!!p.dead);
      el.otp.value = '';
      fieldError(el.otp, el.otpError, '');
      showStep('code');
    }

    function challengeReady() {
      if (!provider || state.token) return true;
      say('error', t.challengeNeeded, 'challenge_required');
      el.challenge.focus();
      return false;
    }

    function sendCode(fromResend) {
      if (!challengeReady()) return;
      var ctl = fromResend ? resendCtl : sendCtl;
      var e164 = state.phone;
      ctl.setBusy(true, t.sending);
      clearMessages();
      var body = { phoneNumber: e164 };
      if (provider) body.challengeToken = state.token;
      post(apiBase + '/auth/send-otp', body, { 'Idempotency-Key': randomKey() }).then(function (result) {
        ctl.setBusy(false);
        if (challenge) {
          state.token = '';
          challenge.reset();
        }
        var data = result.data;
        if (result.ok && data && data.otpRequestId && data.expiresAt) {
          pending[e164] = { otpRequestId: String(data.otpRequestId), expiresAt: String(data.expiresAt), dead: false };
          sendDeadlines[e164] = Date.now() + (Number(data.resendAfterSeconds) || 0) * 1000;
          showCodeStep(e164);
          if (fromResend) say('success', fill(t.sentAgain, { phone: display(e164) }));
          el.otp.focus();
          return;
        }
        if (result.ok) result = { ok: false, status: result.status, data: null };
        var code = errorCode(result);
        var text = describeError(result, 'send');
        if (code === 'rate_limited' || (code === 'service_unavailable' && retrySeconds(result))) {
          sendDeadlines[e164] = Date.now() + retrySeconds(result) * 1000;
          ctl.until(sendDeadlines[e164]);
        }
        if (!fromResend && (code === 'invalid_phone_number' || code === 'country_not_allowed')) {
          fieldError(el.phone, el.phoneError, text, code);
          el.phone.focus();
        } else {
          say('error', text, code);
          if (code === 'challenge_failed') el.challenge.focus();
        }
      });
    }

    /* --- events */
    el.sendForm.addEventListener('submit', function (event) {
      event.preventDefault();
      if (el.send.disabled) return;
      var e164 = toE164(el.phone.value, countries);
      if (!e164) {
        say('', '');
        fieldError(el.phone, el.phoneError, indiaOnly ? t.phoneInvalidIndia : t.phoneInvalidIntl, 'invalid_phone_number');
        el.phone.focus();
        return;
      }
      fieldError(el.phone, el.phoneError, '');
      el.phone.value = display(e164);
      // The same number again while its code still works: back to that code, no new SMS (and no 429).
      if (livePending(e164)) {
        showCodeStep(e164);
        say('info', fill(t.samePending, { phone: display(e164) }));
        el.otp.focus();
        return;
      }
      state.phone = e164;
      sendCode(false);
    });

    el.verifyForm.addEventListener('submit', function (event) {
      event.preventDefault();
      if (el.verify.disabled) return;
      var otp = String(el.otp.value || '').replace(/\s/g, '');
      if (!/^\d{4,8}$/.test(otp)) {
        say('', '');
        fieldError(el.otp, el.otpError, t.codeFormat, 'invalid_request');
        el.otp.focus();
        return;
      }
      clearMessages();
      verifyCtl.setBusy(true, t.checking);
      var e164 = state.phone;
      post(apiBase + '/auth/verify-otp', { otpRequestId: state.otpRequestId, otp: otp }).then(function (result) {
        verifyCtl.setBusy(false);
        var data = result.data;
        if (result.ok && data && data.verified === true && data.token && data.tokenExpiresAt) {
          delete pending[e164];
          el.verifiedNumber.textContent = fill(t.verified, { phone: display(e164) });
          showStep('done');
          el.done.focus(); // said once: the focused block, not also a status message
          root.dispatchEvent(new CustomEvent('otp-verified', {
            bubbles: true,
            detail: { phoneNumber: e164, token: data.token, tokenExpiresAt: data.tokenExpiresAt },
          }));
          return;
        }
        if (result.ok) result = { ok: false, status: result.status, data: null };
        var code = errorCode(result);
        var text = describeError(result, 'verify');
        if (code === 'invalid_code' || code === 'invalid_request') {
          fieldError(el.otp, el.otpError, text, code);
          el.otp.select();
          el.otp.focus();
        } else if (code === 'too_many_attempts' || code === 'otp_expired') {
          if (pending[e164]) pending[e164].dead = true;
          verifyCtl.setBlocked(true);
          el.otp.value = '';
          say('error', text, code);
          (el.resend.disabled ? el.change : el.resend).focus();
        } else {
          say('error', text, code);
        }
      });
    });

    el.resend.addEventListener('click', function () {
      if (el.resend.disabled || !state.phone) return;
      sendCode(true);
    });

    function backToPhone() {
      showStep('phone');
      clearMessages();
      refreshSendCountdown();
      el.phone.focus();
    }
    el.change.addEventListener('click', backToPhone);
    el.restart.addEventListener('click', backToPhone);

    el.phone.addEventListener('input', function () {
      fieldError(el.phone, el.phoneError, '');
      refreshSendCountdown();
    });
    el.otp.addEventListener('input', function () {
      fieldError(el.otp, el.otpError, '');
      var digits = el.otp.value.replace(/\D/g, '');
      if (digits !== el.otp.value) el.otp.value = digits.slice(0, 8);
    });

    /* --- start */
    showStep('phone');
    sendCtl.render();
    if (apiBase === null) {
      apiBase = '';
      sendCtl.setBlocked(true);
      say('error', t.misconfigured, 'configuration');
    }
    if (provider) {
      challenge = new Challenge(provider, root.getAttribute('data-challenge-site-key') || '', root.getAttribute('data-challenge-script'),
        el.challenge, lang, function (token) { state.token = token; if (token && el.status.getAttribute('data-error-code') === 'challenge_required') say('', ''); });
    }
    root.setAttribute('data-ready', 'true');
  }

  function mountAll() {
    ensureStylesheet();
    Array.prototype.forEach.call(document.querySelectorAll('[data-otp-widget]'), mount);
  }

  window.OtpWidget = { mount: function (root) { ensureStylesheet(); mount(root); } };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
  else mountAll();
})();
