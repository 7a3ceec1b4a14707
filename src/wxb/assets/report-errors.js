// First in the page: every error, failed load and console error or warning is kept,
// so a reader (and the browser test) can see that the page rendered cleanly.
window.wxbErrors = [];
(function () {
  var keep = function (what) { window.wxbErrors.push(String(what)); };
  window.addEventListener('error', function (e) {
    var t = e.target;
    keep(t && t !== window && (t.src || t.href) ? 'failed to load ' + (t.src || t.href)
         : 'error: ' + e.message);
  }, true);
  window.addEventListener('unhandledrejection', function (e) { keep('rejection: ' + e.reason); });
  ['error', 'warn'].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      keep('console.' + level + ': ' + Array.prototype.map.call(arguments, String).join(' '));
      return original.apply(console, arguments);
    };
  });
})();
