/*
 * A local stand-in for the bot-challenge providers' browser scripts (Cloudflare Turnstile, hCaptcha,
 * reCAPTCHA), served by `npm start` at /challenge-stand-in.js so the page and its browser test work offline.
 * It offers the same explicit-render API (window.turnstile / hcaptcha / grecaptcha: render, reset,
 * getResponse) and draws a labelled checkbox; ticking it hands the page the test token `challenge-pass`,
 * which the local siteverify stand-in accepts (any other token, e.g. `challenge-fail`, is refused).
 */
(function () {
  'use strict';
  var widgets = [];

  function render(container, options) {
    var id = widgets.length;
    var box = document.createElement('input');
    box.type = 'checkbox';
    box.id = 'challenge-stand-in-' + id;
    box.setAttribute('data-testid', 'challenge-checkbox');
    var label = document.createElement('label');
    label.htmlFor = box.id;
    label.textContent = " I'm not a robot (local test check)";
    label.style.display = 'inline';
    label.style.fontWeight = 'normal';
    var wrap = document.createElement('div');
    wrap.appendChild(box);
    wrap.appendChild(label);
    var el = typeof container === 'string' ? document.getElementById(container) : container;
    el.appendChild(wrap);
    box.addEventListener('change', function () {
      var cb = box.checked ? options.callback : options['expired-callback'];
      if (typeof cb === 'function') cb(box.checked ? 'challenge-pass' : '');
    });
    widgets.push(box);
    return id;
  }

  function reset(id) {
    var box = widgets[id === undefined ? 0 : id];
    if (box) box.checked = false;
  }

  function getResponse(id) {
    var box = widgets[id === undefined ? 0 : id];
    return box && box.checked ? 'challenge-pass' : '';
  }

  var api = { render: render, reset: reset, getResponse: getResponse, ready: function (cb) { cb(); } };
  window.turnstile = api;
  window.hcaptcha = api;
  window.grecaptcha = api;
})();
