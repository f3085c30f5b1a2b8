/* The dashboard's script: the overview's trend, drawn by uPlot from /v1/stats (the session's
   cookie goes with the request), the score as a line and its 95% interval as a band between
   the low and high series; a new interval fetches and draws again, and the table of the
   chart's numbers follows. Numbers and dates in the page's language and digits (Intl).
   Everything else on the dashboard works without this script. */
(function () {
  'use strict';

  var box = document.getElementById('trend');
  if (!box || typeof uPlot === 'undefined') return;

  var language = box.dataset.lang;
  var numbering = box.dataset.numbering;
  var status = document.getElementById('trend-status');
  var rows = document.getElementById('trend-rows');
  var select = document.getElementById('interval');
  var HEIGHT = 280;
  var DAY_PARTS = {day: 'numeric', month: 'short'};
  var DATES = {
    hour: {day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23'},
    day: DAY_PARTS,
    week: DAY_PARTS,
    month: {month: 'short', year: 'numeric'}
  };
  var scoreFormat = new Intl.NumberFormat(language, {
    numberingSystem: numbering, minimumFractionDigits: 1, maximumFractionDigits: 1
  });
  var countFormat = new Intl.NumberFormat(language, {numberingSystem: numbering});
  var plot = null;
  var asked = 0;

  function dateFormat(interval) {
    var options = {timeZone: 'UTC', calendar: 'gregory', numberingSystem: numbering};
    var parts = DATES[interval] || DAY_PARTS;
    Object.keys(parts).forEach(function (name) { options[name] = parts[name]; });
    return new Intl.DateTimeFormat(language, options);
  }

  function score(value) {
    return value === null || value === undefined ? '–' : scoreFormat.format(value);
  }

  function columns(series) {
    var data = [[], [], [], []];
    series.forEach(function (bucket) {
      data[0].push(Date.parse(bucket.start) / 1000);
      data[1].push(bucket.score);
      data[2].push(bucket.low);
      data[3].push(bucket.high);
    });
    return data;
  }

  function width() {
    return Math.max(200, box.clientWidth - 16);
  }

  function options(when) {
    var shown = function (u, value) { return score(value); };
    var line = function (label, stroke, size, dash) {
      return {label: label, stroke: stroke, width: size, dash: dash, value: shown,
        points: {show: !dash, size: 5}};
    };
    return {
      width: width(),
      height: HEIGHT,
      tzDate: function (seconds) { return uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'); },
      scales: {x: {time: true}},
      series: [
        {label: box.dataset.time, value: function (u, seconds) {
          return seconds === null ? '–' : when.format(new Date(seconds * 1000));
        }},
        line(box.dataset.score, '#1d4ed8', 2, undefined),
        line(box.dataset.low, '#6b7fd7', 1, [4, 4]),
        line(box.dataset.high, '#6b7fd7', 1, [4, 4])
      ],
      // The interval: the area between the high series (3) and the low series (2).
      bands: [{series: [3, 2], fill: 'rgba(29, 78, 216, 0.15)'}],
      axes: [
        {space: 70, values: function (u, splits) {
          return splits.map(function (seconds) { return when.format(new Date(seconds * 1000)); });
        }},
        {size: 56, values: function (u, splits) {
          return splits.map(function (value) { return countFormat.format(value); });
        }}
      ]
    };
  }

  function cell(row, text, tag) {
    var made = document.createElement(tag || 'td');
    if (tag === 'th') made.scope = 'row';
    else made.className = 'num';
    if (typeof text === 'string') made.textContent = text;
    else made.appendChild(text);
    row.appendChild(made);
  }

  function table(series, when) {
    var latest = Number(box.dataset.latest) || 60;
    var made = document.createDocumentFragment();
    series.slice(-latest).forEach(function (bucket) {
      var row = document.createElement('tr');
      var time = document.createElement('time');
      time.dateTime = bucket.start;
      time.textContent = when.format(new Date(bucket.start));
      cell(row, time, 'th');
      cell(row, score(bucket.score));
      var known = bucket.low !== null && bucket.high !== null;
      cell(row, known ? score(bucket.low) + ' – ' + score(bucket.high) : '–');
      cell(row, countFormat.format(bucket.count));
      made.appendChild(row);
    });
    rows.replaceChildren(made);
  }

  function draw(series, interval) {
    var when = dateFormat(interval);
    var data = columns(series);
    if (plot) plot.destroy();
    plot = new uPlot(options(when), data, box);
    var xs = data[0];
    box.dataset.interval = interval;
    var option = select && select.querySelector('option[value="' + interval + '"]');
    if (option) box.setAttribute('aria-label', box.dataset.label.replace('{}', option.textContent.toLowerCase()));
    box.dataset.points = String(xs.length);
    box.dataset.first = xs.length ? String(xs[0]) : '';
    box.dataset.last = xs.length ? String(xs[xs.length - 1]) : '';
    box.dataset.state = 'drawn';
    if (rows) table(series, when);
    status.textContent = '';
  }

  function load(interval) {
    var ticket = ++asked;
    box.dataset.state = 'loading';
    var url = box.dataset.stats + '&interval=' + encodeURIComponent(interval);
    return fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (answer) {
        if (!answer.ok) throw new Error('the stats answered ' + answer.status);
        return answer.json();
      })
      .then(function (stats) {
        if (ticket === asked) draw(stats.series || [], interval);
      })
      .catch(function () {
        if (ticket !== asked) return;
        box.dataset.state = 'failed';
        status.textContent = box.dataset.failed;
      });
  }

  if (select) {
    select.addEventListener('change', function () {
      var params = new URLSearchParams(window.location.search);
      params.set('interval', select.value);
      window.history.replaceState(null, '', window.location.pathname + '?' + params.toString());
      load(select.value);
    });
  }

  var resizing = 0;
  window.addEventListener('resize', function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      if (plot) plot.setSize({width: width(), height: HEIGHT});
    }, 150);
  });

  load(box.dataset.interval);
}());
