// Render the formulas that pymdownx.arithmatex (generic mode) leaves in the page:
// <span class="arithmatex">\( ... \)</span> inline, <div class="arithmatex">\[ ... \]</div> display.
// KaTeX itself is served from docs/assets/katex/, so no network access is needed.
(function () {
  "use strict";

  function render(root) {
    if (typeof renderMathInElement !== "function") return;
    var nodes = (root || document).querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true },
        ],
        throwOnError: false, // a bad formula shows in red instead of stopping the page
      });
    }
  }

  if (typeof document$ !== "undefined" && document$.subscribe) {
    // mkdocs-material: runs on the first load and after every instant navigation
    document$.subscribe(function () { render(document); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document); });
  } else {
    render(document);
  }
})();
