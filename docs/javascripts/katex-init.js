// Render the formulas that pymdownx.arithmatex (generic mode) leaves in the page:
// <span class="arithmatex">\( ... \)</span> inline, <div class="arithmatex">\[ ... \]</div> display.
// KaTeX itself is served from docs/assets/katex/, so no network access is needed.
(function () {
  "use strict";

  var OPTIONS = {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false, // a bad formula shows in red instead of stopping the page
  };

  function render(root) {
    if (typeof renderMathInElement !== "function") return;
    var nodes = (root || document).querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) renderMathInElement(nodes[i], OPTIONS);
  }

  // Search results quote the page text, formulas included as TeX: render those too
  // (a formula cut off by the end of a snippet stays as text).
  function watchSearch() {
    var list = document.querySelector(".md-search-result__list");
    if (!list || typeof MutationObserver !== "function" || list.dataset.katex) return;
    list.dataset.katex = "1";
    new MutationObserver(function (mutations) {
      mutations.forEach(function (m) {
        m.addedNodes.forEach(function (node) {
          if (node.nodeType === 1 && typeof renderMathInElement === "function") {
            renderMathInElement(node, OPTIONS);
          }
        });
      });
    }).observe(list, { childList: true, subtree: true });
  }

  function onPage() {
    render(document);
    watchSearch();
  }

  if (typeof document$ !== "undefined" && document$.subscribe) {
    // mkdocs-material: runs on the first load and after every instant navigation
    document$.subscribe(onPage);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", onPage);
  } else {
    onPage();
  }
})();
