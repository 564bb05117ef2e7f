/* eiginit book: inline math wider than its line scrolls sideways instead of being cut off.

   The theme clips inline math to the line (span.math { overflow: hidden }), so a long formula on
   a phone simply lost its end. Once MathJax has typeset the page, and again whenever the window
   changes size, each inline formula wider than its box gets the class eiginit-wide, which
   eiginit.css turns into a sideways scroll. */
(function () {
  "use strict";
  // Wider than the line it sits in (not merely a pixel or two of MathJax overhang).
  function tooWide(span) {
    var formula = span.querySelector("mjx-container");
    var block = span.parentElement && span.parentElement.closest("p, li, dd, dt, td, th, figcaption, div");
    if (!formula || !block) {
      return false;
    }
    var style = getComputedStyle(block);
    var line = block.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return formula.getBoundingClientRect().width > line + 1;
  }
  function mark() {
    document.querySelectorAll("span.math").forEach(function (span) {
      span.classList.toggle("eiginit-wide", tooWide(span));
    });
  }
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(mark);
    } else {
      mark();
    }
  });
  window.addEventListener("resize", mark);
})();
