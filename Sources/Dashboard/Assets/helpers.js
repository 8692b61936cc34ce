// DOM builders, the dashboard's URLs, the JSON fetch and number and time formats, shared by every
// other script.
'use strict';
const SVGNS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
// Elements are built with text nodes, never from HTML strings (run names and prompts are data).
const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
const s = (tag, attrs, ...children) => build(document.createElementNS(SVGNS, tag), attrs, children);

const enc = path => path.split('/').map(encodeURIComponent).join('/');
const fileURL = path => '/files/' + enc(path);
const thumbURL = (path, w) => '/thumb/' + enc(path) + '?w=' + w;

async function getJSON(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) {
    let message = response.status + ' ' + response.statusText;
    try { message = (await response.json()).error.message || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

function fmt(x, digits = 4) {
  if (x == null || !isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
  return String(Number(x.toPrecision(digits)));
}

// "1 run", "3 runs".
const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');

// 75 → "1:15", 4000 → "1:06:40".
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const two = n => String(n).padStart(2, '0');
  return s >= 3600 ? Math.floor(s / 3600) + ':' + two(Math.floor(s / 60) % 60) + ':' + two(s % 60) : Math.floor(s / 60) + ':' + two(s % 60);
}

function ago(seconds) {
  if (seconds == null) return '';
  const d = Math.max(0, Date.now() / 1000 - seconds);
  if (d < 60) return Math.round(d) + ' s ago';
  if (d < 3600) return Math.round(d / 60) + ' min ago';
  if (d < 86400) return Math.round(d / 3600) + ' h ago';
  return Math.round(d / 86400) + ' d ago';
}
