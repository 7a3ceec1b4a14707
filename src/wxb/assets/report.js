// wxb report: typesets the equations (KaTeX), draws the heat-maps, histograms and
// curves from the page's JSON, renders the Mermaid diagrams, then sets
// document.body.dataset.ready to 'ok' (or 'errors', listed in #wxb-errors).
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('wxb-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#2456a6', '#d1495b', '#3c9d5d', '#e59a2f', '#7b4fb0', '#2aa3b5', '#8c6d31',
                '#c2549d', '#5f6b7a', '#9bb53c'];
  var tip = document.createElement('div');
  tip.className = 'tooltip';
  document.body.appendChild(tip);

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '–';
    if (v === 0) return '0';
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) return v.toExponential(2);
    var text = String(+v.toPrecision(4));
    // 0.99996 is not 1 (an accuracy short of perfect): more digits, as figure_text gives them
    for (var p = 5; Math.abs(+text) === 1 && v !== +text && p <= 17; p++) {
      text = String(+v.toPrecision(p));
    }
    return text;
  }
  function showTip(event, text) {
    tip.textContent = text; tip.style.display = 'block';
    tip.style.left = (event.clientX + 12) + 'px'; tip.style.top = (event.clientY + 12) + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  // -- heat-maps: int8 cells against the grid's largest |entry| -------------------
  function decode(grid) {
    var raw = atob(grid.data), cells = new Int8Array(raw.length);
    for (var i = 0; i < raw.length; i++) cells[i] = (raw.charCodeAt(i) << 24) >> 24;
    return cells;
  }
  function colour(q) {  // red positive, blue negative, white 0, as the page says
    if (q === -128) return [238, 238, 238];
    var t = q / 127;
    if (t >= 0) return [255, 255 - 190 * t, 255 - 200 * t];
    return [255 + 219 * t, 255 + 160 * t, 255 + 60 * t];
  }
  function heatmap(canvas, step) {
    var g = step.grid, cells = decode(g);
    var size = Math.max(3, Math.min(18, Math.floor(320 / Math.max(g.rows, g.cols))));
    canvas.width = g.cols; canvas.height = g.rows;
    canvas.style.width = (g.cols * size) + 'px'; canvas.style.height = (g.rows * size) + 'px';
    var ctx = canvas.getContext('2d'), image = ctx.createImageData(g.cols, g.rows);
    for (var i = 0; i < cells.length; i++) {
      var c = colour(cells[i]);
      image.data[4 * i] = c[0]; image.data[4 * i + 1] = c[1]; image.data[4 * i + 2] = c[2];
      image.data[4 * i + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    var shape = step.shape.join('×'), block = g.block[0] * g.block[1];
    var last = g.last || g.block, uneven = last[0] !== g.block[0] || last[1] !== g.block[1];
    canvas.title = shape + (block > 1 ? ' shown as ' + g.rows + '×' + g.cols +
      ' block means (' + g.block.join('×') + ' entries each' +
      (uneven ? '; the last ' + last.join('×') : '') + ')' : '') +
      '; colour scale ±' + fmt(g.scale);
    canvas.addEventListener('mousemove', function (e) {
      var r = canvas.getBoundingClientRect();
      var col = Math.floor((e.clientX - r.left) / size), row = Math.floor((e.clientY - r.top) / size);
      if (col < 0 || col >= g.cols || row < 0 || row >= g.rows) return hideTip();
      var q = cells[row * g.cols + col];
      showTip(e, (block > 1 ? 'block ' : 'entry ') + '(' + row + ', ' + col + '): ' +
              (q === -128 ? 'empty' : '≈ ' + fmt(q / 127 * g.scale)));
    });
    canvas.addEventListener('mouseleave', hideTip);
    canvas.dataset.drawn = String(cells.length);
  }

  // -- histogram of every entry ---------------------------------------------------
  function histogram(svg, step) {
    var h = step.histogram, W = 300, H = 120, pad = 22;
    svg.setAttribute('width', W); svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var top = Math.max.apply(null, h.counts) || 1, bw = (W - 2 * pad) / h.counts.length;
    h.counts.forEach(function (count, i) {
      var height = (H - 2 * pad) * count / top;
      var lo = h.lo + (h.hi - h.lo) * i / h.counts.length;
      var hi = h.lo + (h.hi - h.lo) * (i + 1) / h.counts.length;
      var bar = el('rect', { x: pad + i * bw + 0.5, y: H - pad - height, width: Math.max(bw - 1, 1),
                             height: Math.max(height, count ? 1 : 0), fill: '#2456a6' }, svg);
      // (NumPy's last bin holds its upper edge: the largest entry is counted there)
      var close = i === h.counts.length - 1 ? ']' : ')';
      el('title', {}, bar).textContent = count + ' entries in [' + fmt(lo) + ', ' + fmt(hi) + close;
    });
    el('line', { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: '#888' }, svg);
    var text = function (x, anchor, label) {
      el('text', { x: x, y: H - 6, 'font-size': 11, 'text-anchor': anchor, fill: '#5b6478' }, svg)
        .textContent = label;
    };
    text(pad, 'start', fmt(h.lo)); text(W - pad, 'end', fmt(h.hi));
    el('text', { x: W / 2, y: 12, 'font-size': 11, 'text-anchor': 'middle', fill: '#5b6478' }, svg)
      .textContent = step.shape.join('×') + ': mean ' + fmt(step.mean) + ', ‖·‖ ' + fmt(step.norm);
    svg.dataset.drawn = String(h.counts.length);
  }

  // -- line charts over the epochs ------------------------------------------------
  function lineChart(svg, series, opts) {
    var W = opts.width || 520, L = 58, R = 12, T = 12;
    // the legend wraps below the axis: lay it out first, it sets the chart's height
    var place = [], lx = L, ly = 0;
    series.forEach(function (s) {
      var width = 28 + 6.2 * s.name.length;
      if (lx > L && lx + width > W - R) { lx = L; ly += 16; }
      place.push([lx, ly]); lx += width;
    });
    var B = 50 + ly, H = (opts.height || 260) + ly;
    svg.setAttribute('width', W); svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    var xs = opts.x, values = [];
    series.forEach(function (s) { s.values.forEach(function (v) {
      if (v !== null && isFinite(v) && (!opts.log || v > 0)) values.push(v); }); });
    if (!values.length) {
      el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'font-size': 12, fill: '#5b6478' }, svg)
        .textContent = 'no figures to draw';
      svg.dataset.drawn = '1';
      return;
    }
    var lo = opts.ymin !== undefined ? opts.ymin : Math.min.apply(null, values);
    var hi = opts.ymax !== undefined ? opts.ymax : Math.max.apply(null, values);
    var f = opts.log ? Math.log10 : function (v) { return v; };
    var flo = f(lo), fhi = f(hi);
    if (fhi - flo < 1e-12) {  // a constant: a band around it
      var half = opts.log ? 0.5 : (Math.abs(flo) * 0.1 || 0.5);
      flo -= half; fhi += half;
    }
    var margin = (fhi - flo) * 0.05; flo -= opts.ymin === undefined ? margin : 0;
    fhi += opts.ymax === undefined ? margin : 0;
    var x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
    var px = function (x) { return L + (W - L - R) * (x - x0) / (x1 - x0); };
    var py = function (v) { return T + (H - T - B) * (1 - (f(v) - flo) / (fhi - flo)); };
    // axes and ticks
    el('line', { x1: L, x2: L, y1: T, y2: H - B, stroke: '#888' }, svg);
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#888' }, svg);
    var levels = [];
    if (opts.log && fhi - flo >= 2) {  // powers of ten, at most six of them
      var every = Math.ceil((Math.floor(fhi) - Math.ceil(flo) + 1) / 6);
      for (var e = Math.ceil(flo); e <= fhi; e += every) levels.push(e);
    } else {
      for (var k = 0; k <= 4; k++) levels.push(flo + (fhi - flo) * k / 4);
    }
    for (var k2 = 0; k2 < levels.length; k2++) {
      var fv = levels[k2], v = opts.log ? Math.pow(10, fv) : fv, y = py(v);
      el('line', { x1: L, x2: W - R, y1: y, y2: y, stroke: '#eceff4' }, svg);
      el('text', { x: L - 4, y: y + 4, 'font-size': 11, 'text-anchor': 'end', fill: '#5b6478' }, svg)
        .textContent = fmt(v);
    }
    var ticks = Math.min(xs.length, 8);
    for (var t = 0; t < ticks; t++) {
      var xv = xs[Math.round(t * (xs.length - 1) / Math.max(ticks - 1, 1))];
      el('text', { x: px(xv), y: H - B + 15, 'font-size': 11, 'text-anchor': 'middle', fill: '#5b6478' }, svg)
        .textContent = xv;
    }
    el('text', { x: (L + W - R) / 2, y: H - B + 30, 'font-size': 11, 'text-anchor': 'middle',
                 fill: '#5b6478' }, svg).textContent = opts.xlabel || 'epoch';
    if (opts.best) {
      el('line', { x1: px(opts.best), x2: px(opts.best), y1: T, y2: H - B, stroke: '#999',
                   'stroke-dasharray': '4 3' }, svg);
    }
    series.forEach(function (s, i) {
      var points = [];
      s.values.forEach(function (v, j) {
        if (v !== null && isFinite(v) && (!opts.log || v > 0)) points.push(px(xs[j]) + ',' + py(v));
      });
      el('polyline', { points: points.join(' '), fill: 'none', stroke: s.color || COLORS[i % 10],
                       'stroke-width': 2, 'stroke-dasharray': s.dash || '' }, svg);
      if (points.length === 1) {
        var p = points[0].split(',');
        el('circle', { cx: p[0], cy: p[1], r: 3, fill: s.color || COLORS[i % 10] }, svg);
      }
    });
    // legend below the axis
    series.forEach(function (s, i) {
      var lx = place[i][0], row = H - 8 - ly + place[i][1];
      el('line', { x1: lx, x2: lx + 16, y1: row, y2: row, stroke: s.color || COLORS[i % 10],
                   'stroke-width': 2, 'stroke-dasharray': s.dash || '' }, svg);
      var label = el('text', { x: lx + 20, y: row + 4, 'font-size': 11, fill: '#1d2433' }, svg);
      label.textContent = s.name;
    });
    // hover: the epoch's figures
    var cursor = el('line', { y1: T, y2: H - B, stroke: '#1d2433', 'stroke-width': 1,
                              visibility: 'hidden' }, svg);
    var area = el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'transparent' }, svg);
    area.addEventListener('mousemove', function (e) {
      var r = svg.getBoundingClientRect(), x = (e.clientX - r.left) * W / r.width;
      var j = Math.round((x - L) / (W - L - R) * (xs.length - 1));
      j = Math.max(0, Math.min(xs.length - 1, j));
      cursor.setAttribute('x1', px(xs[j])); cursor.setAttribute('x2', px(xs[j]));
      cursor.setAttribute('visibility', 'visible');
      showTip(e, (opts.xlabel || 'epoch') + ' ' + xs[j] + '\n' + series.map(function (s) {
        return s.name + ': ' + fmt(s.values[j]); }).join('\n'));
    });
    area.addEventListener('mouseleave', function () { cursor.setAttribute('visibility', 'hidden'); hideTip(); });
    svg.dataset.drawn = String(series.length);
  }

  function curves(svg) {
    var key = svg.dataset.key, h = data.history, figures = h.figures;
    var xs = figures.loss.map(function (_, i) { return i + 1; });
    var series = [{ name: 'training ' + key, values: figures[key] }];
    if (figures['val_' + key]) series.push({ name: 'validation ' + key, values: figures['val_' + key], dash: '6 3' });
    var positive = series.every(function (s) { return s.values.every(function (v) { return v === null || v > 0; }); });
    lineChart(svg, series, { x: xs, log: key === 'loss' && positive, best: h.best_epoch,
                             ymax: key === 'accuracy' ? 1 : undefined,
                             ymin: key === 'accuracy' ? 0 : undefined });
  }

  function diagnostics(svg) {
    var key = svg.dataset.key, d = data.diagnostics;
    var names = d[0].layers.map(function (layer, i) { return (i + 1) + ': ' + layer.layer; });
    if (key === 'delta_profile') {
      var last = d[d.length - 1];
      var values = last.layers.map(function (layer) { return layer.delta_norm; });
      lineChart(svg, [{ name: '‖δ‖, epoch ' + last.epoch, values: values }],
                { x: values.map(function (_, i) { return i + 1; }), log: true, xlabel: 'layer l' });
      return;
    }
    var xs = d.map(function (entry) { return entry.epoch; });
    var series = names.map(function (name, i) {
      return { name: name, values: d.map(function (entry) {
        var layer = entry.layers[i];
        if (key !== 'unit_fraction') return layer[key];
        return layer.dead_fraction !== null && layer.dead_fraction !== undefined
          ? layer.dead_fraction : (layer.saturated_fraction === undefined ? null : layer.saturated_fraction);
      }) };
    });
    if (key === 'unit_fraction') {
      series = series.filter(function (s) { return s.values.some(function (v) { return v !== null; }); });
      lineChart(svg, series, { x: xs, ymin: 0, ymax: 1, width: 420 });
    } else {
      lineChart(svg, series, { x: xs, log: true, width: 420 });
    }
  }

  function draw() {
    var steps = data.steps || [];
    document.querySelectorAll('canvas.heatmap').forEach(function (c) { heatmap(c, steps[+c.dataset.step]); });
    document.querySelectorAll('svg.histogram').forEach(function (s) { histogram(s, steps[+s.dataset.step]); });
    document.querySelectorAll('svg.curve').forEach(curves);
    document.querySelectorAll('svg.diag').forEach(diagnostics);
  }

  function typeset() {
    document.querySelectorAll('.tex').forEach(function (node) {
      var tex = node.textContent;
      katex.render(tex, node, { displayMode: node.dataset.display === '1', throwOnError: false,
                                output: 'html', errorColor: '#cc0000' });
      // a parse error, or a command KaTeX does not know (drawn in errorColor)
      if (node.querySelector('.katex-error, [style*="204, 0, 0"]')) {
        window.wxbErrors.push('equation did not typeset: ' + tex);
      }
    });
  }

  async function diagrams() {
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'neutral',
                         maxTextSize: 2000000, maxEdges: 20000, logLevel: 'fatal',
                         flowchart: { useMaxWidth: false } });
    var nodes = Array.prototype.slice.call(document.querySelectorAll('pre.mermaid'));
    await mermaid.run({ nodes: nodes, suppressErrors: true });
    nodes.forEach(function (node) {
      var svg = node.querySelector('svg'), box = svg && svg.getBoundingClientRect();
      if (box) node.dataset.size = Math.round(box.width) + 'x' + Math.round(box.height);
      if (!svg || !box.width || !box.height || node.querySelector('.error-icon')) {
        window.wxbErrors.push('diagram ' + node.parentNode.dataset.kind + ' did not render');
        node.classList.add('diagram-error');
      }
    });
  }

  async function main() {
    var stages = [['typeset', typeset], ['charts', draw], ['diagrams', diagrams]];
    for (var i = 0; i < stages.length; i++) {
      try { await stages[i][1](); }
      catch (e) { window.wxbErrors.push(stages[i][0] + ': ' + (e && e.stack || e)); }
    }
    document.getElementById('wxb-errors').textContent = JSON.stringify(window.wxbErrors);
    document.body.dataset.ready = window.wxbErrors.length ? 'errors' : 'ok';
  }
  main();
})();
