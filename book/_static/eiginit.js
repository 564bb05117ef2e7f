/* eiginit book: small reader aids, no dependencies.

   1. Inline math wider than its line scrolls sideways instead of being cut off. The theme clips
      inline math to the line (span.math { overflow: hidden }), so a long formula on a phone
      simply lost its end. Once MathJax has typeset the page, and again whenever the window
      changes size, each inline formula wider than its line gets the class eiginit-wide, which
      eiginit.css turns into a sideways scroll.
   2. A figure opens at full size on a tap. On a phone the column shows a figure at about half
      its size, too small to read its labels; every figure is a link to its image
      (booktools/sphinx_ext.py). On a narrow screen the tap opens the image at its natural size
      in a full-screen view that pans sideways (a desktop browser opens the image itself). */
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

  var NARROW = "(max-width: 600px)";
  function figureView() {
    var view = document.getElementById("eiginit-figure-view");
    if (view) {
      return view;
    }
    view = document.createElement("dialog");
    view.id = "eiginit-figure-view";
    view.className = "eiginit-figure-view";
    view.setAttribute("aria-label", "Figure at full size");
    var close = document.createElement("button");
    close.type = "button";
    close.className = "eiginit-figure-close";
    close.setAttribute("aria-label", "Close the figure");
    close.textContent = "\u00d7";
    var pane = document.createElement("div");
    pane.className = "eiginit-figure-pane";
    pane.appendChild(document.createElement("img"));
    view.appendChild(close);
    view.appendChild(pane);
    close.addEventListener("click", function () { view.close(); });
    document.body.appendChild(view);
    return view;
  }
  function openFigure(event) {
    if (!window.matchMedia(NARROW).matches || typeof HTMLDialogElement === "undefined") {
      return; // a wide screen: the link opens the image itself
    }
    event.preventDefault();
    var small = event.currentTarget.querySelector("img");
    var view = figureView();
    var big = view.querySelector("img");
    big.src = small.currentSrc || small.src;
    big.alt = small.alt;
    view.showModal();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("a.eiginit-figure-link").forEach(function (link) {
      link.addEventListener("click", openFigure);
    });
  });
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
